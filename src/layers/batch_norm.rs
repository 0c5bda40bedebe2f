//! `BatchNormalization` over the last axis, with Keras semantics (SPEC §5).
//!
//! Invariant served: a frozen BatchNorm runs in inference mode even in the `Train`
//! phase and its moving statistics never change. In `Train` and effectively
//! trainable it normalises with the batch statistics (biased variance) and
//! *proposes* `moving = moving * momentum + batch * (1 - momentum)`; the update is
//! applied by [`Layer::commit_state`] once the training step is known to be good,
//! so a step rejected for a non-finite loss leaves the statistics untouched.
//! A batch with no rows (a per-sample axis of length 0) has no statistics and is
//! normalised with the moving ones; the channel count is checked against the
//! element cap before anything is allocated.

use crate::error::{Error, Result};
use crate::layer::{
    join_path, leaf_layer_common, Layer, Weight, WeightKind, WeightVisitor, WeightVisitorMut,
};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::SeedSequence;
use crate::tensor::{shape_mismatch, Element};
use ndarray::{Array1, Array2, ArrayD, Axis};

/// What backward needs from the forward.
struct BatchNormCache<F: Element> {
    /// The normalised input `(x - mean) / sqrt(var + eps)`, `[rows, channels]`.
    x_hat: Array2<F>,
    /// `1 / sqrt(var + eps)` of the statistics used.
    inv_std: Array1<F>,
    /// True when batch statistics were used (the mean depends on x).
    batch_stats: bool,
    /// Whether gamma and beta get gradients.
    wants_weight_grads: bool,
    shape: Vec<usize>,
}

/// Batch normalisation over the last axis (defaults: momentum 0.99, epsilon 1e-3).
///
/// ```
/// use nncheck::{BatchNormalization, Sequential, Phase};
/// use ndarray::ArrayD;
/// let mut model = Sequential::<f64>::new("m")
///     .add(BatchNormalization::new())
///     .build(&[3], Some(0))
///     .unwrap();
/// model.freeze();
/// let before = model.get_weights();
/// model.call(&ArrayD::ones(vec![4, 3]), Phase::Train).unwrap();
/// assert_eq!(model.get_weights(), before); // frozen: inference mode, nothing moves
/// ```
pub struct BatchNormalization<F: Element> {
    name: String,
    trainable: bool,
    momentum: f64,
    epsilon: f64,
    gamma: Option<Weight<F>>,
    beta: Option<Weight<F>>,
    moving_mean: Option<Weight<F>>,
    moving_variance: Option<Weight<F>>,
    pending: Option<(Array1<F>, Array1<F>)>,
    cache: Option<BatchNormCache<F>>,
}

impl<F: Element> std::fmt::Debug for BatchNormalization<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchNormalization")
            .field("name", &self.name)
            .field("trainable", &self.trainable)
            .field("momentum", &self.momentum)
            .field("epsilon", &self.epsilon)
            .field("channels", &self.gamma.as_ref().map(|g| g.value.len()))
            .finish_non_exhaustive()
    }
}

impl<F: Element> Default for BatchNormalization<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Element> BatchNormalization<F> {
    /// A BatchNormalization layer with Keras defaults.
    pub fn new() -> Self {
        BatchNormalization {
            name: "batch_normalization".into(),
            trainable: true,
            momentum: 0.99,
            epsilon: 1e-3,
            gamma: None,
            beta: None,
            moving_mean: None,
            moving_variance: None,
            pending: None,
            cache: None,
        }
    }

