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

/// Freezing `path` froze every layer inside it (Keras: `trainable` set recursively).
pub fn check_freeze_is_recursive<F: Element>(
    subject: &str,
    model: &Model<F>,
    path: &str,
) -> CheckReport {
    let mut still_on = Vec::new();
    model.visit_layers("", &mut |p, l| {
        if p.starts_with(path) && l.trainable() {
            still_on.push(p.to_string());
        }
    });
    CheckReport::exact(
        "freeze_is_recursive",
        subject,
        format!(
            "{} layers under {path} still trainable {:?}",
            still_on.len(),
            still_on
        ),
        "0".into(),
        still_on.is_empty(),
    )
}

/// After training, the trainable layer at `first` (before the frozen layer at
/// `frozen`) moved and the frozen one did not: the gradient passed through.
pub fn check_gradient_passes_frozen_layer<F: Element>(
    subject: &str,
    model: &mut Model<F>,
    train: &mut dyn FnMut(&mut Model<F>) -> crate::error::Result<()>,
    first: &str,
    frozen: &str,
) -> CheckReport {
    let first_before = WeightSnapshot::of(model, first);
    let frozen_before = WeightSnapshot::of(model, frozen);
    if let Err(e) = train(model) {
        return CheckReport::errored("gradient_passes_frozen_layer", subject, e);
    }
    let moved = first_before.differing_scalars(&WeightSnapshot::of(model, first));
    let frozen_moved = frozen_before.differing_scalars(&WeightSnapshot::of(model, frozen));
    CheckReport::exact(
        "gradient_passes_frozen_layer",
        subject,
        format!("{first}: {moved} scalars moved; frozen {frozen}: {frozen_moved}"),
        "> 0; 0".into(),
        moved > 0 && frozen_moved == 0,
    )
}
