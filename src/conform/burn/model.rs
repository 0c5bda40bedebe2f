//! The model every subject builds, in burn modules, as a [`ModelSubject`]:
//! frozen with `freeze()` or with `no_grad()`, trained step by step the way
//! burn's own examples train (autodiff forward, mean squared error, backward,
//! `GradientsParams`, `ModuleOptimizer::step`).

use super::{array, eval_device, subject_error, tensor, train_device, NAME};
use crate::check::subjects::model::{
    ModelSpec, ModelSubject, Part, TrainableModel, BASE_OUTPUTS, FEATURES, HIDDEN,
};
use crate::check::Result;
use crate::check::{catching, Capabilities, Capability, OptimizerKind};
use crate::phase::Phase;
use crate::rng::{chacha, SeedSequence};
use burn::module::{Module, Param};
use burn::nn::loss::{MseLoss, Reduction};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, Relu};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};
use ndarray::ArrayD;
use rand::RngExt;

/// How a part of the model is frozen: burn's two ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freezing {
    /// `Module::freeze()`, undone by `unfreeze()`: gradients off and every
    /// module-owned training flag cleared (dropout and BatchNorm stop training
    /// behaviour).
    Freeze,
    /// `Module::no_grad()`, undone by `set_require_grad(true)`: gradients off,
    /// training flags untouched (dropout keeps dropping, BatchNorm keeps
    /// updating its running statistics).
    NoGrad,
}

/// burn 0.22's modules (ndarray backend, f32) as a model subject, frozen one of
/// burn's two ways; named `burn 0.22 freeze()` or `burn 0.22 no_grad()`.
///
/// The model mirrors [`CoreModel`](crate::check::CoreModel): a
/// base `Linear(FEATURES → HIDDEN)` → `BatchNorm` (when the spec asks) → `Relu`
/// → `Dropout(rate)` → `Linear(HIDDEN → BASE_OUTPUTS)` under a head
/// `Linear(BASE_OUTPUTS → 1)`, with burn's own defaults for BatchNorm (momentum
/// 0.1, epsilon 1e-5) and Adam (epsilon 1e-5). Kernels are Glorot-uniform and
/// biases zero, drawn from nncheck's ChaCha streams keyed by the spec's seed;
/// the dropout masks come from burn's backend stream, seeded with the spec's
/// seed at build. Weights read as `base/dense/weight`, `base/batch_norm/gamma`,
/// `base/batch_norm/running_mean`, `base/dense_1/bias`, `head/weight`, ...
/// The optimizer state is not readable: burn's optimizer record keeps its
/// tensors private, so that capability is left not applicable.
///
/// ```
/// use nncheck::check::{ModelSpec, ModelSubject, OptimizerKind, Part};
/// use nncheck::conform::burn::{BurnModel, Freezing};
/// let spec = ModelSpec {
///     rate: 0.5, batch_norm: true, optimizer: OptimizerKind::AdamW,
///     learning_rate: 1e-3, weight_decay: 0.01, seed: 1, steps: 20,
/// };
/// let mut model = BurnModel::new(Freezing::Freeze).build(&spec).unwrap();
/// model.set_trainable(Part::Base, false).unwrap();
/// let names: Vec<String> = model.weights().unwrap().into_iter().map(|(n, _)| n).collect();
/// assert!(names.iter().any(|n| n == "base/batch_norm/running_mean"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurnModel {
    freezing: Freezing,
}

impl BurnModel {
    /// The subject that freezes parts the `freezing` way.
    pub fn new(freezing: Freezing) -> Self {
        BurnModel { freezing }
    }
}

impl ModelSubject for BurnModel {
    fn name(&self) -> String {
        match self.freezing {
            Freezing::Freeze => format!("{NAME} freeze()"),
            Freezing::NoGrad => format!("{NAME} no_grad()"),
        }
    }

