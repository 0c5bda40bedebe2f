//! GaussianNoise and GaussianDropout draw what they claim (SPEC §2b):
//! GaussianNoise adds `N(0, stddev^2)`, GaussianDropout multiplies by
//! `N(1, rate / (1 - rate))`, judged by the normal mean, variance and
//! Kolmogorov–Smirnov tests of [`crate::check::stats::normal`]. The claimed
//! distribution is computed here from the claimed parameter, never read from
//! the layer, so a layer with a wrong variance cannot vouch for itself.

use super::harness::{noise_label, with_noise_layer};
use crate::check::registry::{Judged, NoiseCheck, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::stats::normal::{check_normal_ks, check_normal_mean, check_normal_variance};
use crate::check::subjects::{DropoutLike, NoiseKind, NoiseSubject};
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;

/// GaussianNoise's noise is `N(0, stddev^2)`, the case's rate as its standard
/// deviation, on 2·10^4 draws.
pub const NOISE: NoiseCheck = NoiseCheck {
    records: &[
        RecordSpec::invariant(
            "gaussian_noise_mean",
            "GaussianNoise's noise y - x has mean 0 (normal quantile)",
        ),
        RecordSpec::invariant(
            "gaussian_noise_variance",
            "GaussianNoise's noise has variance stddev^2 (chi-squared)",
        ),
        RecordSpec::invariant(
            "gaussian_noise_ks",
            "GaussianNoise's noise is N(0, stddev^2) (Kolmogorov-Smirnov)",
        ),
    ],
    needs: &[],
    judged: Judged::Statistical,
    run: run_noise,
};

/// GaussianDropout's multiplier is `N(1, rate / (1 - rate))`, on 2·10^4 draws.
pub const DROPOUT: NoiseCheck = NoiseCheck {
    records: &[
        RecordSpec::invariant(
            "gaussian_dropout_mean",
            "GaussianDropout's multiplier y / x has mean 1 (normal quantile)",
        ),
        RecordSpec::invariant(
            "gaussian_dropout_variance",
            "GaussianDropout's multiplier has variance rate / (1 - rate) (chi-squared)",
        ),
        RecordSpec::invariant(
            "gaussian_dropout_ks",
            "GaussianDropout's multiplier is N(1, rate / (1 - rate)) (Kolmogorov-Smirnov)",
        ),
    ],
    needs: &[],
    judged: Judged::Statistical,
    run: run_dropout,
};

fn run_noise(subject: &dyn NoiseSubject, case: &DropoutCase, s: &Settings) -> Vec<CheckReport> {
    let label = noise_label("GaussianNoise", case);
    with_noise_layer(
        subject,
        &NOISE.ids(),
        &label,
        NoiseKind::GaussianNoise,
        case,
        0,
        |mut l| check_gaussian_noise(&label, &mut l, case.rate, 20, 1, s.alpha),
    )
}

fn run_dropout(subject: &dyn NoiseSubject, case: &DropoutCase, s: &Settings) -> Vec<CheckReport> {
    let label = noise_label("GaussianDropout", case);
    with_noise_layer(
        subject,
        &DROPOUT.ids(),
        &label,
        NoiseKind::GaussianDropout,
        case,
        1,
        |mut l| check_gaussian_dropout(&label, &mut l, case.rate, 20, 1, s.alpha),
    )
}

/// The noise GaussianNoise adds: `calls` train calls on zeros of shape
/// `[rows, 1000]`; since `0 + e = e` exactly, the outputs are the noise itself.
pub fn gaussian_noise_samples<F: Element>(
    layer: &mut impl DropoutLike<F>,
    rows: usize,
    calls: usize,
) -> crate::check::Result<Vec<f64>> {
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
) -> crate::check::Result<Vec<f64>> {
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
    use crate::check::noise::eval_identity::{check_eval_identity_bits, special_values_f64};
    use crate::check::subjects::LayerAsDropout;
    use crate::layers::{GaussianDropout, GaussianNoise};
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
}
