//! `Dense`: `y = x · kernel + bias` on 2-D batches.
//!
//! Serves SPEC §3: backward always returns the input gradient when asked (a frozen
//! Dense still passes gradients to trainable layers before it) but computes the
//! kernel and bias gradients only when the layer was effectively trainable in the
//! forward, which is what makes a frozen step cheaper.

use crate::error::{Error, Result};
use crate::layer::{leaf_layer_common, Layer, Weight, WeightKind, WeightVisitor, WeightVisitorMut};
use crate::phase::ForwardCtx;
use crate::rng::{chacha, SeedSequence};
use crate::tensor::{checked_len, shape_mismatch, Element};
use ndarray::{linalg::general_mat_mul, Array2, ArrayD, Axis, Ix2};
use rand::RngExt;

/// A fully connected layer with a Glorot-uniform kernel and a zero bias (Keras defaults).
///
/// ```
/// use nncheck::{Sequential, Dense, Phase};
/// use ndarray::ArrayD;
/// let mut model = Sequential::<f32>::new("m").add(Dense::new(3)).build(&[2], Some(1)).unwrap();
/// let y = model.predict(&ArrayD::zeros(vec![4, 2])).unwrap();
/// assert_eq!(y.shape(), &[4, 3]);
/// ```
pub struct Dense<F: Element> {
    name: String,
    trainable: bool,
    units: usize,
    seed: Option<u64>,
    kernel: Option<Weight<F>>,
    bias: Option<Weight<F>>,
    /// The input of the last forward and whether weight gradients are wanted.
    cache: Option<(Array2<F>, bool)>,
}

impl<F: Element> std::fmt::Debug for Dense<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dense")
            .field("name", &self.name)
            .field("trainable", &self.trainable)
            .field("units", &self.units)
            .field("seed", &self.seed)
            .field(
                "kernel_shape",
                &self.kernel.as_ref().map(|k| k.value.shape()),
            )
            .finish_non_exhaustive()
    }
}

impl<F: Element> Dense<F> {
    /// A Dense layer with `units` outputs; the input width is taken at build.
    pub fn new(units: usize) -> Self {
        Dense {
            name: "dense".into(),
            trainable: true,
            units,
            seed: None,
            kernel: None,
            bias: None,
            cache: None,
        }
    }

    /// Names the layer.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Pins the kernel initialiser to `seed` instead of the model's seed sequence.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The kernel, `[inputs, units]`, once built.
    pub fn kernel(&self) -> Option<&ArrayD<F>> {
        self.kernel.as_ref().map(|w| &w.value)
    }

    fn weights(&self) -> Result<(&Weight<F>, &Weight<F>)> {
        match (&self.kernel, &self.bias) {
            (Some(k), Some(b)) => Ok((k, b)),
            _ => Err(Error::NoForwardCache {
                layer: format!("{} (not built)", self.name),
            }),
        }
    }
}

impl<F: Element> Layer<F> for Dense<F> {
    leaf_layer_common!();

    fn build(&mut self, input_shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        let context = format!("Dense `{}` input", self.name);
        let &[inputs] = input_shape else {
            return Err(shape_mismatch(
                &context,
                "one feature axis [features]",
                input_shape,
            ));
        };
        if let Some(kernel) = &self.kernel {
            if kernel.value.shape()[0] != inputs {
                return Err(shape_mismatch(
                    &context,
                    format!("[{}] (the width it was built for)", kernel.value.shape()[0]),
                    input_shape,
                ));
            }
            return Ok(vec![self.units]);
        }
        if self.units == 0 {
            return Err(Error::Zero {
                name: "Dense units",
            });
        }
        if inputs == 0 {
            return Err(Error::Zero {
                name: "Dense input width",
            });
        }
        checked_len(&[inputs, self.units])?;
        let seed = self.seed.unwrap_or_else(|| seeds.next_seed());
        let mut rng = chacha(seed);
        let limit = (6.0 / (inputs + self.units) as f64).sqrt();
        let kernel = ArrayD::from_shape_simple_fn(vec![inputs, self.units], || {
            F::round_from(rng.random_range(-limit..limit))
        });
        self.kernel = Some(Weight::new("kernel", WeightKind::Param, kernel));
        self.bias = Some(Weight::new(
            "bias",
            WeightKind::Param,
            ArrayD::zeros(vec![self.units]),
        ));
        Ok(vec![self.units])
    }

