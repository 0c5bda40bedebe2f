//! The counters observe, they do not estimate (SPEC §2): after a train call,
//! units seen grew by the input's size and units dropped by the zeros in the
//! output.

use super::harness::with_layer;
use crate::check::capability::Capability;
use crate::check::inputs::positive_input;
use crate::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{DropoutLike, DropoutSubject};
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;

/// Counters against the output.
pub const CHECK: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "counters_match_output",
        "after a train call, units seen grew by the input's size and units dropped by the output's zeros",
    )],
    needs: &[Capability::Counters],
    judged: Judged::Exact,
    run,
};

fn run(subject: &dyn DropoutSubject, case: &DropoutCase, _: &Settings) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&case.shape, case.seed ^ 1);
    with_layer(
        subject,
        CHECK.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| vec![check_counters_match_output(&label, &mut l, &x)],
    )
}

/// The layer's counters agree with what its output shows: after one train call
/// on strictly positive `x`, units seen grew by the input's size and units
/// dropped by the zeros in the output (SPEC §2: the counters observe, they do
/// not estimate). Not applicable to a layer without counters.
pub fn check_counters_match_output<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    const CHECK: &str = "counters_match_output";
    let mut run = || -> crate::check::Result<_> {
        let before = layer.counters()?;
        let y = layer.run(x.clone(), Phase::Train)?;
        let after = layer.counters()?;
        Ok((before, y, after))
    };
    match run() {
        Ok((before, y, after)) => {
            let zeros = y.iter().filter(|v| v.is_zero()).count() as u64;
            let seen = after.units_seen.wrapping_sub(before.units_seen);
            let dropped = after.units_dropped.wrapping_sub(before.units_dropped);
            CheckReport::exact(
                CHECK,
                subject,
                format!(
                    "counted {seen} seen, {dropped} dropped; output has {} units, {zeros} zero",
                    y.len()
                ),
                "seen = units, dropped = zeros".into(),
                seen == x.len() as u64 && dropped == zeros,
            )
        }
        Err(e) => CheckReport::from_error(CHECK, subject, &e),
    }
}
