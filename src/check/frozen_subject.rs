//! The frozen-model invariants of SPEC §3–§4, judged on any [`ModelSubject`]
//! through the small [`TrainableModel`] interface alone: frozen weights (and
//! BatchNorm statistics) bit-identical after optimizer steps, trainable ones
//! moved, a freeze that reaches the whole tree, a gradient that passes a frozen
//! part, an unfreeze that takes effect without a rebuild, dropout still active in
//! the training steps of a frozen model, and an inference forward that is
//! deterministic.
//!
//! Each check builds its own model from the spec, so one failure cannot hide or
//! cause another.

use super::frozen::moved_weights;
use super::model_subject::{ModelSpec, ModelSubject, Part, TrainableModel};
use super::report::CheckReport;
use super::subject::Capability;
use crate::error::{Error, Result};
use crate::phase::Phase;
use ndarray::ArrayD;

/// Relative loss difference above which a training step's loss differs from the
/// inference loss of the same batch and weights. With dropout off the two are
/// the same arithmetic, bit-identical in nncheck and a few f32 ulps apart at
/// most (about 1e-7) where a framework takes another code path for inference;
/// dropout moves the loss by more (a first step 9e-6 apart was seen at rate
/// 0.064, and no case of 6,000 generated ones had every step within this).
pub const LOSS_DIFFERS: f64 = 1e-6;

/// The batch every check trains on: `samples` rows of `FEATURES` inputs and a
/// linear target.
pub fn model_data(seed: u64, samples: usize) -> (ArrayD<f32>, ArrayD<f32>) {
    use super::model_subject::FEATURES;
    let x = super::battery::nonzero_input(&[samples, FEATURES], seed).mapv(|v| v / 100.0);
    let y = ArrayD::from_shape_fn(vec![samples, 1], |i| x[[i[0], 0]] - 0.5 * x[[i[0], 1]]);
    (x, y)
}

/// Weights whose bits differ between two readings, by name, with how many
/// scalars moved; the second value is the total count of scalars read.
fn moved(
    before: &[(String, ArrayD<f32>)],
    after: &[(String, ArrayD<f32>)],
    prefix: &str,
) -> (Vec<(String, usize)>, usize) {
    let mut moved = Vec::new();
    let mut total = 0;
    for (name, b) in before.iter().filter(|(n, _)| n.starts_with(prefix)) {
        total += b.len();
        let n = match after.iter().find(|(m, _)| m == name) {
            Some((_, a)) if a.shape() == b.shape() => a
                .iter()
                .zip(b.iter())
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count(),
            _ => b.len(),
        };
        if n > 0 {
            moved.push((name.clone(), n));
        }
    }
    (moved, total)
}

fn scalars(moved: &[(String, usize)]) -> usize {
    moved.iter().map(|(_, n)| n).sum()
}

/// Builds the subject's model, falling back to a base without BatchNorm when
/// the subject has none; returns the model and the spec it was built from.
fn build(
    subject: &dyn ModelSubject,
    spec: &ModelSpec,
) -> Result<(Box<dyn TrainableModel>, ModelSpec)> {
    match subject.build(spec) {
        Err(Error::Unsupported {
            capability: Capability::BatchNorm,
        }) if spec.batch_norm => {
            let spec = ModelSpec {
                batch_norm: false,
                ..spec.clone()
            };
            Ok((subject.build(&spec)?, spec))
        }
        other => other.map(|m| (m, spec.clone())),
    }
}

/// The spec's number of optimizer steps on `(x, y)`.
fn steps(
    model: &mut dyn TrainableModel,
    spec: &ModelSpec,
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
) -> Result<Vec<f64>> {
    (0..spec.steps).map(|_| model.fit_step(x, y)).collect()
}

