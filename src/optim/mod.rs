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

#[cfg(test)]
mod tests {
    use super::{Adam, Optimizer, Sgd, SlotState};
    use crate::layer::{Weight, WeightKind};
    use ndarray::ArrayD;

    /// Adam refuses a moment decay of 1 (its bias correction divides by
    /// `1 - beta^t`), and sees an update whose second moment overflows.
    #[test]
    fn adam_refuses_a_decay_of_one_and_sees_an_overflowing_moment() {
        for (beta_1, beta_2) in [(1.0, 0.999), (0.9, 1.0)] {
            let mut adam = Adam::<f32>::new(0.1);
            (adam.beta_1, adam.beta_2) = (beta_1, beta_2);
            assert!(adam.validate().is_err(), "beta {beta_1}, {beta_2} accepted");
        }
        let mut w = Weight::new("w", WeightKind::Param, ArrayD::from_elem(vec![1], 1.0f32));
        // 1e20 is a finite f32; its square, the second moment's input, is not.
        w.grad = Some(ArrayD::from_elem(vec![1], 1e20f32));
        assert!(!Adam::new(0.1).update_is_finite(&w));
        w.grad = Some(ArrayD::from_elem(vec![1], 1.0f32));
        assert!(Adam::new(0.1).update_is_finite(&w));
    }

    /// Without weight decay there is no decay step at all, not a step by zero:
    /// `w - w * 0 * lr` would turn a weight of -0.0 into +0.0.
    #[test]
    fn no_weight_decay_leaves_a_negative_zero_weight_alone() {
        // (With momentum, `w + m` turns -0.0 into +0.0 whatever the decay.)
        let optimizers: [Box<dyn Optimizer<f32>>; 2] =
            [Box::new(Sgd::new(0.1)), Box::new(Adam::new(0.1))];
        for mut optimizer in optimizers {
            let mut w = Weight::new("w", WeightKind::Param, ArrayD::from_elem(vec![1], -0.0f32));
            w.grad = Some(ArrayD::zeros(vec![1]));
            optimizer.apply(&mut w);
            assert_eq!(
                w.value[[0]].to_bits(),
                (-0.0f32).to_bits(),
                "{} moved a -0.0 weight with a zero gradient",
                optimizer.name()
            );
        }
    }

    /// A boxed optimizer, as `compile` takes one chosen at run time, is the
    /// optimizer inside: its name in reports and its hyper-parameter check.
    #[test]
    fn a_boxed_optimizer_is_the_optimizer_inside() {
        let boxed = |o: Box<dyn Optimizer<f32>>| o;
        assert_eq!(boxed(Box::new(Sgd::new(0.1))).name(), "SGD");
        assert_eq!(boxed(Box::new(Adam::new(0.1))).name(), "Adam");
        assert_eq!(boxed(Box::new(Adam::adamw(0.1))).name(), "AdamW");
        assert!(boxed(Box::new(Sgd::new(-1.0))).validate().is_err());
        assert!(boxed(Box::new(Adam::new(0.1))).validate().is_ok());
    }

    fn state(steps: u64, slot: &[f32]) -> SlotState<f32> {
        SlotState {
            slots: vec![ArrayD::from_shape_vec(vec![slot.len()], slot.to_vec()).unwrap()],
            steps,
        }
    }

    /// The frozen-slot checks rest on this comparison: a step count or a single
    /// slot bit that moved must show, each on its own.
    #[test]
    fn bits_equal_tells_apart_steps_and_every_slot_bit() {
        let a = state(3, &[1.0, -0.0, f32::NAN]);
        assert!(SlotState::bits_equal(Some(&a), Some(&a.clone())));
        assert!(!SlotState::bits_equal(
            Some(&a),
            Some(&state(4, &[1.0, -0.0, f32::NAN]))
        ));
        assert!(!SlotState::bits_equal(
            Some(&a),
            Some(&state(3, &[1.0, 0.0, f32::NAN]))
        ));
        assert!(!SlotState::bits_equal(
            Some(&a),
            Some(&state(3, &[1.0, -0.0]))
        ));
        let no_slots = SlotState::<f32> {
            slots: vec![],
            steps: 3,
        };
        assert!(!SlotState::bits_equal(Some(&a), Some(&no_slots)));
        assert!(!SlotState::bits_equal(Some(&a), None));
        assert!(SlotState::<f32>::bits_equal(None, None));
    }
}