    /// BatchNorm and every optimizer the suite asks for (burn's SGD with
    /// momentum and Nesterov, Adam and AdamW, each with weight decay); no
    /// optimizer state access.
    fn capabilities(&self) -> Capabilities {
        Capabilities::every_optimizer().with(Capability::BatchNorm)
    }

    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        let name = self.name();
        catching(&name, || {
            let device = train_device();
            // burn's one way to seed what its layers draw: the backend stream.
            device.seed(spec.seed);
            let mut seeds = SeedSequence::new(Some(spec.seed));
            let base = Base {
                dense: glorot_linear(FEATURES, HIDDEN, seeds.next_seed(), &device),
                batch_norm: spec
                    .batch_norm
                    .then(|| BatchNormConfig::new(HIDDEN).init(&device)),
                relu: Relu::new(),
                dropout: DropoutConfig::new(spec.rate).init(),
                dense_1: glorot_linear(HIDDEN, BASE_OUTPUTS, seeds.next_seed(), &device),
            };
            let head = glorot_linear(BASE_OUTPUTS, 1, seeds.next_seed(), &device);
            Ok(Box::new(BurnTrainable {
                name: name.clone(),
                freezing: self.freezing,
                net: Net { base, head },
                optim: optimizer(spec),
                learning_rate: spec.learning_rate,
                device,
            }) as Box<dyn TrainableModel>)
        })
    }
}

/// burn's optimizer for `spec`: SGD (momentum 0.9 without dampening, Nesterov
/// on request) and Adam with burn's coupled weight decay (the penalty added to
/// the gradient), AdamW with its decoupled one.
fn optimizer(spec: &ModelSpec) -> ModuleOptimizer {
    let wd = spec.weight_decay as f32;
    let coupled = (spec.weight_decay != 0.0).then(|| WeightDecayConfig::new(wd));
    // burn's momentum defaults to a dampening of 0.1; the spec's momentum is
    // the plain (Keras, PyTorch default) one.
    let momentum = |nesterov: bool| {
        MomentumConfig::new()
            .with_momentum(0.9)
            .with_dampening(0.0)
            .with_nesterov(nesterov)
    };
    match spec.optimizer {
        OptimizerKind::Sgd => SgdConfig::new().with_weight_decay(coupled).init(),
        OptimizerKind::Momentum => SgdConfig::new()
            .with_weight_decay(coupled)
            .with_momentum(Some(momentum(false)))
            .init(),
        OptimizerKind::Nesterov => SgdConfig::new()
            .with_weight_decay(coupled)
            .with_momentum(Some(momentum(true)))
            .init(),
        OptimizerKind::Adam => AdamConfig::new().with_weight_decay(coupled).init(),
        OptimizerKind::AdamW => AdamWConfig::new().with_weight_decay(wd).init(),
    }
}

/// A `Linear(inputs → outputs)` with a Glorot-uniform kernel from
/// `chacha(seed)` and a zero bias, as nncheck's `Dense` initialises.
fn glorot_linear(inputs: usize, outputs: usize, seed: u64, device: &Device) -> Linear {
    let mut rng = chacha(seed);
    let limit = (6.0 / (inputs + outputs) as f64).sqrt();
    let kernel: Vec<f32> = (0..inputs * outputs)
        .map(|_| rng.random_range(-limit..limit) as f32)
        .collect();
    Linear {
        weight: Param::from_data(TensorData::new(kernel, [inputs, outputs]), device),
        bias: Some(Param::from_data(
            TensorData::new(vec![0f32; outputs], [outputs]),
            device,
        )),
    }
}

/// The base: Linear → BatchNorm (optional) → Relu → Dropout → Linear.
#[derive(Module, Debug)]
struct Base {
    dense: Linear,
    batch_norm: Option<BatchNorm>,
    relu: Relu,
    dropout: Dropout,
    dense_1: Linear,
}

impl Base {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.dense.forward(x);
        let x = match &self.batch_norm {
            Some(bn) => bn.forward(x),
            None => x,
        };
        self.dense_1
            .forward(self.dropout.forward(self.relu.forward(x)))
    }
}

