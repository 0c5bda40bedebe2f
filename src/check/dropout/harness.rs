//! What every dropout check does around its verdict: build a fresh layer of
//! the subject for the case (seeded where the subject can seed), and turn an
//! error or a panic of the subject into that check's record, so one failure
//! cannot hide or cause another.

use crate::check::error::{catching, Result};
use crate::check::report::CheckReport;
use crate::check::subjects::{build_layer, BoxedDropout, DropoutSubject};

/// Builds what a check needs with `build` and runs the check with `run`; an
/// error or a panic of the subject in either becomes the record of `check`.
pub fn guarded<T>(
    subject: &str,
    check: &str,
    label: &str,
    build: impl FnOnce() -> Result<T>,
    run: impl FnOnce(T) -> Vec<CheckReport>,
) -> Vec<CheckReport> {
    catching(subject, build)
        .and_then(|built| catching(subject, || Ok(run(built))))
        .unwrap_or_else(|e| vec![CheckReport::from_error(check, label, &e)])
}

/// A fresh layer of `subject` at `rate` and `seed` for `check`, run by `run`.
pub fn with_layer(
    subject: &dyn DropoutSubject,
    check: &str,
    label: &str,
    rate: f64,
    seed: u64,
    run: impl FnOnce(BoxedDropout) -> Vec<CheckReport>,
) -> Vec<CheckReport> {
    guarded(
        &subject.name(),
        check,
        label,
        || build_layer(subject, rate, seed),
        run,
    )
}