    fn forward(&mut self, x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>> {
        let (kernel, bias) = self.weights()?;
        let inputs = kernel.value.shape()[0];
        if x.ndim() != 2 || x.shape()[1] != inputs {
            return Err(shape_mismatch(
                &format!("Dense `{}` input", self.name),
                format!("[batch, {inputs}]"),
                x.shape(),
            ));
        }
        let x = x.into_dimensionality::<Ix2>().expect("rank checked above");
        let kernel2 = kernel
            .value
            .view()
            .into_dimensionality::<Ix2>()
            .expect("built 2-D");
        let mut y = Array2::zeros((x.nrows(), self.units));
        y += &bias
            .value
            .view()
            .into_dimensionality::<ndarray::Ix1>()
            .expect("1-D bias");
        general_mat_mul(F::one(), &x, &kernel2, F::one(), &mut y);
        let wants_weight_grads = ctx.path_trainable && self.trainable;
        self.cache = Some((x, wants_weight_grads));
        Ok(y.into_dyn())
    }

    fn backward(&mut self, dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>> {
        let no_cache = || Error::NoForwardCache {
            layer: self.name.clone(),
        };
        let (x, wants_weight_grads) = self.cache.as_ref().ok_or_else(no_cache)?;
        if dy.shape() != [x.nrows(), self.units] {
            return Err(shape_mismatch(
                &format!("Dense `{}` backward dy", self.name),
                format!("[{}, {}]", x.nrows(), self.units),
                dy.shape(),
            ));
        }
        let dy = dy
            .into_dimensionality::<Ix2>()
            .expect("shape checked above");
        let (Some(kernel), Some(bias)) = (&mut self.kernel, &mut self.bias) else {
            return Err(no_cache());
        };
        if *wants_weight_grads {
            let shape = kernel.value.raw_dim();
            let grad = kernel.grad.get_or_insert_with(|| ArrayD::zeros(shape));
            let mut grad2 = grad.view_mut().into_dimensionality::<Ix2>().expect("2-D");
            general_mat_mul(F::one(), &x.t(), &dy, F::zero(), &mut grad2);
            bias.set_grad(dy.sum_axis(Axis(0)).into_dyn().view());
        }
        if !need_input_grad {
            return Ok(None);
        }
        let kernel2 = kernel
            .value
            .view()
            .into_dimensionality::<Ix2>()
            .expect("2-D");
        Ok(Some(dy.dot(&kernel2.t()).into_dyn()))
    }

    fn visit_weights(&self, prefix: &str, path_trainable: bool, f: &mut WeightVisitor<'_, F>) {
        let path = crate::layer::join_path(prefix, &self.name);
        let eff = path_trainable && self.trainable;
        for w in [&self.kernel, &self.bias].into_iter().flatten() {
            f(&path, w, eff);
        }
    }

    fn visit_weights_mut(
        &mut self,
        prefix: &str,
        path_trainable: bool,
        f: &mut WeightVisitorMut<'_, F>,
    ) {
        let path = crate::layer::join_path(prefix, &self.name);
        let eff = path_trainable && self.trainable;
        for w in [&mut self.kernel, &mut self.bias].into_iter().flatten() {
            f(&path, w, eff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Glorot uniform, as Keras: draws from `(-l, l)` with
    /// `l = sqrt(6 / (fan_in + fan_out))`, spread up to the limit (the largest of
    /// 2,048 draws falls below `0.9 l` with probability `0.9^2048`).
    #[test]
    fn the_kernel_is_glorot_uniform_over_fan_in_plus_fan_out() {
        let mut dense = Dense::<f32>::new(64).with_seed(1);
        dense.build(&[32], &mut SeedSequence::new(Some(1))).unwrap();
        let limit = (6.0f64 / 96.0).sqrt();
        let largest = dense
            .kernel()
            .unwrap()
            .iter()
            .map(|w| f64::from(w.abs()))
            .fold(0.0, f64::max);
        assert!(
            largest <= limit && largest > 0.9 * limit,
            "{largest} vs {limit}"
        );
    }

    /// A built Dense builds again for the width it was built for, keeping its
    /// kernel, and refuses any other width.
    #[test]
    fn a_built_dense_rebuilds_only_for_its_own_width() {
        let mut dense = Dense::<f32>::new(4);
        dense.build(&[3], &mut SeedSequence::new(Some(1))).unwrap();
        let kernel = dense.kernel.as_ref().unwrap().value.clone();
        assert_eq!(
            dense.build(&[3], &mut SeedSequence::new(Some(2))).unwrap(),
            [4]
        );
        assert_eq!(dense.kernel.as_ref().unwrap().value, kernel);
        assert!(dense.build(&[5], &mut SeedSequence::new(Some(1))).is_err());
    }
}
