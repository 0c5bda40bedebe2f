//! AlphaDropout (SPEC §2b): every output is exactly one of the two
//! values the formula allows, drops are exactly binomial, and on standard-normal
//! input the output keeps mean 0 and variance 1.
//!
//! The constants are computed here from SELU's `alpha` and `scale` and the
//! claimed rate, never read from the layer, so a layer with a wrong (or no)
//! affine correction cannot vouch for itself.

use super::harness::{noise_label, with_noise_layer};
use crate::check::inputs::{audit_rng, nonzero_input};
use crate::check::registry::{Judged, NoiseCheck, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::stats::{binomial_region, smallest_detectable_bias, QUOTED_POWER};
use crate::check::subjects::{DropoutLike, NoiseKind, NoiseSubject};
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::{ArrayD, Zip};
use rand_distr::{Distribution, StandardNormal};
use statrs::distribution::{ContinuousCDF, Normal};

/// Every output is one of the two allowed values, bit for bit.
pub const EXACT: NoiseCheck = NoiseCheck {
    records: &[RecordSpec::invariant(
        "alpha_dropout_values_exact",
        "every AlphaDropout output is a*x + b (kept) or the dropped value a*alpha_p + b by one listed rounding, bit for bit",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: run_exact,
};

/// The drop count, exactly binomial, on 10^5 draws.
pub const DROP_RATE: NoiseCheck = NoiseCheck {
    records: &[RecordSpec::invariant(
        "alpha_dropout_drop_rate",
        "AlphaDropout's drop count lies in the exact binomial region",
    )],
    needs: &[],
    judged: Judged::Statistical,
    run: run_drop_rate,
};

/// Mean 0 and variance 1 kept on standard-normal input, on 10^5 draws.
pub const MOMENTS: NoiseCheck = NoiseCheck {
    records: &[
        RecordSpec::invariant(
            "alpha_dropout_mean",
            "on standard-normal input AlphaDropout's output has mean 0 (central limit bound)",
        ),
        RecordSpec::invariant(
            "alpha_dropout_variance",
            "on standard-normal input AlphaDropout's output has variance 1 (central limit bound)",
        ),
    ],
    needs: &[],
    judged: Judged::Statistical,
    run: run_moments,
};

fn run_exact(subject: &dyn NoiseSubject, case: &DropoutCase, _: &Settings) -> Vec<CheckReport> {
    let label = noise_label("AlphaDropout", case);
    let x = nonzero_input(&[64, 64], case.seed ^ 4);
    with_noise_layer(
        subject,
        &[EXACT.id()],
        &label,
        NoiseKind::AlphaDropout,
        case,
        2,
        |mut l| vec![check_alpha_dropout_exact(&label, &mut l, case.rate, &x)],
    )
}

fn run_drop_rate(subject: &dyn NoiseSubject, case: &DropoutCase, s: &Settings) -> Vec<CheckReport> {
    let label = noise_label("AlphaDropout", case);
    with_noise_layer(
        subject,
        &[DROP_RATE.id()],
        &label,
        NoiseKind::AlphaDropout,
        case,
        2,
        |mut l| {
            vec![check_alpha_dropout_drop_rate(
                &label,
                &mut l,
                case.rate,
                &[100, 1000],
                1,
                s.alpha,
            )]
        },
    )
}

fn run_moments(subject: &dyn NoiseSubject, case: &DropoutCase, s: &Settings) -> Vec<CheckReport> {
    let label = noise_label("AlphaDropout", case);
    with_noise_layer(
        subject,
        &MOMENTS.ids(),
        &label,
        NoiseKind::AlphaDropout,
        case,
        2,
        |mut l| {
            check_alpha_dropout_moments(&label, &mut l, case.rate, 100_000, case.seed ^ 5, s.alpha)
        },
    )
}

/// `(a, b, alpha_p)` at `rate` in f64: `alpha_p = -alpha * scale` with SELU's
/// constants, `a = ((1 - rate) * (1 + rate * alpha_p^2))^-0.5`, `b = -a * alpha_p * rate`.
pub fn expected_affine(rate: f64) -> (f64, f64, f64) {
    let alpha = 1.673_263_242_354_377_2_f64;
    let scale = 1.050_700_987_355_480_5_f64;
    let alpha_p = -alpha * scale;
    let a = ((1.0 - rate) * (1.0 + rate * alpha_p * alpha_p)).powf(-0.5);
    (a, -a * alpha_p * rate, alpha_p)
}

/// `a` and `b` in the element type, each rounded once from f64: a kept `x`
/// becomes `(a*x)+b`, each operation rounded (no fused multiply-add).
fn affine<F: Element>(rate: f64) -> (F, F) {
    let (a, b, _) = expected_affine(rate);
    (F::round_from(a), F::round_from(b))
}

/// The value a dropped element takes, as the honest implementations round it:
/// SPEC's (and Keras's) `a*alpha_p + b`, the three constants rounded once and
/// each operation rounded; and PyTorch's `b - a*|alpha_p|`, the two products
/// rounded once from f64 and subtracted in the element type. They differ in
/// the last bits at some rates; a call must keep to one of them.
pub fn dropped_values<F: Element>(rate: f64) -> [(&'static str, F); 2] {
    let (a, b, alpha_p) = expected_affine(rate);
    let (a_e, b_e, alpha_p_e) = (F::round_from(a), F::round_from(b), F::round_from(alpha_p));
    [
        ("a*alpha_p + b", a_e * alpha_p_e + b_e),
        ("b - a*|alpha_p|", b_e - F::round_from(-alpha_p * a)),
    ]
}

/// One train call on `x`: every output equals `(a * x) + b` (kept), computed in
/// the element type as [`expected_affine`] rounded once, or the dropped value
/// by one of the roundings of [`dropped_values`] for the whole call. Elements
/// whose kept and dropped values coincide are counted as ambiguous.
pub fn check_alpha_dropout_exact<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    rate: f64,
    x: &ArrayD<F>,
) -> CheckReport {
    let check = "alpha_dropout_values_exact";
    let y = match layer.run(x.clone(), Phase::Train) {
        Ok(y) if y.shape() == x.shape() => y,
        Ok(y) => return CheckReport::errored(check, subject, format!("shape {:?}", y.shape())),
        Err(e) => return CheckReport::errored(check, subject, e),
    };
    let (a, b) = affine::<F>(rate);
    let candidates = dropped_values::<F>(rate);
    // Drops per rounding; a value both roundings give counts for both.
    let (mut kept, mut drops, mut ambiguous, mut other) = (0u64, 0u64, 0u64, 0u64);
    let mut by_rounding = [0u64; 2];
    Zip::from(x).and(&y).for_each(|&x, &y| {
        let y = y.to_bits_u64();
        let is_kept = y == (a * x + b).to_bits_u64();
        let mut is_dropped = false;
        for (count, (_, d)) in by_rounding.iter_mut().zip(&candidates) {
            if y == d.to_bits_u64() {
                // Only unambiguous drops say which rounding the layer follows.
                *count += u64::from(!is_kept);
                is_dropped = true;
            }
        }
        match (is_kept, is_dropped) {
            (true, true) => ambiguous += 1,
            (true, false) => kept += 1,
            (false, true) => drops += 1,
            (false, false) => other += 1,
        }
    });
    // One rounding must account for every drop.
    let rounding = by_rounding.iter().position(|&n| n == drops);
    let named = match rounding {
        Some(0) | None => "a*alpha_p+b".to_string(),
        Some(i) => candidates[i].0.replace(' ', ""),
    };
    let mut observed = format!(
        "{kept} kept == a*x+b, {drops} dropped == {named}, {ambiguous} either, {other} other"
    );
    if rounding.is_none() {
        observed.push_str("; the drops mix two roundings");
    }
    CheckReport::exact(
        check,
        subject,
        observed,
        format!(
            "0 other, one rounding (a = {a}, b = {b}, dropped value {} or {} in {})",
            candidates[0].1,
            candidates[1].1,
            F::NAME
        ),
        other == 0 && rounding.is_some() && kept + drops + ambiguous > 0,
    )
}

/// Over `calls` train calls on zeros (kept: `b`, dropped: a value of
/// [`dropped_values`], distinct from `b` for `0 < rate < 1`), the number of dropped elements lies in the exact
/// binomial acceptance region of Binomial(draws, rate) at `alpha`.
pub fn check_alpha_dropout_drop_rate<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    rate: f64,
    shape: &[usize],
    calls: usize,
    alpha: f64,
) -> CheckReport {
    let check = "alpha_dropout_drop_rate";
    let dropped_values = dropped_values::<F>(rate).map(|(_, d)| d.to_bits_u64());
    let (mut draws, mut dropped) = (0u64, 0u64);
    for _ in 0..calls {
        match layer.run(ArrayD::zeros(shape.to_vec()), Phase::Train) {
            Ok(y) => {
                draws += y.len() as u64;
                dropped += y
                    .iter()
                    .filter(|v| dropped_values.contains(&v.to_bits_u64()))
                    .count() as u64;
            }
            Err(e) => return CheckReport::errored(check, subject, e),
        }
    }
    let (lo, hi) = binomial_region(draws, rate, alpha);
    let n = draws.max(1) as f64;
    CheckReport {
        check: check.into(),
        subject: subject.into(),
        observed: format!("{dropped}/{draws} dropped = {:.5}", dropped as f64 / n),
        bound: format!(
            "[{lo}, {hi}] = [{:.5}, {:.5}] for p = {rate}",
            lo as f64 / n,
            hi as f64 / n
        ),
        alpha: Some(alpha),
        detectable: (0.0 < rate && rate < 1.0 && draws > 0).then(|| {
            format!(
                "rate bias >= {:.5} (power 0.99)",
                smallest_detectable_bias(draws, rate, alpha)
            )
        }),
        pass: draws > 0 && (lo..=hi).contains(&dropped),
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

/// The fourth central moment of the output at `rate` on standard-normal input:
/// `x' = x` (probability `1 - rate`) or `alpha_p`, centred at `m = rate * alpha_p`,
/// then scaled by `a`: `a^4 ((1 - rate)(3 + 6 m^2 + m^4) + rate (alpha_p - m)^4)`.
fn output_fourth_moment(rate: f64) -> f64 {
    let (a, _, alpha_p) = expected_affine(rate);
    let m = rate * alpha_p;
    a.powi(4) * ((1.0 - rate) * (3.0 + 6.0 * m * m + m.powi(4)) + rate * (alpha_p - m).powi(4))
}

/// On `n` standard-normal inputs (ChaCha8 seeded `input_seed`, rand_distr's
/// ziggurat, rounded to the element type) one train call's output keeps mean 0
/// and variance 1: two reports, `alpha_dropout_mean` (`|mean| <= z / sqrt(n)`)
/// and `alpha_dropout_variance` (`|s^2 - 1| <= z sqrt((mu4 - 1) / n)`, `mu4` the
/// output's fourth central moment computed from the claimed rate), `z` the
/// two-sided normal quantile at `alpha`. Both rest on the central limit theorem
/// (the output is a mixture, not a normal): at `n = 10^6` the normal tail is a
/// close approximation but not a proven bound on the false-alarm probability.
pub fn check_alpha_dropout_moments<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    rate: f64,
    n: usize,
    input_seed: u64,
    alpha: f64,
) -> Vec<CheckReport> {
    let mut rng = audit_rng(input_seed);
    let x = ArrayD::from_shape_simple_fn(vec![n], || {
        F::round_from(<StandardNormal as Distribution<f64>>::sample(
            &StandardNormal,
            &mut rng,
        ))
    });
    let y = match layer.run(x, Phase::Train) {
        Ok(y) => y,
        Err(e) => return vec![CheckReport::errored("alpha_dropout_moments", subject, e)],
    };
    let count = y.len().max(1) as f64;
    let mean = y.iter().map(|v| Element::to_f64(*v)).sum::<f64>() / count;
    let var = y
        .iter()
        .map(|v| (Element::to_f64(*v) - mean).powi(2))
        .sum::<f64>()
        / (count - 1.0).max(1.0);
    let normal = Normal::new(0.0, 1.0).expect("valid");
    let z = normal.inverse_cdf(1.0 - alpha / 2.0);
    let power = z + normal.inverse_cdf(QUOTED_POWER);
    let mean_bound = z / count.sqrt();
    let var_sd = ((output_fourth_moment(rate) - 1.0) / count).sqrt();
    vec![
        CheckReport {
            check: "alpha_dropout_mean".into(),
            subject: subject.into(),
            observed: format!("mean {mean:.6} over n = {n} standard-normal inputs"),
            bound: format!("0 ± {mean_bound:.6} (CLT, z = {z:.3})"),
            alpha: Some(alpha),
            detectable: Some(format!(
                "mean shift >= {:.6} (power 0.99)",
                power / count.sqrt()
            )),
            pass: mean.abs() <= mean_bound,
            kind: crate::check::report::RecordKind::Invariant,
            not_applicable: None,
        },
        CheckReport {
            check: "alpha_dropout_variance".into(),
            subject: subject.into(),
            observed: format!("variance {var:.6} over n = {n}"),
            bound: format!(
                "1 ± {:.6} (CLT on s^2, mu4 = {:.4}, z = {z:.3})",
                z * var_sd,
                output_fourth_moment(rate)
            ),
            alpha: Some(alpha),
            detectable: Some(format!(
                "variance off by >= {:.6} (power 0.99)",
                power * var_sd
            )),
            pass: (var - 1.0).abs() <= z * var_sd,
            kind: crate::check::report::RecordKind::Invariant,
            not_applicable: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::subjects::observed::Observed;
    use crate::check::LayerAsDropout;
    use crate::layers::AlphaDropout;

    /// A real AlphaDropout whose outputs pass through `warp` (the project's
    /// twin wrapper): one flaw per twin, so each report can be seen to judge
    /// its own rule only.
    fn warped(rate: f64, warp: fn(ArrayD<f32>) -> ArrayD<f32>) -> LayerAsDropout<f32> {
        let layer = AlphaDropout::<f32>::new(rate).unwrap().with_seed(3);
        let twin = Observed::with_forward(
            Box::new(layer),
            Box::new(move |inner, x, ctx| inner.forward(x, ctx).map(warp)),
        );
        LayerAsDropout::new(Box::new(twin), rate)
    }

    #[test]
    fn fourth_moment_at_rate_zero_is_the_normals() {
        assert!((output_fourth_moment(0.0) - 3.0).abs() < 1e-12);
    }

    /// The closed form against a second derivation: the mixture's raw moments
    /// (`(1 - p) E[x^k] + p alpha_p^k`, with the normal's 0, 1, 0, 3), centred by
    /// the binomial expansion and scaled by `a^4`. The output's variance, `a^2`
    /// times the mixture's, is 1 by the choice of `a`.
    #[test]
    fn fourth_moment_matches_the_raw_moment_expansion() {
        for rate in [0.05, 0.2, 0.5, 0.8] {
            let (a, _, alpha_p) = expected_affine(rate);
            let raw = |k: i32, normal: f64| (1.0 - rate) * normal + rate * alpha_p.powi(k);
            let (m1, m2, m3, m4) = (raw(1, 0.0), raw(2, 1.0), raw(3, 0.0), raw(4, 3.0));
            let variance = m2 - m1 * m1;
            let central4 = m4 - 4.0 * m1 * m3 + 6.0 * m1 * m1 * m2 - 3.0 * m1.powi(4);
            assert!((a * a * variance - 1.0).abs() < 1e-12, "rate {rate}");
            let expected = a.powi(4) * central4;
            let got = output_fourth_moment(rate);
            assert!(
                (got - expected).abs() < 1e-9 * expected,
                "rate {rate}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn a_wrongly_shaped_output_is_an_error_not_a_verdict() {
        let mut flat = warped(0.2, |y| {
            let n = y.len();
            y.into_shape_with_order(vec![n]).unwrap()
        });
        let x = ArrayD::from_elem(vec![4, 8], 1.0_f32);
        let r = check_alpha_dropout_exact("flat", &mut flat, 0.2, &x);
        assert!(!r.pass && r.line().contains("shape [32]"), "{}", r.line());
    }

    #[test]
    fn the_drop_rate_states_a_power_only_where_a_bias_is_detectable() {
        // The claimed rate is the check's argument; the layer's own stays 0.2.
        for (rate, calls, stated) in [
            (0.2, 2, true),
            (0.0, 2, false),
            (1.0, 2, false),
            (0.2, 0, false),
        ] {
            let mut ad = warped(0.2, |y| y);
            let r = check_alpha_dropout_drop_rate("ad", &mut ad, rate, &[10, 10], calls, 1e-9);
            assert_eq!(
                r.detectable.is_some(),
                stated,
                "rate {rate}, {calls} calls: {}",
                r.line()
            );
        }
    }

    /// Each moment check judges its own flaw only. Moving the output's centre
    /// breaks the mean (the variance is taken about the sample mean, whatever
    /// it is); widening the spread by 10 % (variance 1.21) breaks the variance,
    /// whose bound at n = 10^5 is 1 ± 0.022.
    #[test]
    fn a_shift_fails_only_the_mean_and_a_widening_only_the_variance() {
        let shifted: fn(ArrayD<f32>) -> ArrayD<f32> = |y| y + 0.5;
        let widened: fn(ArrayD<f32>) -> ArrayD<f32> = |y| y * 1.1;
        for (name, warp, mean_passes, variance_passes) in [
            ("shifted", shifted, false, true),
            ("widened", widened, true, false),
        ] {
            let mut twin = warped(0.2, warp);
            let reports = check_alpha_dropout_moments(name, &mut twin, 0.2, 100_000, 1, 1e-9);
            let verdicts: Vec<_> = reports.iter().map(|r| (r.check.as_str(), r.pass)).collect();
            assert_eq!(
                verdicts,
                [
                    ("alpha_dropout_mean", mean_passes),
                    ("alpha_dropout_variance", variance_passes)
                ],
                "{name}"
            );
        }
    }

    /// Outputs `1, -1` have mean 0 and sample variance 2 (divided by `n - 1`);
    /// the population variance, 1, would understate a widening at small `n`.
    #[test]
    fn the_variance_is_the_unbiased_sample_variance() {
        let mut plus_minus = warped(0.2, |y| {
            ArrayD::from_shape_fn(y.raw_dim(), |i| if i[0] % 2 == 0 { 1.0 } else { -1.0 })
        });
        let reports = check_alpha_dropout_moments("pm", &mut plus_minus, 0.2, 2, 1, 1e-9);
        assert!(
            reports[0].observed.starts_with("mean 0.000000 "),
            "{}",
            reports[0].line()
        );
        assert!(
            reports[1].observed.starts_with("variance 2.000000 "),
            "{}",
            reports[1].line()
        );
    }

    /// The two-sided quantile at alpha = 1e-9 is 6.1094 (scipy's
    /// `norm.isf(5e-10)`); a one-sided or doubled alpha gives 5.998 or 5.884.
    #[test]
    fn the_moment_bounds_use_the_two_sided_quantile() {
        let mut ad = warped(0.2, |y| y);
        for r in check_alpha_dropout_moments("ad", &mut ad, 0.2, 1_000, 1, 1e-9) {
            assert!(r.bound.contains("z = 6.109"), "{}", r.line());
        }
    }

    #[test]
    fn the_exact_check_passes_a_call_that_keeps_all_or_drops_all() {
        let x = ArrayD::from_shape_fn(vec![1, 16], |i| i[1] as f32 * 0.25 + 1.0);
        for (rate, counts) in [
            (1e-6, "16 kept == a*x+b, 0 dropped"),
            (1.0 - 1e-6, "0 kept == a*x+b, 16 dropped"),
        ] {
            let layer = AlphaDropout::<f32>::new(rate).unwrap().with_seed(3);
            let mut ad = LayerAsDropout::new(Box::new(layer), rate);
            let r = check_alpha_dropout_exact("ad", &mut ad, rate, &x);
            assert!(r.pass && r.observed.starts_with(counts), "{}", r.line());
        }
    }

    #[test]
    fn real_layer_passes() {
        let mut ad = LayerAsDropout::new(
            Box::new(AlphaDropout::<f32>::new(0.2).unwrap().with_seed(3)),
            0.2,
        );
        let x = ArrayD::from_shape_fn(vec![16, 64], |i| i[1] as f32 * 0.1 - 3.0);
        assert!(check_alpha_dropout_exact("ad", &mut ad, 0.2, &x).pass);
        assert!(check_alpha_dropout_drop_rate("ad", &mut ad, 0.2, &[100, 100], 5, 1e-9).pass);
        assert!(
            check_alpha_dropout_moments("ad", &mut ad, 0.2, 100_000, 1, 1e-9)
                .iter()
                .all(|r| r.pass)
        );
    }

    /// A call on an empty batch shows no value at all, so it cannot pass.
    #[test]
    fn the_exact_check_fails_an_empty_call() {
        let mut ad = warped(0.2, |y| y);
        let r = check_alpha_dropout_exact("empty", &mut ad, 0.2, &ArrayD::zeros(vec![0, 4]));
        assert!(!r.pass && r.observed.starts_with("0 kept"), "{}", r.line());
    }

    /// The bounds come from the claimed rate, not from the layer: at a claim of
    /// 0, `mu4 = 3`, so at `n = 2000` they are `z / sqrt(n)` and `z sqrt(2 / n)`
    /// (`z = 6.109410`, Python's `NormalDist().inv_cdf(1 - 5e-10)`); `mu4 + 1`
    /// would widen the second to 0.273.
    #[test]
    fn the_variance_bound_uses_mu4_minus_one() {
        let mut ad = warped(0.2, |y| y);
        let reports = check_alpha_dropout_moments("ad", &mut ad, 0.0, 2_000, 1, 1e-9);
        assert!(
            reports[0].bound.starts_with("0 ± 0.136611 "),
            "{}",
            reports[0].line()
        );
        assert!(
            reports[1].bound.starts_with("1 ± 0.193197 "),
            "{}",
            reports[1].line()
        );
    }

    /// The stated mean shift is the smallest the z-test catches with power
    /// 0.99: at that shift `Phi(shift * sqrt(n) - z)` is 0.99, not near 1.
    #[test]
    fn the_stated_mean_shift_has_the_quoted_power_and_no_more() {
        let n = 10_000;
        let mut ad = warped(0.2, |y| y);
        let reports = check_alpha_dropout_moments("ad", &mut ad, 0.2, n, 1, 1e-9);
        let text = reports[0].detectable.as_deref().expect("power stated");
        let shift: f64 = text
            .trim_start_matches("mean shift >= ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let normal = Normal::new(0.0, 1.0).unwrap();
        let z = normal.inverse_cdf(1.0 - 1e-9 / 2.0);
        let power = normal.cdf(shift * (n as f64).sqrt() - z);
        assert!((power - 0.99).abs() < 1e-3, "{text}: power {power}");
    }

    /// A layer that drops at another rate than the one claimed fails the drop
    /// rate: drawing values is not enough, the count must fall in the region.
    #[test]
    fn a_layer_dropping_at_another_rate_fails_the_drop_rate() {
        let mut ad = LayerAsDropout::new(
            Box::new(AlphaDropout::<f32>::new(0.5).unwrap().with_seed(3)),
            0.2,
        );
        let r = check_alpha_dropout_drop_rate("ad", &mut ad, 0.2, &[100, 100], 5, 1e-9);
        assert!(!r.pass, "{}", r.line());
    }

    /// Every element that is neither allowed value is counted, and one is
    /// enough to fail.
    #[test]
    fn the_exact_check_counts_each_other_value() {
        let mut shifted = warped(0.2, |y| y.mapv(|v| v + 1.0));
        let x = ArrayD::from_shape_fn(vec![4, 8], |i| i[1] as f32 * 0.25 - 1.0);
        let r = check_alpha_dropout_exact("shifted", &mut shifted, 0.2, &x);
        assert!(
            !r.pass && r.observed.ends_with(", 32 other"),
            "{}",
            r.line()
        );
    }

    /// On inputs equal to `alpha_p` the kept and the dropped value coincide:
    /// every element is ambiguous, none is wrong, and the call passes.
    #[test]
    fn a_call_whose_every_element_is_ambiguous_passes() {
        let rate = 0.3;
        let alpha_p = expected_affine(rate).2 as f32;
        let x = ArrayD::from_elem(vec![2, 8], alpha_p);
        let layer = AlphaDropout::<f32>::new(rate).unwrap().with_seed(3);
        let mut ad = LayerAsDropout::new(Box::new(layer), rate);
        let r = check_alpha_dropout_exact("ad", &mut ad, rate, &x);
        assert!(
            r.pass
                && r.observed
                    .starts_with("0 kept == a*x+b, 0 dropped == a*alpha_p+b, 16 either"),
            "{}",
            r.line()
        );
    }

    /// PyTorch's `b - a*|alpha_p|` and SPEC's `a*alpha_p + b` differ in the
    /// last bit at rate 0.3: a layer rounding the dropped value PyTorch's way
    /// passes and is named; one mixing the two roundings in a call fails.
    #[test]
    fn the_dropped_value_may_follow_one_honest_rounding_not_two() {
        let rate = 0.3;
        let [(_, spec), (_, torch)] = dropped_values::<f32>(rate);
        assert_ne!(
            spec.to_bits(),
            torch.to_bits(),
            "the roundings differ at 0.3"
        );
        fn to_torch(y: ArrayD<f32>) -> ArrayD<f32> {
            let [(_, spec), (_, torch)] = dropped_values::<f32>(0.3);
            y.mapv(|v| {
                if v.to_bits() == spec.to_bits() {
                    torch
                } else {
                    v
                }
            })
        }
        fn mixed(y: ArrayD<f32>) -> ArrayD<f32> {
            let [(_, spec), (_, torch)] = dropped_values::<f32>(0.3);
            let mut first = true;
            y.mapv(|v| {
                if v.to_bits() == spec.to_bits() && std::mem::take(&mut first) {
                    torch
                } else {
                    v
                }
            })
        }
        let x = ArrayD::from_shape_fn(vec![16, 64], |i| i[1] as f32 * 0.1 - 3.0);
        let r = check_alpha_dropout_exact("torch", &mut warped(rate, to_torch), rate, &x);
        assert!(
            r.pass && r.observed.contains("dropped == b-a*|alpha_p|"),
            "{}",
            r.line()
        );
        let d = check_alpha_dropout_drop_rate(
            "torch",
            &mut warped(rate, to_torch),
            rate,
            &[100, 100],
            5,
            1e-9,
        );
        assert!(d.pass, "{}", d.line());
        let r = check_alpha_dropout_exact("mixed", &mut warped(rate, mixed), rate, &x);
        assert!(
            !r.pass && r.observed.contains("mix two roundings"),
            "{}",
            r.line()
        );
    }
}
