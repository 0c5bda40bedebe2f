//! Checks of SPEC §2b for the Gaussian layers (GaussianNoise, GaussianDropout),
//! the eval-identity check every noise layer shares, and the three tests of a
//! sample against a claimed normal distribution that the Gaussian checks use.
//!
//! Invariants served: in `Eval` a noise layer returns its input bit for bit and
//! in the same buffer; in `Train` GaussianNoise adds `N(0, stddev^2)` and
//! GaussianDropout multiplies by `N(1, rate / (1 - rate))`. The claimed
//! distribution is computed here from the claimed parameter, never read from the
//! layer, so a layer with a wrong variance cannot vouch for itself.
//!
//! Each statistical check has false-alarm probability `alpha` (two-sided where
//! it matters) and states in `detectable` the smallest deviation it finds with
//! probability 0.99 at the sample size used (SPEC §6).

use super::report::CheckReport;
use super::stats::QUOTED_POWER;
use super::DropoutLike;
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// A row of values every eval-identity check runs through, as f32 bit patterns:
/// quiet and signalling NaNs with payloads and both signs, `±0.0`, `±inf`, the
/// smallest and largest subnormals, `f32::MIN_POSITIVE`, `f32::MAX` and ordinary values.
pub const SPECIAL_F32_BITS: [u32; 16] = [
    0x7fc0_0000,
    0xffc0_0001,
    0x7fa5_a5a5,
    0xff80_0001,
    0x0000_0000,
    0x8000_0000,
    0x7f80_0000,
    0xff80_0000,
    0x0000_0001,
    0x8000_0001,
    0x007f_ffff,
    0x0080_0000,
    0x7f7f_ffff,
    0x3f80_0000,
    0xbfc0_0000,
    0x4049_0fdb,
];

/// A row of values every eval-identity check runs through, as f64 bit patterns
/// (the same kinds as [`SPECIAL_F32_BITS`]).
pub const SPECIAL_F64_BITS: [u64; 16] = [
    0x7ff8_0000_0000_0000,
    0xfff8_0000_0000_0001,
    0x7ff4_a5a5_a5a5_a5a5,
    0xfff0_0000_0000_0001,
    0x0000_0000_0000_0000,
    0x8000_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x0000_0000_0000_0001,
    0x8000_0000_0000_0001,
    0x000f_ffff_ffff_ffff,
    0x0010_0000_0000_0000,
    0x7fef_ffff_ffff_ffff,
    0x3ff0_0000_0000_0000,
    0xbff8_0000_0000_0000,
    0x4009_21fb_5444_2d18,
];

/// `rows` rows of [`SPECIAL_F32_BITS`]: an input of shape `[rows, 16]` for the
/// eval-identity checks.
///
/// ```
/// let x = nncheck::check::noise::special_values_f32(2);
/// assert_eq!(x.shape(), &[2, 16]);
/// assert!(x[[0, 0]].is_nan() && x[[1, 5]].to_bits() == 0x8000_0000);
/// ```
pub fn special_values_f32(rows: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(vec![rows, 16], |i| f32::from_bits(SPECIAL_F32_BITS[i[1]]))
}

/// `rows` rows of [`SPECIAL_F64_BITS`], shape `[rows, 16]`.
pub fn special_values_f64(rows: usize) -> ArrayD<f64> {
    ArrayD::from_shape_fn(vec![rows, 16], |i| f64::from_bits(SPECIAL_F64_BITS[i[1]]))
}

/// In `Eval` the output is the input bit for bit (NaN payloads, `-0.0`,
/// infinities, subnormals) *and* the same buffer (no copy was made).
pub fn check_eval_identity_bits<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    let input = x.clone();
    let ptr = input.as_ptr();
    let (observed, pass) = match layer.run(input, Phase::Eval) {
        Ok(y) if y.shape() == x.shape() => {
            let differing = y
                .iter()
                .zip(x.iter())
                .filter(|(a, b)| a.to_bits_u64() != b.to_bits_u64())
                .count();
            let same_buffer = y.as_ptr() == ptr;
            (
                format!(
                    "{differing} of {} elements differ in bits; same buffer: {same_buffer}",
                    x.len()
                ),
                differing == 0 && same_buffer,
            )
        }
        Ok(y) => (format!("output of shape {:?}", y.shape()), false),
        Err(e) => (format!("error: {e}"), false),
    };
    CheckReport::exact(
        "eval_identity_bits",
        subject,
        observed,
        "0 differ; the input's own buffer comes back".into(),
        pass,
    )
}

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
/// use nncheck::check::noise::check_normal_mean;
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
/// let c = nncheck::check::noise::kolmogorov_critical(1_000_000, 1e-9);
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

/// The noise GaussianNoise adds: `calls` train calls on zeros of shape
/// `[rows, 1000]`; since `0 + e = e` exactly, the outputs are the noise itself.
pub fn gaussian_noise_samples<F: Element>(
    layer: &mut impl DropoutLike<F>,
    rows: usize,
    calls: usize,
) -> crate::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(rows * 1000 * calls);
    for _ in 0..calls {
        let y = layer.run(ArrayD::zeros(vec![rows, 1000]), Phase::Train)?;
        out.extend(y.iter().map(|v| Element::to_f64(*v)));
    }
    Ok(out)
}

