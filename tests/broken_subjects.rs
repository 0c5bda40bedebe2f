//! Every check fails through the public subject API: deliberately broken
//! dropouts and models, wired in exactly as a third party wires in its own
//! implementation (`DropoutSubject`, `ModelSubject`), run through the whole
//! batteries, must each get the verdict their flaw deserves on the row that
//! judges it, while the correct core passes every row.
//!
//! A twin that its row accepted would make that row worthless for everyone who
//! runs the suite on their own layer.

use ndarray::{ArrayD, Zip};
use nncheck::check::battery::{base_model, dropout_battery, training_battery};
use nncheck::check::cases::{DropoutCase, OptimizerKind, TrainingCase};
use nncheck::check::model_subject::{
    CoreModel, CoreTrainable, ModelSpec, ModelSubject, Part, TrainableModel,
};
use nncheck::check::subject::{BoxedDropout, CoreDropout, DropoutLike, DropoutSubject};
use nncheck::check::{all_pass, CheckReport, Verdict};
use nncheck::optim::Adam;
use nncheck::stochastic::NoiseStats;
use nncheck::{Dense, Functional, Loss, Phase, Result};

const ALPHA: f64 = 1e-9;

fn dropout_case() -> DropoutCase {
    DropoutCase {
        rate: 0.3,
        shape: vec![200, 50],
        seed: 11,
    }
}

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

/// The verdict of `check` among `reports`: the worst of its records.
fn verdict_of(reports: &[CheckReport], check: &str) -> Verdict {
    let mine: Vec<Verdict> = reports
        .iter()
        .filter(|r| r.check == check)
        .map(|r| r.verdict())
        .collect();
    assert!(!mine.is_empty(), "no `{check}` record among {reports:#?}");
    for bad in [Verdict::Fail, Verdict::Convention(false)] {
        if mine.contains(&bad) {
            return bad;
        }
    }
    mine[0].clone()
}

fn show(reports: &[CheckReport]) -> String {
    reports
        .iter()
        .map(|r| r.line())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a broken dropout does differently from the core's.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flaw {
    NoRescale,
    ScaleByInverseP,
    RateOffByAHundredth,
    ActiveInEval,
    MaskReusedAcrossCalls,
    NeighboursShareADraw,
    EveryTenthPositionNeverDropped,
    BackwardDrawsItsOwnMask,
    CountersMiss,
    ReseedIgnored,
    BuildSeedIgnored,
    NoiseShapeIgnored,
    DroppedTimesZero,
    DroppedNanAndNegativeZeroLeftAlone,
    RateOneKeepsUnits,
    /// `x * mask / (1 - rate)` at rate 1: `0 * inf`, NaN everywhere.
    RateOneGivesNan,
    RateOneRefused,
    InvalidRateAccepted,
}

/// The core dropout with one flaw, as a subject.
struct Twin(Flaw);

impl DropoutSubject for Twin {
    fn name(&self) -> String {
        format!("{:?}", self.0)
    }
    fn build(&self, rate: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        let flaw = self.0;
        let claimed = rate;
        if flaw == Flaw::RateOneRefused && rate == 1.0 {
            return Err(nncheck::Error::InvalidRate { rate });
        }
        let (inner_rate, seed) = match flaw {
            Flaw::RateOffByAHundredth => ((rate + 0.01).min(1.0), seed),
            Flaw::InvalidRateAccepted if !(0.0..=1.0).contains(&rate) => (0.5, seed),
            Flaw::BuildSeedIgnored => (rate, None),
            _ => (rate, seed),
        };
        Ok(Box::new(TwinLayer {
            inner: CoreDropout.build(inner_rate, seed)?,
            shadow: CoreDropout.build(inner_rate, Some(99))?,
            claimed,
            flaw,
            last_input: None,
        }))
    }
    fn build_with_noise_shape(
        &self,
        rate: f64,
        seed: Option<u64>,
        noise_shape: &[Option<usize>],
    ) -> Result<BoxedDropout> {
        if self.0 == Flaw::NoiseShapeIgnored {
            return self.build(rate, seed);
        }
        CoreDropout.build_with_noise_shape(rate, seed, noise_shape)
    }
}

