//! A small candle-nn model as a trainable-model subject.
//!
//! The model is the one every subject builds ([`ModelSpec`]), written the way a
//! candle user writes it: `Linear` and `BatchNorm` layers from a `VarBuilder`
//! over one `VarMap`, a `Dropout`, a `forward_t(x, train)` through them, and a
//! `candle_nn` optimizer stepped with `backward_step` on the MSE loss. Its
//! answers are candle's own: in particular candle's `BatchNorm` updates its
//! running statistics in every training forward, whether or not its `Var`s are
//! handed to the optimizer, so a "frozen" base with a BatchNorm moves there and
//! the frozen-weights checks measure by how much.

use super::{on_candle, to_array, to_tensor, NAME};
use crate::check::subjects::model::{
    ModelSpec, ModelSubject, Part, TrainableModel, BASE_OUTPUTS, FEATURES, HIDDEN,
};
use crate::check::{unsupported, Capabilities, Capability, OptimizerKind, Result};
use crate::phase::Phase;
use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use candle_nn::{
    AdamW, BatchNorm, BatchNormConfig, Dropout, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap,
    SGD,
};
use ndarray::ArrayD;
use rand::RngExt;

/// The BatchNorm settings, Keras's defaults in candle's terms: Keras's momentum
/// 0.99 weights the old statistic, candle's `momentum` weights the batch's
/// (`running * (1 - momentum) + batch * momentum`), so 0.99 is candle's 0.01;
/// epsilon 1e-3 as in Keras. candle's running variance is the unbiased batch
/// variance (`n / (n - 1)`), which is not configurable.
const BATCH_NORM: BatchNormConfig = BatchNormConfig {
    eps: 1e-3,
    remove_mean: true,
    affine: true,
    momentum: 0.01,
};

/// Adam's epsilon, Keras's 1e-7 (candle's default is 1e-8).
const ADAM_EPSILON: f64 = 1e-7;

/// The linear layers, by `VarMap` prefix, with their input and output widths,
/// in the order their weights are drawn.
const LINEARS: [(&str, usize, usize); 3] = [
    ("base.dense", FEATURES, HIDDEN),
    ("base.dense_1", HIDDEN, BASE_OUTPUTS),
    ("head", BASE_OUTPUTS, 1),
];

/// candle-nn 0.11 models on the CPU, in f32.
///
/// The base is `linear(FEATURES → HIDDEN)` → `batch_norm(HIDDEN)` (when the
/// spec asks; Keras's momentum and epsilon, see below) → ReLU →
/// `Dropout(rate)` → `linear(HIDDEN → BASE_OUTPUTS)`, the head
/// `linear(BASE_OUTPUTS → 1)`, every `Var` in one `VarMap` under `base.` and
/// `head.`; [`TrainableModel::weights`] reports them with `/` for candle's `.`
/// (`base/dense/weight`, `base/batch_normalization/running_mean`, `head/bias`).
///
/// - Initialisation: candle's CPU initialisers cannot be seeded, so after
///   candle-nn has built the layers every linear weight is overwritten with
///   Keras's default, Glorot uniform, drawn from nncheck's
///   [`chacha`](crate::rng::chacha)`(spec.seed)` stream in Keras's
///   `[inputs, units]` order (first linear, second, head) and transposed to
///   candle's `[units, inputs]`; biases are zero; BatchNorm starts at candle's
///   (and Keras's) weight 1, bias 0, running mean 0, running variance 1.
/// - BatchNorm: momentum 0.01 in candle's convention (Keras's 0.99), epsilon
///   1e-3.
/// - Optimizer: candle-nn has plain `SGD` and `AdamW`. SGD is `SGD` at the
///   spec's learning rate; it has no momentum, Nesterov or weight decay, which
///   the subject does not declare. Adam and
///   AdamW are `AdamW` with betas 0.9 and 0.999, Keras's epsilon 1e-7 and the
///   spec's weight decay, which candle applies decoupled, as Keras does for
///   both (0 means plain Adam).
/// - Phase: `Train` is `forward_t(x, true)`, `Eval` is `forward_t(x, false)`.
/// - Freezing: the optimizer is built over the `Var`s of the parts currently
///   trainable and rebuilt when that set changes, as a candle user who freezes
///   by choosing what the optimizer gets must do (candle's `AdamW` has no way to
///   drop a `Var`). A rebuilt candle optimizer starts with fresh state: AdamW's
///   moments of every `Var`, the still-trainable ones included, restart at zero
///   and its step count at 0. The `Var`s handed over are all of a part's,
///   BatchNorm running statistics included (they get no gradient, so no step
///   touches them).
/// - Optimizer state: private in candle, so
///   [`TrainableModel::optimizer_state`] answers not applicable.
///
/// ```
/// use nncheck::check::{ModelSpec, ModelSubject, OptimizerKind, Part};
/// use nncheck::conform::candle::CandleModel;
/// let spec = ModelSpec {
///     rate: 0.5, batch_norm: true, optimizer: OptimizerKind::AdamW,
///     learning_rate: 1e-3, weight_decay: 0.01, seed: 1, steps: 20,
/// };
/// let mut model = CandleModel.build(&spec).unwrap();
/// model.set_trainable(Part::Base, false).unwrap();
/// let names: Vec<String> = model.weights().unwrap().into_iter().map(|(n, _)| n).collect();
/// assert!(names.contains(&"base/dense/weight".to_string()));
/// assert!(names.contains(&"base/batch_normalization/running_mean".to_string()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CandleModel;

