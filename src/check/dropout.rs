//! Checks of SPEC §2: the exact properties of one dropout call (survivors scaled
//! by exactly `1/(1-p)`, drops are `+0.0`, eval is the identity) and the
//! statistical ones (drop rate by an exact binomial region).
//!
//! The expected scale is computed here from the claimed rate, never read from
//! the layer, so a layer that scales wrongly cannot vouch for itself.

use super::report::CheckReport;
use super::scale_recipe::{RecipeAudit, ScaleRecipe};
use super::stats::{binomial_region, smallest_detectable_bias};
use super::DropoutLike;
use crate::phase::Phase;
use crate::tensor::{bits_equal, Element};
use ndarray::{ArrayD, ArrayViewD, Zip};

/// The scale SPEC's recipe multiplies a kept unit by: `1 / (1 - rate)` in f64,
/// rounded once. Other honest recipes exist ([`ScaleRecipe`]); the checks of
/// another implementation accept any one of them.
pub fn expected_scale<F: Element>(rate: f64) -> F {
    F::round_from(1.0 / (1.0 - rate))
}

/// Tallies of train-phase calls, element by element.
///
/// A kept unit is judged against every [`ScaleRecipe`]: it is kept when its
/// output is one recipe's value bit for bit, and the call passes when one and
/// the same recipe gives every kept unit (SPEC §7b: the recipe is a
/// convention, reported by [`RecipeAudit::convention`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct SurvivorAudit {
    /// Outputs equal to a recipe's `x / (1 - p)` bit for bit, where that is not `+0.0`.
    pub kept: u64,
    /// Outputs `+0.0` where no recipe gives `+0.0` (unambiguous drops).
    pub dropped: u64,
    /// Outputs `+0.0` where a recipe gives `+0.0` too (drop or keep alike).
    pub ambiguous: u64,
    /// Outputs that are neither `+0.0` nor any recipe's value.
    pub violations: u64,
    /// Drops whose input was NaN or infinite (each must be `+0.0`).
    pub non_finite_dropped: u64,
    /// Which recipes the kept units fit.
    pub recipes: RecipeAudit,
}

impl SurvivorAudit {
    /// Audits one train call of a layer with `rate`.
    pub fn observe<F: Element>(
        &mut self,
        input: ArrayViewD<'_, F>,
        output: ArrayViewD<'_, F>,
        rate: f64,
    ) {
        if input.shape() != output.shape() {
            self.violations += input.len().max(output.len()) as u64;
            return;
        }
        let zero = F::zero().to_bits_u64();
        Zip::from(&input).and(&output).for_each(|&x, &y| {
            let values = RecipeAudit::values(x, rate);
            if y.to_bits_u64() == zero {
                if values.iter().any(|v| v.to_bits_u64() == zero) {
                    self.ambiguous += 1;
                } else {
                    self.dropped += 1;
                    self.non_finite_dropped += u64::from(!x.is_finite());
                }
            } else if self.recipes.observe_values(x, y, &values) {
                self.kept += 1;
            } else {
                self.violations += 1;
            }
        });
    }

