//! Adam and AdamW with Keras 3 numerics (epsilon 1e-7, decoupled weight decay).
//!
//! Each weight keeps its own step count, so a weight that was frozen for a while
//! resumes with the bias correction of the updates it actually received (SPEC §3).

use super::{check_range, decay, Optimizer, SlotState};
use crate::error::Result;
use crate::layer::{Weight, WeightId};
use crate::tensor::Element;
use ndarray::{ArrayD, Zip};
use std::collections::HashMap;

#[derive(Debug, Clone)]
struct AdamSlot<F: Element> {
    m: ArrayD<F>,
    v: ArrayD<F>,
    steps: u64,
}

/// Adam; with a non-zero weight decay it is AdamW.
///
/// ```
/// use nncheck::optim::Adam;
/// let adamw = Adam::<f32>::adamw(1e-3);
/// assert_eq!(adamw.weight_decay, 0.004);
/// ```
#[derive(Debug, Clone)]
pub struct Adam<F: Element = f32> {
    /// Learning rate.
    pub learning_rate: f64,
    /// First-moment decay.
    pub beta_1: f64,
    /// Second-moment decay.
    pub beta_2: f64,
    /// Added to the root of the second moment.
    pub epsilon: f64,
    /// Decoupled weight decay (0 for Adam).
    pub weight_decay: f64,
    slots: HashMap<WeightId, AdamSlot<F>>,
}

impl<F: Element> Adam<F> {
    /// Adam with Keras defaults (beta 0.9 and 0.999, epsilon 1e-7).
    pub fn new(learning_rate: f64) -> Self {
        Adam {
            learning_rate,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
            slots: HashMap::new(),
        }
    }

    /// AdamW with Keras' default weight decay 0.004.
    pub fn adamw(learning_rate: f64) -> Self {
        Self::new(learning_rate).weight_decay(0.004)
    }

    /// Sets the decoupled weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// `alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)` for step `t` (1-based).
    fn alpha(&self, t: u64) -> F {
        let t = F::round_from(t as f64);
        let (b1, b2) = (F::round_from(self.beta_1), F::round_from(self.beta_2));
        F::round_from(self.learning_rate) * (F::one() - b2.powf(t)).sqrt() / (F::one() - b1.powf(t))
    }

    fn step(&self, w: F, g: F, m: F, v: F, alpha: F) -> (F, F, F) {
        let lr = F::round_from(self.learning_rate);
        let w = if self.weight_decay > 0.0 {
            decay(w, F::round_from(self.weight_decay), lr)
        } else {
            w
        };
        let m = m + (g - m) * F::round_from(1.0 - self.beta_1);
        let v = v + (g * g - v) * F::round_from(1.0 - self.beta_2);
        (
            w - alpha * m / (v.sqrt() + F::round_from(self.epsilon)),
            m,
            v,
        )
    }
}

impl<F: Element> Optimizer<F> for Adam<F> {
    fn name(&self) -> &'static str {
        if self.weight_decay > 0.0 {
            "AdamW"
        } else {
            "Adam"
        }
    }

    fn validate(&self) -> Result<()> {
        check_range(
            "Adam learning rate",
            self.learning_rate,
            0.0,
            f64::MAX,
            "finite and >= 0",
        )?;
        check_range(
            "Adam beta_1",
            self.beta_1,
            0.0,
            1.0 - f64::EPSILON,
            "in [0, 1)",
        )?;
        check_range(
            "Adam beta_2",
            self.beta_2,
            0.0,
            1.0 - f64::EPSILON,
            "in [0, 1)",
        )?;
        check_range(
            "Adam epsilon",
            self.epsilon,
            f64::MIN_POSITIVE,
            f64::MAX,
            "positive and finite",
        )?;
        check_range(
            "Adam weight decay",
            self.weight_decay,
            0.0,
            f64::MAX,
            "finite and >= 0",
        )
    }

    fn update_is_finite(&self, w: &Weight<F>) -> bool {
        let Some(grad) = &w.grad else { return true };
        let slot = self.slots.get(&w.id());
        let alpha = self.alpha(slot.map_or(0, |s| s.steps) + 1);
        let moments: Box<dyn Iterator<Item = (F, F)>> = match slot {
            Some(s) => Box::new(s.m.iter().copied().zip(s.v.iter().copied())),
            None => Box::new(std::iter::repeat((F::zero(), F::zero()))),
        };
        alpha.is_finite()
            && w.value
                .iter()
                .zip(grad.iter())
                .zip(moments)
                .all(|((&x, &g), (m, v))| {
                    let (x, m, v) = self.step(x, g, m, v, alpha);
                    x.is_finite() && m.is_finite() && v.is_finite()
                })
    }

    fn apply(&mut self, w: &mut Weight<F>) {
        let Some(grad) = &w.grad else { return };
        let mut slot = self.slots.remove(&w.id()).unwrap_or_else(|| AdamSlot {
            m: ArrayD::zeros(w.value.raw_dim()),
            v: ArrayD::zeros(w.value.raw_dim()),
            steps: 0,
        });
        slot.steps += 1;
        let alpha = self.alpha(slot.steps);
        Zip::from(&mut w.value)
            .and(grad)
            .and(&mut slot.m)
            .and(&mut slot.v)
            .for_each(|x, &g, m, v| {
                (*x, *m, *v) = self.step(*x, g, *m, *v, alpha);
            });
        self.slots.insert(w.id(), slot);
    }

    fn state(&self, id: WeightId) -> Option<SlotState<F>> {
        self.slots.get(&id).map(|s| SlotState {
            slots: vec![s.m.clone(), s.v.clone()],
            steps: s.steps,
        })
    }
}