/// Freezes the base, takes the spec's optimizer steps, and judges: every base
/// weight (BatchNorm statistics included) bit-identical, the head's weights
/// moved, and the base's optimizer state unchanged where the subject shows it.
/// Returns three records: `frozen_weights_unchanged`,
/// `trainable_weights_changed`, `frozen_optimizer_slots_unchanged`.
pub fn check_frozen_base(subject: &dyn ModelSubject, spec: &ModelSpec) -> Vec<CheckReport> {
    const CHECKS: [&str; 3] = [
        "frozen_weights_unchanged",
        "trainable_weights_changed",
        "frozen_optimizer_slots_unchanged",
    ];
    let name = subject.name();
    let run = || -> Result<_> {
        let (mut model, spec) = build(subject, spec)?;
        let (x, y) = model_data(spec.seed, 64);
        // One step with everything trainable first, so the optimizer holds state
        // for the base when it is frozen (momentum and Adam moments move frozen
        // weights in the classic bug).
        model.fit_step(&x, &y)?;
        model.set_trainable(Part::Base, false)?;
        let weights_before = model.weights()?;
        let state_before = model.optimizer_state();
        steps(model.as_mut(), &spec, &x, &y)?;
        Ok((
            spec,
            weights_before,
            model.weights()?,
            state_before,
            model.optimizer_state(),
        ))
    };
    let (spec, before, after, state_before, state_after) = match run() {
        Ok(r) => r,
        Err(e) => {
            return CHECKS
                .iter()
                .map(|c| CheckReport::from_error(c, &spec.label(&name), &e))
                .collect()
        }
    };
    let mut label = spec.label(&name);
    if spec.batch_norm {
        label.push_str(", BatchNorm in base");
    }
    let (base_moved, base_total) = moved(&before, &after, Part::Base.prefix());
    let (head_moved, head_total) = moved(&before, &after, Part::Head.prefix());
    let mut observed = format!(
        "{} of {base_total} frozen scalars changed",
        scalars(&base_moved)
    );
    if !base_moved.is_empty() {
        observed.push_str(&format!(": {}", moved_weights(&base_moved)));
    }
    let mut reports = vec![
        CheckReport::exact(
            CHECKS[0],
            &label,
            observed,
            "0 changed, bit for bit".into(),
            base_total > 0 && base_moved.is_empty(),
        ),
        CheckReport::exact(
            CHECKS[1],
            &label,
            format!(
                "{} of {head_total} head scalars changed",
                scalars(&head_moved)
            ),
            "> 0 changed".into(),
            scalars(&head_moved) > 0,
        ),
    ];
    reports.push(match (state_before, state_after) {
        (Ok(before), Ok(after)) => {
            let changed: Vec<&String> = before
                .iter()
                .filter(|(n, _)| n.starts_with(Part::Base.prefix()))
                .filter(|(n, b)| {
                    after.iter().find(|(m, _)| m == n).is_none_or(|(_, a)| {
                        a.len() != b.len()
                            || a.iter().zip(b).any(|(x, y)| x.to_bits() != y.to_bits())
                    })
                })
                .map(|(n, _)| n)
                .collect();
            let base_records = before
                .iter()
                .filter(|(n, _)| n.starts_with(Part::Base.prefix()))
                .count();
            CheckReport::exact(
                CHECKS[2],
                &label,
                format!(
                    "{} of {base_records} base slot records changed",
                    changed.len(),
                ),
                "0 changed".into(),
                changed.is_empty(),
            )
        }
        (Err(e), _) | (_, Err(e)) => CheckReport::from_error(CHECKS[2], &label, &e),
    });
    reports
}

