//! The generated configurations every battery runs on, drawn from a seeded rng.
//!
//! One definition of a case: `nncheck verify` draws its cases with `generate`
//! from its seed, and the property tests with the proptest strategies of
//! [`super::strategy`], which draw with the same `generate` and shrink each case
//! part by part ([`Simplify`]): toward small shapes, round rates and short runs.
//! Each `generate` draws its fields in a fixed order: that order is part of what
//! a `verify` seed means, so changing it changes every seeded run.

pub use crate::check::optimizer::OptimizerKind;
use rand::{Rng, RngExt};
use std::ops::{Range, RangeInclusive};

/// The simpler cases a failing case may shrink to, simplest first: how a
/// property test gets from the large random case that found a bug to a small
/// one that shows it. Every candidate lies in the documented ranges.
pub trait Simplify: Sized {
    /// The candidates, the most aggressive first; empty when nothing is simpler.
    fn simplifications(&self) -> Vec<Self>;
}

/// Rounder rates than `rate` within `range`: 0.5, then `rate` to one and two
/// decimals, where those differ from it.
fn rounder_rates(rate: f64, range: &Range<f64>) -> Vec<f64> {
    let mut out = Vec::new();
    for candidate in [
        0.5,
        (rate * 10.0).round() / 10.0,
        (rate * 100.0).round() / 100.0,
    ] {
        if candidate != rate && range.contains(&candidate) && !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

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
    /// How a record names this case for `subject`:
    /// `nncheck Dropout(0.3) [64, 4] seed 5`.
    pub fn label(&self, subject: &str) -> String {
        format!(
            "{subject} Dropout({}) {:?} seed {}",
            self.rate, self.shape, self.seed
        )
    }

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
    /// use nncheck::check::run::cases::DropoutCase;
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

impl Simplify for DropoutCase {
    /// Fewer axes, then each axis to 1, halved, one less; then a rounder rate.
    /// The seed stays: a bug that shows on any case shows on this one's draws.
    fn simplifications(&self) -> Vec<Self> {
        let mut out = Vec::new();
        let with_shape = |shape: Vec<usize>| DropoutCase {
            shape,
            ..self.clone()
        };
        if self.shape.len() > 1 {
            out.push(with_shape(self.shape[..self.shape.len() - 1].to_vec()));
        }
        for (axis, &d) in self.shape.iter().enumerate() {
            for smaller in [1, d / 2, d - 1] {
                if smaller >= 1 && smaller < d {
                    let mut shape = self.shape.clone();
                    shape[axis] = smaller;
                    let candidate = with_shape(shape);
                    if !out.contains(&candidate) {
                        out.push(candidate);
                    }
                }
            }
        }
        for rate in rounder_rates(self.rate, &Self::RATES) {
            out.push(DropoutCase {
                rate,
                ..self.clone()
            });
        }
        out
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
    /// use nncheck::check::run::cases::TrainingCase;
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

impl Simplify for TrainingCase {
    /// Plain SGD, no decay, one epoch, one batch of all 64 samples (the
    /// shortest run), no epoch before the freeze, a rounder rate.
    fn simplifications(&self) -> Vec<Self> {
        let base = self.clone();
        let mut out = Vec::new();
        let mut push = |candidate: TrainingCase| {
            if candidate != *self && !out.contains(&candidate) {
                out.push(candidate);
            }
        };
        push(TrainingCase {
            optimizer: OptimizerKind::Sgd,
            ..base.clone()
        });
        push(TrainingCase {
            weight_decay: 0.0,
            ..base.clone()
        });
        push(TrainingCase {
            epochs: *Self::EPOCHS.start(),
            ..base.clone()
        });
        push(TrainingCase {
            batch_size: *Self::BATCH_SIZES.end(),
            ..base.clone()
        });
        push(TrainingCase {
            freeze_mid_training: false,
            ..base.clone()
        });
        for rate in rounder_rates(self.rate, &Self::RATES) {
            push(TrainingCase {
                rate,
                ..base.clone()
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every simplification stays in the documented ranges and is simpler:
    /// no more units, no more axes.
    #[test]
    fn simplifications_stay_in_range_and_get_smaller() {
        let mut rng = crate::rng::chacha(3);
        for _ in 0..200 {
            let case = DropoutCase::generate(&mut rng);
            let units: usize = case.shape.iter().product();
            for s in case.simplifications() {
                assert!(DropoutCase::RATES.contains(&s.rate), "{s:?}");
                assert!(s.shape.len() <= case.shape.len() && s.shape.iter().all(|&d| d >= 1));
                assert!(s.shape.iter().product::<usize>() <= units);
                assert_ne!(s, case);
            }
            let training = TrainingCase::generate(&mut rng);
            for s in training.simplifications() {
                assert!(
                    TrainingCase::RATES.contains(&s.rate) && s.epochs >= 1,
                    "{s:?}"
                );
                assert_ne!(s, training);
            }
        }
        let round = DropoutCase {
            rate: 0.5,
            shape: vec![1],
            seed: 1,
        };
        assert!(round.simplifications().is_empty());
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
