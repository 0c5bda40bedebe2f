//! Checks that inference is a pure function of the weights: `predict` gives the
//! same bits every time and changes nothing (SPEC §4: `predict` runs in `Eval`,
//! where dropout is the identity and BatchNorm uses its moving statistics).

use super::snapshot::ModelSnapshot;
use crate::check::report::CheckReport;
use crate::model::Model;
use crate::tensor::{bits_equal, Element};
use ndarray::ArrayD;

/// Two `predict` calls on `x` are bit-identical, and the second changed no
/// weight scalar of the model (SPEC §4).
pub fn check_predict_deterministic<F: Element>(
    subject: &str,
    model: &mut Model<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    const CHECK: &str = "predict_deterministic";
    let first = match model.predict(x) {
        Ok(y) => y,
        Err(e) => return CheckReport::errored(CHECK, subject, e),
    };
    let before = ModelSnapshot::of(model);
    let second = match model.predict(x) {
        Ok(y) => y,
        Err(e) => return CheckReport::errored(CHECK, subject, e),
    };
    let same = bits_equal(&first, &second);
    let moved = before.diff(&ModelSnapshot::of(model)).moved_scalars();
    CheckReport::exact(
        CHECK,
        subject,
        format!(
            "two predicts bit-identical: {same}; weight scalars changed by predict: {moved} of {}",
            before.scalars()
        ),
        "true; 0".into(),
        same && moved == 0,
    )
}
