//! The tests of a sample against a claimed normal distribution (SPEC §2b, §6):
//! the mean (normal quantile), the variance (chi-squared on the sample
//! variance) and the distribution (Kolmogorov–Smirnov against the normal CDF,
//! asymptotic critical value), each at alpha with the deviation it detects at
//! 0.99 power stated.

use super::QUOTED_POWER;
use crate::check::report::CheckReport;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("valid parameters")
}

/// The two-sided critical value of a standard-normal statistic at `alpha`.
fn z_critical(alpha: f64) -> f64 {
    standard_normal().inverse_cdf(1.0 - alpha / 2.0)
}

fn mean_and_sum_sq(samples: &[f64]) -> (f64, f64) {
    let n = samples.len().max(1) as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let ss = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
    (mean, ss)
}

/// Mean test: the sample mean of `samples`, claimed i.i.d. with mean `mean` and
/// standard deviation `sd`, lies within `z * sd / sqrt(n)` of `mean`, `z` the
/// two-sided normal quantile at `alpha` (exact for normal samples, the central
/// limit theorem otherwise). Detects a shift of `(z + z_0.99) * sd / sqrt(n)`.
///
/// ```
/// use nncheck::check::stats::normal::check_normal_mean;
/// let xs: Vec<f64> = (0..10_000).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
/// assert!(check_normal_mean("mean", "alternating", &xs, 0.0, 1.0, 1e-9).pass);
/// assert!(!check_normal_mean("mean", "alternating", &xs, 0.1, 1.0, 1e-9).pass);
/// ```
pub fn check_normal_mean(
    check: &str,
    subject: &str,
    samples: &[f64],
    mean: f64,
    sd: f64,
    alpha: f64,
) -> CheckReport {
    let n = samples.len() as f64;
    let (observed_mean, _) = mean_and_sum_sq(samples);
    let z = z_critical(alpha);
    let half_width = z * sd / n.sqrt();
    let detect = (z + standard_normal().inverse_cdf(QUOTED_POWER)) * sd / n.sqrt();
    CheckReport {
        check: check.into(),
        subject: subject.into(),
        observed: format!("mean {observed_mean:.6} over n = {}", samples.len()),
        bound: format!("{mean} ± {half_width:.6} (z = {z:.3}, sd {sd:.6} claimed)",),
        alpha: Some(alpha),
        detectable: Some(format!(
            "mean shift >= {detect:.6} = {:.4} sd (power 0.99)",
            detect / sd
        )),
        pass: !samples.is_empty() && (observed_mean - mean).abs() <= half_width,
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

/// Variance test: `sum (x - mean)^2 / sd^2` is chi-squared with `n - 1` degrees
/// of freedom for normal samples of standard deviation `sd`; accept inside the
/// two-sided `alpha` region. Detects a true standard deviation off by the
/// factor stated in the report (ratios of the region's ends to the 0.01 and
/// 0.99 quantiles).
pub fn check_normal_variance(
    check: &str,
    subject: &str,
    samples: &[f64],
    sd: f64,
    alpha: f64,
) -> CheckReport {
    if samples.len() < 2 || !(sd.is_finite() && sd > 0.0) {
        return CheckReport::errored(check, subject, "fewer than 2 samples or sd <= 0");
    }
    let df = (samples.len() - 1) as f64;
    let chi = ChiSquared::new(df).expect("df > 0");
    let (lo, hi) = (
        chi.inverse_cdf(alpha / 2.0),
        chi.inverse_cdf(1.0 - alpha / 2.0),
    );
    let (_, ss) = mean_and_sum_sq(samples);
    let stat = ss / (sd * sd);
    let up = (hi / chi.inverse_cdf(1.0 - QUOTED_POWER)).sqrt();
    let down = (lo / chi.inverse_cdf(QUOTED_POWER)).sqrt();
    CheckReport {
        check: check.into(),
        subject: subject.into(),
        observed: format!(
            "sample sd {:.6} (chi2 = {stat:.1}, df {df})",
            (ss / df).sqrt()
        ),
        bound: format!(
            "chi2 in [{lo:.1}, {hi:.1}], i.e. sd in [{:.6}, {:.6}] for sd = {sd:.6}",
            sd * (lo / df).sqrt(),
            sd * (hi / df).sqrt()
        ),
        alpha: Some(alpha),
        detectable: Some(format!(
            "sd off by a factor >= {up:.5} or <= {down:.5} (power 0.99)"
        )),
        pass: (lo..=hi).contains(&stat),
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

/// The probability that the Kolmogorov distribution exceeds `t`:
/// `2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 t^2)`.
fn kolmogorov_sf(t: f64) -> f64 {
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = (-2.0 * k * k * t * t).exp();
        sum += if k as u64 % 2 == 1 { term } else { -term };
        if term < 1e-300 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// The Kolmogorov–Smirnov critical distance for `n` samples at `alpha`, from the
/// asymptotic Kolmogorov distribution of `sqrt(n) D_n` (accurate to well within
/// the test's resolution at `n >= 10^4`; about `3.27 / sqrt(n)` at `alpha = 1e-9`).
///
/// ```
/// let c = nncheck::check::stats::normal::kolmogorov_critical(1_000_000, 1e-9);
/// assert!((c * 1000.0 - 3.273).abs() < 0.01);
/// ```
pub fn kolmogorov_critical(n: usize, alpha: f64) -> f64 {
    let (mut lo, mut hi) = (0.1f64, 20.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if kolmogorov_sf(mid) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi / (n.max(1) as f64).sqrt()
}

/// Distribution test: the Kolmogorov–Smirnov distance between the empirical CDF
/// of `samples` and the CDF of `N(mean, sd^2)` (statrs) is at most
/// [`kolmogorov_critical`]. Power, from the Dvoretzky–Kiefer–Wolfowitz bound
/// with Massart's constant: a true CDF whose largest distance from the claimed
/// one is at least `critical + sqrt(ln(2 / 0.01) / (2 n))` is rejected with
/// probability at least 0.99. Meant for `n >= 10^4`, where the asymptotic
/// critical value holds; the report says when `n` is smaller.
pub fn check_normal_ks(
    check: &str,
    subject: &str,
    samples: &[f64],
    mean: f64,
    sd: f64,
    alpha: f64,
) -> CheckReport {
    if samples.is_empty() || !(sd.is_finite() && sd > 0.0) || samples.iter().any(|v| v.is_nan()) {
        return CheckReport::errored(check, subject, "no samples, sd <= 0 or a NaN sample");
    }
    let normal = Normal::new(mean, sd).expect("sd > 0");
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let d = sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = normal.cdf(x);
            ((i + 1) as f64 / n - f).max(f - i as f64 / n)
        })
        .fold(0.0f64, f64::max);
    let critical = kolmogorov_critical(sorted.len(), alpha);
    let detect = critical + ((2.0 / (1.0 - QUOTED_POWER)).ln() / (2.0 * n)).sqrt();
    let small = if sorted.len() < 10_000 {
        " (n < 10^4: asymptotic critical value approximate)"
    } else {
        ""
    };
    CheckReport {
        check: check.into(),
        subject: subject.into(),
        observed: format!("KS distance {d:.6} over n = {}", sorted.len()),
        bound: format!("<= {critical:.6} against N({mean}, {sd:.6}^2){small}"),
        alpha: Some(alpha),
        detectable: Some(format!("CDF off by >= {detect:.6} somewhere (power 0.99)")),
        pass: d <= critical,
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers a record's `detectable` states after each `>=` and `<=`.
    fn stated(r: &CheckReport) -> Vec<f64> {
        let text = r.detectable.as_deref().expect("power stated");
        text.split(['>', '<'])
            .skip(1)
            .filter_map(|part| {
                part.trim_start_matches("= ")
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// How many of 100 sets of `n` draws from N(mean, sd) `check` rejects. At a
    /// claimed power of 0.99 fewer than 95 rejections happen with probability
    /// under 1e-3; at the smaller deviations below (a power of a few percent)
    /// more than 20 with less than 1e-6.
    fn rejections(n: usize, mean: f64, sd: f64, check: impl Fn(&[f64]) -> bool) -> usize {
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = crate::rng::chacha(22);
        (0..100)
            .filter(|_| {
                let xs: Vec<f64> = (0..n)
                    .map(|_| {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        mean + sd * z
                    })
                    .collect();
                !check(&xs)
            })
            .count()
    }

    #[test]
    fn the_stated_mean_shift_is_detected_as_often_as_claimed() {
        let n = 10_000;
        let r = check_normal_mean("m", "s", &vec![0.0; n], 0.0, 1.0, 1e-9);
        let shift = stated(&r)[0];
        let passes = |xs: &[f64]| check_normal_mean("m", "s", xs, 0.0, 1.0, 1e-9).pass;
        assert!(rejections(n, shift, 1.0, passes) >= 95, "shift {shift}");
        assert!(
            rejections(n, shift / 2.0, 1.0, passes) <= 20,
            "shift {shift}"
        );
    }

    #[test]
    fn the_stated_sd_factors_are_detected_as_often_as_claimed() {
        let n = 10_000;
        let alternating: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let r = check_normal_variance("v", "s", &alternating, 1.0, 1e-9);
        let (up, down) = (stated(&r)[0], stated(&r)[1]);
        assert!(up > 1.0 && down < 1.0, "{}", r.line());
        let passes = |xs: &[f64]| check_normal_variance("v", "s", xs, 1.0, 1e-9).pass;
        for factor in [up, down] {
            let caught = rejections(n, 0.0, factor, passes);
            assert!(caught >= 95, "factor {factor}: {caught}");
            assert!(
                rejections(n, 0.0, factor.sqrt(), passes) <= 20,
                "factor {factor}"
            );
        }
    }

    #[test]
    fn the_stated_ks_distance_is_detected_as_often_as_claimed() {
        // A normal shifted by `s` is off the claimed CDF by at most
        // `2 Phi(s / 2) - 1`; shift it so that this is the stated distance. The
        // statement rests on the Dvoretzky-Kiefer-Wolfowitz bound, which is
        // conservative: half of it is still often caught, a quarter rarely.
        let n = 10_000;
        let xs = vec![0.0; n];
        let distance = stated(&check_normal_ks("ks", "s", &xs, 0.0, 1.0, 1e-9))[0];
        let unit = Normal::new(0.0, 1.0).unwrap();
        let shift = |d: f64| 2.0 * unit.inverse_cdf((1.0 + d) / 2.0);
        let passes = |xs: &[f64]| check_normal_ks("ks", "s", xs, 0.0, 1.0, 1e-9).pass;
        assert!(
            rejections(n, shift(distance), 1.0, passes) >= 95,
            "{distance}"
        );
        assert!(
            rejections(n, shift(distance / 4.0), 1.0, passes) <= 20,
            "{distance}"
        );
    }

    #[test]
    fn the_variance_check_refuses_too_few_samples_or_a_bad_sd() {
        for (xs, sd) in [
            (&[1.0][..], 1.0),
            (&[1.0, 2.0, 3.0][..], 0.0),
            (&[1.0, 2.0][..], f64::NAN),
        ] {
            let r = check_normal_variance("v", "s", xs, sd, 1e-9);
            assert!(!r.pass && r.observed.contains("error"), "{}", r.line());
        }
    }

    #[test]
    fn the_variance_region_is_the_chi_squared_quantiles_at_half_alpha() {
        // scipy.stats.chi2.ppf(5e-10, 9999) and .isf(5e-10, 9999).
        let alternating: Vec<f64> = (0..10_000)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let r = check_normal_variance("v", "s", &alternating, 1.0, 1e-9);
        assert!(
            r.bound.starts_with("chi2 in [9159.1, 10887.3]"),
            "{}",
            r.line()
        );
    }

    #[test]
    fn the_ks_distance_and_critical_value_are_exact_on_known_cases() {
        assert!((kolmogorov_critical(1_000_000, 1e-9) * 1e3 - 3.273).abs() < 0.01);
        assert!((kolmogorov_critical(10_000, 1e-9) * 1e2 - 3.273).abs() < 0.01);
        // The normal's quantiles at (i + 1/2) / n: the empirical CDF is off by
        // exactly 1 / (2n) at every step.
        let n = 10_000;
        let normal = Normal::new(0.0, 1.0).unwrap();
        let xs: Vec<f64> = (0..n)
            .map(|i| normal.inverse_cdf((i as f64 + 0.5) / n as f64))
            .collect();
        let r = check_normal_ks("ks", "s", &xs, 0.0, 1.0, 1e-9);
        assert!(
            r.pass && r.observed.starts_with("KS distance 0.000050 "),
            "{}",
            r.line()
        );
        let shifted: Vec<f64> = xs.iter().map(|x| x + 0.1).collect();
        let r = check_normal_ks("ks", "s", &shifted, 0.0, 1.0, 1e-9);
        // sup |Phi(x - 0.1) - Phi(x)| = 2 Phi(0.05) - 1 = 0.03988.
        assert!(
            !r.pass && r.observed.starts_with("KS distance 0.0399"),
            "{}",
            r.line()
        );
    }

    /// A claimed spread that no normal has is the caller's error, reported as
    /// such: never a verdict, never a panic.
    #[test]
    fn the_ks_check_refuses_a_spread_that_is_not_a_positive_number() {
        let xs = [0.1, -0.2, 0.3];
        for sd in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            let r = check_normal_ks("ks", "s", &xs, 0.0, sd, 1e-9);
            assert!(
                !r.pass && r.observed.contains("sd <= 0"),
                "sd {sd}: {}",
                r.line()
            );
        }
        assert!(!check_normal_ks("ks", "s", &[0.1, f64::NAN], 0.0, 1.0, 1e-9).pass);
        assert!(!check_normal_ks("ks", "s", &[], 0.0, 1.0, 1e-9).pass);
    }

    #[test]
    fn the_ks_report_says_when_n_is_below_the_asymptotic_range() {
        let normal = Normal::new(0.0, 1.0).unwrap();
        let quantiles = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| normal.inverse_cdf((i as f64 + 0.5) / n as f64))
                .collect()
        };
        for (n, noted) in [(100, true), (9_999, true), (10_000, false), (20_000, false)] {
            let r = check_normal_ks("ks", "s", &quantiles(n), 0.0, 1.0, 1e-9);
            assert_eq!(r.bound.contains("n < 10^4"), noted, "n = {n}: {}", r.line());
        }
    }

    #[test]
    fn kolmogorov_tail_matches_known_values() {
        // P(sqrt(n) D > 1.3581) = 0.05 and P(> 1.6276) = 0.01 (Kolmogorov's table).
        assert!((kolmogorov_sf(1.3581) - 0.05).abs() < 1e-4);
        assert!((kolmogorov_sf(1.6276) - 0.01).abs() < 1e-4);
    }

    // Below t = 1 the series' later terms matter (at 0.5 the first alone
    // exceeds 1); the values are the Kolmogorov distribution's own.
    #[test]
    fn kolmogorov_tail_sums_the_later_terms_where_they_matter() {
        assert!((kolmogorov_sf(0.5) - 0.963_945_2).abs() < 1e-6);
        assert!((kolmogorov_sf(0.8) - 0.544_142_4).abs() < 1e-6);
        assert!((kolmogorov_sf(1.0) - 0.269_999_7).abs() < 1e-6);
    }

    // Samples below the claimed law put the empirical CDF above it, where the
    // distance is read at the top of each step, `(i + 1) / n`.
    #[test]
    fn the_ks_distance_reads_the_top_of_each_step_for_samples_below_the_law() {
        let normal = Normal::new(0.0, 1.0).unwrap();
        let one = [normal.inverse_cdf(0.2)];
        let r = check_normal_ks("ks", "s", &one, 0.0, 1.0, 1e-9);
        assert!(
            r.observed.starts_with("KS distance 0.800000 "),
            "{}",
            r.line()
        );
        let n = 10_000;
        let lowered: Vec<f64> = (0..n)
            .map(|i| normal.inverse_cdf((i as f64 + 0.5) / n as f64) - 0.1)
            .collect();
        let r = check_normal_ks("ks", "s", &lowered, 0.0, 1.0, 1e-9);
        // 2 Phi(0.05) - 1 plus the half step 1 / (2n).
        assert!(
            !r.pass && r.observed.starts_with("KS distance 0.039928 "),
            "{}",
            r.line()
        );
    }

    /// At a claimed sd of 2 the stated mean shift still has power 0.99, not
    /// more: `Phi(shift * sqrt(n) / sd - z)` is 0.99.
    #[test]
    fn the_stated_mean_shift_scales_with_the_claimed_sd() {
        let n = 10_000;
        let xs: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 2.0 } else { -2.0 })
            .collect();
        let r = check_normal_mean("mean", "s", &xs, 0.0, 2.0, 1e-9);
        let shift = stated(&r)[0];
        let normal = Normal::new(0.0, 1.0).unwrap();
        let z = normal.inverse_cdf(1.0 - 1e-9 / 2.0);
        let power = normal.cdf(shift * (n as f64).sqrt() / 2.0 - z);
        assert!(
            r.pass && (power - 0.99).abs() < 1e-3,
            "{}: power {power}",
            r.line()
        );
    }

    /// Two samples are the fewest a variance can be judged from (one degree of
    /// freedom): judged, not refused.
    #[test]
    fn the_variance_check_judges_two_samples() {
        let r = check_normal_variance("v", "s", &[1.0, -1.0], 1.0, 1e-9);
        assert!(r.pass && !r.observed.contains("error"), "{}", r.line());
    }

    /// The stated KS distance is the critical value plus the DKW margin
    /// `sqrt(ln(2 / (1 - power)) / (2n))` at the quoted power: a larger figure
    /// would still be detected, so only the formula tells it from a wrong one.
    /// The report prints six decimals, so the figure read back is within
    /// rounding (`5e-7`) of the formula's, well inside `2e-6`.
    #[test]
    fn the_stated_ks_distance_is_the_critical_value_plus_the_dkw_margin() {
        for n in [100usize, 10_000] {
            let xs: Vec<f64> = (0..n).map(|i| (i as f64 / n as f64) - 0.5).collect();
            let r = check_normal_ks("ks", "s", &xs, 0.0, 1.0, 1e-9);
            let margin = ((2.0 / (1.0 - QUOTED_POWER)).ln() / (2.0 * n as f64)).sqrt();
            let expected = kolmogorov_critical(n, 1e-9) + margin;
            assert!(
                (stated(&r)[0] - expected).abs() < 2e-6,
                "n = {n}: {}",
                r.line()
            );
        }
    }
}
