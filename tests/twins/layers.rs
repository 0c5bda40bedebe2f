//! The broken twins of the core's own layers and models, run through the
//! checks that read the core's internals (snapshots, counters, flags, pins),
//! each of which must reject its twin while the real layer passes: one test
//! per (twin, check).

use ndarray::ArrayD;
use nncheck::check::dropout::identity::{check_eval_identity, check_rate_one_all_positive_zero};
use nncheck::check::dropout::independence::check_successive_calls_independent;
use nncheck::check::dropout::noise_shape::check_noise_shape_cells_shared;
use nncheck::check::dropout::rate::check_train_drop_rate;
use nncheck::check::dropout::seeding::check_seeded_masks_reproducible;
use nncheck::check::dropout::survivors::check_train_call_exact;
use nncheck::check::inputs::{nonzero_input, special_input};
use nncheck::check::stats::DEFAULT_ALPHA;
use nncheck::check::training::batch_norm::check_frozen_batchnorm_inference_mode;
use nncheck::check::training::core::base_model;
use nncheck::check::training::determinism::check_predict_deterministic;
use nncheck::check::training::frozen::{
    check_freeze_is_recursive, check_frozen_optimizer_slots_unchanged,
    check_frozen_weights_unchanged, check_gradient_passes_frozen_layer,
};
use nncheck::check::training::phase::{
    check_dropout_inactive_in_predict_evaluate, check_frozen_model_dropout_active_in_fit,
    check_pin_stays_in_subtree,
};
use nncheck::check::training::snapshot::ModelSnapshot;
use nncheck::check::{CheckReport, DropoutLike};
use nncheck::layer::{LayerVisitor, LayerVisitorMut, WeightVisitor, WeightVisitorMut};
use nncheck::optim::Sgd;
use nncheck::phase::ForwardCtx;
use nncheck::rng::SeedSequence;
use nncheck::{
    AlphaDropout, BatchNormalization, Dense, Dropout, FitConfig, Functional, GaussianDropout,
    GaussianNoise, Layer, Loss, Model, Phase, Result, Sequential, SpatialDropout, WeightKind,
};

fn rejected(report: CheckReport) {
    assert!(
        !report.pass,
        "a broken implementation was accepted: {}",
        report.line()
    );
}

fn accepted(report: CheckReport) {
    assert!(
        report.pass,
        "the correct implementation was rejected: {}",
        report.line()
    );
}

/// `rejected` for a broken twin, `accepted` for the real implementation.
fn judged(report: CheckReport, broken: bool) {
    if broken {
        rejected(report)
    } else {
        accepted(report)
    }
}

/// What a broken dropout does differently.
#[derive(Clone, Copy)]
enum LayerFlaw {
    None,
    NoRescale,
    ScaleByInverseP,
    ActiveInEval,
    MaskReusedAcrossCalls,
    DroppedTimesZero,
}

/// A dropout with one flaw, built on the real layer's mask.
struct BrokenDropout {
    inner: Dropout<f32>,
    rate: f64,
    flaw: LayerFlaw,
}

impl BrokenDropout {
    fn new(rate: f64, flaw: LayerFlaw) -> Self {
        BrokenDropout {
            inner: Dropout::new(rate).unwrap().with_seed(9),
            rate,
            flaw,
        }
    }
}

impl DropoutLike<f32> for BrokenDropout {
    fn rate(&self) -> f64 {
        self.rate
    }

    fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> nncheck::check::Result<ArrayD<f32>> {
        let phase = if matches!(self.flaw, LayerFlaw::ActiveInEval) {
            Phase::Train
        } else {
            phase
        };
        if matches!(self.flaw, LayerFlaw::MaskReusedAcrossCalls) {
            self.inner.reseed(9);
        }
        if phase == Phase::Eval {
            return Ok(self.inner.apply(x, phase)?);
        }
        // The real mask, read off a run on ones.
        let mask = self.inner.apply(ArrayD::ones(x.raw_dim()), Phase::Train)?;
        let keep = 1.0 - self.rate;
        Ok(ndarray::Zip::from(&x).and(&mask).map_collect(|&v, &m| {
            let dropped = m == 0.0;
            match self.flaw {
                LayerFlaw::NoRescale => {
                    if dropped {
                        0.0
                    } else {
                        v
                    }
                }
                LayerFlaw::ScaleByInverseP => {
                    if dropped {
                        0.0
                    } else {
                        v * (1.0 / self.rate) as f32
                    }
                }
                LayerFlaw::DroppedTimesZero => {
                    if dropped {
                        v * 0.0
                    } else {
                        v * (1.0 / keep) as f32
                    }
                }
                _ => {
                    if dropped {
                        0.0
                    } else {
                        v * (1.0 / keep) as f32
                    }
                }
            }
        }))
    }

    fn run_backward(&mut self, dy: ArrayD<f32>) -> nncheck::check::Result<ArrayD<f32>> {
        Ok(self.inner.backward(dy, true)?.expect("requested"))
    }
}

fn x() -> ArrayD<f32> {
    nonzero_input(&[64, 64], 3)
}

#[test]
fn the_correct_dropout_passes_the_checks_the_twins_fail() {
    accepted(check_train_call_exact(
        "real",
        &mut BrokenDropout::new(0.3, LayerFlaw::None),
        &x(),
    ));
    accepted(check_train_call_exact(
        "real",
        &mut Dropout::<f32>::new(0.3).unwrap(),
        &special_input(&[4096], 1),
    ));
    accepted(check_eval_identity(
        "real",
        &mut BrokenDropout::new(0.3, LayerFlaw::None),
        &special_input(&[4096], 1),
    ));
    accepted(check_successive_calls_independent(
        "real",
        &mut BrokenDropout::new(0.3, LayerFlaw::None),
        &x(),
        DEFAULT_ALPHA,
    ));
    accepted(check_train_drop_rate(
        "real",
        &mut Dropout::<f32>::new(0.3).unwrap(),
        &x(),
        250,
        DEFAULT_ALPHA,
    ));
}

#[test]
fn dropout_without_rescaling_is_rejected() {
    rejected(check_train_call_exact(
        "no rescale",
        &mut BrokenDropout::new(0.3, LayerFlaw::NoRescale),
        &x(),
    ));
}

#[test]
fn scaling_by_one_over_p_is_rejected() {
    rejected(check_train_call_exact(
        "1/p",
        &mut BrokenDropout::new(0.3, LayerFlaw::ScaleByInverseP),
        &x(),
    ));
}

#[test]
fn a_rate_off_by_a_hundredth_is_rejected() {
    // The layer drops at 0.31 but claims 0.30; 10^6 draws detect biases >= 0.0034.
    struct OffByOneHundredth(Dropout<f32>);
    impl DropoutLike<f32> for OffByOneHundredth {
        fn rate(&self) -> f64 {
            0.30
        }
        fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> nncheck::check::Result<ArrayD<f32>> {
            Ok(self.0.apply(x, phase)?)
        }
        fn run_backward(&mut self, dy: ArrayD<f32>) -> nncheck::check::Result<ArrayD<f32>> {
            Ok(self.0.backward(dy, true)?.expect("requested"))
        }
    }
    let mut twin = OffByOneHundredth(Dropout::new(0.31).unwrap().with_seed(1));
    rejected(check_train_drop_rate(
        "rate + 0.01",
        &mut twin,
        &x(),
        250,
        DEFAULT_ALPHA,
    ));
}

#[test]
fn dropout_active_in_eval_is_rejected() {
    rejected(check_eval_identity(
        "active in eval",
        &mut BrokenDropout::new(0.3, LayerFlaw::ActiveInEval),
        &x(),
    ));
}

#[test]
fn a_mask_reused_across_calls_is_rejected() {
    let mut twin = BrokenDropout::new(0.3, LayerFlaw::MaskReusedAcrossCalls);
    rejected(check_successive_calls_independent(
        "reused mask",
        &mut twin,
        &x(),
        DEFAULT_ALPHA,
    ));
}

