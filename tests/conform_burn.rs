//! burn 0.22 (ndarray backend) through the same batteries as nncheck's core, at
//! the scoreboard's configuration: the verdicts measured here are the ones
//! `nncheck conform` prints for burn, pinned so that a change in burn or in the
//! adapter shows up as a test failure with every record printed.
//!
//! Built only with the `burn` feature; without it one test says it skipped.

#[cfg(feature = "burn")]
#[path = "common/scoreboard_cases.rs"]
mod scoreboard_cases;

#[cfg(feature = "burn")]
mod burn_subjects {
    use nncheck::check::run::battery::{dropout_battery, training_battery};
    use nncheck::check::{CheckReport, Verdict};
    use nncheck::conform::burn::{BurnDropout, BurnModel, Freezing};
    use nncheck::conform::{Scoreboard, Sweep};
    use std::sync::{Mutex, MutexGuard};

    /// burn draws every mask from one process-wide stream, which `reseed` and a
    /// model build restart: the tests take turns so one cannot move another's
    /// stream between a reseed and the call it is meant to repeat.
    static BURN_STREAM: Mutex<()> = Mutex::new(());

    fn turn() -> MutexGuard<'static, ()> {
        BURN_STREAM.lock().unwrap_or_else(|e| e.into_inner())
    }

    use super::scoreboard_cases::{dropout_case, print, training_case, ALPHA};

    /// The one record of `check` (there must be exactly one).
    fn one<'a>(records: &'a [CheckReport], check: &str) -> &'a CheckReport {
        let found: Vec<&CheckReport> = records.iter().filter(|r| r.check == check).collect();
        assert_eq!(found.len(), 1, "records of {check}: {found:?}");
        found[0]
    }

    fn verdicts(records: &[CheckReport], check: &str) -> Vec<Verdict> {
        records
            .iter()
            .filter(|r| r.check == check)
            .map(CheckReport::verdict)
            .collect()
    }

    #[test]
    fn dropout_battery_verdicts() {
        let _turn = turn();
        let records = dropout_battery(&BurnDropout, &dropout_case(), ALPHA);
        print(&records);
        // Every invariant burn can be asked about holds, the statistical ones at
        // alpha 1e-9 on 10^6 draws.
        for check in [
            "drop_rate_binomial",
            "survivors_scaled_exactly",
            "special_values_kept_scaled",
            "backward_uses_forward_mask",
            "per_position_uniformity",
            "successive_calls_independent",
            "neighbours_independent",
            "reseeded_masks_reproducible",
            "long_range_independent",
        ] {
            assert_eq!(one(&records, check).verdict(), Verdict::Pass, "{check}");
        }
        // Inference is the identity on special values, and so is rate 0 in training.
        assert_eq!(
            verdicts(&records, "eval_is_identity"),
            [Verdict::Pass, Verdict::Pass]
        );
        // Rate 1 is refused by a panic in `DropoutConfig::init`: a convention
        // finding, not a failure; invalid rates are refused the same way.
        let rate_one = one(&records, "rate_one");
        assert_eq!(rate_one.verdict(), Verdict::Convention(false));
        assert!(
            rate_one.observed.starts_with("refused: ")
                && rate_one.observed.contains(
                    "panicked: Dropout probability must be finite and in the range [0, 1)"
                ),
            "{}",
            rate_one.observed
        );
        assert_eq!(
            one(&records, "invalid_rate_refused").verdict(),
            Verdict::Convention(true)
        );
        // `x * mask`: a dropped negative is -0.0, a dropped infinity NaN.
        assert_eq!(
            one(&records, "dropped_negative_sign").verdict(),
            Verdict::Convention(false)
        );
        let special = one(&records, "dropped_special_values");
        assert_eq!(special.verdict(), Verdict::Convention(false));
        assert!(
            special.observed.contains("+inf -> NaN"),
            "{}",
            special.observed
        );
        // No per-layer seed, no counters, no noise shape.
        for (check, capability) in [
            ("seeded_masks_reproducible", "seeding at build"),
            ("counters_match_output", "drop counters"),
            ("noise_shape_cells_shared", "noise shape"),
        ] {
            assert_eq!(
                one(&records, check).verdict(),
                Verdict::NotApplicable(capability.into()),
                "{check}"
            );
        }
        assert!(records.iter().all(|r| r.verdict() != Verdict::Fail));
    }

    #[test]
    fn freeze_model_verdicts() {
        let _turn = turn();
        let records = training_battery(&BurnModel::new(Freezing::Freeze), &training_case());
        print(&records);
        // `freeze()` clears the dropout's training flag: the frozen base's
        // dropout is off in the training steps, so every step's loss is the
        // inference loss. The question's answer for burn's freeze(): no.
        let question = one(&records, "frozen_model_dropout_active_in_fit");
        assert_eq!(question.verdict(), Verdict::Fail);
        assert!(
            question.observed.starts_with("0 of 20 steps"),
            "{}",
            question.observed
        );
        // Everything else about freezing holds: weights and BatchNorm
        // statistics bit-identical (the frozen BatchNorm runs in inference
        // mode), the whole tree reached, the gradient through a frozen head,
        // an unfreeze effective at the next step, no weight moved but by a step.
        for check in [
            "frozen_weights_unchanged",
            "frozen_batchnorm_inference_mode",
            "only_steps_change_weights",
            "trainable_weights_changed",
            "freeze_is_recursive",
            "gradient_passes_frozen_layer",
            "unfreeze_takes_effect_without_recompile",
            "inference_deterministic",
        ] {
            assert_eq!(one(&records, check).verdict(), Verdict::Pass, "{check}");
        }
        assert_eq!(
            one(&records, "frozen_optimizer_slots_unchanged").verdict(),
            Verdict::NotApplicable("optimizer state access".into())
        );
    }

    #[test]
    fn no_grad_model_verdicts() {
        let _turn = turn();
        let records = training_battery(&BurnModel::new(Freezing::NoGrad), &training_case());
        print(&records);
        // `no_grad()` leaves the training flags on: dropout keeps dropping in
        // the frozen base. The question's answer for burn's no_grad(): yes.
        let question = one(&records, "frozen_model_dropout_active_in_fit");
        assert_eq!(question.verdict(), Verdict::Pass, "{}", question.observed);
        // ... and BatchNorm keeps updating its running statistics, so a frozen
        // base still changes: exactly those 32 scalars, no parameter.
        for check in ["frozen_weights_unchanged", "freeze_is_recursive"] {
            let r = one(&records, check);
            assert_eq!(r.verdict(), Verdict::Fail, "{check}");
            assert!(
                r.observed.starts_with("32 of ")
                    && r.observed.ends_with(
                        "base/batch_norm/running_mean (16), base/batch_norm/running_var (16)"
                    ),
                "{check}: {}",
                r.observed
            );
        }
        // The BatchNorm of a base frozen by no_grad() normalises with the
        // batch's statistics in a training step.
        assert_eq!(
            one(&records, "frozen_batchnorm_inference_mode").verdict(),
            Verdict::Fail
        );
        for check in [
            "trainable_weights_changed",
            "gradient_passes_frozen_layer",
            "unfreeze_takes_effect_without_recompile",
            "inference_deterministic",
            "only_steps_change_weights",
        ] {
            assert_eq!(one(&records, check).verdict(), Verdict::Pass, "{check}");
        }
        assert_eq!(
            one(&records, "frozen_optimizer_slots_unchanged").verdict(),
            Verdict::NotApplicable("optimizer state access".into())
        );
    }

    /// The scoreboard runs the three burn subjects compiled in, and its answer
    /// to the question is burn's two answers side by side.
    #[test]
    fn scoreboard_answers() {
        let _turn = turn();
        let subjects = nncheck::conform::compiled_subjects();
        let board = Scoreboard::run(&subjects, &Sweep::scoreboard(42, ALPHA), |_| {});
        for record in &board.records {
            println!("{}: {}", record.subject, record.report.line());
        }
        let answer = |subject: &str| {
            board
                .answers()
                .into_iter()
                .find(|(s, _)| s == subject)
                .and_then(|(_, cell)| cell)
                .map(|cell| cell.verdict)
        };
        assert_eq!(answer("nncheck"), Some(Verdict::Pass));
        assert_eq!(answer("burn 0.22 freeze()"), Some(Verdict::Fail));
        assert_eq!(answer("burn 0.22 no_grad()"), Some(Verdict::Pass));
        assert!(board.subjects.iter().any(|s| s == "burn 0.22"));
        assert!(board
            .not_compiled
            .iter()
            .all(|(name, _)| name != "burn 0.22"));
    }
}

/// The version the adapter states is the one Cargo.lock resolved.
#[cfg(feature = "burn")]
#[test]
fn the_stated_version_is_the_locked_one() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let stated = format!(
        "name = \"burn\"\nversion = \"{}\"",
        nncheck::conform::burn::VERSION
    );
    assert!(
        lock.contains(&stated),
        "Cargo.lock does not lock burn {}",
        nncheck::conform::burn::VERSION
    );
}

#[cfg(not(feature = "burn"))]
#[test]
fn conform_burn_skipped() {
    println!(
        "SKIPPED conform_burn: built without the burn feature \
         (cargo test --release --features burn --test conform_burn)"
    );
}