struct TwinLayer {
    inner: BoxedDropout,
    /// A second stream, for the twin whose backward draws a mask of its own.
    shadow: BoxedDropout,
    claimed: f64,
    flaw: Flaw,
    last_input: Option<ArrayD<f32>>,
}

impl DropoutLike<f32> for TwinLayer {
    fn rate(&self) -> f64 {
        self.claimed
    }

    fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        let phase = match self.flaw {
            Flaw::ActiveInEval => Phase::Train,
            _ => phase,
        };
        if phase == Phase::Eval {
            return self.inner.run(x, phase);
        }
        if self.flaw == Flaw::MaskReusedAcrossCalls {
            self.inner.reseed(9)?;
        }
        self.last_input = Some(x.clone());
        // The real mask, read off a run on ones; the flaw is in what is done with it.
        let mut mask = self.inner.run(ArrayD::ones(x.raw_dim()), Phase::Train)?;
        if self.flaw == Flaw::NeighboursShareADraw {
            if let Some(m) = mask.as_slice_mut() {
                for pair in m.chunks_exact_mut(2) {
                    pair[1] = pair[0];
                }
            }
        }
        if self.flaw == Flaw::EveryTenthPositionNeverDropped {
            mask.iter_mut().step_by(10).for_each(|m| *m = 1.0);
        }
        let rate = self.claimed;
        let scale = (1.0 / (1.0 - rate)) as f32;
        let flaw = self.flaw;
        Ok(Zip::from(&x).and(&mask).map_collect(|&v, &m| {
            let kept = m != 0.0;
            match (flaw, kept) {
                (Flaw::RateOneKeepsUnits, _) if rate == 1.0 => v,
                (Flaw::RateOneGivesNan, _) if rate == 1.0 => v * m * scale,
                (Flaw::NoRescale, true) => v,
                (Flaw::ScaleByInverseP, true) => v * (1.0 / rate) as f32,
                (_, true) => v * scale,
                (Flaw::DroppedTimesZero, false) => v * 0.0,
                (Flaw::DroppedNanAndNegativeZeroLeftAlone, false)
                    if v.is_nan() || (v == 0.0 && v.is_sign_negative()) =>
                {
                    v
                }
                (_, false) => 0.0,
            }
        }))
    }

    fn run_backward(&mut self, dy: ArrayD<f32>) -> Result<ArrayD<f32>> {
        if self.flaw == Flaw::BackwardDrawsItsOwnMask {
            let x = self.last_input.clone().unwrap_or_else(|| dy.clone());
            self.shadow.run(x, Phase::Train)?;
            return self.shadow.run_backward(dy);
        }
        self.inner.run_backward(dy)
    }

    fn reseed(&mut self, seed: u64) -> Result<()> {
        if self.flaw == Flaw::ReseedIgnored {
            return Ok(());
        }
        self.inner.reseed(seed)
    }

    fn counters(&self) -> Result<NoiseStats> {
        let mut stats = self.inner.counters()?;
        if self.flaw == Flaw::CountersMiss {
            stats.units_dropped /= 2;
        }
        Ok(stats)
    }
}

#[test]
fn the_core_dropout_passes_every_row() {
    let reports = dropout_battery(&CoreDropout, &dropout_case(), ALPHA);
    assert!(all_pass(&reports), "{}", show(&reports));
}