#[test]
fn dropped_units_computed_as_x_times_zero_are_rejected() {
    // inf * 0 is NaN and -x * 0 is -0.0: neither is +0.0.
    let mut twin = BrokenDropout::new(0.3, LayerFlaw::DroppedTimesZero);
    rejected(check_train_call_exact(
        "x * 0",
        &mut twin,
        &special_input(&[4096], 1),
    ));
}

fn data() -> (ArrayD<f32>, ArrayD<f32>) {
    let x = nonzero_input(&[64, 6], 5).mapv(|v| v / 100.0);
    let y = ArrayD::from_shape_fn(vec![64, 1], |i| x[[i[0], 0]]);
    (x, y)
}

fn fit_cfg() -> FitConfig {
    FitConfig {
        epochs: 2,
        batch_size: 8,
        shuffle: true,
        seed: Some(3),
    }
}

fn model_with_frozen_base() -> Model<f32> {
    let mut model = Sequential::new("model")
        .add(base_model(0.3, 1).unwrap())
        .add(Dense::new(1))
        .build(&[6], Some(2))
        .unwrap();
    model
        .compile(
            Sgd::new(0.01).momentum(0.9).weight_decay(0.05),
            Loss::MeanSquaredError,
        )
        .unwrap();
    model
}

#[test]
fn momentum_or_weight_decay_moving_frozen_weights_is_rejected() {
    let (x, y) = data();
    let mut model = model_with_frozen_base();
    model.fit(&x, &y, &fit_cfg()).unwrap(); // momentum exists before the freeze
    model
        .set_trainable_at("model/base", false)
        .expect("a layer at that path");
    let before = ModelSnapshot::of_subtree(&model, "model/base");
    model.fit(&x, &y, &fit_cfg()).unwrap();
    accepted(check_frozen_weights_unchanged(
        "real",
        &before,
        &ModelSnapshot::of_subtree(&model, "model/base"),
    ));
    // The twin: an optimizer step that decays every parameter, frozen or not.
    model.visit_weights_mut("", true, &mut |_, w, _| {
        if w.kind == WeightKind::Param {
            w.value.mapv_inplace(|v| v - v * 0.05 * 0.01);
        }
    });
    rejected(check_frozen_weights_unchanged(
        "decay on frozen",
        &before,
        &ModelSnapshot::of_subtree(&model, "model/base"),
    ));
}

#[test]
fn a_freeze_that_is_not_recursive_is_rejected() {
    let mut model = model_with_frozen_base();
    model
        .set_trainable_at("model/base", false)
        .expect("a layer at that path");
    accepted(check_freeze_is_recursive("real", &model, "model/base"));
    // The twin: only the container's own flag changes.
    for path in model.layer_paths() {
        if path.starts_with("model/base/") {
            model
                .set_trainable_at(&path, true)
                .expect("a layer at that path");
        }
    }
    rejected(check_freeze_is_recursive(
        "flat freeze",
        &model,
        "model/base",
    ));
}

/// A Dense that, when frozen, also stops the gradient to the layers before it.
struct GradientStoppingDense(Dense<f32>);

impl Layer<f32> for GradientStoppingDense {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn set_name(&mut self, name: String) {
        self.0.set_name(name)
    }
    fn build(&mut self, shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        self.0.build(shape, seeds)
    }
    fn forward(&mut self, x: ArrayD<f32>, ctx: ForwardCtx) -> Result<ArrayD<f32>> {
        self.0.forward(x, ctx)
    }
    fn backward(&mut self, dy: ArrayD<f32>, need: bool) -> Result<Option<ArrayD<f32>>> {
        let dx = self.0.backward(dy, need)?;
        Ok(if self.0.trainable() {
            dx
        } else {
            dx.map(|d| d * 0.0)
        })
    }
    fn trainable(&self) -> bool {
        self.0.trainable()
    }
    fn set_trainable(&mut self, t: bool) {
        self.0.set_trainable(t)
    }
    fn visit_weights(&self, p: &str, t: bool, f: &mut WeightVisitor<'_, f32>) {
        self.0.visit_weights(p, t, f)
    }
    fn visit_weights_mut(&mut self, p: &str, t: bool, f: &mut WeightVisitorMut<'_, f32>) {
        self.0.visit_weights_mut(p, t, f)
    }
    fn visit_layers(&self, p: &str, f: &mut LayerVisitor<'_, f32>) {
        f(&nncheck::layer::join_path(p, self.name()), self)
    }
    fn visit_layers_mut(&mut self, p: &str, f: &mut LayerVisitorMut<'_, f32>) {
        let path = nncheck::layer::join_path(p, self.name());
        f(&path, self)
    }
}

