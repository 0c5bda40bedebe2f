//! `ReLU`: `max(x, 0)`, with NaN passed through so a bad step is seen by the loss.

use crate::error::{Error, Result};
use crate::layer::{leaf_layer_common, Layer, WeightVisitor, WeightVisitorMut};
use crate::phase::ForwardCtx;
use crate::rng::SeedSequence;
use crate::tensor::{shape_mismatch, Element};
use ndarray::{ArrayD, Zip};

/// The rectified linear unit. Its derivative at 0 is taken as 0 (as Keras).
///
/// ```
/// use nncheck::{Layer, ReLU, Phase, phase::ForwardCtx};
/// use ndarray::arr1;
/// let mut relu = ReLU::<f32>::new();
/// let y = relu.forward(arr1(&[-1.0f32, 2.0]).into_dyn(), ForwardCtx::top(Phase::Eval)).unwrap();
/// assert_eq!(y.as_slice().unwrap(), &[0.0, 2.0]);
/// ```
pub struct ReLU<F: Element> {
    name: String,
    trainable: bool,
    /// The output of the last forward: positive exactly where the input was.
    cache: Option<ArrayD<F>>,
}

impl<F: Element> std::fmt::Debug for ReLU<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReLU")
            .field("name", &self.name)
            .field("trainable", &self.trainable)
            .finish_non_exhaustive()
    }
}

impl<F: Element> Default for ReLU<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Element> ReLU<F> {
    /// A ReLU layer.
    pub fn new() -> Self {
        ReLU {
            name: "relu".into(),
            trainable: true,
            cache: None,
        }
    }

    /// Names the layer.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl<F: Element> Layer<F> for ReLU<F> {
    leaf_layer_common!();

    fn build(&mut self, input_shape: &[usize], _: &mut SeedSequence) -> Result<Vec<usize>> {
        Ok(input_shape.to_vec())
    }

    fn forward(&mut self, mut x: ArrayD<F>, _: ForwardCtx) -> Result<ArrayD<F>> {
        x.mapv_inplace(|v| {
            if v > F::zero() || v.is_nan() {
                v
            } else {
                F::zero()
            }
        });
        self.cache = Some(x.clone());
        Ok(x)
    }

    fn backward(&mut self, mut dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>> {
        let y = self.cache.as_ref().ok_or_else(|| Error::NoForwardCache {
            layer: self.name.clone(),
        })?;
        if !need_input_grad {
            return Ok(None);
        }
        if dy.shape() != y.shape() {
            return Err(shape_mismatch(
                &format!("ReLU `{}` backward dy", self.name),
                format!("{:?}", y.shape()),
                dy.shape(),
            ));
        }
        Zip::from(&mut dy).and(y).for_each(|d, &y| {
            if y.partial_cmp(&F::zero()) != Some(std::cmp::Ordering::Greater) {
                *d = F::zero();
            }
        });
        Ok(Some(dy))
    }

    fn visit_weights(&self, _: &str, _: bool, _: &mut WeightVisitor<'_, F>) {}

    fn visit_weights_mut(&mut self, _: &str, _: bool, _: &mut WeightVisitorMut<'_, F>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::Phase;

    /// Bit for bit: `-0.0` and every negative become `+0.0` (Keras 3 on JAX
    /// gives `+0.0` for `-0.0` too), NaN passes, positives are untouched.
    #[test]
    fn negative_zero_becomes_positive_zero_and_nan_passes() {
        let x = ndarray::arr1(&[-0.0f32, 0.0, -1.0, f32::NAN, 2.5, f32::MIN_POSITIVE]).into_dyn();
        let y = ReLU::<f32>::new()
            .forward(x, ForwardCtx::top(Phase::Train))
            .unwrap();
        let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
        let want: Vec<u32> = [0.0f32, 0.0, 0.0, f32::NAN, 2.5, f32::MIN_POSITIVE]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(bits, want);
    }

    #[test]
    fn named_sets_the_name() {
        let relu = ReLU::<f32>::new().named("activation");
        assert_eq!(Layer::<f32>::name(&relu), "activation");
    }
}