    /// The verdict: no element is anything but `+0.0` or a recipe's value, and
    /// one recipe gives every kept unit.
    pub fn report(&self, subject: &str, rate: f64) -> CheckReport {
        // The scale as the element type holds it (2.5, not 2.5000000000000004).
        let scale = match self.recipes.element {
            Some("f32") => ((1.0 / (1.0 - rate)) as f32).to_string(),
            _ => (1.0 / (1.0 - rate)).to_string(),
        };
        let mut observed = format!(
            "{} kept == x*{scale} bit-exact, {} dropped == +0.0, {} other",
            self.kept, self.dropped, self.violations
        );
        // The verdict counts these too; say so where they occur, and leave the
        // common text as it has always been.
        if self.ambiguous > 0 {
            observed.push_str(&format!(", {} +0.0 where x*scale is +0.0", self.ambiguous));
        }
        let audited = self.kept + self.dropped + self.ambiguous + self.violations;
        if audited == 0 {
            observed.push_str("; nothing audited");
        } else if self.violations > 0 || !self.recipes.holds() {
            observed.push_str(&format!("; {}", self.recipes.summary()));
        } else if self.recipes.recipe() != Some(ScaleRecipe::SPEC) {
            observed.push_str(&format!(" by {}", self.recipes.summary()));
        }
        CheckReport::exact(
            "survivors_scaled_exactly",
            subject,
            observed,
            "0 other; every output is +0.0 or x*scale by one listed recipe".into(),
            self.violations == 0 && audited > 0 && self.recipes.holds(),
        )
    }
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

/// Every dropout output of a model's `predict` equals its input bit for bit
/// (SPEC §2, §4: `Eval` is the identity), judged from what an audit of the layer's
/// calls counted: `seen` elements, `differing` of them with other bits. A run that
/// saw nothing fails, since it proved nothing.
pub fn check_predict_dropout_identity(subject: &str, seen: u64, differing: u64) -> CheckReport {
    CheckReport::exact(
        "predict_dropout_is_identity",
        subject,
        format!("{differing} of {seen} outputs differ from their input in bits"),
        "0 differ".into(),
        seen > 0 && differing == 0,
    )
}

/// In `Eval`, the output is the input bit for bit.
pub fn check_eval_identity<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    let (observed, pass) = match layer.run(x.clone(), Phase::Eval) {
        Ok(y) => {
            let differing = if y.shape() == x.shape() {
                y.iter()
                    .zip(x.iter())
                    .filter(|(a, b)| a.to_bits_u64() != b.to_bits_u64())
                    .count()
            } else {
                x.len()
            };
            (
                format!("{differing} of {} elements differ in bits", x.len()),
                bits_equal(&y, x),
            )
        }
        Err(e) => (format!("error: {e}"), false),
    };
    CheckReport::exact(
        "eval_is_identity",
        subject,
        observed,
        "0 differ".into(),
        pass,
    )
}

/// One train call on `x`, audited element by element ([`SurvivorAudit`]).
pub fn audit_train_call<F: Element>(
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> crate::Result<SurvivorAudit> {
    let rate = layer.rate();
    let y = layer.run(x.clone(), Phase::Train)?;
    let mut audit = SurvivorAudit::default();
    audit.observe(x.view(), y.view(), rate);
    Ok(audit)
}

/// One train call audited element by element; see [`SurvivorAudit`].
pub fn check_train_call_exact<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    let rate = layer.rate();
    match audit_train_call(layer, x) {
        Ok(audit) => audit.report(subject, rate),
        Err(e) => CheckReport::errored("survivors_scaled_exactly", subject, e),
    }
}

/// One train call audited as [`check_train_call_exact`] does, with the
/// convention record of the recipe its kept units follow: two records,
/// `survivors_scaled_exactly` (the invariant) and `scale_recipe`.
pub fn check_survivors_and_recipe<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> Vec<CheckReport> {
    let rate = layer.rate();
    match audit_train_call(layer, x) {
        Ok(audit) => vec![
            audit.report(subject, rate),
            audit.recipes.convention(subject, rate),
        ],
        Err(e) => vec![
            CheckReport::from_error("survivors_scaled_exactly", subject, &e),
            RecipeAudit::default().convention(subject, rate),
        ],
    }
}

/// At rate 1, one train call on `x` makes every output `+0.0`, whatever the
/// input: NaN, infinities and `-0.0` included (SPEC §2, the `Train`, rate = 1
/// row). `layer` claims rate 1.
pub fn check_rate_one_all_positive_zero<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    const CHECK: &str = "rate_one_all_positive_zero";
    let zero = F::zero().to_bits_u64();
    match layer.run(x.clone(), Phase::Train) {
        Ok(y) => {
            let not_zero = y.iter().filter(|v| v.to_bits_u64() != zero).count();
            let mut observed = format!("{not_zero} outputs not +0.0");
            if y.shape() != x.shape() {
                observed.push_str(&format!("; output shape {:?}", y.shape()));
            }
            CheckReport::exact(
                CHECK,
                subject,
                observed,
                "0".into(),
                not_zero == 0 && y.shape() == x.shape(),
            )
        }
        Err(e) => CheckReport::errored(CHECK, subject, e),
    }
}

