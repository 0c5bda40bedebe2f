//! Seeding (SPEC §2's randomness clause): a seeded dropout is reproducible (the
//! same seed gives the same masks) and yet moves on (its next call draws a new
//! mask).

use super::harness::{guarded, with_layer};
use crate::check::capability::Capability;
use crate::check::inputs::positive_input;
use crate::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{DropoutLike, DropoutSubject};
use crate::phase::Phase;
use crate::tensor::{bits_equal, Element};
use ndarray::ArrayD;

/// Reseeding restarts the mask stream; the next call differs.
pub const RESEEDED: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "reseeded_masks_reproducible",
        "after reseed(s) a call repeats the call after an earlier reseed(s), and the next call differs",
    )],
    needs: &[Capability::Reseed],
    judged: Judged::Exact,
    run: run_reseeded,
};

/// Two layers built with one seed draw one mask sequence; the next call differs.
pub const SEEDED: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "seeded_masks_reproducible",
        "two layers built with the same seed give the same first call, and the next call differs",
    )],
    needs: &[Capability::SeedAtBuild],
    judged: Judged::Exact,
    run: run_seeded,
};

fn run_reseeded(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    s: &Settings,
) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&case.shape, case.seed ^ 1);
    with_layer(
        subject,
        RESEEDED.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| {
            vec![check_reseed_reproducible(
                &label, &mut l, &x, case.seed, s.alpha,
            )]
        },
    )
}

fn run_seeded(subject: &dyn DropoutSubject, case: &DropoutCase, s: &Settings) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&case.shape, case.seed ^ 1);
    guarded(
        &subject.name(),
        SEEDED.id(),
        &label,
        || {
            Ok((
                subject.build(case.rate, Some(case.seed))?,
                subject.build(case.rate, Some(case.seed))?,
            ))
        },
        |(mut first, mut twin)| {
            vec![check_seeded_masks_reproducible(
                &label, &mut first, &mut twin, &x, s.alpha,
            )]
        },
    )
}

/// `first` and `twin`, two layers built with the same seed, give bit-identical
/// outputs on their first train call on `x`; and `first`'s second call differs
/// from its first (SPEC §2: "the same sequence of masks on every run";
/// "successive calls produce different masks").
///
/// Two independent masks over `n` units coincide with probability
/// `(p^2 + (1-p)^2)^n`, so the second comparison is made only where a
/// coincidence is rarer than `alpha`; otherwise the report says it was skipped
/// and why, and the verdict rests on the first comparison alone.
pub fn check_seeded_masks_reproducible<F: Element>(
    subject: &str,
    first: &mut impl DropoutLike<F>,
    twin: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    alpha: f64,
) -> CheckReport {
    const CHECK: &str = "seeded_masks_reproducible";
    let rate = first.rate();
    let (a, b) = match (
        first.run(x.clone(), Phase::Train),
        twin.run(x.clone(), Phase::Train),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return CheckReport::from_error(CHECK, subject, &e),
    };
    let same = bits_equal(&a, &b);
    judge(CHECK, subject, rate, x.len(), alpha, same, || {
        Ok(!bits_equal(&a, &first.run(x.clone(), Phase::Train)?))
    })
}

/// The verdict of a reproducibility check: `same` (the two seeded outputs
/// agree) and, where two independent masks over `units` would coincide with
/// probability below `alpha`, `next_differs` (the following call drew another).
fn judge(
    check: &str,
    subject: &str,
    rate: f64,
    units: usize,
    alpha: f64,
    same: bool,
    next_differs: impl FnOnce() -> crate::check::Result<bool>,
) -> CheckReport {
    let coincide = (rate.powi(2) + (1.0 - rate).powi(2)).powf(units as f64);
    if coincide >= alpha {
        return CheckReport::exact(
            check,
            subject,
            format!(
                "same seed same output: {same}; next call not compared \
                 (two masks coincide by chance with probability {coincide:.3e} >= alpha {alpha:e})"
            ),
            "true".into(),
            same,
        );
    }
    let differs = match next_differs() {
        Ok(differs) => differs,
        Err(e) => return CheckReport::from_error(check, subject, &e),
    };
    CheckReport::exact(
        check,
        subject,
        format!("same seed same output: {same}; next call differs: {differs}"),
        "true; true".into(),
        same && differs,
    )
}

/// Reseeding restarts the mask stream: after `reseed(seed)` a train call on `x`
/// gives the same output as the call after an earlier `reseed(seed)`, and the
/// call that follows differs (SPEC §2: seeded runs repeat, successive calls
/// draw new masks). The second comparison is skipped, and the report says so,
/// where two independent masks would coincide with probability at least
/// `alpha`. Not applicable to a layer that cannot be reseeded.
pub fn check_reseed_reproducible<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    seed: u64,
    alpha: f64,
) -> CheckReport {
    const CHECK: &str = "reseeded_masks_reproducible";
    let rate = layer.rate();
    let mut run = || -> crate::check::Result<_> {
        layer.reseed(seed)?;
        let a = layer.run(x.clone(), Phase::Train)?;
        layer.reseed(seed)?;
        let b = layer.run(x.clone(), Phase::Train)?;
        Ok((a, b))
    };
    let (a, b) = match run() {
        Ok(r) => r,
        Err(e) => return CheckReport::from_error(CHECK, subject, &e),
    };
    judge(
        CHECK,
        subject,
        rate,
        x.len(),
        alpha,
        bits_equal(&a, &b),
        || Ok(!bits_equal(&a, &layer.run(x.clone(), Phase::Train)?)),
    )
}