    /// Names the layer.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets momentum (in `[0, 1]`) and epsilon (positive, finite).
    pub fn with_momentum_epsilon(mut self, momentum: f64, epsilon: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::InvalidHyperParameter {
                name: "BatchNormalization momentum",
                value: momentum,
                expected: "in [0, 1]",
            });
        }
        if !(epsilon > 0.0 && epsilon.is_finite()) {
            return Err(Error::InvalidHyperParameter {
                name: "BatchNormalization epsilon",
                value: epsilon,
                expected: "positive and finite",
            });
        }
        self.momentum = momentum;
        self.epsilon = epsilon;
        Ok(self)
    }

    fn channels(&self) -> Option<usize> {
        self.gamma.as_ref().map(|g| g.value.len())
    }

    fn weights(&self) -> [&Option<Weight<F>>; 4] {
        [
            &self.gamma,
            &self.beta,
            &self.moving_mean,
            &self.moving_variance,
        ]
    }
}

fn to_rows<F: Element>(x: ArrayD<F>, channels: usize) -> Array2<F> {
    let rows = x.len() / channels;
    x.into_shape_with_order((rows, channels))
        .expect("standard layout with last axis = channels")
}

impl<F: Element> Layer<F> for BatchNormalization<F> {
    leaf_layer_common!();

    fn build(&mut self, input_shape: &[usize], _: &mut SeedSequence) -> Result<Vec<usize>> {
        let context = format!("BatchNormalization `{}` input", self.name);
        let Some(&channels) = input_shape.last() else {
            return Err(shape_mismatch(&context, "at least one axis", input_shape));
        };
        match self.channels() {
            Some(c) if c != channels => {
                return Err(shape_mismatch(
                    &context,
                    format!("last axis {c}"),
                    input_shape,
                ))
            }
            Some(_) => {}
            None => {
                if channels == 0 {
                    return Err(Error::Zero {
                        name: "BatchNormalization channels",
                    });
                }
                // The other axes may be 0, so the input's element count does not
                // bound the channels: check them before allocating four vectors.
                crate::tensor::checked_len(&[channels])?;
                let ones = || ArrayD::ones(vec![channels]);
                let zeros = || ArrayD::zeros(vec![channels]);
                self.gamma = Some(Weight::new("gamma", WeightKind::Param, ones()));
                self.beta = Some(Weight::new("beta", WeightKind::Param, zeros()));
                self.moving_mean = Some(Weight::new("moving_mean", WeightKind::State, zeros()));
                self.moving_variance =
                    Some(Weight::new("moving_variance", WeightKind::State, ones()));
            }
        }
        Ok(input_shape.to_vec())
    }