fn chain(middle: impl Layer<f32> + 'static) -> Model<f32> {
    let mut model = Sequential::new("chain")
        .add(Dense::new(8).named("first"))
        .add(middle)
        .add(Dense::new(1).named("last"))
        .build(&[6], Some(4))
        .unwrap();
    model
        .set_trainable_at("chain/middle", false)
        .expect("a layer at that path");
    model
        .compile(Sgd::new(0.01), Loss::MeanSquaredError)
        .unwrap();
    model
}

#[test]
fn a_gradient_stopped_at_a_frozen_layer_is_rejected() {
    let (x, y) = data();
    let mut train = |m: &mut Model<f32>| m.fit(&x, &y, &fit_cfg()).map(|_| ());
    let mut real = chain(Dense::new(8).named("middle"));
    accepted(check_gradient_passes_frozen_layer(
        "real",
        &mut real,
        &mut train,
        "chain/first",
        "chain/middle",
    ));
    let mut twin = chain(GradientStoppingDense(Dense::new(8).named("middle")));
    rejected(check_gradient_passes_frozen_layer(
        "stopped",
        &mut twin,
        &mut train,
        "chain/first",
        "chain/middle",
    ));
}

/// How a [`FlawedBatchNorm`] gets its freeze wrong in the train phase.
#[derive(Clone, Copy)]
enum BatchNormFlaw {
    /// The freeze never reaches the statistics: it keeps training mode.
    AlwaysTraining,
    /// Normalises with the batch statistics but leaves the moving ones alone
    /// (what a frozen BatchNorm did in Keras before 2.1.3).
    BatchStatisticsOnly,
    /// Normalises with the moving statistics, as it should, yet still moves them.
    StatisticsDriftOnly,
}

/// A BatchNorm with one of the [`BatchNormFlaw`]s.
struct FlawedBatchNorm {
    inner: BatchNormalization<f32>,
    trainable: bool,
    flaw: BatchNormFlaw,
}

impl FlawedBatchNorm {
    fn new(flaw: BatchNormFlaw) -> Self {
        FlawedBatchNorm {
            inner: BatchNormalization::new(),
            trainable: true,
            flaw,
        }
    }
}

impl Layer<f32> for FlawedBatchNorm {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn set_name(&mut self, name: String) {
        self.inner.set_name(name)
    }
    fn build(&mut self, shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        self.inner.build(shape, seeds)
    }
    fn forward(&mut self, x: ArrayD<f32>, ctx: ForwardCtx) -> Result<ArrayD<f32>> {
        let training = ForwardCtx {
            phase: ctx.phase,
            path_trainable: true,
        };
        match self.flaw {
            BatchNormFlaw::AlwaysTraining | BatchNormFlaw::BatchStatisticsOnly => {
                self.inner.forward(x, training)
            }
            BatchNormFlaw::StatisticsDriftOnly => {
                // The training-mode call leaves its update pending; its output is
                // thrown away for the inference-mode one.
                let y = self.inner.forward(x.clone(), ctx)?;
                self.inner.forward(x, training)?;
                Ok(y)
            }
        }
    }
    fn backward(&mut self, dy: ArrayD<f32>, need: bool) -> Result<Option<ArrayD<f32>>> {
        self.inner.backward(dy, need)
    }
    fn trainable(&self) -> bool {
        self.trainable
    }
    fn set_trainable(&mut self, t: bool) {
        self.trainable = t
    }
    fn visit_weights(&self, p: &str, t: bool, f: &mut WeightVisitor<'_, f32>) {
        self.inner.visit_weights(p, t && self.trainable, f)
    }
    fn visit_weights_mut(&mut self, p: &str, t: bool, f: &mut WeightVisitorMut<'_, f32>) {
        self.inner.visit_weights_mut(p, t && self.trainable, f)
    }
    fn visit_layers(&self, p: &str, f: &mut LayerVisitor<'_, f32>) {
        f(&nncheck::layer::join_path(p, self.name()), self)
    }
    fn visit_layers_mut(&mut self, p: &str, f: &mut LayerVisitorMut<'_, f32>) {
        let path = nncheck::layer::join_path(p, self.name());
        f(&path, self)
    }
    fn commit_state(&mut self) {
        if !matches!(self.flaw, BatchNormFlaw::BatchStatisticsOnly) {
            self.inner.commit_state()
        }
    }
}

