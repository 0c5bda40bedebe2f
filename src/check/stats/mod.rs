//! The statistics behind every randomness check (SPEC §6): exact binomial
//! acceptance regions, their power, and the chi-squared dispersion test.
//!
//! A check accepts when what it observed lies in a region whose probability under
//! the claimed behaviour is at least `1 - alpha`; its power is the probability of
//! rejecting when the truth is off by a given bias, computed from the same
//! distributions, so "which bias it detects" is a computed figure too.

use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, DiscreteCDF};

pub mod normal;

/// The default false-alarm probability of one check.
pub const DEFAULT_ALPHA: f64 = 1e-9;

/// The power at which "smallest detectable bias" is quoted.
pub const QUOTED_POWER: f64 = 0.99;

/// `[lo, hi]` such that a Binomial(n, p) count falls outside with probability at
/// most `alpha` (at most `alpha / 2` on each side).
///
/// ```
/// let (lo, hi) = nncheck::check::stats::binomial_region(1_000_000, 0.5, 1e-9);
/// assert!(lo < 500_000 && hi > 500_000);
/// assert!(((hi - lo) as f64 / 2.0 / 1e6 - 0.0031).abs() < 0.0002);
/// ```
pub fn binomial_region(n: u64, p: f64, alpha: f64) -> (u64, u64) {
    if p <= 0.0 {
        return (0, 0);
    }
    if p >= 1.0 {
        return (n, n);
    }
    let dist = Binomial::new(p, n).expect("p in (0, 1)");
    (
        dist.inverse_cdf(alpha / 2.0),
        dist.inverse_cdf(1.0 - alpha / 2.0),
    )
}

/// The probability that a Binomial(n, p_true) count falls outside `[lo, hi]`.
pub fn binomial_power(n: u64, p_true: f64, lo: u64, hi: u64) -> f64 {
    let p_true = p_true.clamp(0.0, 1.0);
    if p_true == 0.0 {
        return if lo > 0 { 1.0 } else { 0.0 };
    }
    if p_true == 1.0 {
        return if hi < n { 1.0 } else { 0.0 };
    }
    let dist = Binomial::new(p_true, n).expect("p in (0, 1)");
    let below = if lo == 0 { 0.0 } else { dist.cdf(lo - 1) };
    below + dist.sf(hi)
}

/// The smallest absolute bias `d` (on a 1e-5 grid, the larger of the two
/// directions) such that a true probability `p ± d` is rejected with probability
/// at least [`QUOTED_POWER`].
pub fn smallest_detectable_bias(n: u64, p: f64, alpha: f64) -> f64 {
    let (lo, hi) = binomial_region(n, p, alpha);
    let detect = |d: f64| -> f64 {
        let up = if p + d <= 1.0 {
            binomial_power(n, p + d, lo, hi)
        } else {
            1.0
        };
        let down = if p - d >= 0.0 {
            binomial_power(n, p - d, lo, hi)
        } else {
            1.0
        };
        up.min(down)
    };
    // Power grows with d: bisect on the grid.
    let (mut bad, mut good) = (0.0f64, 1.0f64);
    while good - bad > 1e-5 {
        let mid = (bad + good) / 2.0;
        if detect(mid) >= QUOTED_POWER {
            good = mid;
        } else {
            bad = mid;
        }
    }
    good
}

/// Chi-squared dispersion test of counts that should each be Binomial(trials, p):
/// `sum (k_i - trials p)^2 / (trials p (1 - p))` against chi-squared with as many
/// degrees of freedom as counts. Returns the statistic and its upper-tail p-value.
pub fn binomial_dispersion(counts: &[u64], trials: u64, p: f64) -> (f64, f64) {
    let mean = trials as f64 * p;
    let var = mean * (1.0 - p);
    let stat: f64 = counts
        .iter()
        .map(|&k| (k as f64 - mean).powi(2) / var)
        .sum();
    let dist = ChiSquared::new(counts.len() as f64).expect("at least one count");
    (stat, dist.sf(stat))
}

/// The chi-squared statistic above which [`binomial_dispersion`] rejects at `alpha`.
pub fn chi_squared_critical(degrees: usize, alpha: f64) -> f64 {
    ChiSquared::new(degrees as f64)
        .expect("degrees > 0")
        .inverse_cdf(1.0 - alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bias_that_would_leave_the_unit_interval_is_not_needed_in_that_direction() {
        // Near p = 1 the region reaches n: only a downward bias can be detected,
        // and the stated bias is that one.
        let (n, p) = (100, 0.999);
        let (lo, hi) = binomial_region(n, p, DEFAULT_ALPHA);
        assert_eq!(hi, n);
        let d = smallest_detectable_bias(n, p, DEFAULT_ALPHA);
        assert!(d < 0.5, "{d}");
        assert!(binomial_power(n, p - d, lo, hi) >= QUOTED_POWER);
        assert!(binomial_power(n, p - (d - 1e-5), lo, hi) < QUOTED_POWER);
    }

    #[test]
    fn near_zero_only_an_upward_bias_is_stated() {
        let (n, p) = (100, 0.001);
        let (lo, hi) = binomial_region(n, p, DEFAULT_ALPHA);
        assert_eq!(lo, 0);
        let d = smallest_detectable_bias(n, p, DEFAULT_ALPHA);
        assert!(d < 0.5, "{d}");
        assert!(binomial_power(n, p + d, lo, hi) >= QUOTED_POWER);
        assert!(binomial_power(n, p + (d - 1e-5), lo, hi) < QUOTED_POWER);
    }

    // At p = 0 or 1 every count is certain: the power is 1 exactly when the
    // region leaves that count out, 0 when it holds it.
    #[test]
    fn the_power_at_a_certain_count_is_whether_the_region_excludes_it() {
        assert_eq!(binomial_power(100, 0.0, 0, 10), 0.0);
        assert_eq!(binomial_power(100, 0.0, 1, 10), 1.0);
        assert_eq!(binomial_power(100, 1.0, 90, 100), 0.0);
        assert_eq!(binomial_power(100, 1.0, 90, 99), 1.0);
    }

    // The power is the probability mass outside `[lo, hi]`, counted term by
    // term from the binomial pmf on a small case where every term is exact
    // enough to compare at 1e-12.
    #[test]
    fn the_power_is_the_mass_outside_the_region() {
        use statrs::distribution::Discrete;
        let (n, p, lo, hi) = (20u64, 0.3, 3u64, 9u64);
        let dist = Binomial::new(p, n).unwrap();
        let outside: f64 = (0..=n)
            .filter(|&k| k < lo || k > hi)
            .map(|k| dist.pmf(k))
            .sum();
        assert!((binomial_power(n, p, lo, hi) - outside).abs() < 1e-12);
        // With `lo = 0` nothing lies below the region.
        let above: f64 = (hi + 1..=n).map(|k| dist.pmf(k)).sum();
        assert!((binomial_power(n, p, 0, hi) - above).abs() < 1e-12);
    }
}
