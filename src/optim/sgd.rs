//! Stochastic gradient descent with momentum, Nesterov and decoupled weight decay
//! (Keras 3 formulas: `m = momentum * m - lr * g; w += m`, Nesterov
//! `w += momentum * m - lr * g` with the new `m`).

use super::{check_range, decay, Optimizer, SlotState};
use crate::error::Result;
use crate::layer::{Weight, WeightId};
use crate::tensor::Element;
use ndarray::{ArrayD, Zip};
use std::collections::HashMap;

/// SGD; slots (momentum buffers) exist only when `momentum > 0`.
///
/// ```
/// use nncheck::optim::Sgd;
/// let sgd = Sgd::<f32>::new(0.1).momentum(0.9).nesterov(true).weight_decay(0.01);
/// assert_eq!(sgd.learning_rate, 0.1);
/// ```
#[derive(Debug, Clone)]
pub struct Sgd<F: Element = f32> {
    /// Learning rate.
    pub learning_rate: f64,
    /// Momentum in `[0, 1]`.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    slots: HashMap<WeightId, (ArrayD<F>, u64)>,
}

impl<F: Element> Sgd<F> {
    /// Plain SGD at `learning_rate`.
    pub fn new(learning_rate: f64) -> Self {
        Sgd {
            learning_rate,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            slots: HashMap::new(),
        }
    }

    /// Sets the momentum.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Sets the decoupled weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// One element's step: the new weight and the new momentum.
    fn step(&self, w: F, g: F, m: F) -> (F, F) {
        let lr = F::round_from(self.learning_rate);
        let w = if self.weight_decay > 0.0 {
            decay(w, F::round_from(self.weight_decay), lr)
        } else {
            w
        };
        if self.momentum == 0.0 {
            return (w - g * lr, m);
        }
        let mom = F::round_from(self.momentum);
        let m = m * mom - g * lr;
        if self.nesterov {
            (w + (m * mom - g * lr), m)
        } else {
            (w + m, m)
        }
    }
}

impl<F: Element> Optimizer<F> for Sgd<F> {
    fn name(&self) -> &'static str {
        "SGD"
    }

    fn validate(&self) -> Result<()> {
        check_range(
            "SGD learning rate",
            self.learning_rate,
            0.0,
            f64::MAX,
            "finite and >= 0",
        )?;
        check_range("SGD momentum", self.momentum, 0.0, 1.0, "in [0, 1]")?;
        check_range(
            "SGD weight decay",
            self.weight_decay,
            0.0,
            f64::MAX,
            "finite and >= 0",
        )
    }

    fn update_is_finite(&self, w: &Weight<F>) -> bool {
        let Some(grad) = &w.grad else { return true };
        let zeros = std::iter::repeat(F::zero());
        let momenta: Box<dyn Iterator<Item = F>> = match self.slots.get(&w.id()) {
            Some((m, _)) => Box::new(m.iter().copied()),
            None => Box::new(zeros),
        };
        w.value
            .iter()
            .zip(grad.iter())
            .zip(momenta)
            .all(|((&v, &g), m)| {
                let (v, m) = self.step(v, g, m);
                v.is_finite() && m.is_finite()
            })
    }

    fn apply(&mut self, w: &mut Weight<F>) {
        let Some(grad) = &w.grad else { return };
        let mut slot = self
            .slots
            .remove(&w.id())
            .unwrap_or_else(|| (ArrayD::zeros(w.value.raw_dim()), 0));
        Zip::from(&mut w.value)
            .and(grad)
            .and(&mut slot.0)
            .for_each(|v, &g, m| {
                (*v, *m) = self.step(*v, g, *m);
            });
        slot.1 += 1;
        self.slots.insert(w.id(), slot);
    }

    fn state(&self, id: WeightId) -> Option<SlotState<F>> {
        self.slots.get(&id).map(|(m, steps)| SlotState {
            slots: if self.momentum > 0.0 {
                vec![m.clone()]
            } else {
                vec![]
            },
            steps: *steps,
        })
    }
}
