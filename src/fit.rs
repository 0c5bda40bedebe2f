//! Training: `compile`, `train_on_batch`, `fit`, `evaluate`.
//!
//! Serves SPEC §3 and §7. A step runs forward in `Train`, computes the loss,
//! back-propagates, and then applies nothing unless the loss, every gradient of an
//! effectively trainable weight, every proposed update and every proposed
//! BatchNorm statistic are finite; only then are the optimizer and the state
//! committed. Trainability is read from the flags at every step: no recompile.

use crate::error::{Error, Result};
use crate::layer::{Layer, WeightKind};
use crate::loss::Loss;
use crate::model::{Compiled, Model};
use crate::optim::{Optimizer, SlotState};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::chacha;
use crate::tensor::{all_finite, Element};
use ndarray::{ArrayD, Axis};
use rand::seq::SliceRandom;

/// How `fit` runs.
///
/// `FitConfig::default()` is one epoch of batches of 32, shuffled each epoch
/// with a seed drawn from OS entropy (`seed: None`), so two default fits shuffle
/// differently. For a reproducible fit set `seed`: the epoch-`e` shuffle then
/// depends only on (seed, e). Dropout masks do not depend on it; they follow the
/// layers' own seeds (a model seed pins them).
///
/// ```
/// let cfg = nncheck::FitConfig { epochs: 3, seed: Some(7), ..Default::default() };
/// assert_eq!((cfg.batch_size, cfg.shuffle), (32, true));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FitConfig {
    /// Passes over the data (at least 1).
    pub epochs: usize,
    /// Samples per step (at least 1; the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Shuffle the samples each epoch.
    pub shuffle: bool,
    /// The shuffle seed (OS entropy when `None`).
    pub seed: Option<u64>,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: None,
        }
    }
}

/// What `fit` returns: the mean training loss of each epoch.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct History {
    /// Per epoch: the batch losses averaged with the batch sizes as weights (Keras).
    pub loss: Vec<f64>,
}

/// Where a step sits, for error messages.
#[derive(Debug, Clone, Copy)]
struct StepAt {
    epoch: usize,
    step: usize,
}

impl<F: Element> Model<F> {
    /// Sets the optimizer and the loss (Keras `compile`). Freezing later needs no
    /// second call: flags are read at every step.
    pub fn compile(&mut self, optimizer: impl Optimizer<F> + 'static, loss: Loss) -> Result<()> {
        optimizer.validate()?;
        self.compiled = Some(Compiled {
            optimizer: Box::new(optimizer),
            loss,
        });
        Ok(())
    }

    /// The optimizer state of every weight, by path (`None` when never updated).
    pub fn optimizer_state(&self) -> Vec<(String, Option<SlotState<F>>)> {
        let mut out = Vec::new();
        let Some(compiled) = &self.compiled else {
            return out;
        };
        self.visit_weights("", true, &mut |path, w, _| {
            if w.kind == WeightKind::Param {
                out.push((
                    format!("{path}/{}", w.name),
                    compiled.optimizer.state(w.id()),
                ));
            }
        });
        out
    }

    fn loss_fn(&self) -> Result<Loss> {
        self.compiled
            .as_ref()
            .map(|c| c.loss)
            .ok_or_else(|| Error::NotCompiled {
                model: self.name().to_string(),
            })
    }

    /// Runs one training step on a batch and returns its loss.
    pub fn train_on_batch(&mut self, x: &ArrayD<F>, y: &ArrayD<F>) -> Result<f64> {
        self.check_xy(x, y)?;
        self.step(x.clone(), y, StepAt { epoch: 0, step: 0 })
    }

    /// The loss on `(x, y)` in `Eval` (dropout off, BatchNorm on moving statistics).
    pub fn evaluate(&mut self, x: &ArrayD<F>, y: &ArrayD<F>) -> Result<f64> {
        let loss = self.loss_fn()?;
        self.check_xy(x, y)?;
        let pred =
            self.leaving_no_trace_on_error(|m| m.forward(x.clone(), ForwardCtx::top(Phase::Eval)))?;
        Ok(loss.value_and_grad(&pred, y)?.0)
    }

