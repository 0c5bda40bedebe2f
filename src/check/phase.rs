//! Checks of SPEC §4: a phase pinned on a node reaches that node's subtree only.

use super::report::CheckReport;
use crate::model::Model;
use crate::tensor::Element;

/// Units seen and units dropped, summed over every dropout whose path starts with
/// `prefix`.
pub(crate) fn units_seen_and_dropped_under<F: Element>(
    model: &Model<F>,
    prefix: &str,
) -> (u64, u64) {
    model
        .dropout_stats()
        .iter()
        .filter(|(p, _)| p.starts_with(prefix))
        .fold((0, 0), |(s, d), (_, st)| {
            (s + st.units_seen, d + st.units_dropped)
        })
}

/// After `train` runs the model in `Train`, dropout under `pinned_eval` (a node
/// pinned to `Eval`) dropped nothing, while dropout under `sibling` (not pinned)
/// dropped units: the pin did not leak.
pub fn check_pin_stays_in_subtree<F: Element>(
    subject: &str,
    model: &mut Model<F>,
    train: &mut dyn FnMut(&mut Model<F>) -> crate::error::Result<()>,
    pinned_eval: &str,
    sibling: &str,
) -> CheckReport {
    let (_, pinned_before) = units_seen_and_dropped_under(model, pinned_eval);
    let (seen_before, sibling_before) = units_seen_and_dropped_under(model, sibling);
    if let Err(e) = train(model) {
        return CheckReport::errored("pin_stays_in_subtree", subject, e);
    }
    let pinned = units_seen_and_dropped_under(model, pinned_eval).1 - pinned_before;
    let (seen, sibling_after) = units_seen_and_dropped_under(model, sibling);
    let sibling_dropped = sibling_after - sibling_before;
    CheckReport::exact(
        "pin_stays_in_subtree",
        subject,
        format!("pinned {pinned_eval} dropped {pinned}; sibling {sibling} dropped {sibling_dropped} of {}", seen - seen_before),
        "0; > 0".into(),
        pinned == 0 && sibling_dropped > 0,
    )
}
