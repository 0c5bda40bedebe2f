//! The broken models: nncheck's own conformance model with one rule broken
//! around it, each a [`ModelSubject`] as a third party would write one.

use ndarray::ArrayD;
use nncheck::check::model_subject::{
    CoreModel, CoreTrainable, ModelSpec, ModelSubject, Part, TrainableModel, BASE_OUTPUTS,
    FEATURES, HIDDEN,
};
use nncheck::check::observed::Observed;
use nncheck::phase::ForwardCtx;
use nncheck::{BatchNormalization, Dense, Dropout, ReLU, Result, Sequential, WeightKind};

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
    fn forward(&mut self, x: &ArrayD<f32>, phase: nncheck::Phase) -> Result<ArrayD<f32>> {
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
    fn forward(&mut self, x: &ArrayD<f32>, phase: nncheck::Phase) -> Result<ArrayD<f32>> {
        self.wrapped.inner.forward(x, phase)
    }
    fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>> {
        self.wrapped.inner.weights()
    }
    fn optimizer_state(&self) -> Result<Vec<(String, Vec<f64>)>> {
        self.wrapped.inner.optimizer_state()
    }
}
