//! Training the reference: mean squared error, one all-or-nothing step, `fit`.
//!
//! Serves SPEC §3 and §7: a step updates only effectively trainable parameters
//! and commits nothing unless the loss, every gradient of a parameter it would
//! update, every proposed update and every proposed BatchNorm statistic are
//! finite; `fit` stops at the first bad step, keeping the steps before it.

use super::matrix::Matrix;
use super::network::{Phase, WeightKind};
use super::optimizer::{update, Slot};
use super::ReferenceModel;
use std::collections::BTreeMap;

/// Why a step was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Loss,
    Gradient,
    Update,
    State,
}

/// A `fit` stopped at `(epoch, step)`, both 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FitFailure {
    pub epoch: usize,
    pub step: usize,
    pub why: Rejected,
}

/// Mean squared error over every element, and its gradient.
pub fn mean_squared_error(prediction: &Matrix, target: &Matrix) -> (f64, Matrix) {
    let n = prediction.data.len() as f64;
    let mut total = 0.0;
    let grad = Matrix::from_fn(prediction.rows, prediction.cols, |r, c| {
        let d = prediction.at(r, c) - target.at(r, c);
        total += d * d;
        2.0 * d / n
    });
    (total / n, grad)
}

impl ReferenceModel {
    /// One training step on `(x, y)`; its loss, or why it was not applied.
    pub fn train_step(&mut self, x: &Matrix, y: &Matrix) -> Result<f64, Rejected> {
        // A step through active dropout, or from weights the reference has lost
        // track of, cannot be replayed: what it changes becomes unknown.
        let replayable = !self.network.has_active_dropout() && self.all_known();
        let (prediction, tape) = self.network.forward(x.clone(), Phase::Train, true);
        let (loss, d_prediction) = mean_squared_error(&prediction, y);
        if !loss.is_finite() {
            self.network.settle_pending(false, replayable);
            return Err(Rejected::Loss);
        }
        let mut grads = BTreeMap::new();
        self.network.backward("", &tape, d_prediction, &mut grads);
        let hyper = self.optimizer.hyper();
        let mut proposed: BTreeMap<String, (Vec<f64>, Slot)> = BTreeMap::new();
        let mut verdict = Ok(());
        for (path, weight, effective) in self.weights() {
            if !effective || weight.kind != WeightKind::Param || verdict.is_err() {
                continue;
            }
            let grad = &grads[&path];
            if !grad.iter().all(|g| g.is_finite()) {
                verdict = Err(Rejected::Gradient);
                continue;
            }
            let (value, slot) = update(&hyper, &weight.value, grad, self.slots.get(&path));
            let finite = value
                .iter()
                .chain(slot.slots.iter().flatten())
                .all(|v| v.is_finite());
            if !finite {
                verdict = Err(Rejected::Update);
            }
            proposed.insert(path, (value, slot));
        }
        if verdict.is_ok() && !self.network.pending_finite() {
            verdict = Err(Rejected::State);
        }
        if let Err(why) = verdict {
            self.network.settle_pending(false, replayable);
            return Err(why);
        }
        self.network
            .for_each_weight_mut("", true, &mut |path, weight, _| {
                if let Some((value, _)) = proposed.get(path) {
                    weight.value = value.clone();
                    weight.known &= replayable;
                    weight.pristine = false;
                }
            });
        for (path, (_, mut slot)) in proposed {
            slot.known &= replayable;
            self.slots.insert(path, slot);
        }
        self.network.settle_pending(true, replayable);
        Ok(loss)
    }

    /// `epochs` passes in batches of `batch_size`, in data order (a shuffled
    /// fit is replayed only with one batch per epoch, whose order only changes
    /// summation order). Returns each epoch's batch-size-weighted mean loss.
    pub fn fit(
        &mut self,
        x: &Matrix,
        y: &Matrix,
        epochs: usize,
        batch_size: usize,
    ) -> Result<Vec<f64>, FitFailure> {
        let order: Vec<usize> = (0..x.rows).collect();
        let mut history = Vec::new();
        for epoch in 0..epochs {
            let mut total = 0.0;
            for (step, batch) in order.chunks(batch_size).enumerate() {
                let loss = self
                    .train_step(&x.select_rows(batch), &y.select_rows(batch))
                    .map_err(|why| FitFailure { epoch, step, why })?;
                total += loss * batch.len() as f64;
            }
            history.push(total / x.rows as f64);
        }
        Ok(history)
    }

    /// The prediction in `Eval`: dropout off, BatchNorm on moving statistics.
    pub fn predict(&mut self, x: &Matrix) -> Matrix {
        self.network.forward(x.clone(), Phase::Eval, true).0
    }

    /// The loss of the prediction.
    pub fn evaluate(&mut self, x: &Matrix, y: &Matrix) -> f64 {
        mean_squared_error(&self.predict(x), y).0
    }
}
