//! Freezing, on any model subject (SPEC §3): a frozen base's weights,
//! BatchNorm statistics and optimizer state stay bit-identical through
//! optimizer steps while the head moves; a freeze reaches the whole tree; a
//! gradient passes a frozen head; an unfreeze takes effect at the next step
//! without a rebuild; and nothing but a step moves a weight.
//!
//! Each check builds its own model from the spec, so one failure cannot hide or
//! cause another.

use super::frozen::moved_weights;
use super::harness::{model_data, moved, scalars, steps};
use crate::check::capability::Capability;
use crate::check::error::Result;
use crate::check::registry::{Judged, ModelCheck, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::subjects::{ModelSpec, ModelSubject, Part, TrainableModel};
use crate::phase::Phase;
use ndarray::ArrayD;

/// Frozen base weights and statistics bit-identical after the steps.
pub const FROZEN_WEIGHTS: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "frozen_weights_unchanged",
        "a frozen base's weights and BatchNorm statistics are bit-identical after optimizer steps (the optimizer holding state for them)",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |s, spec, _| vec![check_frozen_weights_unchanged(s, spec)],
};

/// The head moves while the base is frozen.
pub const TRAINABLE_MOVED: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "trainable_weights_changed",
        "the trainable head moves while the base is frozen",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |s, spec, _| vec![check_trainable_weights_changed(s, spec)],
};

/// The frozen base's optimizer state unchanged.
pub const FROZEN_SLOTS: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "frozen_optimizer_slots_unchanged",
        "a frozen base's optimizer slots and step counts are bit-identical after the steps",
    )],
    needs: &[Capability::OptimizerState],
    judged: Judged::Exact,
    run: |s, spec, _| vec![check_frozen_optimizer_slots_unchanged(s, spec)],
};

/// A freeze of the whole model reaches every layer.
pub const FREEZE_RECURSIVE: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "freeze_is_recursive",
        "freezing the whole model moves nothing through optimizer steps, BatchNorm statistics included",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |s, spec, _| vec![check_freeze_is_recursive(s, spec)],
};

/// A gradient passes a frozen head.
pub const GRADIENT_PASSES: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "gradient_passes_frozen_layer",
        "with the head frozen the base still learns",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |s, spec, _| vec![check_gradient_passes_frozen_layer(s, spec)],
};

/// An unfreeze takes effect at the next step.
pub const UNFREEZE: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "unfreeze_takes_effect_without_recompile",
        "after an unfreeze the next steps move the base, with no rebuild by the harness",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |s, spec, _| vec![check_unfreeze_takes_effect(s, spec)],
};

/// Nothing but a step moves a weight.
pub const ONLY_STEPS: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "only_steps_change_weights",
        "a freeze, an unfreeze, an inference forward and a switch of phase move no weight",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |s, spec, _: &Settings| vec![check_only_steps_change_weights(s, spec)],
};

/// What the frozen-base scenario leaves: the weights and optimizer state before
/// and after the spec's steps with the base frozen, after a first step with
/// everything trainable (so the optimizer holds state for the base when it is
/// frozen: momentum and Adam moments move frozen weights in the classic bug).
struct FrozenBase {
    label: String,
    before: Vec<(String, ArrayD<f32>)>,
    after: Vec<(String, ArrayD<f32>)>,
    state: Result<(OptimizerState, OptimizerState)>,
}

/// A subject's optimizer state: each slot by name, its values widened to f64.
type OptimizerState = Vec<(String, Vec<f64>)>;

/// Runs the frozen-base scenario on `subject`'s model of `spec`.
fn frozen_base(subject: &dyn ModelSubject, spec: &ModelSpec) -> Result<FrozenBase> {
    let mut model = subject.build(spec)?;
    let (x, y) = model_data(spec.seed, 64);
    model.fit_step(&x, &y)?;
    model.set_trainable(Part::Base, false)?;
    let before = model.weights()?;
    let state_before = model.optimizer_state();
    steps(model.as_mut(), spec, &x, &y)?;
    let after = model.weights()?;
    let state = state_before.and_then(|b| Ok((b, model.optimizer_state()?)));
    Ok(FrozenBase {
        label: frozen_base_label(subject, spec),
        before,
        after,
        state,
    })
}

/// How the frozen-base records name their case.
fn frozen_base_label(subject: &dyn ModelSubject, spec: &ModelSpec) -> String {
    let mut label = spec.label(&subject.name());
    if spec.batch_norm {
        label.push_str(", BatchNorm in base");
    }
    label
}

