//! Checks of SPEC §2's randomness clause: a seeded dropout is reproducible (the
//! same seed gives the same masks) and yet moves on (its next call draws a new
//! mask).

use super::report::CheckReport;
use super::DropoutLike;
use crate::phase::Phase;
use crate::tensor::{bits_equal, Element};
use ndarray::ArrayD;

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
        (Err(e), _) | (_, Err(e)) => return CheckReport::errored(CHECK, subject, e),
    };
    let same = bits_equal(&a, &b);
    let coincide = (rate.powi(2) + (1.0 - rate).powi(2)).powf(x.len() as f64);
    if coincide >= alpha {
        return CheckReport::exact(
            CHECK,
            subject,
            format!(
                "same seed same output: {same}; next call not compared \
                 (two masks coincide by chance with probability {coincide:.3e} >= alpha {alpha:e})"
            ),
            "true".into(),
            same,
        );
    }
    let differs = match first.run(x.clone(), Phase::Train) {
        Ok(next) => !bits_equal(&a, &next),
        Err(e) => return CheckReport::errored(CHECK, subject, e),
    };
    CheckReport::exact(
        CHECK,
        subject,
        format!("same seed same output: {same}; next call differs: {differs}"),
        "true; true".into(),
        same && differs,
    )
}