#[test]
fn each_broken_dropout_is_caught_on_its_row() {
    use Flaw::*;
    let fail = Verdict::Fail;
    let off_spec = Verdict::Convention(false);
    for (flaw, check, expected) in [
        (NoRescale, "survivors_scaled_exactly", &fail),
        (ScaleByInverseP, "survivors_scaled_exactly", &fail),
        (NoRescale, "special_values_kept_scaled", &fail),
        (RateOffByAHundredth, "drop_rate_binomial", &fail),
        (ActiveInEval, "eval_is_identity", &fail),
        (MaskReusedAcrossCalls, "successive_calls_independent", &fail),
        (NeighboursShareADraw, "neighbours_independent", &fail),
        (
            EveryTenthPositionNeverDropped,
            "per_position_uniformity",
            &fail,
        ),
        (BackwardDrawsItsOwnMask, "backward_uses_forward_mask", &fail),
        (CountersMiss, "counters_match_output", &fail),
        (ReseedIgnored, "reseeded_masks_reproducible", &fail),
        (BuildSeedIgnored, "seeded_masks_reproducible", &fail),
        (NoiseShapeIgnored, "noise_shape_cells_shared", &fail),
        (RateOneKeepsUnits, "rate_one_drops_everything", &fail),
        (DroppedTimesZero, "dropped_negative_sign", &off_spec),
        (
            DroppedNanAndNegativeZeroLeftAlone,
            "dropped_special_values",
            &off_spec,
        ),
        (RateOneRefused, "rate_one", &off_spec),
        // Nothing kept, so no invariant is broken: the NaNs are off SPEC's +0.0.
        (RateOneGivesNan, "rate_one", &off_spec),
        (InvalidRateAccepted, "invalid_rate_refused", &off_spec),
    ] {
        let reports = dropout_battery(&Twin(flaw), &dropout_case(), ALPHA);
        assert_eq!(
            &verdict_of(&reports, check),
            expected,
            "{flaw:?} on {check}:\n{}",
            show(&reports)
        );
        assert!(!all_pass(&reports), "{flaw:?} passed every row");
    }
}

/// The twin that leaves a dropped NaN and a dropped `-0.0` as they were cannot
/// be seen in its output (`NaN * 0` and `NaN * scale` are both NaN), so the
/// audit reads the mask through the subject's backward pass; it names what the
/// drops became.
#[test]
fn dropped_nan_and_negative_zero_left_alone_are_named() {
    let reports = dropout_battery(
        &Twin(Flaw::DroppedNanAndNegativeZeroLeftAlone),
        &dropout_case(),
        ALPHA,
    );
    let record = reports
        .iter()
        .find(|r| r.check == "dropped_special_values")
        .expect("the special-value audit ran");
    assert!(record.observed.contains("NaN -> NaN"), "{}", record.line());
    assert!(
        record.observed.contains("-0.0 -> -0.0"),
        "{}",
        record.line()
    );
    assert!(record.observed.contains("backward"), "{}", record.line());
    // Its rates and survivors are right: only the convention row tells.
    assert_eq!(verdict_of(&reports, "drop_rate_binomial"), Verdict::Pass);
    assert_eq!(
        verdict_of(&reports, "survivors_scaled_exactly"),
        Verdict::Pass
    );
}

#[test]
fn every_wrong_drop_of_a_special_value_is_counted() {
    let reports = dropout_battery(&Twin(Flaw::DroppedTimesZero), &dropout_case(), ALPHA);
    let record = reports
        .iter()
        .find(|r| r.check == "dropped_special_values")
        .expect("the special-value audit ran");
    // `x * 0` turns a dropped finite negative into -0.0 and an infinity into NaN.
    assert!(
        record.observed.contains("finite -> -0.0 x"),
        "{}",
        record.line()
    );
    assert!(
        record.observed.contains("+inf -> NaN x"),
        "{}",
        record.line()
    );
    let listed = record.observed.trim_start_matches("dropped: ");
    let listed = listed.split(" (").next().unwrap_or_default();
    for entry in listed.split(", ") {
        let count = entry
            .rsplit(" x")
            .next()
            .and_then(|n| n.parse::<usize>().ok());
        assert!(
            count.is_some_and(|n| n > 0),
            "`{entry}` in {}",
            record.line()
        );
    }
}