fn frozen_bn_model(bn: impl Layer<f32> + 'static) -> Model<f32> {
    let base = Sequential::new("base")
        .add(Dense::new(4))
        .add(bn)
        .build(&[6], Some(1))
        .unwrap();
    let mut model = Sequential::new("model")
        .add(base)
        .add(Dense::new(1))
        .build(&[6], Some(2))
        .unwrap();
    model
        .set_trainable_at("model/base", false)
        .expect("a layer at that path");
    model
        .compile(Sgd::new(0.01), Loss::MeanSquaredError)
        .unwrap();
    model
}

#[test]
fn batchnorm_statistics_updated_while_frozen_are_rejected() {
    let (x, y) = data();
    for (name, mut model, broken) in [
        ("real", frozen_bn_model(BatchNormalization::new()), false),
        (
            "stats move",
            frozen_bn_model(FlawedBatchNorm::new(BatchNormFlaw::AlwaysTraining)),
            true,
        ),
    ] {
        let before = ModelSnapshot::of_subtree(&model, "model/base");
        model.fit(&x, &y, &fit_cfg()).unwrap();
        judged(
            check_frozen_weights_unchanged(
                name,
                &before,
                &ModelSnapshot::of_subtree(&model, "model/base"),
            ),
            broken,
        );
    }
}

fn pinned_model(leak: bool) -> Model<f32> {
    let mut g = Functional::new("pinned", Some(5));
    let input = g.input(&[6]).unwrap();
    let base = g
        .apply_pinned(base_model(0.4, 1).unwrap(), input, Phase::Eval)
        .unwrap();
    let sibling = Dropout::new(0.4).unwrap().named("sibling_dropout");
    // The twin reproduces a leaking pin: the sibling inherits the base's Eval.
    let sibling = if leak {
        g.apply_pinned(sibling, input, Phase::Eval)
    } else {
        g.apply(sibling, input)
    }
    .unwrap();
    let joined = g.concat(&[base, sibling]).unwrap();
    let out = g.apply(Dense::new(1), joined).unwrap();
    let mut model = g.build(out).unwrap();
    model
        .compile(Sgd::new(0.01), Loss::MeanSquaredError)
        .unwrap();
    model
}

#[test]
fn a_pinned_phase_leaking_to_a_sibling_is_rejected() {
    let (x, y) = data();
    let mut train = |m: &mut Model<f32>| m.fit(&x, &y, &fit_cfg()).map(|_| ());
    accepted(check_pin_stays_in_subtree(
        "real",
        &mut pinned_model(false),
        &mut train,
        "pinned/base",
        "pinned/sibling_dropout",
    ));
    rejected(check_pin_stays_in_subtree(
        "leak",
        &mut pinned_model(true),
        &mut train,
        "pinned/base",
        "pinned/sibling_dropout",
    ));
}

#[test]
fn rate_one_leaving_anything_but_positive_zero_is_rejected() {
    accepted(check_rate_one_all_positive_zero(
        "real",
        &mut Dropout::<f32>::new(1.0).unwrap(),
        &special_input(&[4096], 1),
    ));
    // x * 0 gives NaN for infinities and NaN, -0.0 for negatives.
    rejected(check_rate_one_all_positive_zero(
        "x * 0",
        &mut BrokenDropout::new(1.0, LayerFlaw::DroppedTimesZero),
        &special_input(&[4096], 1),
    ));
}

