//! Checks of SPEC §3: frozen weights (and BatchNorm statistics) are bit-identical
//! after training, trainable ones moved.

use super::report::CheckReport;
use crate::layer::{join_path, Layer};
use crate::model::Model;
use crate::tensor::Element;
use ndarray::ArrayD;

/// Every weight of a model (parameters and state) with its path, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightSnapshot<F: Element> {
    /// `(path/name, value)` in model order.
    pub weights: Vec<(String, ArrayD<F>)>,
}

impl<F: Element> WeightSnapshot<F> {
    /// Takes a snapshot of every weight whose path starts with `prefix`.
    pub fn of(model: &Model<F>, prefix: &str) -> Self {
        let mut weights = Vec::new();
        model.visit_weights("", true, &mut |path, w, _| {
            if path.starts_with(prefix) {
                weights.push((join_path(path, w.name), w.value.clone()));
            }
        });
        WeightSnapshot { weights }
    }

    /// Scalars in the snapshot.
    pub fn scalars(&self) -> usize {
        self.weights.iter().map(|(_, w)| w.len()).sum()
    }

    /// How many scalars differ in bits from `later` (a missing or reshaped
    /// weight counts all its scalars).
    pub fn differing_scalars(&self, later: &Self) -> usize {
        self.weights
            .iter()
            .map(
                |(path, a)| match later.weights.iter().find(|(p, _)| p == path) {
                    Some((_, b)) if a.shape() == b.shape() => a
                        .iter()
                        .zip(b.iter())
                        .filter(|(x, y)| x.to_bits_u64() != y.to_bits_u64())
                        .count(),
                    _ => a.len(),
                },
            )
            .sum()
    }
}

/// Frozen weights after training are bit-identical to before.
pub fn check_frozen_weights_unchanged<F: Element>(
    subject: &str,
    before: &WeightSnapshot<F>,
    after: &WeightSnapshot<F>,
) -> CheckReport {
    let differing = before.differing_scalars(after);
    CheckReport::exact(
        "frozen_weights_unchanged",
        subject,
        format!(
            "{differing} of {} scalars changed ({} arrays)",
            before.scalars(),
            before.weights.len()
        ),
        "0 changed, bit for bit".into(),
        differing == 0 && before.scalars() > 0,
    )
}

/// Trainable weights moved during training.
pub fn check_trainable_weights_changed<F: Element>(
    subject: &str,
    before: &WeightSnapshot<F>,
    after: &WeightSnapshot<F>,
) -> CheckReport {
    let differing = before.differing_scalars(after);
    CheckReport::exact(
        "trainable_weights_changed",
        subject,
        format!("{differing} of {} scalars changed", before.scalars()),
        "> 0 changed".into(),
        differing > 0,
    )
}
