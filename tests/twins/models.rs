//! The broken models: nncheck's own conformance model with one rule broken
//! around it, each a [`ModelSubject`] as a third party would write one.

use ndarray::ArrayD;
use nncheck::check::subjects::model::{BASE_OUTPUTS, FEATURES, HIDDEN};
use nncheck::check::subjects::observed::Observed;
use nncheck::check::training::core::base_model;
use nncheck::check::training::harness::mse;
use nncheck::check::{
    Capabilities, CoreModel, CoreTrainable, ModelSpec, ModelSubject, Part, Result, TrainableModel,
};
use nncheck::phase::ForwardCtx;
use nncheck::{
    BatchNormalization, Dense, Dropout, Functional, Phase, ReLU, Sequential, WeightKind,
};

/// What a broken model does differently from the core's, around the core's
/// own model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ModelFlaw {
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

/// The core model with one flaw, as a subject named after it.
pub struct TwinModel(pub ModelFlaw);

impl ModelSubject for TwinModel {
    fn name(&self) -> String {
        format!("{:?}", self.0)
    }
    fn capabilities(&self) -> Capabilities {
        CoreModel.capabilities()
    }
    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        let inner: Box<dyn TrainableModel> = match self.0 {
            ModelFlaw::DropoutAsleepInFrozenFit => Box::new(base_pinned_to_eval(spec)?),
            _ => CoreModel.build(spec)?,
        };
        Ok(Box::new(TwinTrainable {
            inner,
            flaw: self.0,
        }))
    }
}

/// The core model with its base pinned to `Eval`: its dropout never runs in
/// training, the way a framework whose freeze switches dropout off behaves.
fn base_pinned_to_eval(spec: &ModelSpec) -> Result<CoreTrainable> {
    let mut g = Functional::new("model", Some(spec.seed));
    let input = g.input(&[FEATURES])?;
    let base = g.apply_pinned(base_model(spec.rate, spec.seed)?, input, Phase::Eval)?;
    let out = g.apply(Dense::new(1).named("head"), base)?;
    let mut model = g.build(out)?;
    CoreModel::compile(spec, &mut model)?;
    Ok(CoreTrainable::new(model))
}