/// Freezes the base and takes the spec's steps: every base weight, BatchNorm
/// statistics included, stays bit-identical (SPEC §3).
pub fn check_frozen_weights_unchanged(subject: &dyn ModelSubject, spec: &ModelSpec) -> CheckReport {
    const CHECK: &str = "frozen_weights_unchanged";
    match frozen_base(subject, spec) {
        Ok(f) => {
            let (base_moved, base_total) = moved(&f.before, &f.after, Part::Base.prefix());
            let mut observed = format!(
                "{} of {base_total} frozen scalars changed",
                scalars(&base_moved)
            );
            if !base_moved.is_empty() {
                observed.push_str(&format!(": {}", moved_weights(&base_moved)));
            }
            CheckReport::exact(
                CHECK,
                &f.label,
                observed,
                "0 changed, bit for bit".into(),
                base_total > 0 && base_moved.is_empty(),
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &frozen_base_label(subject, spec), &e),
    }
}

/// In the same scenario, the head's weights move.
pub fn check_trainable_weights_changed(
    subject: &dyn ModelSubject,
    spec: &ModelSpec,
) -> CheckReport {
    const CHECK: &str = "trainable_weights_changed";
    match frozen_base(subject, spec) {
        Ok(f) => {
            let (head_moved, head_total) = moved(&f.before, &f.after, Part::Head.prefix());
            CheckReport::exact(
                CHECK,
                &f.label,
                format!(
                    "{} of {head_total} head scalars changed",
                    scalars(&head_moved)
                ),
                "> 0 changed".into(),
                scalars(&head_moved) > 0,
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &frozen_base_label(subject, spec), &e),
    }
}

/// In the same scenario, the base's optimizer state (slots and step counts)
/// stays bit-identical (SPEC §3).
pub fn check_frozen_optimizer_slots_unchanged(
    subject: &dyn ModelSubject,
    spec: &ModelSpec,
) -> CheckReport {
    const CHECK: &str = "frozen_optimizer_slots_unchanged";
    let f = match frozen_base(subject, spec) {
        Ok(f) => f,
        Err(e) => return CheckReport::from_error(CHECK, &frozen_base_label(subject, spec), &e),
    };
    match f.state {
        Ok((before, after)) => {
            let base: Vec<&(String, Vec<f64>)> = before
                .iter()
                .filter(|(n, _)| n.starts_with(Part::Base.prefix()))
                .collect();
            let changed = base
                .iter()
                .filter(|(n, b)| {
                    after.iter().find(|(m, _)| m == n).is_none_or(|(_, a)| {
                        a.len() != b.len()
                            || a.iter().zip(b).any(|(x, y)| x.to_bits() != y.to_bits())
                    })
                })
                .count();
            CheckReport::exact(
                CHECK,
                &f.label,
                format!("{changed} of {} base slot records changed", base.len()),
                "0 changed".into(),
                changed == 0,
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &f.label, &e),
    }
}

/// Freezing the whole model reaches every layer inside it: after optimizer
/// steps no weight, BatchNorm statistics included, moved (SPEC §3, Keras:
/// `trainable` is set recursively and a frozen BatchNorm runs in inference mode).
pub fn check_freeze_is_recursive(subject: &dyn ModelSubject, spec: &ModelSpec) -> CheckReport {
    const CHECK: &str = "freeze_is_recursive";
    let run = || -> Result<_> {
        let mut model = subject.build(spec)?;
        let (x, y) = model_data(spec.seed, 64);
        model.set_trainable(Part::Whole, false)?;
        let before = model.weights()?;
        steps(model.as_mut(), spec, &x, &y)?;
        Ok((before, model.weights()?))
    };
    match run() {
        Ok((before, after)) => {
            let (m, total) = moved(&before, &after, "");
            let mut observed = format!("{} of {total} scalars changed", scalars(&m));
            if !m.is_empty() {
                observed.push_str(&format!(": {}", moved_weights(&m)));
            }
            CheckReport::exact(
                CHECK,
                &spec.label(&subject.name()),
                observed,
                "0 changed".into(),
                total > 0 && m.is_empty(),
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &spec.label(&subject.name()), &e),
    }
}

/// With the head frozen, the base still learns: the gradient passes through a
/// frozen layer (SPEC §3).
pub fn check_gradient_passes_frozen_layer(
    subject: &dyn ModelSubject,
    spec: &ModelSpec,
) -> CheckReport {
    const CHECK: &str = "gradient_passes_frozen_layer";
    let run = || -> Result<_> {
        let mut model = subject.build(spec)?;
        let (x, y) = model_data(spec.seed, 64);
        model.set_trainable(Part::Head, false)?;
        let before = model.weights()?;
        steps(model.as_mut(), spec, &x, &y)?;
        Ok((before, model.weights()?))
    };
    match run() {
        Ok((before, after)) => {
            let (base, _) = moved(&before, &after, Part::Base.prefix());
            let (head, _) = moved(&before, &after, Part::Head.prefix());
            CheckReport::exact(
                CHECK,
                &spec.label(&subject.name()),
                format!(
                    "base: {} scalars moved; frozen head: {}",
                    scalars(&base),
                    scalars(&head)
                ),
                "> 0; 0".into(),
                scalars(&base) > 0 && head.is_empty(),
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &spec.label(&subject.name()), &e),
    }
}

/// Unfreezing the base after steps taken with it frozen makes the next steps
/// move it, with no rebuild or recompile in between (SPEC §3: the flags are read
/// at every step, a freeze is never stale).
pub fn check_unfreeze_takes_effect(subject: &dyn ModelSubject, spec: &ModelSpec) -> CheckReport {
    const CHECK: &str = "unfreeze_takes_effect_without_recompile";
    let run = || -> Result<_> {
        let mut model = subject.build(spec)?;
        let (x, y) = model_data(spec.seed, 64);
        model.set_trainable(Part::Base, false)?;
        model.fit_step(&x, &y)?;
        model.set_trainable(Part::Base, true)?;
        let before = model.weights()?;
        steps(model.as_mut(), spec, &x, &y)?;
        Ok((before, model.weights()?))
    };
    match run() {
        Ok((before, after)) => {
            let (base, total) = moved(&before, &after, Part::Base.prefix());
            CheckReport::exact(
                CHECK,
                &spec.label(&subject.name()),
                format!(
                    "{} of {total} base scalars moved after unfreezing",
                    scalars(&base)
                ),
                "> 0".into(),
                scalars(&base) > 0,
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &spec.label(&subject.name()), &e),
    }
}

/// Nothing the harness does to a model other than an optimizer step changes a
/// weight (SPEC §3: a flag is a filter read at the next step, not a rebuild):
/// after one step, each of freezing the base, an inference forward, unfreezing
/// the base, freezing and unfreezing the whole model, and an inference forward
/// right after a training step (a switch of phase) is followed by a bit-for-bit
/// comparison of every weight, BatchNorm statistics included, with the
/// reading before it. The report names each action that moved something.
pub fn check_only_steps_change_weights(
    subject: &dyn ModelSubject,
    spec: &ModelSpec,
) -> CheckReport {
    const CHECK: &str = "only_steps_change_weights";
    type Action = fn(&mut dyn TrainableModel, &ArrayD<f32>) -> Result<()>;
    const ACTIONS: [(&str, Action); 6] = [
        ("freeze the base", |m, _| m.set_trainable(Part::Base, false)),
        ("an inference forward", |m, x| {
            m.forward(x, Phase::Eval).map(drop)
        }),
        ("unfreeze the base", |m, _| {
            m.set_trainable(Part::Base, true)
        }),
        ("freeze the whole model", |m, _| {
            m.set_trainable(Part::Whole, false)
        }),
        ("unfreeze the whole model", |m, _| {
            m.set_trainable(Part::Whole, true)
        }),
        ("an inference forward after a training step", |m, x| {
            m.forward(x, Phase::Eval).map(drop)
        }),
    ];
    let run = || -> Result<_> {
        let mut model = subject.build(spec)?;
        let (x, y) = model_data(spec.seed, 64);
        // A step first, so the optimizer holds state a careless flag change could drop.
        model.fit_step(&x, &y)?;
        let mut moved_by = Vec::new();
        let mut total = 0;
        for (i, (what, action)) in ACTIONS.iter().enumerate() {
            if i == ACTIONS.len() - 1 {
                model.fit_step(&x, &y)?;
            }
            let before = model.weights()?;
            action(model.as_mut(), &x)?;
            let (m, t) = moved(&before, &model.weights()?, "");
            total = t;
            if !m.is_empty() {
                moved_by.push(format!("{what} moved {}", moved_weights(&m)));
            }
        }
        Ok((moved_by, total))
    };
    match run() {
        Ok((moved_by, total)) => {
            let mut observed = format!(
                "{} of {} actions moved a weight ({total} scalars read after each)",
                moved_by.len(),
                ACTIONS.len()
            );
            if !moved_by.is_empty() {
                observed.push_str(&format!(": {}", moved_by.join("; ")));
            }
            CheckReport::exact(
                CHECK,
                &spec.label(&subject.name()),
                observed,
                format!("0 moved by: {}", ACTIONS.map(|(what, _)| what).join(", ")),
                moved_by.is_empty() && total > 0,
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &spec.label(&subject.name()), &e),
    }
}
