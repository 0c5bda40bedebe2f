//! The drop rate (SPEC §2, §6): the train-phase drop count of strictly positive
//! inputs lies in the exact binomial acceptance region, with the power stated.

use super::harness::with_layer;
use crate::check::inputs::positive_input;
use crate::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::stats::{binomial_region, smallest_detectable_bias};
use crate::check::subjects::{DropoutLike, DropoutSubject};
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;

/// The drop rate, on at least 10^5 draws.
pub const CHECK: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "drop_rate_binomial",
        "the train-phase drop count lies in the exact binomial region of Binomial(draws, rate)",
    )],
    needs: &[],
    judged: Judged::Statistical,
    run,
};

fn run(subject: &dyn DropoutSubject, case: &DropoutCase, settings: &Settings) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&case.shape, case.seed ^ 1);
    // At least 10^5 draws for the rate check.
    let calls = 100_000usize.div_ceil(x.len().max(1));
    with_layer(
        subject,
        CHECK.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| {
            vec![check_train_drop_rate(
                &label,
                &mut l,
                &x,
                calls,
                settings.alpha,
            )]
        },
    )
}

/// The drop count `dropped` of `draws` independent draws lies in the exact
/// binomial acceptance region of Binomial(draws, rate) at `alpha`.
///
/// Power: the report states the smallest bias on the rate that the check detects
/// with probability 0.99 at this sample size (about 0.0037 at n = 10^6, p = 0.5,
/// alpha = 1e-9). Rates 0 and 1 state none: their region is the one count that
/// cannot vary, and any other count fails.
pub fn check_drop_rate(
    subject: &str,
    draws: u64,
    dropped: u64,
    rate: f64,
    alpha: f64,
) -> CheckReport {
    let (lo, hi) = binomial_region(draws, rate, alpha);
    let n = draws.max(1) as f64;
    let detectable = (0.0 < rate && rate < 1.0 && draws > 0).then(|| {
        format!(
            "rate bias >= {:.5} (power 0.99)",
            smallest_detectable_bias(draws, rate, alpha)
        )
    });
    CheckReport {
        check: "drop_rate_binomial".into(),
        subject: subject.into(),
        observed: format!("{dropped}/{draws} dropped = {:.5}", dropped as f64 / n),
        bound: format!(
            "[{lo}, {hi}] = [{:.5}, {:.5}] for p = {rate}",
            lo as f64 / n,
            hi as f64 / n
        ),
        alpha: Some(alpha),
        detectable,
        pass: draws > 0 && (lo..=hi).contains(&dropped),
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

/// Runs `calls` train calls on strictly positive finite `x` and checks the drop
/// rate by the exact binomial region. An output equal to zero, of either sign,
/// is a drop: the input has no zeros, so a kept unit is never zero, and the sign
/// a subject gives a dropped unit is a convention, judged apart
/// ([`super::conventions`]), not a wrong rate.
pub fn check_train_drop_rate<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    calls: usize,
    alpha: f64,
) -> CheckReport {
    let rate = layer.rate();
    let (mut draws, mut dropped) = (0u64, 0u64);
    for _ in 0..calls {
        match layer.run(x.clone(), Phase::Train) {
            Ok(y) => {
                draws += y.len() as u64;
                dropped += y.iter().filter(|v| v.is_zero()).count() as u64;
            }
            Err(e) => return CheckReport::from_error("drop_rate_binomial", subject, &e),
        }
    }
    check_drop_rate(subject, draws, dropped, rate, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drop_rate_check_states_power_only_where_a_bias_can_exist() {
        for rate in [0.0, 1.0] {
            let dropped = if rate == 1.0 { 1000 } else { 0 };
            let r = check_drop_rate("d", 1000, dropped, rate, 1e-9);
            assert!(r.pass && r.detectable.is_none(), "{}", r.line());
        }
        let r = check_drop_rate("d", 1000, 500, 0.5, 1e-9);
        assert!(r.pass && r.detectable.is_some(), "{}", r.line());
        assert!(
            !check_drop_rate("d", 0, 0, 0.5, 1e-9).pass,
            "no draws proves nothing"
        );
    }
}