    fn forward(&mut self, x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>> {
        let (Some(channels), Some(gamma), Some(beta), Some(mm), Some(mv)) = (
            self.channels(),
            &self.gamma,
            &self.beta,
            &self.moving_mean,
            &self.moving_variance,
        ) else {
            return Err(Error::NoForwardCache {
                layer: format!("{} (not built)", self.name),
            });
        };
        if x.ndim() < 2 || x.shape().last() != Some(&channels) || x.shape()[0] == 0 {
            return Err(shape_mismatch(
                &format!("BatchNormalization `{}` input", self.name),
                format!("[batch >= 1, ..., {channels}]"),
                x.shape(),
            ));
        }
        let shape = x.shape().to_vec();
        let x = to_rows(x.as_standard_layout().into_owned(), channels);
        let effectively_trainable = ctx.path_trainable && self.trainable;
        // A batch with no rows (a per-sample axis of length 0) has no statistics:
        // it is normalised with the moving ones and proposes no update.
        let batch_stats = ctx.phase == Phase::Train && effectively_trainable && x.nrows() > 0;
        let eps = F::round_from(self.epsilon);
        let (mean, var) = if batch_stats {
            let mean = x.mean_axis(Axis(0)).expect("rows >= 1");
            let var = x.var_axis(Axis(0), F::zero());
            let m = F::round_from(self.momentum);
            let one_minus = F::round_from(1.0 - self.momentum);
            let to1 = |w: &Weight<F>| {
                w.value
                    .view()
                    .into_shape_with_order(channels)
                    .expect("1-D")
                    .to_owned()
            };
            let new_mean = &to1(mm) * m + &(&mean * one_minus);
            let new_var = &to1(mv) * m + &(&var * one_minus);
            self.pending = Some((new_mean, new_var));
            (mean, var)
        } else {
            self.pending = None;
            let to1 = |w: &Weight<F>| {
                w.value
                    .view()
                    .into_shape_with_order(channels)
                    .expect("1-D")
                    .to_owned()
            };
            (to1(mm), to1(mv))
        };
        let inv_std = var.mapv(|v| F::one() / (v + eps).sqrt());
        let x_hat = (&x - &mean) * &inv_std;
        let g = gamma
            .value
            .view()
            .into_shape_with_order(channels)
            .expect("1-D");
        let b = beta
            .value
            .view()
            .into_shape_with_order(channels)
            .expect("1-D");
        let y = &x_hat * &g + b;
        self.cache = Some(BatchNormCache {
            x_hat,
            inv_std,
            batch_stats,
            wants_weight_grads: effectively_trainable,
            shape: shape.clone(),
        });
        Ok(y.into_shape_with_order(shape).expect("same length"))
    }

    fn backward(&mut self, dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>> {
        let cache = self.cache.as_ref().ok_or_else(|| Error::NoForwardCache {
            layer: self.name.clone(),
        })?;
        if dy.shape() != cache.shape.as_slice() {
            return Err(shape_mismatch(
                &format!("BatchNormalization `{}` backward dy", self.name),
                format!("{:?}", cache.shape),
                dy.shape(),
            ));
        }
        let channels = cache.inv_std.len();
        let dy = to_rows(dy.as_standard_layout().into_owned(), channels);
        let (Some(gamma), Some(beta)) = (&mut self.gamma, &mut self.beta) else {
            return Err(Error::NoForwardCache {
                layer: self.name.clone(),
            });
        };
        let dgamma = (&dy * &cache.x_hat).sum_axis(Axis(0));
        let dbeta = dy.sum_axis(Axis(0));
        if cache.wants_weight_grads {
            gamma.set_grad(dgamma.view().into_dyn());
            beta.set_grad(dbeta.view().into_dyn());
        }
        if !need_input_grad {
            return Ok(None);
        }
        let g = gamma
            .value
            .view()
            .into_shape_with_order(channels)
            .expect("1-D");
        let scale = &g * &cache.inv_std;
        let dx = if cache.batch_stats {
            // The batch mean and variance depend on x: the textbook three-term form.
            let n = F::round_from(dy.nrows() as f64);
            let centred = &dy * n - &dbeta - &cache.x_hat * &dgamma;
            centred * &(&scale / n)
        } else {
            &dy * &scale
        };
        Ok(Some(
            dx.into_shape_with_order(cache.shape.clone())
                .expect("same length")
                .into_dyn(),
        ))
    }

    fn commit_state(&mut self) {
        if let (Some((mean, var)), Some(mm), Some(mv)) = (
            self.pending.take(),
            &mut self.moving_mean,
            &mut self.moving_variance,
        ) {
            mm.value.assign(&mean.into_dyn());
            mv.value.assign(&var.into_dyn());
        }
    }

    fn pending_state_finite(&self) -> bool {
        self.pending
            .as_ref()
            .is_none_or(|(m, v)| m.iter().chain(v.iter()).all(|x| x.is_finite()))
    }

    fn visit_weights(&self, prefix: &str, path_trainable: bool, f: &mut WeightVisitor<'_, F>) {
        let path = join_path(prefix, &self.name);
        let eff = path_trainable && self.trainable;
        for w in self.weights().into_iter().flatten() {
            f(&path, w, eff);
        }
    }

    fn visit_weights_mut(
        &mut self,
        prefix: &str,
        path_trainable: bool,
        f: &mut WeightVisitorMut<'_, F>,
    ) {
        let path = join_path(prefix, &self.name);
        let eff = path_trainable && self.trainable;
        for w in [
            &mut self.gamma,
            &mut self.beta,
            &mut self.moving_mean,
            &mut self.moving_variance,
        ]
        .into_iter()
        .flatten()
        {
            f(&path, w, eff);
        }
    }
}
