//! The frozen-model scenario as an integration test: every check of the main
//! job's report passes, the report is computed (another rate gives other
//! figures), and the same seed gives the same report.

use nncheck::scenario::{run, ScenarioConfig};

fn small(rate: f64, seed: u64) -> ScenarioConfig {
    ScenarioConfig {
        rate,
        seed,
        samples: 512,
        epochs: 2,
        pretrain_epochs: 1,
        ..ScenarioConfig::default()
    }
}

#[test]
fn every_check_of_the_scenario_passes() {
    let outcome = run(&small(0.5, 42)).unwrap();
    for r in &outcome.reports {
        assert!(r.pass, "{}", r.line());
    }
    assert!(outcome.reports.len() >= 13);
}

#[test]
fn the_report_follows_the_rate() {
    let half = run(&small(0.5, 42)).unwrap();
    let fifth = run(&small(0.2, 42)).unwrap();
    assert!(fifth.passed());
    let rate_line = |o: &nncheck::scenario::ScenarioOutcome| {
        o.reports
            .iter()
            .find(|r| r.check == "drop_rate_binomial")
            .unwrap()
            .clone()
    };
    assert_ne!(rate_line(&half).bound, rate_line(&fifth).bound);
    assert_ne!(rate_line(&half).observed, rate_line(&fifth).observed);
    let (_, seen, dropped) = fifth.dropout_counts[0];
    let observed = dropped as f64 / seen as f64;
    assert!((0.15..0.25).contains(&observed), "{observed}");
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let a = run(&small(0.3, 7)).unwrap();
    let b = run(&small(0.3, 7)).unwrap();
    assert_eq!(a.reports, b.reports);
    assert_eq!(a.history, b.history);
}

#[path = "twins/unscaled.rs"]
mod unscaled_dropout;

/// The report can fail: with a dropout that forgets the survivor scale at every
/// position, the scale checks fail (on the frozen models and on the toy) while
/// the rate, which the broken layer still gets right, passes.
#[test]
fn the_report_fails_with_a_broken_dropout_injected() {
    let cfg = small(0.5, 42);
    let outcome = nncheck::scenario::run_with(&cfg, &unscaled_dropout::unscaled_dropout).unwrap();
    assert!(!outcome.passed());
    let failed: Vec<&str> = outcome
        .reports
        .iter()
        .filter(|r| !r.pass)
        .map(|r| r.check.as_str())
        .collect();
    assert!(failed.contains(&"survivors_scaled_exactly"), "{failed:?}");
    assert!(
        outcome
            .reports
            .iter()
            .any(|r| r.check == "drop_rate_binomial" && r.pass),
        "the rate is still right"
    );
    let text = nncheck::scenario::render(&cfg, &outcome);
    assert!(
        text.contains("FAILED") && !text.contains("Answer: yes"),
        "{text}"
    );
}

/// The predict check can fail: a dropout still active in `Eval` differs from its
/// input in predict, at every dropout position, and the eval check of the toy fails.
#[test]
fn the_report_fails_with_a_dropout_active_in_eval() {
    let cfg = small(0.5, 42);
    let active = |rate: f64, seed: Option<u64>| -> nncheck::Result<Box<dyn nncheck::Layer<f32>>> {
        // A dropout that keeps dropping in `Eval`.
        let d = nncheck::Dropout::new(rate)?;
        let d = match seed {
            Some(s) => d.with_seed(s),
            None => d,
        };
        Ok(Box::new(
            nncheck::check::subjects::observed::Observed::with_forward(
                Box::new(d),
                Box::new(|layer, x, ctx| {
                    let train = nncheck::phase::ForwardCtx {
                        phase: nncheck::Phase::Train,
                        ..ctx
                    };
                    layer.forward(x, train)
                }),
            ),
        ))
    };
    let outcome = nncheck::scenario::run_with(&cfg, &active).unwrap();
    let failed: Vec<&str> = outcome
        .reports
        .iter()
        .filter(|r| !r.pass)
        .map(|r| r.check.as_str())
        .collect();
    assert_eq!(
        failed
            .iter()
            .filter(|c| **c == "predict_dropout_is_identity")
            .count(),
        2,
        "{failed:?}"
    );
    assert!(failed.contains(&"eval_is_identity"), "{failed:?}");
}

/// A "dropout" with no random state to list (here a ReLU) leaves the audited
/// positions unpaired: the report says so instead of passing on less evidence.
#[test]
fn the_report_fails_when_a_dropout_position_shows_no_random_state() {
    let cfg = small(0.5, 42);
    let relu = |_: f64, _: Option<u64>| -> nncheck::Result<Box<dyn nncheck::Layer<f32>>> {
        Ok(Box::new(nncheck::ReLU::new()))
    };
    let outcome = nncheck::scenario::run_with(&cfg, &relu).unwrap();
    let positions = outcome
        .reports
        .iter()
        .find(|r| r.check == "dropout_positions_audited")
        .expect("the pairing is reported");
    assert!(!positions.pass, "{}", positions.line());
    assert!(!outcome.passed());
}
