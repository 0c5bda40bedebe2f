//! The main job's report as text: the scenario, the measured counts, one line
//! per check, and the answer, which is given only when every check passed.

use super::{ScenarioConfig, ScenarioOutcome};
use std::fmt::Write;

/// The report a new user reads after `cargo run --release`.
///
/// ```
/// use nncheck::scenario::{render, run, ScenarioConfig};
/// let cfg = ScenarioConfig { samples: 256, epochs: 1, pretrain_epochs: 1, ..ScenarioConfig::default() };
/// let text = render(&cfg, &run(&cfg).unwrap());
/// assert!(text.contains("Answer: yes"));
/// ```
pub fn render(cfg: &ScenarioConfig, outcome: &ScenarioOutcome) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let w = &mut out;
    let _ = writeln!(
        w,
        "nncheck — are dropout layers active during training in a frozen model?\n"
    );
    let _ = writeln!(
        w,
        "Scenario: model_A (Dense→BatchNorm→ReLU→Dropout({r})→Dense) and model_B (Dense→Dropout({r})→Dense)",
        r = cfg.rate
    );
    let _ = writeln!(
        w,
        "trained {} epochs each, frozen, joined as model_AB = Dense(concat(A(x), B(x))),",
        cfg.pretrain_epochs
    );
    let _ = writeln!(
        w,
        "fitted {} epochs with AdamW (weight decay 0.004) on {} seeded samples, batch {}, seed {}.\n",
        cfg.epochs, cfg.samples, cfg.batch_size, cfg.seed
    );
    let losses: Vec<String> = outcome
        .history
        .loss
        .iter()
        .map(|l| format!("{l:.4}"))
        .collect();
    let _ = writeln!(w, "model_AB loss per epoch: {}\n", losses.join(", "));
    for (path, seen, dropped) in &outcome.dropout_counts {
        let _ = writeln!(w, "{path}: {dropped} of {seen} units dropped during fit");
    }
    let _ = writeln!(w, "\nThe toy: ones(1, 10) through Dropout({})", cfg.rate);
    let _ = writeln!(w, "  train: {:?}", outcome.toy_train);
    let _ = writeln!(w, "  eval:  {:?}\n", outcome.toy_eval);
    for r in &outcome.reports {
        let _ = writeln!(w, "{}", r.line());
    }
    let failed = outcome.reports.iter().filter(|r| !r.pass).count();
    let _ = writeln!(w);
    if failed == 0 {
        let dropped: u64 = outcome.dropout_counts.iter().map(|c| c.2).sum();
        let seen: u64 = outcome.dropout_counts.iter().map(|c| c.1).sum();
        let _ = writeln!(
            w,
            "Answer: yes. Freezing a model (trainable = false) stops its weights and BatchNorm statistics from \
             changing: in this run every one of their scalars is bit-identical after fit, while the new head \
             learned. It does not switch dropout off: the frozen models' dropout layers dropped {dropped} of {seen} \
             units during fit, at a rate inside its exact binomial region, and every survivor was scaled by exactly \
             1/(1-p). What switches dropout off is the phase: in predict every dropout output equalled its input bit \
             for bit. The one exception is BatchNormalization, which runs in inference mode when frozen. \
             The other train-only layers (GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout) \
             answer the same way: each perturbed its outputs during fit inside a frozen model and changed \
             no bit in predict."
        );
        let _ = writeln!(w, "\n{} checks, all passed.", outcome.reports.len());
    } else {
        let _ = writeln!(
            w,
            "{failed} of {} checks FAILED: the answer above is not supported by this run.",
            outcome.reports.len()
        );
    }
    out
}