#[test]
fn a_noise_shape_that_is_ignored_is_rejected() {
    let shared = || {
        Dropout::<f32>::new(0.3)
            .unwrap()
            .with_seed(2)
            .with_noise_shape(vec![None, Some(1)])
    };
    accepted(check_noise_shape_cells_shared(
        "real",
        &mut shared(),
        &x(),
        1,
    ));
    // The twin draws one cell per unit, as if the noise shape were not there.
    rejected(check_noise_shape_cells_shared(
        "ignored",
        &mut Dropout::<f32>::new(0.3).unwrap().with_seed(2),
        &x(),
        1,
    ));
}

#[test]
fn a_seed_that_does_not_fix_the_masks_is_rejected() {
    let seeded = || Dropout::<f32>::new(0.3).unwrap().with_seed(4);
    accepted(check_seeded_masks_reproducible(
        "real",
        &mut seeded(),
        &mut seeded(),
        &x(),
        DEFAULT_ALPHA,
    ));
    // The twin takes its masks from OS entropy whatever the seed says.
    rejected(check_seeded_masks_reproducible(
        "entropy",
        &mut Dropout::<f32>::new(0.3).unwrap(),
        &mut Dropout::<f32>::new(0.3).unwrap(),
        &x(),
        DEFAULT_ALPHA,
    ));
}

#[test]
fn a_seeded_mask_repeated_on_the_next_call_is_rejected() {
    rejected(check_seeded_masks_reproducible(
        "reused mask",
        &mut BrokenDropout::new(0.3, LayerFlaw::MaskReusedAcrossCalls),
        &mut BrokenDropout::new(0.3, LayerFlaw::MaskReusedAcrossCalls),
        &x(),
        DEFAULT_ALPHA,
    ));
}

#[test]
fn optimizer_slots_moving_under_a_frozen_base_are_rejected() {
    let (x, y) = data();
    let mut model = model_with_frozen_base();
    model.fit(&x, &y, &fit_cfg()).unwrap(); // momentum exists before the freeze
    let mut twin = model_with_frozen_base();
    twin.fit(&x, &y, &fit_cfg()).unwrap();
    model
        .set_trainable_at("model/base", false)
        .expect("a layer at that path");
    let before = ModelSnapshot::of_subtree(&model, "model/base");
    model.fit(&x, &y, &fit_cfg()).unwrap();
    accepted(check_frozen_optimizer_slots_unchanged(
        "real",
        &before,
        &ModelSnapshot::of_subtree(&model, "model/base"),
    ));
    // The twin: an optimizer that steps every weight's slots, frozen or not,
    // which is what training the base anyway does to them.
    let before = ModelSnapshot::of_subtree(&twin, "model/base");
    twin.fit(&x, &y, &fit_cfg()).unwrap();
    rejected(check_frozen_optimizer_slots_unchanged(
        "slots stepped",
        &before,
        &ModelSnapshot::of_subtree(&twin, "model/base"),
    ));
}

/// A base (with dropout at 0.4) under a Dense head, the base pinned to `pin`.
fn model_with_base_pinned(pin: Option<Phase>) -> Model<f32> {
    let mut g = Functional::new("model", Some(6));
    let input = g.input(&[6]).unwrap();
    let base = base_model(0.4, 1).unwrap();
    let base = match pin {
        Some(phase) => g.apply_pinned(base, input, phase),
        None => g.apply(base, input),
    }
    .unwrap();
    let out = g.apply(Dense::new(1), base).unwrap();
    let mut model = g.build(out).unwrap();
    model
        .set_trainable_at("model/base", false)
        .expect("a layer at that path");
    model
        .compile(Sgd::new(0.01), Loss::MeanSquaredError)
        .unwrap();
    model
}