/// The whole model: the base under a head.
#[derive(Module, Debug)]
struct Net {
    base: Base,
    head: Linear,
}

impl Net {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.head.forward(self.base.forward(x))
    }
}

/// A built burn model, its optimizer, and how it freezes.
struct BurnTrainable {
    name: String,
    freezing: Freezing,
    net: Net,
    optim: ModuleOptimizer,
    learning_rate: f64,
    /// The autodiff device the model trains on.
    device: Device,
}

/// `module` frozen (`trainable == false`) or unfrozen the `freezing` way.
fn set<M: Module>(module: M, freezing: Freezing, trainable: bool) -> M {
    match (freezing, trainable) {
        (Freezing::Freeze, false) => module.freeze(),
        (Freezing::Freeze, true) => module.unfreeze(),
        (Freezing::NoGrad, false) => module.no_grad(),
        (Freezing::NoGrad, true) => module.set_require_grad(true),
    }
}

fn push_linear(out: &mut Vec<(String, ArrayD<f32>)>, prefix: &str, l: &Linear) -> Result<()> {
    out.push((format!("{prefix}/weight"), array(l.weight.val())?));
    if let Some(bias) = &l.bias {
        out.push((format!("{prefix}/bias"), array(bias.val())?));
    }
    Ok(())
}

impl TrainableModel for BurnTrainable {
    fn set_trainable(&mut self, part: Part, trainable: bool) -> Result<()> {
        let freezing = self.freezing;
        catching(&self.name, || {
            match part {
                Part::Base => self.net.base = set(self.net.base.clone(), freezing, trainable),
                Part::Head => self.net.head = set(self.net.head.clone(), freezing, trainable),
                Part::Whole => self.net = set(self.net.clone(), freezing, trainable),
            }
            Ok(())
        })
    }

    fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64> {
        catching(&self.name, || {
            let x = tensor::<2>(x, &self.device)?;
            let y = tensor::<2>(y, &self.device)?;
            let loss = MseLoss::new().forward(self.net.forward(x), y, Reduction::Mean);
            let value = loss
                .clone()
                .try_into_scalar::<f32>()
                .map_err(subject_error)?;
            // With every parameter frozen, nothing in the graph asks for a
            // gradient and burn's backward refuses (panics on) such a loss:
            // the step has nothing to update, and the forward above (with
            // whatever state it changed) is all there is to it.
            if loss.is_tracked() {
                let grads = GradientsParams::from_grads(loss.backward(), &self.net);
                self.net = self.optim.step(self.learning_rate, self.net.clone(), grads);
            }
            Ok(f64::from(value))
        })
    }

    fn forward(&mut self, x: &ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        catching(&self.name, || match phase {
            Phase::Train => array(self.net.forward(tensor::<2>(x, &self.device)?)),
            Phase::Eval => array(self.net.valid().forward(tensor::<2>(x, &eval_device())?)),
        })
    }

    fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>> {
        catching(&self.name, || {
            let mut out = Vec::new();
            let base = &self.net.base;
            push_linear(&mut out, "base/dense", &base.dense)?;
            if let Some(bn) = &base.batch_norm {
                out.push(("base/batch_norm/gamma".into(), array(bn.gamma.val())?));
                out.push(("base/batch_norm/beta".into(), array(bn.beta.val())?));
                // `value_sync`: the statistics with this thread's latest
                // update applied, as burn's own tests read them.
                out.push((
                    "base/batch_norm/running_mean".into(),
                    array(bn.running_mean.value_sync())?,
                ));
                out.push((
                    "base/batch_norm/running_var".into(),
                    array(bn.running_var.value_sync())?,
                ));
            }
            push_linear(&mut out, "base/dense_1", &base.dense_1)?;
            push_linear(&mut out, "head", &self.net.head)?;
            Ok(out)
        })
    }
}
