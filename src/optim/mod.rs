//! The optimizer trait and per-weight slots keyed by [`WeightId`].
//!
//! Serves SPEC §3: training hands an optimizer only the weights that are
//! effectively trainable at that step, so a frozen weight, its momentum and its
//! Adam moments and step count stay exactly where they were, and unfreezing
//! resumes them. Every update is computed twice over: once to check that it is
//! finite (changing nothing), once to apply it, so a bad step is never half-applied.

pub mod adam;
pub mod sgd;

pub use adam::Adam;
pub use sgd::Sgd;

use crate::error::Result;
use crate::layer::{Weight, WeightId};
use crate::tensor::Element;
use ndarray::ArrayD;

/// The optimizer state of one weight.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotState<F: Element> {
    /// The slot arrays (SGD: momentum; Adam: first and second moments).
    pub slots: Vec<ArrayD<F>>,
    /// How many updates this weight has received.
    pub steps: u64,
}

impl<F: Element> SlotState<F> {
    /// True when two optional slot states agree bit for bit (step counts and every
    /// slot array; `PartialEq` would call two NaN slots different and `0.0 == -0.0`).
    pub fn bits_equal(a: Option<&Self>, b: Option<&Self>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.steps == b.steps
                    && a.slots.len() == b.slots.len()
                    && a.slots
                        .iter()
                        .zip(&b.slots)
                        .all(|(x, y)| crate::tensor::bits_equal(x, y))
            }
            _ => false,
        }
    }
}

/// A gradient-descent optimizer.
pub trait Optimizer<F: Element>: Send {
    /// A short name for reports.
    fn name(&self) -> &'static str;

    /// Checks the hyper-parameters; `compile` calls it.
    fn validate(&self) -> Result<()>;

    /// True when updating `w` from its gradient gives finite weights and slots.
    /// Changes nothing.
    fn update_is_finite(&self, w: &Weight<F>) -> bool;

    /// Updates `w` and its slots from its gradient.
    fn apply(&mut self, w: &mut Weight<F>);

    /// The state of one weight, if it has been updated.
    fn state(&self, id: WeightId) -> Option<SlotState<F>>;
}

/// A boxed optimizer is an optimizer, so one chosen at run time can be passed
/// wherever an optimizer is taken.
///
/// ```
/// use nncheck::optim::{Adam, Optimizer, Sgd};
/// let pick: Box<dyn Optimizer<f32>> = if true { Box::new(Adam::new(1e-3)) } else { Box::new(Sgd::new(0.1)) };
/// assert_eq!(pick.name(), "Adam");
/// ```
impl<F: Element> Optimizer<F> for Box<dyn Optimizer<F>> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn validate(&self) -> Result<()> {
        (**self).validate()
    }
    fn update_is_finite(&self, w: &Weight<F>) -> bool {
        (**self).update_is_finite(w)
    }
    fn apply(&mut self, w: &mut Weight<F>) {
        (**self).apply(w)
    }
    fn state(&self, id: WeightId) -> Option<SlotState<F>> {
        (**self).state(id)
    }
}

/// Decoupled weight decay as Keras applies it, first: `w -= w * weight_decay * lr`.
pub(crate) fn decay<F: Element>(w: F, weight_decay: F, lr: F) -> F {
    w - w * weight_decay * lr
}

/// Checks a hyper-parameter is finite and in `[lo, hi]`.
pub(crate) fn check_range(
    name: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    expected: &'static str,
) -> Result<()> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(crate::error::Error::InvalidHyperParameter {
            name,
            value,
            expected,
        })
    }
}
