//! The cases a conformance run sweeps: several rates, shapes and optimizers,
//! so that a bug which shows only at another rate (a scale rounded another
//! way), another shape (a batch of one row) or another optimizer (weight decay
//! moving frozen weights) is still found.
//!
//! `nncheck conform` and the conformance macros run every dropout subject on
//! each (rate, shape) pair and every model subject under each optimizer.

use super::cases::{DropoutCase, OptimizerKind, TrainingCase};
use crate::check::stats::DEFAULT_ALPHA;
use serde::Serialize;

/// An optimizer and its weight decay, as a sweep runs it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OptimizerCase {
    /// The optimizer.
    pub kind: OptimizerKind,
    /// Its weight decay (decoupled for AdamW).
    pub weight_decay: f64,
}

impl From<OptimizerKind> for OptimizerCase {
    /// The optimizer without weight decay.
    fn from(kind: OptimizerKind) -> Self {
        OptimizerCase {
            kind,
            weight_decay: 0.0,
        }
    }
}

impl From<(OptimizerKind, f64)> for OptimizerCase {
    fn from((kind, weight_decay): (OptimizerKind, f64)) -> Self {
        OptimizerCase { kind, weight_decay }
    }
}

/// What a conformance run sweeps.
///
/// ```
/// use nncheck::check::run::Sweep;
/// let sweep = Sweep::default();
/// assert_eq!(sweep.dropout_cases().len(), sweep.rates.len() * sweep.shapes.len());
/// assert!(sweep.shapes.iter().any(|s| s[0] == 1), "a batch of one row");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sweep {
    /// Dropout rates, each run on every shape.
    pub rates: Vec<f64>,
    /// Input shapes (batch first).
    pub shapes: Vec<Vec<usize>>,
    /// The optimizers the model subjects train with.
    pub optimizers: Vec<OptimizerCase>,
    /// The dropout rate inside the model subjects' base.
    pub model_rate: f64,
    /// Optimizer steps each model check takes.
    pub steps: usize,
    /// Seeds inputs, initialisers and masks.
    pub seed: u64,
    /// The false-alarm probability of each statistical check.
    pub alpha: f64,
}

impl Default for Sweep {
    /// Rates 0.1, 0.15, 0.3, 0.45, 0.5, 0.6 and 0.9 (where the scale recipes of
    /// different frameworks part, and 0.5 where they agree); shapes `[100,
    /// 1000]`, a batch of one row `[1, 1000]`, a rank-1 `[10000]` and a rank-4
    /// `[2, 8, 8, 16]`; SGD without and AdamW with weight decay 0.01 over 20
    /// steps; seed 7, alpha 1e-9. The rate check draws at least 10^5 units per
    /// case.
    fn default() -> Self {
        Sweep {
            rates: vec![0.1, 0.15, 0.3, 0.45, 0.5, 0.6, 0.9],
            shapes: vec![
                vec![100, 1000],
                vec![1, 1000],
                vec![10_000],
                vec![2, 8, 8, 16],
            ],
            optimizers: vec![
                OptimizerKind::Sgd.into(),
                (OptimizerKind::AdamW, 0.01).into(),
            ],
            model_rate: 0.5,
            steps: TrainingCase::STEPS,
            seed: 7,
            alpha: DEFAULT_ALPHA,
        }
    }
}

impl Sweep {
    /// The scoreboard's sweep: the default one with the first shape `[1000,
    /// 1000]`, so each rate check draws 10^6 units, seeded by `seed`.
    pub fn scoreboard(seed: u64, alpha: f64) -> Self {
        let mut sweep = Sweep {
            seed,
            alpha,
            ..Sweep::default()
        };
        sweep.shapes[0] = vec![1000, 1000];
        sweep
    }

    /// Every (rate, shape) pair, rates outermost.
    pub fn dropout_cases(&self) -> Vec<DropoutCase> {
        self.rates
            .iter()
            .flat_map(|&rate| {
                self.shapes.iter().map(move |shape| DropoutCase {
                    rate,
                    shape: shape.clone(),
                    seed: self.seed,
                })
            })
            .collect()
    }

    /// One case per rate for the noise battery, whose checks draw inputs of
    /// their own sizes: the first shape stands for all.
    pub fn noise_cases(&self) -> Vec<DropoutCase> {
        let shape = self.shapes.first().cloned().unwrap_or_else(|| vec![1]);
        self.rates
            .iter()
            .map(|&rate| DropoutCase {
                rate,
                shape: shape.clone(),
                seed: self.seed,
            })
            .collect()
    }

    /// Refuses a sweep the checks cannot judge: a rate outside (0, 1) (where
    /// the statistical checks have no power), no rate or no shape, a shape with
    /// an axis of 0, or no optimizer, no step.
    pub fn validate(&self) -> Result<(), String> {
        if self.rates.is_empty() || self.shapes.is_empty() || self.optimizers.is_empty() {
            return Err("a sweep needs at least one rate, one shape and one optimizer".into());
        }
        if let Some(r) = self.rates.iter().find(|r| !(**r > 0.0 && **r < 1.0)) {
            return Err(format!(
                "rate {r} is outside (0, 1), where the statistical checks have no power"
            ));
        }
        if let Some(s) = self.shapes.iter().find(|s| s.is_empty() || s.contains(&0)) {
            return Err(format!("shape {s:?} has no element"));
        }
        if !(self.model_rate >= 0.0 && self.model_rate < 1.0) || self.steps == 0 {
            return Err(format!(
                "model rate {} must be in [0, 1) and steps ({}) at least 1",
                self.model_rate, self.steps
            ));
        }
        Ok(())
    }

    /// One training case per optimizer.
    pub fn training_cases(&self) -> Vec<TrainingCase> {
        self.optimizers
            .iter()
            .map(|o| TrainingCase {
                optimizer: o.kind,
                weight_decay: o.weight_decay,
                epochs: 1,
                batch_size: 64,
                freeze_mid_training: false,
                rate: self.model_rate,
                seed: self.seed,
                steps: self.steps,
            })
            .collect()
    }
}