/// Under a noise shape with a 1 on `axis`, one train call on strictly positive `x` drops
/// or keeps each lane along `axis` as a whole: the cells of a lane share one
/// mask draw (SPEC §2, noise shape). `layer` is configured with that noise shape.
pub fn check_noise_shape_cells_shared<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    axis: usize,
) -> CheckReport {
    const CHECK: &str = "noise_shape_cells_shared";
    match layer.run(x.clone(), Phase::Train) {
        Ok(y) if y.shape() == x.shape() && axis < y.ndim() => {
            let disagreeing = y
                .lanes(ndarray::Axis(axis))
                .into_iter()
                .filter(|lane| {
                    let zeros = lane.iter().filter(|v| v.is_zero()).count();
                    zeros != 0 && zeros != lane.len()
                })
                .count();
            CheckReport::exact(
                CHECK,
                subject,
                format!("{disagreeing} lanes along the shared axis disagree"),
                "0".into(),
                disagreeing == 0,
            )
        }
        Ok(y) => CheckReport::exact(
            CHECK,
            subject,
            format!(
                "output shape {:?} for input {:?}, shared axis {axis}",
                y.shape(),
                x.shape()
            ),
            "0".into(),
            false,
        ),
        Err(e) => CheckReport::from_error(CHECK, subject, &e),
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

/// Drop indicators (`true` = output zero, of either sign) of one train call on
/// strictly positive `x`.
fn drops<F: Element>(layer: &mut impl DropoutLike<F>, x: &ArrayD<F>) -> crate::Result<Vec<bool>> {
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
    let (stat, p_value) = super::stats::binomial_dispersion(&counts, calls, rate);
    let critical = super::stats::chi_squared_critical(counts.len(), alpha);
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
    let critical = super::stats::chi_squared_critical(positions, alpha);
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
    let (lo, hi) = super::stats::binomial_region(n, p2, alpha);
    let bias = super::stats::smallest_detectable_bias(n, p2, alpha);
    CheckReport {
        check: check.into(),
        subject: subject.into(),
        observed: format!("{both}/{n} pairs dropped together"),
        bound: format!("[{lo}, {hi}] for p^2 = {p2:.4}"),
        alpha: Some(alpha),
        detectable: Some(format!(
            "correlation >= {:.4} (power 0.99)",
            bias / (rate * (1.0 - rate)).max(f64::MIN_POSITIVE)
        )),
        pass: n > 0 && (lo..=hi).contains(&both),
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
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
        detectable: Some(format!(
            "correlation >= {:.4} at any one lag of {pairs} pairs (power 0.99)",
            bias / (rate * (1.0 - rate)).max(f64::MIN_POSITIVE)
        )),
        pass: outside == 0,
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

/// Backward uses the forward's mask and scale: on strictly positive `x` and
/// `dy`, `dx` is `dy` scaled by one listed recipe ([`ScaleRecipe`]) bit for bit
/// where the forward kept the unit, the same recipe throughout, and zero (either
/// sign: the sign of a dropped gradient is a convention) where it dropped it.
pub fn check_backward_uses_forward_mask<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    dy: &ArrayD<F>,
) -> CheckReport {
    const CHECK: &str = "backward_uses_forward_mask";
    let rate = layer.rate();
    let result = layer
        .run(x.clone(), Phase::Train)
        .and_then(|y| Ok((y, layer.run_backward(dy.clone())?)));
    if let Err(e @ crate::Error::Unsupported { .. }) = &result {
        return CheckReport::from_error(CHECK, subject, e);
    }
    let (observed, pass) = match result {
        Ok((y, dx)) if dx.shape() == y.shape() => {
            let mut recipes = RecipeAudit::default();
            let wrong = Zip::from(&y)
                .and(&dx)
                .and(dy)
                .fold(0usize, |acc, &y, &dx, &g| {
                    let right = if y.is_zero() {
                        dx.is_zero()
                    } else {
                        recipes.observe(g, dx, rate)
                    };
                    acc + usize::from(!right)
                });
            let mut observed = format!("{wrong} of {} input gradients off", y.len());
            if !recipes.holds() || recipes.recipe().is_some_and(|r| r != ScaleRecipe::SPEC) {
                observed.push_str(&format!("; kept gradients: {}", recipes.summary()));
            }
            (observed, wrong == 0 && recipes.holds())
        }
        Ok((_, dx)) => (format!("gradient of shape {:?}", dx.shape()), false),
        Err(e) => (format!("error: {e}"), false),
    };
    CheckReport::exact(CHECK, subject, observed, "0 off".into(), pass)
}

/// The layer's counters agree with what its output shows: after one train call
/// on strictly positive `x`, units seen grew by the input's size and units
/// dropped by the zeros in the output (SPEC §2: the counters observe, they do
/// not estimate). Not applicable to a layer without counters.
pub fn check_counters_match_output<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    const CHECK: &str = "counters_match_output";
    let mut run = || -> crate::Result<_> {
        let before = layer.counters()?;
        let y = layer.run(x.clone(), Phase::Train)?;
        let after = layer.counters()?;
        Ok((before, y, after))
    };
    match run() {
        Ok((before, y, after)) => {
            let zeros = y.iter().filter(|v| v.is_zero()).count() as u64;
            let seen = after.units_seen.wrapping_sub(before.units_seen);
            let dropped = after.units_dropped.wrapping_sub(before.units_dropped);
            CheckReport::exact(
                CHECK,
                subject,
                format!(
                    "counted {seen} seen, {dropped} dropped; output has {} units, {zeros} zero",
                    y.len()
                ),
                "seen = units, dropped = zeros".into(),
                seen == x.len() as u64 && dropped == zeros,
            )
        }
        Err(e) => CheckReport::from_error(CHECK, subject, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::observed::zeros_of_shape;

    /// An output of another shape cannot be matched element by element: every
    /// element of the larger counts as a violation, and nothing else counts.
    #[test]
    fn an_output_of_another_shape_is_all_violations() {
        let x = ArrayD::from_elem(vec![2, 3], 1.0_f32);
        let y = ArrayD::from_elem(vec![8], 0.0_f32);
        let mut audit = SurvivorAudit::default();
        audit.observe(x.view(), y.view(), 0.5);
        audit.observe(x.view(), y.view(), 0.5);
        assert_eq!(
            audit,
            SurvivorAudit {
                violations: 16,
                ..SurvivorAudit::default()
            }
        );
        assert!(!audit.report("s", 0.5).pass);
    }

    #[test]
    fn the_noise_shape_check_fails_a_wrong_shape_or_axis_without_panicking() {
        let x = ArrayD::from_elem(vec![4, 6], 1.0_f32);
        let transposed =
            check_noise_shape_cells_shared("t", &mut zeros_of_shape(vec![6, 4]), &x, 0);
        assert!(
            !transposed.pass && transposed.observed.contains("output shape [6, 4]"),
            "{}",
            transposed.line()
        );
        let past_the_rank =
            check_noise_shape_cells_shared("a", &mut zeros_of_shape(vec![4, 6]), &x, 2);
        assert!(
            !past_the_rank.pass && past_the_rank.observed.contains("shared axis 2"),
            "{}",
            past_the_rank.line()
        );
        let right = check_noise_shape_cells_shared("r", &mut zeros_of_shape(vec![4, 6]), &x, 1);
        assert!(right.pass, "{}", right.line());
    }

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

    #[test]
    fn predict_identity_needs_outputs_seen_and_none_differing() {
        assert!(check_predict_dropout_identity("d", 10, 0).pass);
        assert!(!check_predict_dropout_identity("d", 10, 1).pass);
        assert!(!check_predict_dropout_identity("d", 0, 0).pass);
    }

    /// An audit that saw nothing has nothing to vouch for.
    #[test]
    fn an_audit_of_nothing_fails() {
        let r = SurvivorAudit::default().report("s", 0.5);
        assert!(
            !r.pass && r.observed.ends_with("; nothing audited"),
            "{}",
            r.line()
        );
    }

    /// A gradient whose shape is not the output's cannot be matched to the mask:
    /// the check fails it and names its shape instead of panicking in the zip.
    #[test]
    fn a_gradient_of_another_shape_than_the_output_fails_without_panicking() {
        let flattened = crate::check::observed::Observed::with_forward(
            Box::new(crate::Dropout::<f32>::new(0.5).unwrap().with_seed(1)),
            Box::new(|inner, x, ctx| {
                inner.forward(x, ctx).map(|y| {
                    let n = y.len();
                    y.into_shape_with_order(vec![n]).unwrap()
                })
            }),
        );
        let mut twin = crate::check::LayerAsDropout::new(Box::new(flattened), 0.5);
        let x = ArrayD::from_elem(vec![4, 6], 1.0_f32);
        let r = check_backward_uses_forward_mask("flat", &mut twin, &x, &x);
        assert!(
            !r.pass && r.observed == "gradient of shape [4, 6]",
            "{}",
            r.line()
        );
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

    /// At rate 1 the report names an output of the wrong shape, and only then.
    #[test]
    fn the_rate_one_report_names_a_wrong_output_shape_only() {
        let x = ArrayD::from_elem(vec![4, 8], 1.0f32);
        let mut real = crate::Dropout::<f32>::new(1.0).unwrap().with_seed(1);
        let r = check_rate_one_all_positive_zero("real", &mut real, &x);
        assert!(r.pass && r.observed == "0 outputs not +0.0", "{}", r.line());
        let mut short = zeros_of_shape(vec![2, 3]);
        let r = check_rate_one_all_positive_zero("short", &mut short, &x);
        assert!(
            !r.pass && r.observed == "0 outputs not +0.0; output shape [2, 3]",
            "{}",
            r.line()
        );
    }

    /// Drops of NaN or infinite inputs are counted apart (each must be `+0.0`),
    /// and drops of finite inputs are not among them.
    #[test]
    fn the_audit_counts_non_finite_drops_apart() {
        let x = ndarray::arr1(&[f32::NAN, f32::INFINITY, 1.0, 2.0]).into_dyn();
        let y = ndarray::arr1(&[0.0, 0.0, 0.0, 4.0]).into_dyn();
        let mut audit = SurvivorAudit::default();
        audit.observe(x.view(), y.view(), 0.5);
        assert_eq!(
            (
                audit.dropped,
                audit.non_finite_dropped,
                audit.kept,
                audit.violations
            ),
            (3, 2, 1, 0)
        );
    }

    /// A backward that passes `dy` through unscaled is off at every kept unit,
    /// and the report counts them.
    #[test]
    fn the_backward_report_counts_each_gradient_off() {
        struct Unscaled(crate::Dropout<f32>, Option<ArrayD<f32>>);
        impl DropoutLike<f32> for Unscaled {
            fn rate(&self) -> f64 {
                0.5
            }
            fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> crate::error::Result<ArrayD<f32>> {
                let y = DropoutLike::run(&mut self.0, x, phase)?;
                self.1 = Some(y.clone());
                Ok(y)
            }
            fn run_backward(&mut self, dy: ArrayD<f32>) -> crate::error::Result<ArrayD<f32>> {
                let y = self.1.as_ref().expect("a forward first");
                Ok(ndarray::Zip::from(y)
                    .and(&dy)
                    .map_collect(|&y, &g| if y == 0.0 { 0.0 } else { g }))
            }
        }
        let mut twin = Unscaled(crate::Dropout::new(0.5).unwrap().with_seed(1), None);
        let x = ArrayD::from_elem(vec![4, 6], 1.0_f32);
        let r = check_backward_uses_forward_mask("unscaled", &mut twin, &x, &x);
        let kept = twin.1.unwrap().iter().filter(|&&v| v != 0.0).count();
        assert!(kept > 0);
        assert!(
            !r.pass
                && r.observed.starts_with(&format!(
                    "{kept} of 24 input gradients off; kept gradients: {kept} fit no listed recipe"
                )),
            "{}",
            r.line()
        );
    }

    /// Zeros kept or dropped both give `+0.0`: the report says how many such
    /// elements it could not tell apart, and only then.
    #[test]
    fn the_audit_report_names_the_ambiguous_zeros() {
        let x = ndarray::arr1(&[0.0f32, 0.0, 1.0, 2.0]).into_dyn();
        let y = ndarray::arr1(&[0.0f32, 0.0, 0.0, 4.0]).into_dyn();
        let mut audit = SurvivorAudit::default();
        audit.observe(x.view(), y.view(), 0.5);
        let r = audit.report("s", 0.5);
        assert!(
            r.pass && r.observed.ends_with(", 2 +0.0 where x*scale is +0.0"),
            "{}",
            r.line()
        );
        let positive = ndarray::arr1(&[1.0f32, 2.0, 3.0, 4.0]).into_dyn();
        let mut clear = SurvivorAudit::default();
        clear.observe(positive.view(), positive.view(), 0.0);
        assert!(!clear.report("s", 0.0).observed.contains("where"));
    }
}
