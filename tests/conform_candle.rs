//! candle-nn 0.11 through the conformance batteries, at cases of the sweep the
//! scoreboard runs (`Sweep::scoreboard(42, 1e-9)`): its verdicts are findings
//! about candle, and these tests pin the ones that matter so a change of
//! candle, of the adapter or of a check that moves one is seen. Every record's
//! line is printed (`-- --nocapture`).

#[cfg(feature = "candle")]
#[path = "common/scoreboard_cases.rs"]
mod scoreboard_cases;

#[cfg(feature = "candle")]
mod with_candle {
    use nncheck::check::run::battery::{dropout_battery, training_battery};
    use nncheck::check::run::cases::{DropoutCase, OptimizerKind, TrainingCase};
    use nncheck::check::subjects::model::HIDDEN;
    use nncheck::check::Capabilities;
    use nncheck::check::{CheckReport, Verdict};
    use nncheck::conform::candle::{CandleDropout, CandleModel};

    use super::scoreboard_cases::{
        assert_verdict, dropout_case, print, records, training_case, ALPHA,
    };

    #[test]
    fn dropout_battery_findings() {
        let reports = dropout_battery(&CandleDropout, &dropout_case(), ALPHA);
        print(&reports);
        // The rate on 10^6 draws at alpha 1e-9, the scale, the eval identity
        // (at rate 0.5 and at rate 0 in train), and the gradient of the forward's mask.
        for check in [
            "drop_rate_binomial",
            "survivors_scaled_exactly",
            "special_values_kept_scaled",
            "eval_is_identity",
            "backward_uses_forward_mask",
            "per_position_uniformity",
            "successive_calls_independent",
            "neighbours_independent",
        ] {
            assert_verdict(&reports, check, Verdict::Pass);
        }
        // `x * mask`: a dropped negative is -0.0, a convention, not a wrong rate.
        assert_verdict(
            &reports,
            "dropped_negative_sign",
            Verdict::Convention(false),
        );
        // Every one of them, and there are some.
        let sign = records(&reports, "dropped_negative_sign")[0];
        let counts: Vec<usize> = sign
            .observed
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert!(
            counts.len() == 2 && counts[0] == counts[1] && counts[0] > 0,
            "{}",
            sign.line()
        );
        // Dropped NaN stays NaN, dropped infinities become NaN, dropped -0.0 stays -0.0.
        assert_verdict(
            &reports,
            "dropped_special_values",
            Verdict::Convention(false),
        );
        let special = records(&reports, "dropped_special_values")[0];
        for seen in ["NaN -> NaN", "+inf -> NaN", "-inf -> NaN", "-0.0 -> -0.0"] {
            assert!(special.observed.contains(seen), "{}", special.line());
        }
        // candle refuses rate 1 in its train forward, and accepts invalid rates
        // in eval (it checks the rate only when it draws a mask).
        assert_verdict(&reports, "rate_one", Verdict::Convention(false));
        let rate_one = records(&reports, "rate_one")[0];
        assert!(
            rate_one
                .observed
                .contains("dropout probability has to be in [0, 1)"),
            "{}",
            rate_one.line()
        );
        assert_verdict(&reports, "invalid_rate_refused", Verdict::Convention(false));
        assert_eq!(
            records(&reports, "invalid_rate_refused")[0].observed,
            "accepted -0.1 (eval identity), 1.5 (eval identity), NaN (eval identity)"
        );
        // What candle lacks.
        let na = |capability: &str| Verdict::NotApplicable(capability.into());
        assert_verdict(
            &reports,
            "seeded_masks_reproducible",
            na("seeding at build"),
        );
        assert_verdict(&reports, "reseeded_masks_reproducible", na("reseeding"));
        assert_verdict(&reports, "counters_match_output", na("drop counters"));
        assert_verdict(&reports, "noise_shape_cells_shared", na("noise shape"));
        assert!(
            reports.iter().all(|r| r.verdict() != Verdict::Fail),
            "no invariant fails"
        );
    }

    /// candle holds its rate as an `f32` and scales by `1 / (1 - rate)` from
    /// it; at a rate whose `f64` and `f32` scales differ by an ulp, the
    /// survivors follow that recipe exactly, and the audit names it.
    #[test]
    fn survivors_scaled_by_the_rate_candle_holds() {
        let rate = 0.4955263853501021;
        let held = f64::from(rate as f32);
        assert_ne!((1.0 / (1.0 - rate)) as f32, (1.0 / (1.0 - held)) as f32);
        let case = DropoutCase {
            rate,
            shape: vec![1000, 10],
            seed: 42,
        };
        let reports = dropout_battery(&CandleDropout, &case, ALPHA);
        print(&reports);
        assert_verdict(&reports, "survivors_scaled_exactly", Verdict::Pass);
        assert_verdict(&reports, "drop_rate_binomial", Verdict::Pass);
        assert_verdict(&reports, "scale_recipe", Verdict::Convention(false));
        let recipe = records(&reports, "scale_recipe")[0];
        // Where two recipes give the same bits for every input, the record
        // names the first and lists the others; candle's is among them.
        assert!(
            recipe.observed.contains("x * f32(1/(1-p)), p held in f32"),
            "{}",
            recipe.line()
        );
        assert!(reports.iter().all(|r| r.verdict() != Verdict::Fail));
    }

