//! The training phase of a frozen model, on any model subject (SPEC §1, §4,
//! §5): dropout still active in the training steps of a model whose base is
//! frozen, a frozen BatchNorm in inference mode during them, and inference
//! forwards that are deterministic.

use super::harness::{differing, loss_pairs, model_data, LOSS_DIFFERS};
use crate::check::capability::Capability;
use crate::check::error::Result;
use crate::check::registry::{Judged, ModelCheck, RecordSpec};
use crate::check::report::CheckReport;
use crate::check::subjects::{ModelSpec, ModelSubject, Part};
use crate::phase::Phase;

/// Dropout active in the training steps of a frozen model: the question.
pub const DROPOUT_ACTIVE: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "frozen_model_dropout_active_in_fit",
        "in the training steps of a model whose base is frozen, a step's training loss differs from the inference loss of the same batch and weights",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |s, spec, _| vec![check_frozen_model_dropout_active_in_fit(s, spec)],
};

/// A frozen BatchNorm in inference mode during training steps.
pub const BATCHNORM_INFERENCE: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "frozen_batchnorm_inference_mode",
        "with the base frozen and dropout at rate 0, every training loss equals the inference loss; with it trainable, one differs",
    )],
    needs: &[Capability::BatchNorm],
    judged: Judged::Exact,
    run: |s, spec, _| vec![check_frozen_batchnorm_inference_mode(s, spec)],
};

/// Two inference forwards bit-identical.
pub const INFERENCE_DETERMINISTIC: ModelCheck = ModelCheck {
    records: &[RecordSpec::invariant(
        "inference_deterministic",
        "two inference forwards of the same input are bit-identical",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |s, spec, _| vec![check_inference_deterministic(s, spec)],
};

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
        loss_pairs(model.as_mut(), &spec, &x, &y)
    };
    match run() {
        Ok(losses) if !losses.is_empty() => {
            let differing = differing(&losses);
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
        Ok(_) => CheckReport::errored(CHECK, &name, "no steps taken"),
        Err(e) => CheckReport::from_error(CHECK, &name, &e),
    }
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
        loss_pairs(model.as_mut(), &spec, &x, &y)
    };
    match losses(true).and_then(|frozen| Ok((frozen, losses(false)?))) {
        Ok((frozen, trainable)) => {
            let (frozen_differ, control_differ) = (differing(&frozen), differing(&trainable));
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

/// Two inference forwards of the same input are bit-identical: dropout is off
/// in inference (SPEC §2, §4).
pub fn check_inference_deterministic(subject: &dyn ModelSubject, spec: &ModelSpec) -> CheckReport {
    const CHECK: &str = "inference_deterministic";
    let run = || -> Result<_> {
        let mut model = subject.build(spec)?;
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