    /// Trains for `config.epochs` passes over `(x, y)`.
    ///
    /// On a non-finite loss, gradient, update or state the failing step is not
    /// applied and the error names its epoch and step; the model keeps the weights
    /// and optimizer state of the last good step.
    pub fn fit(&mut self, x: &ArrayD<F>, y: &ArrayD<F>, config: &FitConfig) -> Result<History> {
        self.loss_fn()?;
        self.check_xy(x, y)?;
        if config.epochs == 0 {
            return Err(Error::Zero { name: "epochs" });
        }
        if config.batch_size == 0 {
            return Err(Error::Zero { name: "batch_size" });
        }
        let samples = x.shape()[0];
        let mut order: Vec<usize> = (0..samples).collect();
        let mut rng = chacha(config.seed.unwrap_or_else(crate::rng::os_seed));
        let mut history = History::default();
        for epoch in 0..config.epochs {
            if config.shuffle {
                order.shuffle(&mut rng);
            }
            let mut total = 0.0;
            for (step, batch) in order.chunks(config.batch_size).enumerate() {
                let xb = x.select(Axis(0), batch);
                let yb = y.select(Axis(0), batch);
                total += self.step(xb, &yb, StepAt { epoch, step })? * batch.len() as f64;
            }
            history.loss.push(total / samples as f64);
        }
        Ok(history)
    }

    fn check_xy(&self, x: &ArrayD<F>, y: &ArrayD<F>) -> Result<()> {
        if x.ndim() >= 1 && y.ndim() >= 1 && x.shape()[0] != y.shape()[0] {
            return Err(Error::BatchSizeMismatch {
                x_samples: x.shape()[0],
                y_samples: y.shape()[0],
            });
        }
        self.check_input(x)?;
        self.check_target(y)
    }

    fn step(&mut self, x: ArrayD<F>, y: &ArrayD<F>, at: StepAt) -> Result<f64> {
        self.leaving_no_trace_on_error(|m| m.unchecked_step(x, y, at))
    }

    fn unchecked_step(&mut self, x: ArrayD<F>, y: &ArrayD<F>, at: StepAt) -> Result<f64> {
        let loss_fn = self.loss_fn()?;
        let pred = self.forward(x, ForwardCtx::top(Phase::Train))?;
        let (loss, dloss) = loss_fn.value_and_grad(&pred, y)?;
        if !loss.is_finite() {
            return Err(Error::NonFiniteLoss {
                epoch: at.epoch,
                step: at.step,
                loss,
            });
        }
        self.backward(dloss, false)?;
        let compiled = self.compiled.take().expect("checked by loss_fn");
        let verdict = self.commit_step(compiled, at);
        verdict.map(|()| loss)
    }

    /// Checks the whole step, then applies it; puts the optimizer back either way.
    fn commit_step(&mut self, mut compiled: Compiled<F>, at: StepAt) -> Result<()> {
        let mut problem: Option<(&'static str, String)> = None;
        self.visit_weights("", true, &mut |path, w, eff| {
            if problem.is_some() || !eff || w.kind != WeightKind::Param {
                return;
            }
            if !w.grad.as_ref().is_none_or(all_finite) {
                problem = Some(("gradient", format!("{path}/{}", w.name)));
            } else if !compiled.optimizer.update_is_finite(w) {
                problem = Some(("update", format!("{path}/{}", w.name)));
            }
        });
        if problem.is_none() && !self.pending_state_finite() {
            problem = Some(("state", "BatchNormalization moving statistics".into()));
        }
        let result = match problem {
            Some((what, weight)) => Err(Error::NonFiniteStep {
                epoch: at.epoch,
                step: at.step,
                what,
                weight,
            }),
            None => {
                self.visit_weights_mut("", true, &mut |_, w, eff| {
                    if eff && w.kind == WeightKind::Param {
                        compiled.optimizer.apply(w);
                    }
                });
                self.commit_state();
                Ok(())
            }
        };
        self.compiled = Some(compiled);
        result
    }
}