/// What a broken trainable model does differently from the core's.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ModelFlaw {
    FreezeIgnored,
    FreezeNotRecursive,
    UnfreezeNeedsRecompile,
    FrozenHeadStopsTheGradient,
    StepsDoNothing,
    DropoutActiveInInference,
    DropoutAsleepInFrozenFit,
    /// Trains as the core does but shows no weights: nothing moved, and
    /// nothing was there to move.
    ShowsNoWeights,
}

struct TwinModel(ModelFlaw);

impl ModelSubject for TwinModel {
    fn name(&self) -> String {
        format!("{:?}", self.0)
    }
    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        let inner: Box<dyn TrainableModel> = match self.0 {
            ModelFlaw::DropoutAsleepInFrozenFit => Box::new(base_pinned_to_eval(spec)?),
            _ => CoreModel.build(spec)?,
        };
        Ok(Box::new(TwinTrainable {
            inner,
            flaw: self.0,
            head_frozen: false,
        }))
    }
}

/// The core model with its base pinned to `Eval`: its dropout never runs in
/// training, the way a framework whose freeze switches dropout off behaves.
fn base_pinned_to_eval(spec: &ModelSpec) -> Result<CoreTrainable> {
    let mut g = Functional::new("model", Some(spec.seed));
    let input = g.input(&[6])?;
    let base = g.apply_pinned(base_model(spec.rate, spec.seed)?, input, Phase::Eval)?;
    let out = g.apply(Dense::new(1).named("head"), base)?;
    let mut model = g.build(out)?;
    model.compile(
        Adam::new(spec.learning_rate).weight_decay(spec.weight_decay),
        Loss::MeanSquaredError,
    )?;
    Ok(CoreTrainable::new(model))
}

struct TwinTrainable {
    inner: Box<dyn TrainableModel>,
    flaw: ModelFlaw,
    head_frozen: bool,
}

impl TrainableModel for TwinTrainable {
    fn set_trainable(&mut self, part: Part, trainable: bool) -> Result<()> {
        match (self.flaw, part, trainable) {
            (ModelFlaw::FreezeIgnored, _, false) => Ok(()),
            (ModelFlaw::FreezeNotRecursive, Part::Whole, false) => {
                self.inner.set_trainable(Part::Head, false)
            }
            (ModelFlaw::UnfreezeNeedsRecompile, _, true) => Ok(()),
            (ModelFlaw::FrozenHeadStopsTheGradient, Part::Head, false) => {
                self.head_frozen = true;
                self.inner.set_trainable(Part::Whole, false)
            }
            _ => self.inner.set_trainable(part, trainable),
        }
    }
    fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64> {
        if self.flaw == ModelFlaw::StepsDoNothing {
            let out = self.inner.forward(x, Phase::Train)?;
            return Ok(nncheck::check::frozen_subject::mse(&out, y));
        }
        self.inner.fit_step(x, y)
    }
    fn forward(&mut self, x: &ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        let phase = match self.flaw {
            ModelFlaw::DropoutActiveInInference => Phase::Train,
            _ => phase,
        };
        self.inner.forward(x, phase)
    }
    fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>> {
        if self.flaw == ModelFlaw::ShowsNoWeights {
            return Ok(vec![]);
        }
        self.inner.weights()
    }
    fn optimizer_state(&self) -> Result<Vec<(String, Vec<f64>)>> {
        self.inner.optimizer_state()
    }
}

#[test]
fn the_core_model_passes_every_row() {
    let reports = training_battery(&CoreModel, &training_case());
    assert!(all_pass(&reports), "{}", show(&reports));
}

#[test]
fn each_broken_model_is_caught_on_its_row() {
    use ModelFlaw::*;
    for (flaw, check) in [
        (FreezeIgnored, "frozen_weights_unchanged"),
        (FreezeIgnored, "frozen_optimizer_slots_unchanged"),
        (FreezeNotRecursive, "freeze_is_recursive"),
        (
            UnfreezeNeedsRecompile,
            "unfreeze_takes_effect_without_recompile",
        ),
        (FrozenHeadStopsTheGradient, "gradient_passes_frozen_layer"),
        (StepsDoNothing, "trainable_weights_changed"),
        (DropoutActiveInInference, "inference_deterministic"),
        (
            DropoutAsleepInFrozenFit,
            "frozen_model_dropout_active_in_fit",
        ),
        (ShowsNoWeights, "frozen_weights_unchanged"),
        (ShowsNoWeights, "freeze_is_recursive"),
    ] {
        let reports = training_battery(&TwinModel(flaw), &training_case());
        assert_eq!(
            verdict_of(&reports, check),
            Verdict::Fail,
            "{flaw:?} on {check}:\n{}",
            show(&reports)
        );
    }
}