impl ModelSubject for CandleModel {
    fn name(&self) -> String {
        NAME.into()
    }

    fn version(&self) -> Option<String> {
        Some(super::VERSION.into())
    }

    /// BatchNorm; plain SGD (without weight decay), Adam and AdamW (candle's
    /// `AdamW`, with or without decay); no momentum, Nesterov or optimizer
    /// state access.
    fn capabilities(&self) -> Capabilities {
        Capabilities::of(&[
            Capability::BatchNorm,
            Capability::Optimizer(OptimizerKind::Sgd),
            Capability::Optimizer(OptimizerKind::Adam),
            Capability::Optimizer(OptimizerKind::AdamW),
            Capability::WeightDecay(OptimizerKind::Adam),
            Capability::WeightDecay(OptimizerKind::AdamW),
        ])
    }

    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        let choice = OptimizerChoice::of(spec)?;
        let net = on_candle(|| Net::new(spec))?;
        let mut model = CandleTrainable {
            optimizer: on_candle(|| choice.build(Vec::new()))?,
            net,
            choice,
            base_trainable: true,
            head_trainable: true,
        };
        model.rebuild_optimizer()?;
        Ok(Box::new(model))
    }
}

/// A candle-nn optimizer and its settings, before it is given `Var`s.
#[derive(Debug, Clone)]
enum OptimizerChoice {
    Sgd { learning_rate: f64 },
    AdamW(ParamsAdamW),
}

impl OptimizerChoice {
    /// The candle optimizer for `spec`, or what candle lacks for it.
    fn of(spec: &ModelSpec) -> Result<Self> {
        match spec.optimizer {
            OptimizerKind::Sgd if spec.weight_decay > 0.0 => {
                unsupported(Capability::WeightDecay(OptimizerKind::Sgd))
            }
            OptimizerKind::Sgd => Ok(OptimizerChoice::Sgd {
                learning_rate: spec.learning_rate,
            }),
            kind @ (OptimizerKind::Momentum | OptimizerKind::Nesterov) => {
                unsupported(Capability::Optimizer(kind))
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => Ok(OptimizerChoice::AdamW(ParamsAdamW {
                lr: spec.learning_rate,
                beta1: 0.9,
                beta2: 0.999,
                eps: ADAM_EPSILON,
                weight_decay: spec.weight_decay,
            })),
        }
    }

    /// A fresh optimizer over `vars`.
    fn build(&self, vars: Vec<Var>) -> candle_core::Result<CandleOptimizer> {
        Ok(match self {
            OptimizerChoice::Sgd { learning_rate } => {
                CandleOptimizer::Sgd(SGD::new(vars, *learning_rate)?)
            }
            OptimizerChoice::AdamW(params) => {
                CandleOptimizer::AdamW(AdamW::new(vars, params.clone())?)
            }
        })
    }
}

/// A built candle-nn optimizer.
enum CandleOptimizer {
    Sgd(SGD),
    AdamW(AdamW),
}

impl CandleOptimizer {
    fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        match self {
            CandleOptimizer::Sgd(opt) => opt.backward_step(loss),
            CandleOptimizer::AdamW(opt) => opt.backward_step(loss),
        }
    }
}

/// The layers and the `VarMap` that holds their `Var`s.
struct Net {
    vars: VarMap,
    dense: Linear,
    batch_norm: Option<BatchNorm>,
    dropout: Dropout,
    dense_1: Linear,
    head: Linear,
}

