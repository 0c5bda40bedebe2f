//! The trainable-model subject under test: what any implementation provides so
//! that the frozen-model invariants of SPEC §3–§4 can run on it.
//!
//! The checks need little: build one small model (a base and a head), freeze or
//! unfreeze a part, take optimizer steps, run forward in a phase, and read every
//! weight by name. [`ModelSubject`] builds such a model from a [`ModelSpec`];
//! [`TrainableModel`] is the built model. nncheck's own core is [`CoreModel`].

use crate::check::capability::{Capabilities, Capability};
use crate::check::error::{unsupported, Result};
pub use crate::check::optimizer::OptimizerKind;
use crate::layers::{BatchNormalization, Dense, Dropout, ReLU};
use crate::loss::Loss;
use crate::model::sequential::Sequential;
use crate::model::Model;
use crate::optim::{Adam, Sgd};
use crate::phase::Phase;
use ndarray::ArrayD;

/// Input features of the model every subject builds.
pub const FEATURES: usize = 6;
/// Units of the base's hidden layer, which its dropout sees.
pub const HIDDEN: usize = 16;
/// Outputs of the base, the head's inputs.
pub const BASE_OUTPUTS: usize = 8;

/// The model every subject builds: a base `Dense(HIDDEN)` → `BatchNormalization`
/// (when `batch_norm`) → `ReLU` → `Dropout(rate)` → `Dense(BASE_OUTPUTS)` on
/// `FEATURES` inputs, under a head `Dense(1)`; mean squared error; the named
/// optimizer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelSpec {
    /// The dropout rate in the base.
    pub rate: f64,
    /// Whether the base has a BatchNormalization after its first Dense.
    pub batch_norm: bool,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Its learning rate.
    pub learning_rate: f64,
    /// Weight decay: decoupled for AdamW, the optimizer's own kind otherwise.
    pub weight_decay: f64,
    /// Seeds initialisers and masks where the subject can seed.
    pub seed: u64,
    /// Optimizer steps each check takes (a harness setting; a subject need not
    /// read it).
    pub steps: usize,
}

impl ModelSpec {
    /// The spec as a report names it: `{subject} AdamW wd 0.01 rate 0.5 seed 7`,
    /// so a failing record says on which case it failed.
    pub fn label(&self, subject: &str) -> String {
        format!(
            "{subject} {} wd {} rate {} seed {}",
            self.optimizer.name(),
            self.weight_decay,
            self.rate,
            self.seed,
        )
    }
}

/// A part of the model, frozen or unfrozen as a whole (recursively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Part {
    /// The base model and every layer in it; weight names start with `base/`.
    Base,
    /// The head layer; weight names start with `head/`.
    Head,
    /// The whole model.
    Whole,
}

impl Part {
    /// The prefix of the weight names under this part (`""` for the whole model).
    pub fn prefix(self) -> &'static str {
        match self {
            Part::Base => "base/",
            Part::Head => "head/",
            Part::Whole => "",
        }
    }
}

