//! The invariant table: every record of every battery with what it holds a
//! subject to, how it judges, what it needs, and the power it has at a
//! reference case, generated from the very lists the runs iterate
//! (`docs/INVARIANTS.md` is its output, and a test keeps the two equal).

use super::battery::Batteries;
use super::cases::{DropoutCase, TrainingCase};
use crate::check::optimizer::OptimizerKind;
use crate::check::registry::{Check, Judged, RecordSpec, Settings};
use crate::check::report::{CheckReport, RecordKind};
use crate::check::subjects::{CoreDropout, CoreModel, CoreNoise};

/// The dropout case the power column is computed at: rate 0.5 on `[1000,
/// 1000]`, seed 1.
pub fn reference_dropout_case() -> DropoutCase {
    DropoutCase {
        rate: 0.5,
        shape: vec![1000, 1000],
        seed: 1,
    }
}

/// The training case the model rows are shown at: AdamW with weight decay
/// 0.01, dropout rate 0.5, 20 steps, seed 1.
pub fn reference_training_case() -> TrainingCase {
    TrainingCase {
        optimizer: OptimizerKind::AdamW,
        weight_decay: 0.01,
        epochs: 1,
        batch_size: 64,
        freeze_mid_training: false,
        rate: 0.5,
        seed: 1,
        steps: TrainingCase::STEPS,
    }
}

/// One section of the table: a heading and the rows of one battery, each with
/// the power its first record states at the reference case.
fn section<S: ?Sized, C>(
    out: &mut String,
    heading: &str,
    checks: &[Check<S, C>],
    reference: &[CheckReport],
) {
    out.push_str(&format!(
        "\n## {heading}\n\n| record | kind | judged | needs | rule | detects, at the reference case |\n|---|---|---|---|---|---|\n"
    ));
    for check in checks {
        for RecordSpec { id, kind, rule, .. } in check.records {
            let kind = match kind {
                RecordKind::Invariant => "invariant",
                RecordKind::Convention => "convention",
            };
            let judged = match check.judged {
                Judged::Exact => "exact",
                Judged::Statistical => "alpha",
            };
            let needs = if check.needs.is_empty() {
                "—".to_string()
            } else {
                check
                    .needs
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let power = reference
                .iter()
                .find(|r| r.check == *id)
                .and_then(|r| r.detectable.clone())
                .unwrap_or_else(|| match (kind, check.judged) {
                    ("invariant", Judged::Exact) => "any one element".into(),
                    _ => "—".into(),
                });
            out.push_str(&format!(
                "| `{id}` | {kind} | {judged} | {needs} | {rule} | {power} |\n"
            ));
        }
    }
}

/// The table of every record of `batteries`, as Markdown, with the power each
/// statistical record states when nncheck's own core runs it at the reference
/// cases at alpha 1e-9.
pub fn invariants_markdown(batteries: &Batteries) -> String {
    let settings = Settings { alpha: 1e-9 };
    let dropout_case = reference_dropout_case();
    let noise_case = DropoutCase {
        rate: 0.3,
        ..dropout_case.clone()
    };
    let training_case = reference_training_case();
    let mut out = String::from(
        "# Invariants\n\nEvery record the batteries produce, generated from the lists they run \
         (`cargo run --release -- invariants > docs/INVARIANTS.md`; a test keeps this file equal \
         to that output). An invariant passes or fails; a convention reports SPEC's choice or \
         another, apart from correctness (SPEC §7b). \"alpha\" rows are hypothesis tests at the \
         run's false-alarm probability (1e-9 by default); their last column is the smallest \
         deviation they detect with probability 0.99, as nncheck's own core states it at the \
         reference cases: dropout at rate 0.5 on `[1000, 1000]`, the noise layers at rate 0.3, \
         models under AdamW with weight decay 0.01 over 20 steps. A subject lacking what a \
         row needs gets it not applicable.\n",
    );
    section(
        &mut out,
        "Any dropout subject (SPEC §2)",
        &batteries.dropout.checks,
        &batteries
            .dropout
            .run(&CoreDropout, &dropout_case, &settings),
    );
    section(
        &mut out,
        "Any noise-layer subject (SPEC §2b)",
        &batteries.noise.checks,
        &batteries.noise.run(&CoreNoise, &noise_case, &settings),
    );
    section(
        &mut out,
        "Any model subject (SPEC §3–§5)",
        &batteries.model.checks,
        &batteries.model.run(&CoreModel, &training_case, &settings),
    );
    section(
        &mut out,
        "nncheck's own internals (SPEC §3–§5)",
        &batteries.core_training.checks,
        &batteries
            .core_training
            .run(&training_case, &settings, "reference"),
    );
    section(
        &mut out,
        "nncheck's own noise layers inside models (SPEC §2b)",
        &batteries.core_noise.checks,
        &batteries
            .core_noise
            .run(&noise_case, &settings, "reference"),
    );
    out
}