impl Net {
    fn new(spec: &ModelSpec) -> candle_core::Result<Self> {
        let mut vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let base = vb.pp("base");
        let dense = candle_nn::linear(FEATURES, HIDDEN, base.pp("dense"))?;
        let batch_norm = if spec.batch_norm {
            Some(candle_nn::batch_norm(
                HIDDEN,
                BATCH_NORM,
                base.pp("batch_normalization"),
            )?)
        } else {
            None
        };
        let dropout = Dropout::new(spec.rate as f32);
        let dense_1 = candle_nn::linear(HIDDEN, BASE_OUTPUTS, base.pp("dense_1"))?;
        let head = candle_nn::linear(BASE_OUTPUTS, 1, vb.pp("head"))?;
        // Glorot uniform kernels drawn in Keras's [inputs, units] order, zero biases.
        let mut rng = crate::rng::chacha(spec.seed);
        for (prefix, inputs, units) in LINEARS {
            let limit = (6.0 / (inputs + units) as f64).sqrt();
            let kernel: Vec<f32> = (0..inputs * units)
                .map(|_| rng.random_range(-limit..limit) as f32)
                .collect();
            let kernel = Tensor::from_vec(kernel, (inputs, units), &Device::Cpu)?;
            vars.set_one(format!("{prefix}.weight"), kernel.t()?.contiguous()?)?;
            vars.set_one(
                format!("{prefix}.bias"),
                Tensor::zeros(units, DType::F32, &Device::Cpu)?,
            )?;
        }
        Ok(Net {
            vars,
            dense,
            batch_norm,
            dropout,
            dense_1,
            head,
        })
    }

    /// The model's forward, in training mode when `train`.
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let h = self.dense.forward(x)?;
        let h = match &self.batch_norm {
            Some(bn) => bn.forward_t(&h, train)?,
            None => h,
        };
        let h = self.dropout.forward_t(&h.relu()?, train)?;
        let h = self.dense_1.forward(&h)?;
        self.head.forward(&h)
    }

    /// Every `Var` by its `VarMap` name, sorted by name.
    fn named_vars(&self) -> Vec<(String, Var)> {
        let data = self
            .vars
            .data()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut named: Vec<(String, Var)> = data
            .iter()
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }
}

/// The model [`CandleModel`] builds.
struct CandleTrainable {
    net: Net,
    choice: OptimizerChoice,
    /// Built over the `Var`s of the trainable parts.
    optimizer: CandleOptimizer,
    base_trainable: bool,
    head_trainable: bool,
}

impl CandleTrainable {
    /// A fresh optimizer over the `Var`s of the parts trainable now.
    fn rebuild_optimizer(&mut self) -> Result<()> {
        let vars: Vec<Var> = self
            .net
            .named_vars()
            .into_iter()
            .filter(|(name, _)| {
                (self.base_trainable && name.starts_with("base."))
                    || (self.head_trainable && name.starts_with("head."))
            })
            .map(|(_, var)| var)
            .collect();
        self.optimizer = on_candle(|| self.choice.build(vars))?;
        Ok(())
    }
}

impl TrainableModel for CandleTrainable {
    fn set_trainable(&mut self, part: Part, trainable: bool) -> Result<()> {
        let before = (self.base_trainable, self.head_trainable);
        if matches!(part, Part::Base | Part::Whole) {
            self.base_trainable = trainable;
        }
        if matches!(part, Part::Head | Part::Whole) {
            self.head_trainable = trainable;
        }
        if (self.base_trainable, self.head_trainable) != before {
            self.rebuild_optimizer()?;
        }
        Ok(())
    }

    fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64> {
        let (net, optimizer) = (&self.net, &mut self.optimizer);
        on_candle(|| {
            let prediction = net.forward_t(&to_tensor(x)?, true)?;
            let loss = candle_nn::loss::mse(&prediction, &to_tensor(y)?)?;
            let value = loss.to_scalar::<f32>()?;
            optimizer.backward_step(&loss)?;
            Ok(f64::from(value))
        })
    }

    fn forward(&mut self, x: &ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        let train = matches!(phase, Phase::Train);
        on_candle(|| to_array(&self.net.forward_t(&to_tensor(x)?, train)?))
    }

    fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>> {
        on_candle(|| {
            self.net
                .named_vars()
                .into_iter()
                .map(|(name, var)| Ok((name.replace('.', "/"), to_array(var.as_tensor())?)))
                .collect()
        })
    }
}