/// In the training steps of a model whose base (holding the dropout) is frozen,
/// dropout is still active: a step's training loss differs from the inference
/// loss of the same batch on the same weights (SPEC §4: freezing changes what
/// trains, not the phase). The base has no BatchNorm here, so the dropout is
/// the only thing that makes the two phases differ: with it off, every step's
/// two losses are the same arithmetic. With it on, one step's mask can leave
/// the loss within [`LOSS_DIFFERS`] by chance at low rates, so the verdict
/// asks for at least one of the spec's steps to differ, not all of them; the
/// report gives the count.
pub fn check_frozen_model_dropout_active_in_fit(
    subject: &dyn ModelSubject,
    spec: &ModelSpec,
) -> CheckReport {
    const CHECK: &str = "frozen_model_dropout_active_in_fit";
    let spec = ModelSpec {
        batch_norm: false,
        ..spec.clone()
    };
    let name = spec.label(&subject.name());
    let run = || -> Result<Vec<(f64, f64)>> {
        let mut model = subject.build(&spec)?;
        let (x, y) = model_data(spec.seed, 64);
        model.set_trainable(Part::Base, false)?;
        (0..spec.steps)
            .map(|_| {
                let eval = mse(&model.forward(&x, Phase::Eval)?, &y);
                Ok((model.fit_step(&x, &y)?, eval))
            })
            .collect()
    };
    match run() {
        Ok(losses) => {
            let differing = losses
                .iter()
                .filter(|(train, eval)| relative(*train, *eval) > LOSS_DIFFERS)
                .count();
            let (train, eval) = losses[0];
            CheckReport::exact(
                CHECK,
                &name,
                format!(
                    "{differing} of {} steps' training losses differ from the inference loss \
                     (first step: {train:.6} vs {eval:.6})",
                    losses.len()
                ),
                format!(
                    "> 0 of {} differ by > {LOSS_DIFFERS:e} relative",
                    losses.len()
                ),
                differing > 0,
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &name, &e),
    }
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

/// Mean squared error of `y_pred` against `y`, in f64.
pub fn mse(y_pred: &ArrayD<f32>, y: &ArrayD<f32>) -> f64 {
    if y_pred.shape() != y.shape() || y.is_empty() {
        return f64::NAN;
    }
    y_pred
        .iter()
        .zip(y.iter())
        .map(|(&p, &t)| (f64::from(p) - f64::from(t)).powi(2))
        .sum::<f64>()
        / y.len() as f64
}

/// A frozen BatchNormalization runs in inference mode during training steps
/// (SPEC §1, §5): with the base frozen and its dropout at rate 0, every step's
/// training loss equals the inference loss of the same batch on the same
/// weights (within [`LOSS_DIFFERS`]), since a BatchNorm in inference mode
/// normalises with its moving statistics in both. As a positive control the
/// same model with its base trainable must show a step whose two losses
/// differ, or the check could not have told the modes apart; a subject whose
/// trainable BatchNorm never uses its batch statistics fails too. Not
/// applicable to a subject without BatchNorm.
pub fn check_frozen_batchnorm_inference_mode(
    subject: &dyn ModelSubject,
    spec: &ModelSpec,
) -> CheckReport {
    const CHECK: &str = "frozen_batchnorm_inference_mode";
    let spec = ModelSpec {
        rate: 0.0,
        batch_norm: true,
        ..spec.clone()
    };
    let label = spec.label(&subject.name());
    // Each step's (training loss, inference loss) with the base frozen or not.
    let losses = |frozen: bool| -> Result<Vec<(f64, f64)>> {
        let mut model = subject.build(&spec)?;
        let (x, y) = model_data(spec.seed, 64);
        model.set_trainable(Part::Base, !frozen)?;
        (0..spec.steps)
            .map(|_| {
                let eval = mse(&model.forward(&x, Phase::Eval)?, &y);
                Ok((model.fit_step(&x, &y)?, eval))
            })
            .collect()
    };
    match losses(true).and_then(|frozen| Ok((frozen, losses(false)?))) {
        Ok((frozen, trainable)) => {
            let differ = |l: &[(f64, f64)]| {
                l.iter()
                    .filter(|(t, e)| relative(*t, *e) > LOSS_DIFFERS)
                    .count()
            };
            let (frozen_differ, control_differ) = (differ(&frozen), differ(&trainable));
            let first = |l: &[(f64, f64)]| l.first().map_or((f64::NAN, f64::NAN), |p| *p);
            let ((ft, fe), (ct, ce)) = (first(&frozen), first(&trainable));
            CheckReport::exact(
                CHECK,
                &label,
                format!(
                    "frozen base: {frozen_differ} of {} steps' training losses differ from the \
                     inference loss (first step: {ft:.6} vs {fe:.6}); trainable base (control): \
                     {control_differ} of {} differ (first step: {ct:.6} vs {ce:.6})",
                    frozen.len(),
                    trainable.len()
                ),
                format!(
                    "0 differ with the base frozen; > 0 with it trainable (by > {LOSS_DIFFERS:e} relative)"
                ),
                !frozen.is_empty() && frozen_differ == 0 && control_differ > 0,
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &label, &e),
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
        let (mut model, spec) = build(subject, spec)?;
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
        Ok((spec, moved_by, total))
    };
    match run() {
        Ok((spec, moved_by, total)) => {
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

/// Freezing the whole model reaches every layer inside it: after optimizer
/// steps no weight, BatchNorm statistics included, moved (SPEC §3, Keras:
/// `trainable` is set recursively and a frozen BatchNorm runs in inference mode).
pub fn check_freeze_is_recursive(subject: &dyn ModelSubject, spec: &ModelSpec) -> CheckReport {
    const CHECK: &str = "freeze_is_recursive";
    let run = || -> Result<_> {
        let (mut model, spec) = build(subject, spec)?;
        let (x, y) = model_data(spec.seed, 64);
        model.set_trainable(Part::Whole, false)?;
        let before = model.weights()?;
        steps(model.as_mut(), &spec, &x, &y)?;
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
        let (mut model, spec) = build(subject, spec)?;
        let (x, y) = model_data(spec.seed, 64);
        model.set_trainable(Part::Head, false)?;
        let before = model.weights()?;
        steps(model.as_mut(), &spec, &x, &y)?;
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
        let (mut model, spec) = build(subject, spec)?;
        let (x, y) = model_data(spec.seed, 64);
        model.set_trainable(Part::Base, false)?;
        model.fit_step(&x, &y)?;
        model.set_trainable(Part::Base, true)?;
        let before = model.weights()?;
        steps(model.as_mut(), &spec, &x, &y)?;
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

/// Two inference forwards of the same input are bit-identical: dropout is off
/// in inference (SPEC §2, §4).
pub fn check_inference_deterministic(subject: &dyn ModelSubject, spec: &ModelSpec) -> CheckReport {
    const CHECK: &str = "inference_deterministic";
    let run = || -> Result<_> {
        let (mut model, spec) = build(subject, spec)?;
        let (x, _) = model_data(spec.seed, 64);
        Ok((
            model.forward(&x, Phase::Eval)?,
            model.forward(&x, Phase::Eval)?,
        ))
    };
    match run() {
        Ok((a, b)) => {
            let differing = if a.shape() == b.shape() {
                a.iter()
                    .zip(b.iter())
                    .filter(|(p, q)| p.to_bits() != q.to_bits())
                    .count()
            } else {
                a.len().max(b.len())
            };
            CheckReport::exact(
                CHECK,
                &spec.label(&subject.name()),
                format!(
                    "{differing} of {} outputs differ between two calls",
                    a.len()
                ),
                "0 differ".into(),
                differing == 0 && !a.is_empty(),
            )
        }
        Err(e) => CheckReport::from_error(CHECK, &spec.label(&subject.name()), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(name: &str, shape: &[usize], values: &[f32]) -> (String, ArrayD<f32>) {
        let w = ArrayD::from_shape_vec(shape.to_vec(), values.to_vec()).unwrap();
        (name.to_string(), w)
    }

    /// A weight counts as moved scalar by scalar, bit for bit; one that changed
    /// shape or vanished counts as wholly moved, even where the values it still
    /// has are the same.
    #[test]
    fn moved_counts_changed_bits_and_treats_a_reshaped_or_lost_weight_as_moved() {
        let before = [
            weight("base/kernel", &[4], &[1.0, 2.0, 3.0, 4.0]),
            weight("base/bias", &[2], &[0.0, 0.5]),
            weight("base/gamma", &[2], &[1.0, 1.0]),
            weight("head/kernel", &[1], &[7.0]),
        ];
        let after = [
            weight("base/kernel", &[2, 2], &[1.0, 2.0, 3.0, 4.0]),
            weight("base/bias", &[2], &[-0.0, 0.5]),
            weight("head/kernel", &[1], &[7.0]),
        ];
        let (base, total) = moved(&before, &after, "base/");
        assert_eq!(total, 8);
        assert_eq!(
            base,
            [
                ("base/kernel".to_string(), 4),
                ("base/bias".to_string(), 1),
                ("base/gamma".to_string(), 2)
            ]
        );
        assert_eq!(moved(&before, &after, "head/"), (vec![], 1));
    }

    /// The loss comparisons of the frozen-fit checks (here and in the core
    /// training battery, which trains on the same data) are set for this
    /// target, so it stays the documented `x0 - 0.5 x1`.
    #[test]
    fn the_training_target_is_x0_minus_half_x1() {
        let (x, y) = model_data(5, 16);
        for (row, target) in x.outer_iter().zip(y.iter()) {
            assert_eq!(target.to_bits(), (row[0] - 0.5 * row[1]).to_bits());
        }
    }

    /// Predictions that do not line up with the targets, or no targets at all,
    /// have no mean squared error: NaN, never a number that could pass a bound.
    #[test]
    fn mse_is_nan_for_mismatched_or_empty_targets() {
        let pred = ArrayD::from_elem(vec![4, 1], 1.0f32);
        let target = ArrayD::from_elem(vec![2, 1], 1.0f32);
        assert!(mse(&pred, &target).is_nan());
        let none = ArrayD::<f32>::zeros(vec![0, 1]);
        assert!(mse(&none, &none).is_nan());
        assert_eq!(mse(&pred, &ArrayD::from_elem(vec![4, 1], 3.0f32)), 4.0);
    }

    /// The relative difference is the gap over the larger magnitude, 0 for two
    /// zeros.
    #[test]
    fn relative_is_the_gap_over_the_larger_magnitude() {
        assert_eq!(relative(2.0, 1.0), 0.5);
        assert_eq!(relative(-1.0, 3.0), 4.0 / 3.0);
        assert_eq!(relative(1e-3, 4e-3), 0.75);
        assert_eq!(relative(0.0, 0.0), 0.0);
    }
}
