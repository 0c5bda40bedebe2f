//! Keras 3 (JAX, CPU) through the conformance batteries, at the cases the
//! scoreboard runs: its verdicts are findings about Keras, and these tests pin
//! the ones that matter. Needs the feature `keras` and the environment
//! `python/make-env.sh keras`; without either, each test says it skipped.

#[cfg(feature = "keras")]
#[path = "common/python_env.rs"]
mod python_env;
#[cfg(feature = "keras")]
#[path = "common/scoreboard_cases.rs"]
mod scoreboard_cases;

#[cfg(feature = "keras")]
mod with_keras {
    use nncheck::check::run::battery::{dropout_battery, noise_battery, training_battery};
    use nncheck::check::Verdict;
    use nncheck::conform::keras::{keras_model, KerasDropout, KerasNoise, KerasVariant};
    use nncheck::conform::python::KERAS;

    use super::python_env::{assert_refusal_is_the_subjects_error, ready_or_skip};
    use super::scoreboard_cases::{
        assert_verdict, dropout_case, print, records, training_case, ALPHA,
    };

    #[test]
    fn dropout_battery_findings() {
        if !ready_or_skip(&KERAS, "conform_keras::dropout_battery_findings") {
            return;
        }
        let reports = dropout_battery(&KerasDropout, &dropout_case(), ALPHA);
        print(&reports);
        for check in [
            "drop_rate_binomial",
            "survivors_scaled_exactly",
            "eval_is_identity",
            "backward_uses_forward_mask",
            "rate_one_drops_everything",
            "per_position_uniformity",
            "successive_calls_independent",
            "long_range_independent",
            "neighbours_independent",
            "seeded_masks_reproducible",
            "reseeded_masks_reproducible",
            "noise_shape_cells_shared",
        ] {
            assert_verdict(&reports, check, Verdict::Pass);
        }
        // Keras selects: a dropped unit is +0.0 whatever it held, rate 1 gives
        // zeros, and rates outside [0, 1] are refused: SPEC's conventions.
        for check in [
            "dropped_negative_sign",
            "dropped_special_values",
            "rate_one",
            "invalid_rate_refused",
        ] {
            assert_verdict(&reports, check, Verdict::Convention(true));
        }
        // XLA on the CPU flushes subnormal results to zero: a kept subnormal
        // is not scaled, it is zeroed.
        let special = records(&reports, "special_values_kept_scaled")[0];
        assert_eq!(special.verdict(), Verdict::Fail, "{}", special.line());
        assert!(special.observed.contains("subnormal"), "{}", special.line());
        assert_verdict(
            &reports,
            "counters_match_output",
            Verdict::NotApplicable("drop counters".into()),
        );
    }

    #[test]
    fn noise_battery_passes() {
        if !ready_or_skip(&KERAS, "conform_keras::noise_battery_passes") {
            return;
        }
        let reports = noise_battery(&KerasNoise, &dropout_case(), ALPHA);
        print(&reports);
        assert!(reports.len() >= 12, "{} records", reports.len());
        for r in &reports {
            assert_eq!(r.verdict(), Verdict::Pass, "{}", r.line());
        }
    }

    /// The question, in Keras: a base frozen with `trainable = False` keeps
    /// every weight and BatchNorm statistic bit-identical through
    /// `train_on_batch`, its BatchNorm runs in inference mode, and its dropout
    /// is active in every step.
    #[test]
    fn trainable_false_keeps_dropout_active_and_weights_frozen() {
        if !ready_or_skip(&KERAS, "conform_keras::trainable_false") {
            return;
        }
        let model = keras_model(KerasVariant::TrainableFalse);
        let reports = training_battery(&model, &training_case());
        print(&reports);
        for r in &reports {
            assert_eq!(r.verdict(), Verdict::Pass, "{}", r.line());
        }
        records(&reports, "frozen_model_dropout_active_in_fit");
        records(&reports, "frozen_batchnorm_inference_mode");
    }

    /// `base(x, training=False)` is recorded in the model's graph, but Keras
    /// 3.15 lets the outer call's `training=True` (that of `train_on_batch`)
    /// override it: the pinned base's dropout is active in `fit` all the same,
    /// and the scoreboard shows it. Everything else holds as with
    /// `trainable = False`.
    #[test]
    fn training_false_does_not_pin_the_base_during_fit() {
        if !ready_or_skip(&KERAS, "conform_keras::training_false") {
            return;
        }
        let model = keras_model(KerasVariant::TrainingFalse);
        let reports = training_battery(&model, &training_case());
        print(&reports);
        for r in &reports {
            assert_eq!(r.verdict(), Verdict::Pass, "{}", r.line());
        }
        let answer = records(&reports, "frozen_model_dropout_active_in_fit")[0];
        assert!(answer.observed.starts_with("20 of 20"), "{}", answer.line());
    }

    /// A rate Keras refuses raises its ValueError in Python, which arrives as
    /// the subject's error with Keras's message, not as a panic.
    #[test]
    fn a_python_exception_is_the_subjects_error() {
        if !ready_or_skip(&KERAS, "conform_keras::a_python_exception") {
            return;
        }
        assert_refusal_is_the_subjects_error(&KerasDropout);
    }
}

#[cfg(not(feature = "keras"))]
#[test]
fn skipped_without_keras() {
    println!(
        "SKIPPED conform_keras: built without the keras feature \
         (python/make-env.sh keras, then cargo test --release --features keras --test conform_keras)"
    );
}