struct TwinTrainable {
    inner: Box<dyn TrainableModel>,
    flaw: ModelFlaw,
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
                self.inner.set_trainable(Part::Whole, false)
            }
            _ => self.inner.set_trainable(part, trainable),
        }
    }
    fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64> {
        if self.flaw == ModelFlaw::StepsDoNothing {
            let out = self.inner.forward(x, Phase::Train)?;
            return Ok(mse(&out, y));
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

/// The core model, passing everything through but `set_trainable` and
/// `fit_step`, which the twins below override.
struct Wrapped {
    inner: CoreTrainable,
    base_frozen: bool,
}

impl Wrapped {
    fn new(model: nncheck::Model<f32>) -> Self {
        Wrapped {
            inner: CoreTrainable::new(model),
            base_frozen: false,
        }
    }
    fn track(&mut self, part: Part, trainable: bool) {
        if part != Part::Head {
            self.base_frozen = !trainable;
        }
    }
}

/// Weight decay applied to the frozen base after every step, as an optimizer
/// that decays every parameter it was built with does: invisible under SGD
/// without decay, caught under AdamW with decay 0.01.
pub struct DecayLeak;

struct DecayLeaking {
    wrapped: Wrapped,
    spec: ModelSpec,
}

impl ModelSubject for DecayLeak {
    fn name(&self) -> String {
        "decay leaks into frozen weights".into()
    }
    fn capabilities(&self) -> Capabilities {
        CoreModel.capabilities()
    }
    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        Ok(Box::new(DecayLeaking {
            wrapped: Wrapped::new(CoreModel::model(spec)?),
            spec: spec.clone(),
        }))
    }
}

impl TrainableModel for DecayLeaking {
    fn set_trainable(&mut self, part: Part, trainable: bool) -> Result<()> {
        self.wrapped.track(part, trainable);
        self.wrapped.inner.set_trainable(part, trainable)
    }
    fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64> {
        let loss = self.wrapped.inner.fit_step(x, y)?;
        let decay = (self.spec.weight_decay * self.spec.learning_rate) as f32;
        if self.wrapped.base_frozen && decay > 0.0 {
            let model = self.wrapped.inner.model_mut();
            for w in model.weights() {
                if w.path.starts_with("model/base/") && w.kind == WeightKind::Param {
                    let v = model.weight(&w.path)?;
                    model.set_weight(&w.path, &v - &(&v * decay))?;
                }
            }
        }
        Ok(loss)
    }
    fn forward(&mut self, x: &ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        self.wrapped.inner.forward(x, phase)
    }
    fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>> {
        self.wrapped.inner.weights()
    }
    fn optimizer_state(&self) -> Result<Vec<(String, Vec<f64>)>> {
        self.wrapped.inner.optimizer_state()
    }
}

/// A frozen BatchNorm that still trains: in a training forward it normalises
/// with the batch's statistics and updates its moving ones, as PyTorch's does
/// under `requires_grad_(False)` alone; its gamma and beta stay, since the
/// optimizer skips them.
pub struct FrozenBatchNormTrains;

impl ModelSubject for FrozenBatchNormTrains {
    fn name(&self) -> String {
        "frozen BatchNorm trains".into()
    }
    fn capabilities(&self) -> Capabilities {
        CoreModel.capabilities()
    }
    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        let mut base = Sequential::new("base").add(Dense::new(HIDDEN));
        if spec.batch_norm {
            let training_anyway = Observed::with_forward(
                Box::new(BatchNormalization::<f32>::new()),
                Box::new(|layer, x, ctx| {
                    let own = layer.trainable();
                    layer.set_trainable(true);
                    let y = layer.forward(
                        x,
                        ForwardCtx {
                            path_trainable: true,
                            ..ctx
                        },
                    );
                    layer.set_trainable(own);
                    y
                }),
            );
            base = base.add(training_anyway);
        }
        let base = base
            .add(ReLU::new())
            .add(Dropout::new(spec.rate)?)
            .add(Dense::new(BASE_OUTPUTS))
            .build(&[FEATURES], Some(spec.seed))?;
        let mut model = Sequential::new("model")
            .add(base)
            .add(Dense::new(1).named("head"))
            .build(&[FEATURES], Some(spec.seed))?;
        CoreModel::compile(spec, &mut model)?;
        Ok(Box::new(CoreTrainable::new(model)))
    }
}

/// Unfreezing rebuilds the model from its spec, as a harness that "recompiles"
/// by constructing the model again would: the weights go back to their
/// initial values.
pub struct RebuiltOnUnfreeze;

struct Rebuilding {
    wrapped: Wrapped,
    spec: ModelSpec,
}

impl ModelSubject for RebuiltOnUnfreeze {
    fn name(&self) -> String {
        "rebuilt on unfreeze".into()
    }
    fn capabilities(&self) -> Capabilities {
        CoreModel.capabilities()
    }
    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        Ok(Box::new(Rebuilding {
            wrapped: Wrapped::new(CoreModel::model(spec)?),
            spec: spec.clone(),
        }))
    }
}

impl TrainableModel for Rebuilding {
    fn set_trainable(&mut self, part: Part, trainable: bool) -> Result<()> {
        if trainable {
            self.wrapped = Wrapped::new(CoreModel::model(&self.spec)?);
        }
        self.wrapped.track(part, trainable);
        self.wrapped.inner.set_trainable(part, trainable)
    }
    fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64> {
        self.wrapped.inner.fit_step(x, y)
    }
    fn forward(&mut self, x: &ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        self.wrapped.inner.forward(x, phase)
    }
    fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>> {
        self.wrapped.inner.weights()
    }
    fn optimizer_state(&self) -> Result<Vec<(String, Vec<f64>)>> {
        self.wrapped.inner.optimizer_state()
    }
}
