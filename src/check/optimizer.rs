//! The optimizers the suite trains with, by name: what a model subject is asked
//! to build, what it may lack (a [`Capability`](super::capability::Capability)),
//! and how nncheck's own core compiles each.

use crate::error::Result;
use crate::loss::Loss;
use crate::model::Model;
use crate::optim::{Adam, Sgd};

/// The optimizers the training battery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum OptimizerKind {
    /// Plain SGD.
    Sgd,
    /// SGD with momentum 0.9.
    Momentum,
    /// SGD with Nesterov momentum 0.9.
    Nesterov,
    /// Adam.
    Adam,
    /// AdamW.
    AdamW,
}

impl OptimizerKind {
    /// Every kind.
    pub const ALL: [OptimizerKind; 5] = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Nesterov,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ];

    /// The learning rate the battery uses with this optimizer.
    pub fn learning_rate(self) -> f64 {
        1e-3
    }

    /// The name a report prints, e.g. `AdamW`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::Momentum => "SGD momentum",
            OptimizerKind::Nesterov => "SGD Nesterov",
            OptimizerKind::Adam => "Adam",
            OptimizerKind::AdamW => "AdamW",
        }
    }

    /// Compiles `model` with this optimizer (and `weight_decay` where it applies) and MSE.
    ///
    /// The learning rates are small on purpose: the battery checks invariants, not
    /// convergence, and a dropout at rate 0.95 scales its survivors by 20, which made
    /// momentum SGD at 0.01 with batch size 1 diverge to a NaN loss (a legitimate
    /// `NonFiniteLoss` error, found by the property test and kept as its own test).
    pub fn compile(self, model: &mut Model<f32>, weight_decay: f64) -> Result<()> {
        const SGD_LEARNING_RATE: f64 = 1e-3;
        debug_assert_eq!(self.learning_rate(), SGD_LEARNING_RATE);
        let loss = Loss::MeanSquaredError;
        match self {
            OptimizerKind::Sgd => {
                model.compile(Sgd::new(SGD_LEARNING_RATE).weight_decay(weight_decay), loss)
            }
            OptimizerKind::Momentum => model.compile(
                Sgd::new(SGD_LEARNING_RATE)
                    .momentum(0.9)
                    .weight_decay(weight_decay),
                loss,
            ),
            OptimizerKind::Nesterov => model.compile(
                Sgd::new(SGD_LEARNING_RATE)
                    .momentum(0.9)
                    .nesterov(true)
                    .weight_decay(weight_decay),
                loss,
            ),
            OptimizerKind::Adam => model.compile(Adam::new(1e-3).weight_decay(weight_decay), loss),
            OptimizerKind::AdamW => model.compile(Adam::adamw(1e-3), loss),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports and the scoreboard name the optimizer: each name is the one a
    /// Keras or PyTorch user would look for, and no two are alike.
    #[test]
    fn each_optimizer_has_its_own_readable_name() {
        let names: Vec<&str> = OptimizerKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            ["SGD", "SGD momentum", "SGD Nesterov", "Adam", "AdamW"]
        );
    }
}