/// A subject that cannot build BatchNorm still runs every row, on a base
/// without it; one without an optimizer gets not-applicable rows naming it,
/// never a pass.
#[test]
fn a_model_that_cannot_show_its_optimizer_state_gets_that_row_not_applicable() {
    /// The core's model without the optional `optimizer_state`.
    struct Slotless(Box<dyn TrainableModel>);
    impl TrainableModel for Slotless {
        fn set_trainable(&mut self, part: Part, trainable: bool) -> Result<()> {
            self.0.set_trainable(part, trainable)
        }
        fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64> {
            self.0.fit_step(x, y)
        }
        fn forward(&mut self, x: &ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
            self.0.forward(x, phase)
        }
        fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>> {
            self.0.weights()
        }
    }
    struct SlotlessSubject;
    impl ModelSubject for SlotlessSubject {
        fn name(&self) -> String {
            "slotless".into()
        }
        fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
            Ok(Box::new(Slotless(CoreModel.build(spec)?)))
        }
    }
    let reports = training_battery(&SlotlessSubject, &training_case());
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

#[test]
fn a_model_without_batch_norm_is_judged_without_it() {
    struct NoBatchNorm;
    impl ModelSubject for NoBatchNorm {
        fn name(&self) -> String {
            "no BatchNorm".into()
        }
        fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
            if spec.batch_norm {
                return nncheck::check::unsupported(nncheck::check::Capability::BatchNorm);
            }
            CoreModel.build(spec)
        }
    }
    // The battery asks for BatchNorm in the base; a subject without it is
    // built without it, and every row is judged but the one about BatchNorm
    // itself, which is not applicable and says why.
    let reports = training_battery(&NoBatchNorm, &training_case());
    for r in &reports {
        let want = if r.check == "frozen_batchnorm_inference_mode" {
            Verdict::NotApplicable("BatchNormalization".into())
        } else {
            Verdict::Pass
        };
        assert_eq!(r.verdict(), want, "{}", r.line());
    }
}

#[test]
fn a_missing_capability_is_not_applicable_and_named() {
    struct NoAdam;
    impl ModelSubject for NoAdam {
        fn name(&self) -> String {
            "no Adam".into()
        }
        fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
            if spec.optimizer == OptimizerKind::AdamW {
                return nncheck::check::unsupported(nncheck::check::Capability::Optimizer("AdamW"));
            }
            CoreModel.build(spec)
        }
    }
    let reports = training_battery(&NoAdam, &training_case());
    assert!(reports
        .iter()
        .all(|r| r.verdict() == Verdict::NotApplicable("AdamW optimizer".into())));
    assert!(
        !all_pass(&reports),
        "not applicable must not read as a pass"
    );
    assert!(nncheck::check::no_failures(&reports));
}

/// A subject that accepts an invalid rate is told which rates it accepted and
/// whether its eval call with each was still the identity.
#[test]
fn an_accepted_invalid_rate_is_reported_with_its_eval_behaviour() {
    let r = nncheck::check::conventions::check_invalid_rates_refused(
        &Twin(Flaw::InvalidRateAccepted),
        &[4, 8],
        1,
    );
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
        fn build(&self, rate: f64, _: Option<u64>) -> Result<BoxedDropout> {
            Ok(Box::new(Doubling(rate)))
        }
    }
    let r = nncheck::check::conventions::check_invalid_rates_refused(&AcceptsAnything, &[4, 8], 1);
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
