//! The generated configurations every battery runs on, drawn from a seeded rng.
//!
//! `nncheck verify` and the property tests draw their cases here, so a case
//! that one of them can produce the other can produce too, over the same
//! documented ranges. Each `generate` draws its fields in a fixed order: that
//! order is part of what a `verify` seed means, so changing it changes every
//! seeded run.

use crate::error::Result;
use crate::loss::Loss;
use crate::model::Model;
use crate::optim::{Adam, Sgd};
use rand::{Rng, RngExt};
use std::ops::{Range, RangeInclusive};

/// One generated dropout configuration (SPEC §2).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DropoutCase {
    /// Rate in (0, 1).
    pub rate: f64,
    /// Input shape (batch first).
    pub shape: Vec<usize>,
    /// Layer seed.
    pub seed: u64,
}

impl DropoutCase {
    /// Ranks of the input.
    pub const RANKS: RangeInclusive<usize> = 1..=3;
    /// `log10` of the unit count: log-uniform from 1 to 10^5 units, so both tiny
    /// layers (exact checks only) and large ones (statistical power) occur.
    pub const LOG10_UNITS: Range<f64> = 0.0..5.0;
    /// The length of axis 1 when the rank is at least 2 (the axis the noise-shape
    /// check shares); the units are then divided over axis 0.
    pub const AXIS_1: RangeInclusive<usize> = 1..=8;
    /// Rates: away from 0 and 1, where the statistical checks have no power.
    pub const RATES: Range<f64> = 0.01..0.99;

    /// Draws one case: rank, unit count, axis 1 (rank >= 2 only), rate, seed.
    ///
    /// ```
    /// use nncheck::check::cases::DropoutCase;
    /// let case = DropoutCase::generate(&mut nncheck::rng::chacha(1));
    /// assert!(DropoutCase::RATES.contains(&case.rate));
    /// assert_eq!(case, DropoutCase::generate(&mut nncheck::rng::chacha(1)));
    /// ```
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let rank = rng.random_range(Self::RANKS);
        let total = 10f64.powf(rng.random_range(Self::LOG10_UNITS)) as usize;
        let mut shape = vec![1usize; rank];
        shape[0] = total.max(1);
        if rank >= 2 {
            shape[1] = rng.random_range(Self::AXIS_1);
            shape[0] = (total / shape[1]).max(1);
        }
        let rate = rng.random_range(Self::RATES);
        DropoutCase {
            rate,
            shape,
            seed: rng.random(),
        }
    }
}

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

/// One generated training configuration (SPEC §3–§5).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainingCase {
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Decoupled weight decay (0 for none).
    pub weight_decay: f64,
    /// Epochs after freezing.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Train everything first, so optimizer state exists when the base is frozen.
    pub freeze_mid_training: bool,
    /// Dropout rate inside the frozen base.
    pub rate: f64,
    /// Seeds data, model and shuffles.
    pub seed: u64,
    /// Optimizer steps each model-subject check takes: enough that a leak on
    /// every k-th step (a decay applied every tenth step, say) shows.
    pub steps: usize,
}

impl TrainingCase {
    /// Weight decays, drawn for half of the cases (the other half has none).
    pub const WEIGHT_DECAYS: Range<f64> = 0.0..0.1;
    /// Epochs after freezing.
    pub const EPOCHS: RangeInclusive<usize> = 1..=3;
    /// Batch sizes; the battery's data has 64 samples, so 64 is one full batch.
    pub const BATCH_SIZES: RangeInclusive<usize> = 1..=64;
    /// Dropout rates inside the frozen base.
    pub const RATES: Range<f64> = 0.05..0.95;
    /// Optimizer steps each model-subject check takes (not drawn).
    pub const STEPS: usize = 20;

    /// Draws one case: optimizer, whether to decay, the decay, epochs, batch size,
    /// whether to freeze mid-training, rate, seed.
    ///
    /// ```
    /// use nncheck::check::cases::TrainingCase;
    /// let case = TrainingCase::generate(&mut nncheck::rng::chacha(1));
    /// assert!(TrainingCase::BATCH_SIZES.contains(&case.batch_size));
    /// ```
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let optimizer = OptimizerKind::ALL[rng.random_range(0..OptimizerKind::ALL.len())];
        let weight_decay = if rng.random_bool(0.5) {
            rng.random_range(Self::WEIGHT_DECAYS)
        } else {
            0.0
        };
        TrainingCase {
            optimizer,
            weight_decay,
            epochs: rng.random_range(Self::EPOCHS),
            batch_size: rng.random_range(Self::BATCH_SIZES),
            freeze_mid_training: rng.random_bool(0.5),
            rate: rng.random_range(Self::RATES),
            seed: rng.random(),
            steps: Self::STEPS,
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

    /// At rank 2 and 3 the drawn unit count is divided over axis 0, so those
    /// ranks reach the large layers the statistical checks need as often as
    /// rank 1 does, and no case exceeds the documented 10^5 units.
    #[test]
    fn every_rank_reaches_large_unit_counts() {
        let mut rng = crate::rng::chacha(7);
        let mut largest = [0usize; 4];
        for _ in 0..600 {
            let case = DropoutCase::generate(&mut rng);
            let units: usize = case.shape.iter().product();
            assert!(units <= 100_000, "{case:?}");
            let rank = case.shape.len();
            largest[rank] = largest[rank].max(units);
        }
        for rank in DropoutCase::RANKS {
            assert!(
                largest[rank] >= 10_000,
                "rank {rank}: at most {}",
                largest[rank]
            );
        }
    }
}
