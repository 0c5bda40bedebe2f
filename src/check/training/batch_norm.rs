//! Checks of SPEC §5: a frozen BatchNormalization is in inference mode in every
//! phase, normalising with its moving statistics and updating nothing.

use super::snapshot::ModelSnapshot;
use crate::check::report::CheckReport;
use crate::model::Model;
use crate::phase::Phase;
use crate::tensor::{bits_equal, Element};
use ndarray::ArrayD;

/// Freezes `model` (which should hold BatchNorm and no other layer that
/// differs between phases), then: a `Train`-phase call on `x` gives the bits
/// `predict` gives, and changes no weight scalar, moving statistics included
/// (SPEC §5: frozen means inference mode in any phase).
pub fn check_frozen_batchnorm_inference_mode<F: Element>(
    subject: &str,
    model: &mut Model<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    const CHECK: &str = "frozen_batchnorm_train_call_is_inference";
    model.freeze();
    let before = ModelSnapshot::of(model);
    let outputs = model
        .call(x, Phase::Train)
        .and_then(|train| Ok((train, model.predict(x)?)));
    let (train, eval) = match outputs {
        Ok(pair) => pair,
        Err(e) => return CheckReport::errored(CHECK, subject, e),
    };
    let same = bits_equal(&train, &eval);
    let changed = before.diff(&ModelSnapshot::of(model)).moved_scalars();
    CheckReport::exact(
        CHECK,
        subject,
        format!("train-phase output equals eval output: {same}; stats changed: {changed}"),
        "true; 0".into(),
        same && changed == 0,
    )
}
