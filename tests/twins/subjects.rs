//! How the subject API treats what a twin lacks or gets wrong beyond its
//! verdict: capabilities a subject does not declare are not applicable and
//! named, accepted invalid rates say how they behave, and failing records name
//! what moved.

use super::dropouts::{Flaw, Twin};
use super::models::{ModelFlaw, TwinModel};
use ndarray::ArrayD;
use nncheck::check::dropout::conventions::check_invalid_rates_refused;
use nncheck::check::run::battery::training_battery;
use nncheck::check::run::cases::{OptimizerKind, TrainingCase};
use nncheck::check::{
    all_pass, no_failures, BoxedDropout, Capabilities, Capability, CheckReport, CoreModel,
    DropoutLike, DropoutSubject, ModelSpec, ModelSubject, Part, Result, TrainableModel, Verdict,
};
use nncheck::Phase;

fn training_case() -> TrainingCase {
    TrainingCase {
        optimizer: OptimizerKind::AdamW,
        weight_decay: 0.01,
        epochs: 1,
        batch_size: 64,
        freeze_mid_training: false,
        rate: 0.4,
        seed: 5,
        steps: TrainingCase::STEPS,
    }
}

/// The core's model, declaring `caps` in place of its own.
struct Declaring(Capabilities);

impl ModelSubject for Declaring {
    fn name(&self) -> String {
        "declaring".into()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.clone()
    }
    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        CoreModel.build(spec)
    }
}

/// A subject that does not show its optimizer state gets that row not
/// applicable, and every other row judged.
#[test]
fn a_model_that_cannot_show_its_optimizer_state_gets_that_row_not_applicable() {
    let caps = Capabilities::every_optimizer().with(Capability::BatchNorm);
    let reports = training_battery(&Declaring(caps), &training_case());
    for r in &reports {
        let want = if r.check == "frozen_optimizer_slots_unchanged" {
            Verdict::NotApplicable("optimizer state access".into())
        } else {
            Verdict::Pass
        };
        assert_eq!(r.verdict(), want, "{}", r.line());
    }
    assert!(reports
        .iter()
        .any(|r| r.check == "frozen_optimizer_slots_unchanged"));
}

/// A subject without BatchNorm is built without it: every row is judged but
/// the one about BatchNorm itself, which is not applicable and says why.
#[test]
fn a_model_without_batch_norm_is_judged_without_it() {
    let caps = Capabilities::every_optimizer().with(Capability::OptimizerState);
    let reports = training_battery(&Declaring(caps), &training_case());
    for r in &reports {
        let want = if r.check == "frozen_batchnorm_inference_mode" {
            Verdict::NotApplicable("BatchNormalization".into())
        } else {
            Verdict::Pass
        };
        assert_eq!(r.verdict(), want, "{}", r.line());
        assert!(!r.subject.contains("BatchNorm in base"), "{}", r.line());
    }
}

/// A case whose optimizer the subject lacks makes every row not applicable,
/// naming the optimizer, and never reads as a pass.
#[test]
fn a_missing_optimizer_is_not_applicable_and_named() {
    let caps = Capabilities::of(&[
        Capability::Optimizer(OptimizerKind::Sgd),
        Capability::BatchNorm,
    ]);
    let reports = training_battery(&Declaring(caps), &training_case());
    assert!(!reports.is_empty());
    assert!(reports
        .iter()
        .all(|r| r.verdict() == Verdict::NotApplicable("AdamW optimizer".into())));
    assert!(
        !all_pass(&reports),
        "not applicable must not read as a pass"
    );
    assert!(no_failures(&reports));
}

/// A subject that accepts an invalid rate is told which rates it accepted and
/// whether its eval call with each was still the identity.
#[test]
fn an_accepted_invalid_rate_is_reported_with_its_eval_behaviour() {
    let r = check_invalid_rates_refused(&Twin(Flaw::InvalidRateAccepted), &[4, 8], 1);
    assert!(!r.pass);
    assert_eq!(
        r.observed,
        "accepted -0.1 (eval identity), 1.5 (eval identity), NaN (eval identity)"
    );
}

/// An accepted invalid rate whose eval call keeps the shape but not the values
/// is reported as not the identity: the shape alone does not make it one.
#[test]
fn an_accepted_invalid_rate_that_changes_values_in_eval_is_not_the_identity() {
    struct Doubling(f64);
    impl DropoutLike<f32> for Doubling {
        fn rate(&self) -> f64 {
            self.0
        }
        fn run(&mut self, x: ArrayD<f32>, _: Phase) -> Result<ArrayD<f32>> {
            Ok(x * 2.0)
        }
    }
    struct AcceptsAnything;
    impl DropoutSubject for AcceptsAnything {
        fn name(&self) -> String {
            "accepts anything".into()
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::none()
        }
        fn build(&self, rate: f64, _: Option<u64>) -> Result<BoxedDropout> {
            Ok(Box::new(Doubling(rate)))
        }
    }
    let r = check_invalid_rates_refused(&AcceptsAnything, &[4, 8], 1);
    assert_eq!(
        r.observed,
        "accepted -0.1 (eval NOT identity), 1.5 (eval NOT identity), NaN (eval NOT identity)"
    );
}

/// A failing frozen-weights or recursive-freeze record names each frozen
/// weight that moved, with how many of its scalars did; a passing one names
/// none.
#[test]
fn the_frozen_weights_records_name_the_weights_that_moved() {
    let observed = |reports: &[CheckReport], check: &str| {
        reports
            .iter()
            .filter(|r| r.check == check)
            .map(|r| r.observed.clone())
            .collect::<Vec<_>>()
    };
    let core = training_battery(&CoreModel, &training_case());
    for (flaw, check, prefix) in [
        (
            ModelFlaw::FreezeIgnored,
            "frozen_weights_unchanged",
            "base/",
        ),
        (ModelFlaw::FreezeNotRecursive, "freeze_is_recursive", ""),
    ] {
        let passing = observed(&core, check);
        assert!(!passing.is_empty());
        for text in &passing {
            assert!(
                !text.contains(':'),
                "a passing record names no weight: {text}"
            );
        }
        let failing = observed(&training_battery(&TwinModel(flaw), &training_case()), check);
        assert!(!failing.is_empty());
        for text in &failing {
            let (_, named) = text
                .split_once(": ")
                .unwrap_or_else(|| panic!("{check}: no weight named: {text}"));
            assert!(named.starts_with(prefix) && named.contains(" ("), "{text}");
        }
    }
}

/// Declared capabilities decide: a frozen base the core trains as usual, and a
/// subject that declares no BatchNorm is never asked for one.
#[test]
fn a_subject_is_asked_only_for_what_it_declares() {
    struct Counting(std::cell::Cell<usize>);
    impl ModelSubject for Counting {
        fn name(&self) -> String {
            "counting".into()
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::every_optimizer()
        }
        fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
            assert!(
                !spec.batch_norm,
                "asked for a BatchNorm it does not declare"
            );
            self.0.set(self.0.get() + 1);
            let mut model = CoreModel.build(spec)?;
            model.set_trainable(Part::Whole, true)?;
            Ok(model)
        }
    }
    let subject = Counting(std::cell::Cell::new(0));
    let reports = training_battery(&subject, &training_case());
    assert!(subject.0.get() > 0 && !reports.is_empty());
}