/// A model built by a [`ModelSubject`].
pub trait TrainableModel {
    /// Freezes (`false`) or unfreezes (`true`) `part` and everything inside it,
    /// the way a user of the subject freezes a part; later steps must follow the
    /// new flags without a rebuild.
    fn set_trainable(&mut self, part: Part, trainable: bool) -> Result<()>;
    /// One optimizer step on the whole batch `(x, y)` in the training phase;
    /// returns the loss of that step's forward, before the update.
    fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64>;
    /// A forward pass in `phase`, as the subject runs inference (`Eval`) or the
    /// forward of a training step (`Train`).
    fn forward(&mut self, x: &ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>>;
    /// Every weight, BatchNorm statistics included, by a name that starts with
    /// its part's prefix (`base/`, `head/`).
    fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>>;
    /// The optimizer's state per weight (slots flattened, then the step count),
    /// by the weight's name.
    fn optimizer_state(&self) -> Result<Vec<(String, Vec<f64>)>> {
        unsupported(Capability::OptimizerState)
    }
}

/// A trainable-model implementation under test.
pub trait ModelSubject {
    /// A short name for reports, e.g. `nncheck` or `burn 0.22 freeze()`.
    fn name(&self) -> String;
    /// The exact version of the implementation under test, which conformance
    /// records carry; `None` when unknown.
    fn version(&self) -> Option<String> {
        None
    }
    /// What the subject can build and show beyond the model itself: BatchNorm,
    /// each optimizer (and its weight decay), the optimizer's state. A check or
    /// case needing anything else is not applicable to it, and is not run.
    fn capabilities(&self) -> Capabilities;
    /// Builds, initialises and compiles the model of `spec`; `spec` asks only
    /// for what [`capabilities`](Self::capabilities) declares.
    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>>;
}

/// nncheck's own core as a model subject.
///
/// ```
/// use nncheck::check::subjects::{CoreModel, ModelSpec, ModelSubject, Part};
/// use nncheck::check::OptimizerKind;
/// let spec = ModelSpec {
///     rate: 0.5, batch_norm: true, optimizer: OptimizerKind::AdamW,
///     learning_rate: 1e-3, weight_decay: 0.01, seed: 1, steps: 20,
/// };
/// let mut model = CoreModel.build(&spec).unwrap();
/// model.set_trainable(Part::Base, false).unwrap();
/// assert!(model.weights().unwrap().iter().any(|(name, _)| name == "base/dense/kernel"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreModel;

impl CoreModel {
    /// The compiled core model of `spec`, named `model` with children `base`
    /// and `head`: what [`CoreModel`] wraps, for a test that needs the model
    /// itself (a twin that breaks one rule around it).
    pub fn model(spec: &ModelSpec) -> crate::Result<Model<f32>> {
        let mut base = Sequential::new("base").add(Dense::new(HIDDEN));
        if spec.batch_norm {
            base = base.add(BatchNormalization::new());
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
        Self::compile(spec, &mut model)?;
        Ok(model)
    }

    /// Compiles `model` with `spec`'s optimizer, learning rate and weight
    /// decay, and mean squared error, as [`CoreModel`] does.
    pub fn compile(spec: &ModelSpec, model: &mut Model<f32>) -> crate::Result<()> {
        let (lr, wd) = (spec.learning_rate, spec.weight_decay);
        let loss = Loss::MeanSquaredError;
        match spec.optimizer {
            OptimizerKind::Sgd => model.compile(Sgd::new(lr).weight_decay(wd), loss),
            OptimizerKind::Momentum => {
                model.compile(Sgd::new(lr).momentum(0.9).weight_decay(wd), loss)
            }
            OptimizerKind::Nesterov => model.compile(
                Sgd::new(lr).momentum(0.9).nesterov(true).weight_decay(wd),
                loss,
            ),
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                model.compile(Adam::new(lr).weight_decay(wd), loss)
            }
        }
    }
}

impl ModelSubject for CoreModel {
    fn name(&self) -> String {
        "nncheck".into()
    }
    fn version(&self) -> Option<String> {
        Some(env!("CARGO_PKG_VERSION").into())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::every_optimizer()
            .with(Capability::BatchNorm)
            .with(Capability::OptimizerState)
    }
    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        Ok(Box::new(CoreTrainable::new(Self::model(spec)?)))
    }
}

/// A core [`Model`] as a [`TrainableModel`]: the model [`CoreModel`] builds, or
/// any compiled model named `model` whose children `base` and `head` are the
/// parts (how the tests wire a deliberately broken core model in as a subject).
pub struct CoreTrainable {
    model: Model<f32>,
}

impl std::fmt::Debug for CoreTrainable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreTrainable")
            .field("layers", &self.model.layer_paths())
            .finish()
    }
}

impl CoreTrainable {
    /// Wraps a compiled `model` named `model` with children `base` and `head`.
    pub fn new(model: Model<f32>) -> Self {
        CoreTrainable { model }
    }

    /// The wrapped model, for a twin that breaks one rule around it.
    pub fn model_mut(&mut self) -> &mut Model<f32> {
        &mut self.model
    }

    fn path(part: Part) -> &'static str {
        match part {
            Part::Base => "model/base",
            Part::Head => "model/head",
            Part::Whole => "model",
        }
    }
}

impl TrainableModel for CoreTrainable {
    fn set_trainable(&mut self, part: Part, trainable: bool) -> Result<()> {
        Ok(self.model.set_trainable_at(Self::path(part), trainable)?)
    }
    fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64> {
        Ok(self.model.train_on_batch(x, y)?)
    }
    fn forward(&mut self, x: &ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        Ok(self.model.call(x, phase)?)
    }
    fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>> {
        Ok(
            crate::check::training::snapshot::ModelSnapshot::of(&self.model)
                .weights
                .into_iter()
                .map(|(path, w)| (path.trim_start_matches("model/").to_string(), w))
                .collect(),
        )
    }
    fn optimizer_state(&self) -> Result<Vec<(String, Vec<f64>)>> {
        Ok(
            crate::check::training::snapshot::ModelSnapshot::of(&self.model)
                .optimizer
                .into_iter()
                .map(|(path, state)| {
                    let values = state
                        .map(|s| {
                            s.slots
                                .iter()
                                .flat_map(|a| a.iter().map(|&v| f64::from(v)))
                                .chain([s.steps as f64])
                                .collect()
                        })
                        .unwrap_or_default();
                    (path.trim_start_matches("model/").to_string(), values)
                })
                .collect(),
        )
    }
}
