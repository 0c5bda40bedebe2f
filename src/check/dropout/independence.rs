//! Independence of the masks (SPEC §6): per-position uniformity over many
//! calls, successive calls, neighbouring positions, and positions `2^k` apart
//! inside one call, each a hypothesis test at the stated alpha with its power.

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

/// Per-position uniformity over 200 calls, on at most 4096 positions.
pub const UNIFORMITY: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "per_position_uniformity",
        "over 200 calls each position's drop count is Binomial(calls, rate): chi-squared dispersion",
    )],
    needs: &[],
    judged: Judged::Statistical,
    run: run_uniformity,
};

/// Two successive calls' masks are independent.
pub const SUCCESSIVE: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "successive_calls_independent",
        "units dropped in both of two successive calls number Binomial(n, p^2)",
    )],
    needs: &[],
    judged: Judged::Statistical,
    run: run_successive,
};

/// Positions `2^k` apart in one call are independent, `k` up to 17.
pub const LONG_RANGE: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "long_range_independent",
        "for each lag 2^k, k = 0..17, units 2^k apart in one call are dropped together Binomial(pairs, p^2) times (each lag at alpha/18)",
    )],
    needs: &[],
    judged: Judged::Statistical,
    run: run_long_range,
};

/// Neighbouring positions of one call are independent.
pub const NEIGHBOURS: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "neighbours_independent",
        "neighbouring positions (2i, 2i+1) of one call are dropped together Binomial(n/2, p^2) times",
    )],
    needs: &[],
    judged: Judged::Statistical,
    run: run_neighbours,
};

fn run_uniformity(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    s: &Settings,
) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let positions = case.shape.iter().product::<usize>().min(4096);
    let flat = positive_input(&[positions], case.seed ^ 4);
    with_layer(
        subject,
        UNIFORMITY.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| {
            vec![check_per_position_uniformity(
                &label, &mut l, &flat, 200, s.alpha,
            )]
        },
    )
}

fn run_successive(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    s: &Settings,
) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&[100_000], case.seed ^ 5);
    with_layer(
        subject,
        SUCCESSIVE.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| {
            vec![check_successive_calls_independent(
                &label, &mut l, &x, s.alpha,
            )]
        },
    )
}

fn run_long_range(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    s: &Settings,
) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&[LONG_RANGE_UNITS], case.seed ^ 9);
    with_layer(
        subject,
        LONG_RANGE.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| vec![check_long_range_independent(&label, &mut l, &x, s.alpha)],
    )
}

fn run_neighbours(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    s: &Settings,
) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&[100_000], case.seed ^ 5);
    with_layer(
        subject,
        NEIGHBOURS.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| vec![check_neighbours_independent(&label, &mut l, &x, s.alpha)],
    )
}

