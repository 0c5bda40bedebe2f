//! Losses with Keras 3 numerics: value and gradient with respect to the prediction.
//!
//! Mean squared error is the mean over the last axis, then over the batch (for
//! equal-width samples, the mean over every element). Binary cross-entropy from
//! probabilities clips them to `[1e-7, 1 - 1e-7]` (no gradient where clipped, half
//! of it exactly at a bound, as Keras' clip gives);
//! from logits it uses the stable log-sigmoid form.

use crate::error::Result;
use crate::tensor::{shape_mismatch, Element};
use ndarray::{ArrayD, Zip};

/// Keras' clipping epsilon for probabilities.
pub const PROBABILITY_EPSILON: f64 = 1e-7;

/// A loss function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Loss {
    /// Mean squared error.
    MeanSquaredError,
    /// Binary cross-entropy on probabilities in `[0, 1]`.
    BinaryCrossentropy,
    /// Binary cross-entropy on logits.
    BinaryCrossentropyFromLogits,
}

impl Loss {
    /// The mean loss over the batch and its gradient with respect to `pred`.
    ///
    /// ```
    /// use nncheck::Loss;
    /// use ndarray::arr2;
    /// let (value, grad) = Loss::MeanSquaredError
    ///     .value_and_grad(&arr2(&[[1.0f64, 3.0]]).into_dyn(), &arr2(&[[0.0, 1.0]]).into_dyn())
    ///     .unwrap();
    /// assert_eq!(value, 2.5);
    /// assert_eq!(grad.as_slice().unwrap(), &[1.0, 2.0]);
    /// ```
    pub fn value_and_grad<F: Element>(
        &self,
        pred: &ArrayD<F>,
        target: &ArrayD<F>,
    ) -> Result<(f64, ArrayD<F>)> {
        if pred.shape() != target.shape() {
            return Err(shape_mismatch(
                "loss target",
                format!("the prediction's shape {:?}", pred.shape()),
                target.shape(),
            ));
        }
        let n = pred.len().max(1) as f64;
        let inv_n = F::round_from(1.0 / n);
        let mut grad = ArrayD::zeros(pred.raw_dim());
        let mut total = 0.0f64;
        match self {
            Loss::MeanSquaredError => {
                let two = F::round_from(2.0);
                Zip::from(&mut grad)
                    .and(pred)
                    .and(target)
                    .for_each(|g, &p, &y| {
                        let d = p - y;
                        total += (d * d).to_f64();
                        *g = two * d * inv_n;
                    });
            }
            Loss::BinaryCrossentropy => {
                let eps = F::round_from(PROBABILITY_EPSILON);
                let one = F::one();
                let half = F::round_from(0.5);
                Zip::from(&mut grad)
                    .and(pred)
                    .and(target)
                    .for_each(|g, &p, &y| {
                        let clipped = p.max(eps).min(one - eps);
                        total -= (y * clipped.ln() + (one - y) * (one - clipped).ln()).to_f64();
                        let slope = (-(y / clipped) + (one - y) / (one - clipped)) * inv_n;
                        *g = if p > eps && p < one - eps {
                            slope
                        } else if p == eps || p == one - eps {
                            // Keras clips with a maximum and a minimum, whose
                            // gradient at a tie is shared evenly between the two
                            // arguments: exactly at a bound, half passes.
                            half * slope
                        } else {
                            F::zero()
                        };
                    });
            }
            Loss::BinaryCrossentropyFromLogits => {
                let one = F::one();
                Zip::from(&mut grad)
                    .and(pred)
                    .and(target)
                    .for_each(|g, &z, &y| {
                        // log_sigmoid(z) = -softplus(-z), computed stably.
                        let log_sig = |v: F| -((-v).max(F::zero()) + (one + (-v.abs()).exp()).ln());
                        total -= (y * log_sig(z) + (one - y) * log_sig(-z)).to_f64();
                        let sigmoid = one / (one + (-z).exp());
                        *g = (sigmoid - y) * inv_n;
                    });
            }
        }
        Ok((total / n, grad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    /// The cross-entropy gradient at `p` for target `y`, one sample.
    fn bce_grad(p: f64, y: f64) -> f64 {
        let (_, g) = Loss::BinaryCrossentropy
            .value_and_grad(&arr1(&[p]).into_dyn(), &arr1(&[y]).into_dyn())
            .unwrap();
        g[[0]]
    }

    #[test]
    fn bce_passes_half_the_gradient_exactly_at_a_clip_bound() {
        let eps = PROBABILITY_EPSILON;
        for y in [0.0, 1.0, 0.25] {
            for p in [eps, 1.0 - eps] {
                let slope = -(y / p) + (1.0 - y) / (1.0 - p);
                assert_eq!(
                    bce_grad(p, y).to_bits(),
                    (0.5 * slope).to_bits(),
                    "p {p}, y {y}"
                );
            }
            // Inside the bounds the whole gradient, outside none of it.
            let inside = 2.0 * eps;
            let slope = -(y / inside) + (1.0 - y) / (1.0 - inside);
            assert_eq!(bce_grad(inside, y).to_bits(), slope.to_bits());
            for clipped in [0.0, eps / 2.0, 1.0 - eps / 2.0, 1.0] {
                assert_eq!(
                    bce_grad(clipped, y).to_bits(),
                    0.0f64.to_bits(),
                    "p {clipped}"
                );
            }
        }
    }
}