#[test]
fn a_frozen_model_whose_dropout_sleeps_in_fit_is_rejected() {
    let (x, y) = data();
    // The twin: freezing switched the base to Eval, as a pin to Eval does.
    for (name, pin, broken) in [("real", None, false), ("asleep", Some(Phase::Eval), true)] {
        let mut model = model_with_base_pinned(pin);
        let before = ModelSnapshot::of_subtree(&model, "model/base");
        model.fit(&x, &y, &fit_cfg()).unwrap();
        judged(
            check_frozen_model_dropout_active_in_fit(
                name,
                &before,
                &ModelSnapshot::of_subtree(&model, "model/base"),
            ),
            broken,
        );
    }
}

#[test]
fn dropout_active_in_predict_or_evaluate_is_rejected() {
    let (x, y) = data();
    // The twin: the base runs in Train whatever the call, as under a pin to Train.
    for (name, pin, broken) in [("real", None, false), ("awake", Some(Phase::Train), true)] {
        let mut model = model_with_base_pinned(pin);
        let before = ModelSnapshot::of_subtree(&model, "model/base");
        model.predict(&x).unwrap();
        model.evaluate(&x, &y).unwrap();
        judged(
            check_dropout_inactive_in_predict_evaluate(
                name,
                &before,
                &ModelSnapshot::of_subtree(&model, "model/base"),
            ),
            broken,
        );
    }
}

#[test]
fn a_predict_that_draws_masks_is_rejected() {
    let (x, _) = data();
    accepted(check_predict_deterministic(
        "real",
        &mut model_with_base_pinned(None),
        &x,
    ));
    rejected(check_predict_deterministic(
        "dropout in predict",
        &mut model_with_base_pinned(Some(Phase::Train)),
        &x,
    ));
}

#[test]
fn a_frozen_batchnorm_in_training_mode_is_rejected() {
    let (x, _) = data();
    fn base(bn: impl Layer<f32> + 'static) -> Model<f32> {
        Sequential::new("base")
            .add(Dense::new(4))
            .add(bn)
            .build(&[6], Some(1))
            .unwrap()
    }
    accepted(check_frozen_batchnorm_inference_mode(
        "real",
        &mut base(BatchNormalization::new()),
        &x,
    ));
    // Each half of the rule on its own: the output, then the statistics.
    for (name, flaw) in [
        ("training mode", BatchNormFlaw::AlwaysTraining),
        ("batch statistics only", BatchNormFlaw::BatchStatisticsOnly),
        ("statistics drift only", BatchNormFlaw::StatisticsDriftOnly),
    ] {
        rejected(check_frozen_batchnorm_inference_mode(
            name,
            &mut base(FlawedBatchNorm::new(flaw)),
            &x,
        ));
    }
}

/// How a twin gets the phase wrong inside a model.
#[derive(Clone, Copy)]
enum PhaseFault {
    /// Switches its noise off when an enclosing model is frozen (burn's `freeze()`).
    SleepsWhenFrozen,
    /// Draws noise in `Eval` too.
    NoisyInPredict,
}

/// A real noise layer whose forward sees a wrong phase.
fn phase_twin(inner: Box<dyn Layer<f32>>, fault: PhaseFault) -> Box<dyn Layer<f32>> {
    Box::new(nncheck::check::subjects::observed::Observed::with_forward(
        inner,
        Box::new(move |layer, x, ctx| {
            let phase = match fault {
                PhaseFault::SleepsWhenFrozen if !ctx.path_trainable => Phase::Eval,
                PhaseFault::NoisyInPredict => Phase::Train,
                _ => ctx.phase,
            };
            layer.forward(x, nncheck::phase::ForwardCtx { phase, ..ctx })
        }),
    ))
}

/// A real noise layer that keeps no count of its calls: it shows the model no
/// random state (SPEC §2b: a noise layer counts its `Train` calls).
struct Uncounted(Box<dyn Layer<f32>>);