/// Drop indicators (`true` = output zero, of either sign) of one train call on
/// strictly positive `x`.
fn drops<F: Element>(
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> crate::check::Result<Vec<bool>> {
    layer
        .run(x.clone(), Phase::Train)
        .map(|y| y.iter().map(|v| v.is_zero()).collect())
}

/// Per-position uniformity: over `calls` train calls on strictly positive `x`, each
/// position's drop count must be Binomial(calls, rate); the chi-squared
/// dispersion statistic over all positions is compared with its `1 - alpha`
/// quantile. Power: positions whose rates deviate by a root-mean-square `d` raise
/// the statistic's mean by `calls * P * d^2 / (p (1 - p))`; the report states the
/// `d` detected with probability about 0.99 (normal approximation of the
/// chi-squared tail; about 0.015 for 4096 positions, 200 calls, p = 0.5). A bias
/// shared by all positions is the drop-rate check's business.
pub fn check_per_position_uniformity<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    calls: u64,
    alpha: f64,
) -> CheckReport {
    let rate = layer.rate();
    let mut counts = vec![0u64; x.len()];
    for _ in 0..calls {
        match drops(layer, x) {
            Ok(d) => d
                .iter()
                .zip(&mut counts)
                .for_each(|(&d, c)| *c += u64::from(d)),
            Err(e) => return CheckReport::from_error("per_position_uniformity", subject, &e),
        }
    }
    let (stat, p_value) = crate::check::stats::binomial_dispersion(&counts, calls, rate);
    let critical = crate::check::stats::chi_squared_critical(counts.len(), alpha);
    CheckReport {
        check: "per_position_uniformity".into(),
        subject: subject.into(),
        observed: format!(
            "chi2 = {stat:.1} over {} positions x {calls} calls (p-value {p_value:.3e})",
            counts.len()
        ),
        bound: format!("chi2 <= {critical:.1}"),
        alpha: Some(alpha),
        detectable: Some(format!(
            "RMS per-position bias >= {:.4} (power ~0.99)",
            per_position_detectable_rms(counts.len(), calls, rate, alpha)
        )),
        pass: stat <= critical,
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

/// The root-mean-square per-position rate bias that [`check_per_position_uniformity`]
/// detects with probability about 0.99: the bias raises the dispersion
/// statistic's mean by `calls * positions * d^2 / (p (1 - p))`, which must carry
/// it from its null mean (`positions - 1`) past the critical value by 2.33 of its
/// standard deviations (`sqrt(2 * positions)`).
pub fn per_position_detectable_rms(positions: usize, calls: u64, rate: f64, alpha: f64) -> f64 {
    let critical = crate::check::stats::chi_squared_critical(positions, alpha);
    let positions = positions as f64;
    let needed = critical - positions + 2.33 * (2.0 * positions).sqrt();
    (needed * rate * (1.0 - rate) / (calls as f64 * positions)).sqrt()
}

/// Independence of two masks: under independence, positions dropped in both are
/// Binomial(n, p^2) exactly, so the exact binomial region applies. `pairs`
/// yields the pairs of drop indicators (successive calls, or neighbours).
fn check_joint_drops(
    check: &str,
    subject: &str,
    pairs: &[(bool, bool)],
    rate: f64,
    alpha: f64,
) -> CheckReport {
    let n = pairs.len() as u64;
    let both = pairs.iter().filter(|(a, b)| *a && *b).count() as u64;
    let p2 = rate * rate;
    let (lo, hi) = crate::check::stats::binomial_region(n, p2, alpha);
    let bias = crate::check::stats::smallest_detectable_bias(n, p2, alpha);
    CheckReport {
        check: check.into(),
        subject: subject.into(),
        observed: format!("{both}/{n} pairs dropped together"),
        bound: format!("[{lo}, {hi}] for p^2 = {p2:.4}"),
        alpha: Some(alpha),
        detectable: correlation_detectable(rate, bias, ""),
        pass: n > 0 && (lo..=hi).contains(&both),
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

/// The smallest correlation a joint-drop test detects, given the smallest
/// detectable bias of its count's rate. At rate 0 or 1 every unit's fate is
/// fixed, so there is no correlation to detect and no power to state (the
/// exact checks of rate 0 and rate 1 judge those rates).
fn correlation_detectable(rate: f64, bias: f64, at: &str) -> Option<String> {
    (0.0 < rate && rate < 1.0).then(|| {
        format!(
            "correlation >= {:.4}{at} (power 0.99)",
            bias / (rate * (1.0 - rate))
        )
    })
}

/// Masks of two successive train calls are independent.
pub fn check_successive_calls_independent<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    alpha: f64,
) -> CheckReport {
    let rate = layer.rate();
    match (drops(layer, x), drops(layer, x)) {
        (Ok(a), Ok(b)) => {
            let pairs: Vec<_> = a.into_iter().zip(b).collect();
            check_joint_drops("successive_calls_independent", subject, &pairs, rate, alpha)
        }
        (Err(e), _) | (_, Err(e)) => {
            CheckReport::from_error("successive_calls_independent", subject, &e)
        }
    }
}

/// Neighbouring positions (2i, 2i+1) of one call are independent.
pub fn check_neighbours_independent<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    alpha: f64,
) -> CheckReport {
    let rate = layer.rate();
    match drops(layer, x) {
        Ok(d) => {
            let pairs: Vec<_> = d.chunks_exact(2).map(|p| (p[0], p[1])).collect();
            check_joint_drops("neighbours_independent", subject, &pairs, rate, alpha)
        }
        Err(e) => CheckReport::from_error("neighbours_independent", subject, &e),
    }
}

/// Lags the long-range check tests: `2^0` to `2^(LONG_RANGE_LAGS - 1)`.
pub const LONG_RANGE_LAGS: u32 = 18;

/// Units of the call the long-range check draws: twice the longest lag, so
/// every lag pairs each unit once.
pub const LONG_RANGE_UNITS: usize = 1 << LONG_RANGE_LAGS;

/// Drops at positions `i` and `i + 2^k` of one train call are independent, for
/// every `k` below [`LONG_RANGE_LAGS`] (SPEC §6): a mask stream that repeats
/// itself inside a call, or reuses a block of its keystream at a power-of-two
/// offset, drops both far more often than `p^2`.
///
/// Lag `L` pairs each unit of a block of `2L` with the unit `L` further on, so
/// the pairs of one lag are disjoint and, under independence, the count of
/// pairs dropped together is Binomial(pairs, p^2) exactly. Each of the 18 lags
/// is tested at `alpha / 18` (Bonferroni), so the false-alarm probability of
/// the whole family is at most `alpha`. The report names the lag farthest
/// from its expectation and the correlation each lag detects. `x` is strictly
/// positive with at least [`LONG_RANGE_UNITS`] units.
pub fn check_long_range_independent<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    alpha: f64,
) -> CheckReport {
    const CHECK: &str = "long_range_independent";
    let rate = layer.rate();
    let d = match drops(layer, x) {
        Ok(d) => d,
        Err(e) => return CheckReport::from_error(CHECK, subject, &e),
    };
    let lags: Vec<usize> = (0..LONG_RANGE_LAGS)
        .map(|k| 1usize << k)
        .filter(|&lag| 2 * lag <= d.len())
        .collect();
    let per_lag = alpha / lags.len().max(1) as f64;
    let p2 = rate * rate;
    // (lag, pairs, both dropped, inside its region, standardised distance)
    let mut worst: Option<(usize, u64, u64, bool, f64)> = None;
    let mut outside = 0usize;
    for &lag in &lags {
        let (mut pairs, mut both) = (0u64, 0u64);
        for block in d.chunks_exact(2 * lag) {
            let (a, b) = block.split_at(lag);
            pairs += lag as u64;
            both += a.iter().zip(b).filter(|(a, b)| **a && **b).count() as u64;
        }
        let (lo, hi) = binomial_region(pairs, p2, per_lag);
        let inside = (lo..=hi).contains(&both);
        outside += usize::from(!inside);
        let sd = (pairs as f64 * p2 * (1.0 - p2))
            .sqrt()
            .max(f64::MIN_POSITIVE);
        let z = (both as f64 - pairs as f64 * p2).abs() / sd;
        if worst.is_none_or(|(_, _, _, w_inside, w_z)| {
            (w_inside && !inside) || (w_inside == inside && z > w_z)
        }) {
            worst = Some((lag, pairs, both, inside, z));
        }
    }
    let Some((lag, pairs, both, _, _)) = worst else {
        return CheckReport::exact(
            CHECK,
            subject,
            format!("a call of {} units holds no lag to test", d.len()),
            format!("at least {LONG_RANGE_UNITS} units"),
            false,
        );
    };
    let (lo, hi) = binomial_region(pairs, p2, per_lag);
    let bias = smallest_detectable_bias(pairs, p2, per_lag);
    CheckReport {
        check: CHECK.into(),
        subject: subject.into(),
        observed: format!(
            "{outside} of {} lags outside their region; farthest: lag 2^{} with {both}/{pairs} pairs dropped together",
            lags.len(),
            lag.trailing_zeros()
        ),
        bound: format!(
            "each lag 2^0..2^{} in its Binomial(pairs, p^2 = {p2:.4}) region at alpha/{} (lag 2^{}: [{lo}, {hi}])",
            lags.len() - 1,
            lags.len(),
            lag.trailing_zeros()
        ),
        alpha: Some(alpha),
        detectable: correlation_detectable(rate, bias, &format!(" at any one lag of {pairs} pairs")),
        pass: outside == 0,
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rejections of the dispersion test over `trials` sets of per-position
    /// counts whose rates are `rate ± bias`, alternating (an RMS bias of `bias`).
    fn rejections(positions: usize, calls: u64, rate: f64, bias: f64, trials: u64) -> u64 {
        use rand_distr::{Binomial, Distribution};
        let critical = crate::check::stats::chi_squared_critical(positions, 1e-9);
        let mut rng = crate::rng::chacha(11);
        let low = Binomial::new(calls, rate - bias).unwrap();
        let high = Binomial::new(calls, rate + bias).unwrap();
        (0..trials)
            .filter(|_| {
                let counts: Vec<u64> = (0..positions)
                    .map(|i| {
                        if i % 2 == 0 {
                            low.sample(&mut rng)
                        } else {
                            high.sample(&mut rng)
                        }
                    })
                    .collect();
                crate::check::stats::binomial_dispersion(&counts, calls, rate).0 > critical
            })
            .count() as u64
    }

    #[test]
    fn the_stated_per_position_bias_is_detected_as_often_as_claimed() {
        // The figure in the rustdoc, then the claim itself by simulation: at
        // the stated bias nearly every trial rejects, at half of it few do.
        let stated = per_position_detectable_rms(4096, 200, 0.5, 1e-9);
        assert!((0.014..0.016).contains(&stated), "{stated}");
        assert!(rejections(4096, 200, 0.5, stated, 200) >= 190);
        assert!(rejections(4096, 200, 0.5, stated / 2.0, 200) <= 20);
    }

    /// At rate 0 and rate 1 nothing is random: the joint-drop counts are
    /// exact, the checks pass, and they state no power instead of a
    /// correlation divided by zero.
    #[test]
    fn rates_zero_and_one_state_no_power() {
        for rate in [0.0, 1.0] {
            let mut layer = crate::layers::Dropout::<f32>::new(rate)
                .unwrap()
                .with_seed(3);
            let x = ArrayD::from_elem(vec![LONG_RANGE_UNITS], 1.0f32);
            let long = check_long_range_independent("s", &mut layer, &x, 1e-9);
            let next = check_successive_calls_independent("s", &mut layer, &x, 1e-9);
            for r in [long, next] {
                assert!(r.pass && r.detectable.is_none(), "{}", r.line());
            }
        }
    }

    /// No pairs are no evidence of independence.
    #[test]
    fn a_joint_drop_check_of_no_pairs_fails() {
        let r = check_joint_drops("neighbours_independent", "s", &[], 0.5, 1e-9);
        assert!(
            !r.pass && r.observed == "0/0 pairs dropped together",
            "{}",
            r.line()
        );
    }
}