    #[test]
    fn training_battery_findings() {
        let reports = training_battery(&CandleModel, &training_case());
        print(&reports);
        // Freezing by giving the optimizer only the head's Vars: the head
        // learns, the gradient passes a frozen head, an unfreeze takes effect,
        // dropout stays active in a frozen model's training steps, inference is
        // deterministic, and nothing but a step moves a weight.
        for check in [
            "trainable_weights_changed",
            "frozen_model_dropout_active_in_fit",
            "gradient_passes_frozen_layer",
            "unfreeze_takes_effect_without_recompile",
            "inference_deterministic",
            "only_steps_change_weights",
        ] {
            assert_verdict(&reports, check, Verdict::Pass);
        }
        // A training forward normalises with the batch's statistics whatever
        // the optimizer holds: a frozen base's BatchNorm is not in inference mode.
        assert_verdict(&reports, "frozen_batchnorm_inference_mode", Verdict::Fail);
        // candle's BatchNorm updates its running statistics in every training
        // forward: the frozen base's (and a wholly frozen model's) running mean
        // and variance move, all 2 x HIDDEN of them, and nothing else does.
        for check in ["frozen_weights_unchanged", "freeze_is_recursive"] {
            assert_verdict(&reports, check, Verdict::Fail);
            let r = records(&reports, check)[0];
            let moved = format!("{} of ", 2 * HIDDEN);
            assert!(r.observed.starts_with(&moved), "{}", r.line());
            assert!(r.observed.contains("running_mean"), "{}", r.line());
            assert!(r.observed.contains("running_var"), "{}", r.line());
            assert!(!r.observed.contains("weight ("), "{}", r.line());
            assert!(!r.observed.contains("bias ("), "{}", r.line());
        }
        // candle's optimizer state is private.
        assert_verdict(
            &reports,
            "frozen_optimizer_slots_unchanged",
            Verdict::NotApplicable("optimizer state access".into()),
        );
    }

    /// Without a BatchNorm, a frozen candle base stays bit-identical.
    #[test]
    fn frozen_base_without_batch_norm_is_unchanged() {
        use nncheck::check::training::freezing::{
            check_freeze_is_recursive, check_frozen_weights_unchanged,
            check_trainable_weights_changed,
        };
        // A subject without BatchNorm gets this spec from the battery.
        let spec =
            nncheck::check::run::battery::model_spec(&training_case(), &Capabilities::none());
        let reports = [
            check_frozen_weights_unchanged(&CandleModel, &spec),
            check_trainable_weights_changed(&CandleModel, &spec),
            check_freeze_is_recursive(&CandleModel, &spec),
        ];
        print(&reports);
        assert_verdict(&reports, "frozen_weights_unchanged", Verdict::Pass);
        assert_verdict(&reports, "freeze_is_recursive", Verdict::Pass);
        assert_verdict(&reports, "trainable_weights_changed", Verdict::Pass);
    }

    /// SGD momentum, Nesterov and weight decay are not in candle-nn: every
    /// check of the training battery says so rather than failing.
    #[test]
    fn missing_optimizers_are_not_applicable() {
        for (optimizer, weight_decay, capability) in [
            (OptimizerKind::Momentum, 0.0, "SGD momentum optimizer"),
            (OptimizerKind::Nesterov, 0.0, "SGD Nesterov optimizer"),
            (OptimizerKind::Sgd, 0.01, "SGD weight decay"),
        ] {
            let case = TrainingCase {
                optimizer,
                weight_decay,
                ..training_case()
            };
            let reports = training_battery(&CandleModel, &case);
            print(&reports);
            for r in &reports {
                assert_eq!(
                    r.verdict(),
                    Verdict::NotApplicable(capability.into()),
                    "{}",
                    r.line()
                );
            }
        }
    }

    /// Plain SGD, which candle-nn has: the same verdicts as AdamW.
    #[test]
    fn plain_sgd_gets_the_same_verdicts() {
        let case = TrainingCase {
            optimizer: OptimizerKind::Sgd,
            weight_decay: 0.0,
            ..training_case()
        };
        let sgd = training_battery(&CandleModel, &case);
        print(&sgd);
        let adamw = training_battery(&CandleModel, &training_case());
        let verdicts = |reports: &[CheckReport]| -> Vec<(String, Verdict)> {
            reports
                .iter()
                .map(|r| (r.check.clone(), r.verdict()))
                .collect()
        };
        assert_eq!(verdicts(&sgd), verdicts(&adamw));
    }
}

/// The version the adapter states is the one Cargo.lock resolved.
#[cfg(feature = "candle")]
#[test]
fn the_stated_version_is_the_locked_one() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let stated = format!(
        "name = \"candle-nn\"\nversion = \"{}\"",
        nncheck::conform::candle::VERSION
    );
    assert!(
        lock.contains(&stated),
        "Cargo.lock does not lock candle-nn {}",
        nncheck::conform::candle::VERSION
    );
}

#[cfg(not(feature = "candle"))]
#[test]
fn skipped_without_candle() {
    println!(
        "SKIPPED conform_candle: built without the candle feature \
         (cargo test --release --features candle --test conform_candle)"
    );
}