impl Layer<f32> for Uncounted {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn set_name(&mut self, name: String) {
        self.0.set_name(name);
    }
    fn build(
        &mut self,
        shape: &[usize],
        seeds: &mut nncheck::rng::SeedSequence,
    ) -> nncheck::Result<Vec<usize>> {
        self.0.build(shape, seeds)
    }
    fn forward(
        &mut self,
        x: ArrayD<f32>,
        ctx: nncheck::phase::ForwardCtx,
    ) -> nncheck::Result<ArrayD<f32>> {
        self.0.forward(x, ctx)
    }
    fn backward(&mut self, dy: ArrayD<f32>, need: bool) -> nncheck::Result<Option<ArrayD<f32>>> {
        self.0.backward(dy, need)
    }
    fn trainable(&self) -> bool {
        self.0.trainable()
    }
    fn set_trainable(&mut self, trainable: bool) {
        self.0.set_trainable(trainable);
    }
    fn visit_weights(&self, p: &str, t: bool, f: &mut nncheck::layer::WeightVisitor<'_, f32>) {
        self.0.visit_weights(p, t, f);
    }
    fn visit_weights_mut(
        &mut self,
        p: &str,
        t: bool,
        f: &mut nncheck::layer::WeightVisitorMut<'_, f32>,
    ) {
        self.0.visit_weights_mut(p, t, f);
    }
    fn visit_layers(&self, p: &str, f: &mut nncheck::layer::LayerVisitor<'_, f32>) {
        f(&nncheck::layer::join_path(p, self.name()), self);
    }
    fn visit_layers_mut(&mut self, p: &str, f: &mut nncheck::layer::LayerVisitorMut<'_, f32>) {
        let path = nncheck::layer::join_path(p, self.name());
        f(&path, self);
    }
}

fn noise_layers() -> Vec<(&'static str, Box<dyn Layer<f32>>)> {
    vec![
        ("GaussianNoise", Box::new(GaussianNoise::new(0.2).unwrap())),
        (
            "GaussianDropout",
            Box::new(GaussianDropout::new(0.2).unwrap()),
        ),
        ("AlphaDropout", Box::new(AlphaDropout::new(0.2).unwrap())),
        (
            "SpatialDropout1D",
            Box::new(SpatialDropout::new_1d(0.2).unwrap()),
        ),
    ]
}

/// Every real layer is active in a frozen model's fit and the identity in its
/// predict; a twin that sleeps when frozen, or draws noise in predict, is rejected.
#[test]
fn noise_in_a_frozen_fit_is_judged_from_what_the_layer_did() {
    use nncheck::check::noise::in_frozen_fit::check_noise_layer_in_frozen_fit;
    for (name, layer) in noise_layers() {
        let r = check_noise_layer_in_frozen_fit(name, layer, 3);
        println!("{}", r.line());
        assert!(r.pass, "{}", r.line());
    }
    for fault in [PhaseFault::SleepsWhenFrozen, PhaseFault::NoisyInPredict] {
        for (name, inner) in noise_layers() {
            let twin = phase_twin(inner, fault);
            let r = check_noise_layer_in_frozen_fit(name, twin, 3);
            println!("{}", r.line());
            assert!(!r.pass, "{name}: a twin passed: {}", r.line());
        }
    }
    // Noisy where it should be, but its calls go uncounted.
    for (name, inner) in noise_layers() {
        let r = check_noise_layer_in_frozen_fit(name, Box::new(Uncounted(inner)), 3);
        assert!(
            !r.pass && r.observed.starts_with("fit: 0 noise calls"),
            "{}",
            r.line()
        );
    }
}

/// Noise drawn and thrown away: every call is counted, but the layer hands its
/// input on unchanged, so it is not active; the check must see the outputs, not
/// only the calls.
#[test]
fn noise_drawn_but_discarded_in_a_frozen_fit_is_rejected() {
    use nncheck::check::noise::in_frozen_fit::check_noise_layer_in_frozen_fit;
    for (name, inner) in noise_layers() {
        let twin = nncheck::check::subjects::observed::Observed::with_forward(
            inner,
            Box::new(|layer, x: ArrayD<f32>, ctx| {
                layer.forward(x.clone(), ctx)?;
                Ok(x)
            }),
        );
        let r = check_noise_layer_in_frozen_fit(name, Box::new(twin), 3);
        assert!(
            !r.pass && r.observed.split(';').next().unwrap().contains(", 0 of "),
            "{name}: a twin passed: {}",
            r.line()
        );
    }
}