/// GaussianNoise claimed to add `N(0, stddev^2)`: mean, variance and
/// Kolmogorov–Smirnov tests on `calls` train calls of `rows * 1000` zeros.
pub fn check_gaussian_noise<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    stddev: f64,
    rows: usize,
    calls: usize,
    alpha: f64,
) -> Vec<CheckReport> {
    match gaussian_noise_samples(layer, rows, calls) {
        Ok(s) => vec![
            check_normal_mean("gaussian_noise_mean", subject, &s, 0.0, stddev, alpha),
            check_normal_variance("gaussian_noise_variance", subject, &s, stddev, alpha),
            check_normal_ks("gaussian_noise_ks", subject, &s, 0.0, stddev, alpha),
        ],
        Err(e) => vec![CheckReport::errored("gaussian_noise", subject, e)],
    }
}

/// The input of the GaussianDropout checks: `±2^k` for `k` in `-2..=2`, so that
/// `y / x` is the multiplier exactly (a power of two scales without rounding).
fn powers_of_two<F: Element>(rows: usize) -> ArrayD<F> {
    ArrayD::from_shape_fn(vec![rows, 1000], |i| {
        let k = (i[1] % 5) as i32 - 2;
        let sign = if (i[0] + i[1]) % 2 == 0 { 1.0 } else { -1.0 };
        F::round_from(sign * 2f64.powi(k))
    })
}

/// The multipliers GaussianDropout draws: `y / x` over `calls` train calls on
/// `rows * 1000` powers of two (exact, see the input's definition).
pub fn gaussian_dropout_samples<F: Element>(
    layer: &mut impl DropoutLike<F>,
    rows: usize,
    calls: usize,
) -> crate::Result<Vec<f64>> {
    let x = powers_of_two::<F>(rows);
    let mut out = Vec::with_capacity(x.len() * calls);
    for _ in 0..calls {
        let y = layer.run(x.clone(), Phase::Train)?;
        out.extend(
            y.iter()
                .zip(x.iter())
                .map(|(y, x)| Element::to_f64(*y / *x)),
        );
    }
    Ok(out)
}

/// GaussianDropout claimed at `rate`: the multipliers `y / x` are
/// `N(1, rate / (1 - rate))` by mean, variance and Kolmogorov–Smirnov tests.
pub fn check_gaussian_dropout<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    rate: f64,
    rows: usize,
    calls: usize,
    alpha: f64,
) -> Vec<CheckReport> {
    let sd = (rate / (1.0 - rate)).sqrt();
    match gaussian_dropout_samples(layer, rows, calls) {
        Ok(s) => vec![
            check_normal_mean("gaussian_dropout_mean", subject, &s, 1.0, sd, alpha),
            check_normal_variance("gaussian_dropout_variance", subject, &s, sd, alpha),
            check_normal_ks("gaussian_dropout_ks", subject, &s, 1.0, sd, alpha),
        ],
        Err(e) => vec![CheckReport::errored("gaussian_dropout", subject, e)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::LayerAsDropout;
    use crate::layers::{GaussianDropout, GaussianNoise};

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

    #[test]
    fn real_layers_pass_and_a_wrong_claim_fails() {
        let mut noise = LayerAsDropout::new(
            Box::new(GaussianNoise::<f32>::new(0.5).unwrap().with_seed(1)),
            0.0,
        );
        assert!(check_gaussian_noise("gn", &mut noise, 0.5, 100, 2, 1e-9)
            .iter()
            .all(|r| r.pass));
        assert!(!check_gaussian_noise("gn", &mut noise, 0.55, 100, 2, 1e-9)[1].pass);
        let mut gd = LayerAsDropout::new(
            Box::new(GaussianDropout::<f64>::new(0.4).unwrap().with_seed(2)),
            0.4,
        );
        assert!(check_gaussian_dropout("gd", &mut gd, 0.4, 100, 2, 1e-9)
            .iter()
            .all(|r| r.pass));
        let x = special_values_f64(3);
        assert!(check_eval_identity_bits("gd", &mut gd, &x).pass);
    }

    /// Every row holds each of `±2^k`, `k` in `-2..=2`, a hundred times: both
    /// signs and five magnitudes at every batch index, as documented.
    #[test]
    fn powers_of_two_hold_both_signs_of_every_magnitude_in_every_row() {
        let x = powers_of_two::<f64>(3);
        for row in x.outer_iter() {
            for k in -2..=2 {
                for sign in [1.0, -1.0] {
                    let v = sign * 2f64.powi(k);
                    assert_eq!(row.iter().filter(|&&y| y == v).count(), 100, "{v}");
                }
            }
        }
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

    /// An eval call that hands the input's own buffer back under another
    /// shape keeps every bit and the buffer, and still is not the identity.
    #[test]
    fn eval_identity_fails_the_same_buffer_under_another_shape() {
        struct Flattens;
        impl DropoutLike<f32> for Flattens {
            fn rate(&self) -> f64 {
                0.5
            }
            fn run(&mut self, x: ArrayD<f32>, _phase: Phase) -> crate::error::Result<ArrayD<f32>> {
                let n = x.len();
                Ok(x.into_shape_with_order(ndarray::IxDyn(&[n])).unwrap())
            }
        }
        let x = ArrayD::from_shape_fn(vec![4, 4], |i| (i[0] * 4 + i[1]) as f32 + 1.0);
        let report = check_eval_identity_bits("flattens", &mut Flattens, &x);
        assert!(!report.pass, "{report:?}");
        assert!(
            report.observed.contains("shape [16]"),
            "{}",
            report.observed
        );
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
