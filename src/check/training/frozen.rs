//! Checks of SPEC §3: frozen weights (BatchNorm statistics included) and their
//! optimizer slots are bit-identical after training, trainable ones moved, a
//! freeze reaches every layer inside, and a frozen layer still passes gradients.

use super::snapshot::ModelSnapshot;
use crate::check::report::CheckReport;
use crate::layer::Layer;
use crate::model::Model;
use crate::tensor::Element;

/// Frozen weights after training are bit-identical to before (SPEC §3); a
/// failing report names the weights that moved.
pub fn check_frozen_weights_unchanged<F: Element>(
    subject: &str,
    before: &ModelSnapshot<F>,
    after: &ModelSnapshot<F>,
) -> CheckReport {
    let diff = before.diff(after);
    let differing = diff.moved_scalars();
    let mut observed = format!(
        "{differing} of {} scalars changed ({} arrays)",
        before.scalars(),
        before.weights.len()
    );
    if differing > 0 {
        observed.push_str(&format!(": {}", moved_weights(&diff.weights)));
    }
    CheckReport::exact(
        "frozen_weights_unchanged_in_fit",
        subject,
        observed,
        "0 changed, bit for bit".into(),
        differing == 0 && before.scalars() > 0,
    )
}

/// `path (n), ...`: each moved weight with how many of its scalars moved, for
/// the failing reports of this module and of [`super::frozen_subject`].
pub(crate) fn moved_weights(moved: &[(String, usize)]) -> String {
    moved
        .iter()
        .map(|(path, n)| format!("{path} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The optimizer records (slots and step counts) of frozen weights after
/// training are bit-identical to before (SPEC §3: momentum and Adam moments do
/// not move either); a failing report names the weights whose records changed.
pub fn check_frozen_optimizer_slots_unchanged<F: Element>(
    subject: &str,
    before: &ModelSnapshot<F>,
    after: &ModelSnapshot<F>,
) -> CheckReport {
    let changed = before.diff(after).slots;
    let mut observed = format!(
        "{} of {} slot records changed",
        changed.len(),
        before.optimizer.len()
    );
    if !changed.is_empty() {
        observed.push_str(&format!(": {}", changed.join(", ")));
    }
    CheckReport::exact(
        "frozen_optimizer_slots_unchanged_in_fit",
        subject,
        observed,
        "0 changed".into(),
        changed.is_empty(),
    )
}

/// Trainable weights moved during training (SPEC §3: freezing one part does not
/// freeze the rest).
pub fn check_trainable_weights_changed<F: Element>(
    subject: &str,
    before: &ModelSnapshot<F>,
    after: &ModelSnapshot<F>,
) -> CheckReport {
    let differing = before.diff(after).moved_scalars();
    CheckReport::exact(
        "trainable_weights_changed_in_fit",
        subject,
        format!("{differing} of {} scalars changed", before.scalars()),
        "> 0 changed".into(),
        differing > 0,
    )
}

/// Freezing `path` froze every layer inside it (SPEC §3; Keras: `trainable` set
/// recursively).
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
        "freeze_sets_every_flag",
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
/// `frozen`) moved and the frozen one did not: the gradient passed through
/// (SPEC §3).
pub fn check_gradient_passes_frozen_layer<F: Element>(
    subject: &str,
    model: &mut Model<F>,
    train: &mut dyn FnMut(&mut Model<F>) -> crate::error::Result<()>,
    first: &str,
    frozen: &str,
) -> CheckReport {
    let before = ModelSnapshot::of(model);
    if let Err(e) = train(model) {
        return CheckReport::errored("gradient_passes_frozen_layer_in_fit", subject, e);
    }
    let after = ModelSnapshot::of(model);
    let moved = |path: &str| {
        before
            .clone()
            .subtree(path)
            .diff(&after.clone().subtree(path))
            .moved_scalars()
    };
    let (first_moved, frozen_moved) = (moved(first), moved(frozen));
    CheckReport::exact(
        "gradient_passes_frozen_layer_in_fit",
        subject,
        format!("{first}: {first_moved} scalars moved; frozen {frozen}: {frozen_moved}"),
        "> 0; 0".into(),
        first_moved > 0 && frozen_moved == 0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_weight(value: f32) -> ModelSnapshot<f32> {
        ModelSnapshot {
            weights: vec![
                (
                    "m/a/kernel".into(),
                    ndarray::ArrayD::from_elem(vec![3], 1.0),
                ),
                (
                    "m/b/kernel".into(),
                    ndarray::ArrayD::from_elem(vec![2], value),
                ),
            ],
            optimizer: Vec::new(),
            counters: Vec::new(),
        }
    }

    #[test]
    fn a_failing_report_names_each_moved_weight_and_its_count() {
        let r = check_frozen_weights_unchanged("m", &one_weight(0.5), &one_weight(0.25));
        assert!(!r.pass);
        assert_eq!(
            r.observed,
            "2 of 5 scalars changed (2 arrays): m/b/kernel (2)"
        );
        let r = check_frozen_weights_unchanged("m", &one_weight(0.5), &one_weight(0.5));
        assert!(
            r.pass && r.observed == "0 of 5 scalars changed (2 arrays)",
            "{}",
            r.line()
        );
    }

    /// A model with no weights proves nothing frozen; one whose weights did not
    /// move shows that training changed nothing.
    #[test]
    fn nothing_to_compare_or_nothing_moved_fails() {
        let empty = ModelSnapshot::<f32> {
            weights: Vec::new(),
            optimizer: Vec::new(),
            counters: Vec::new(),
        };
        assert!(!check_frozen_weights_unchanged("m", &empty, &empty).pass);
        let r = check_trainable_weights_changed("m", &one_weight(0.5), &one_weight(0.5));
        assert!(
            !r.pass && r.observed == "0 of 5 scalars changed",
            "{}",
            r.line()
        );
        let r = check_trainable_weights_changed("m", &one_weight(0.5), &one_weight(0.25));
        assert!(
            r.pass && r.observed == "2 of 5 scalars changed",
            "{}",
            r.line()
        );
    }

    /// A failing slot report names each weight whose record changed (here one
    /// that vanished); a passing one names none.
    #[test]
    fn a_failing_slot_report_names_each_changed_record() {
        let with_record = |records: usize| ModelSnapshot::<f32> {
            weights: Vec::new(),
            optimizer: vec![("m/a/kernel".into(), None); records],
            counters: Vec::new(),
        };
        let r = check_frozen_optimizer_slots_unchanged("m", &with_record(1), &with_record(0));
        assert!(!r.pass);
        assert_eq!(r.observed, "1 of 1 slot records changed: m/a/kernel");
        let r = check_frozen_optimizer_slots_unchanged("m", &with_record(1), &with_record(1));
        assert!(
            r.pass && r.observed == "0 of 1 slot records changed",
            "{}",
            r.line()
        );
    }
}
