//! PyTorch (CPU) through the conformance batteries, at the cases the
//! scoreboard runs: its verdicts are findings about PyTorch, and these tests
//! pin the ones that matter. Needs the feature `torch` and the environment
//! `python/make-env.sh torch` (about 5 GB: not made by `.ci/run`; the scheduled
//! workflow makes it); without either, each test says it skipped.

#[cfg(feature = "torch")]
#[path = "common/python_env.rs"]
mod python_env;
#[cfg(feature = "torch")]
#[path = "common/scoreboard_cases.rs"]
mod scoreboard_cases;

#[cfg(feature = "torch")]
mod with_torch {
    use nncheck::check::run::battery::{dropout_battery, noise_battery, training_battery};
    use nncheck::check::Verdict;
    use nncheck::conform::python::TORCH;
    use nncheck::conform::torch::{torch_model, TorchDropout, TorchNoise, TorchVariant};

    use super::python_env::{assert_refusal_is_the_subjects_error, ready_or_skip};
    use super::scoreboard_cases::{
        assert_verdict, dropout_case, print, records, training_case, ALPHA,
    };

    #[test]
    fn dropout_battery_findings() {
        if !ready_or_skip(&TORCH, "conform_torch::dropout_battery_findings") {
            return;
        }
        let reports = dropout_battery(&TorchDropout, &dropout_case(), ALPHA);
        print(&reports);
        for check in [
            "drop_rate_binomial",
            "survivors_scaled_exactly",
            "special_values_kept_scaled",
            "eval_is_identity",
            "backward_uses_forward_mask",
            "rate_one_drops_everything",
            "per_position_uniformity",
            "successive_calls_independent",
            "long_range_independent",
            "seeded_masks_reproducible",
            "reseeded_masks_reproducible",
        ] {
            assert_verdict(&reports, check, Verdict::Pass);
        }
        // `x * mask`: a dropped negative is -0.0, NaN stays NaN, inf becomes NaN.
        for check in [
            "dropped_negative_sign",
            "dropped_special_values",
            "rate_one",
        ] {
            assert_verdict(&reports, check, Verdict::Convention(false));
        }
        assert_verdict(&reports, "invalid_rate_refused", Verdict::Convention(true));
        assert_verdict(
            &reports,
            "noise_shape_cells_shared",
            Verdict::NotApplicable("noise shape".into()),
        );
    }

    /// AlphaDropout and the channels-first feature dropouts pass; what PyTorch
    /// has no layer for is not applicable, by name.
    #[test]
    fn noise_battery_findings() {
        if !ready_or_skip(&TORCH, "conform_torch::noise_battery_findings") {
            return;
        }
        let reports = noise_battery(&TorchNoise, &dropout_case(), ALPHA);
        print(&reports);
        for r in &reports {
            match r.verdict() {
                Verdict::Pass => {}
                Verdict::NotApplicable(what) => assert!(
                    [
                        "GaussianNoise layer",
                        "GaussianDropout layer",
                        "channels-last data format"
                    ]
                    .contains(&what.as_str()),
                    "{}",
                    r.line()
                ),
                _ => panic!("{}", r.line()),
            }
        }
        assert_verdict(&reports, "alpha_dropout_values_exact", Verdict::Pass);
        assert_verdict(&reports, "alpha_dropout_drop_rate", Verdict::Pass);
    }

    /// `requires_grad_(False)` alone: dropout stays active, but the frozen
    /// base's BatchNorm updates its running statistics in every training
    /// forward, and normalises with the batch's.
    #[test]
    fn requires_grad_alone_lets_batchnorm_statistics_move() {
        if !ready_or_skip(&TORCH, "conform_torch::requires_grad") {
            return;
        }
        let model = torch_model(TorchVariant::RequiresGrad);
        let reports = training_battery(&model, &training_case());
        print(&reports);
        assert_verdict(
            &reports,
            "frozen_model_dropout_active_in_fit",
            Verdict::Pass,
        );
        for check in [
            "frozen_weights_unchanged",
            "freeze_is_recursive",
            "frozen_batchnorm_inference_mode",
        ] {
            assert_verdict(&reports, check, Verdict::Fail);
        }
        let moved = records(&reports, "frozen_weights_unchanged")[0];
        assert!(moved.observed.contains("running_mean"), "{}", moved.line());
        assert!(!moved.observed.contains("weight ("), "{}", moved.line());
    }

    /// `requires_grad_(False)` plus `.eval()`: every weight and statistic stays
    /// bit-identical, and the frozen base's dropout is off during training.
    #[test]
    fn requires_grad_and_eval_switch_dropout_off() {
        if !ready_or_skip(&TORCH, "conform_torch::requires_grad_eval") {
            return;
        }
        let model = torch_model(TorchVariant::RequiresGradEval);
        let reports = training_battery(&model, &training_case());
        print(&reports);
        assert_verdict(
            &reports,
            "frozen_model_dropout_active_in_fit",
            Verdict::Fail,
        );
        for r in reports
            .iter()
            .filter(|r| r.check != "frozen_model_dropout_active_in_fit")
        {
            assert_eq!(r.verdict(), Verdict::Pass, "{}", r.line());
        }
    }

    /// A rate PyTorch refuses raises in Python and arrives as the subject's
    /// error with PyTorch's message.
    #[test]
    fn a_python_exception_is_the_subjects_error() {
        if !ready_or_skip(&TORCH, "conform_torch::a_python_exception") {
            return;
        }
        assert_refusal_is_the_subjects_error(&TorchDropout);
    }
}

#[cfg(not(feature = "torch"))]
#[test]
fn skipped_without_torch() {
    println!(
        "SKIPPED conform_torch: built without the torch feature \
         (python/make-env.sh torch, then cargo test --release --features torch --test conform_torch)"
    );
}
