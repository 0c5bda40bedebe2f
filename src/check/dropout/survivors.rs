//! Survivors scaled exactly (SPEC §2, §7b): every train-phase output of
//! strictly positive input is `+0.0` or `x / (1 - p)` by one listed scale
//! recipe, bit for bit, the same recipe throughout the call; the recipe is
//! reported as a convention (`scale_recipe`).
//!
//! The expected values are computed here from the claimed rate, never read from
//! the layer, so a layer that scales wrongly cannot vouch for itself.

use super::harness::with_layer;
use super::scale_recipe::{RecipeAudit, ScaleRecipe};
use crate::check::inputs::positive_input;
use crate::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{DropoutLike, DropoutSubject};
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;
use ndarray::{ArrayViewD, Zip};

/// The survivor audit and the scale recipe it finds.
pub const CHECK: DropoutCheck = DropoutCheck {
    records: &[
        RecordSpec::invariant(
            "survivors_scaled_exactly",
            "every train-phase output is +0.0 or x / (1 - p) by one listed scale recipe, bit for bit",
        ),
        RecordSpec::convention(
            "scale_recipe",
            "the recipe the kept units follow: SPEC's x * f32(1/(1-p)), or which other",
        ),
    ],
    needs: &[],
    judged: Judged::Exact,
    run,
};

fn run(subject: &dyn DropoutSubject, case: &DropoutCase, _: &Settings) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&case.shape, case.seed ^ 1);
    with_layer(
        subject,
        CHECK.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| check_survivors_and_recipe(&label, &mut l, &x),
    )
}

/// The scale SPEC's recipe multiplies a kept unit by: `1 / (1 - rate)` in f64,
/// rounded once ([`ScaleRecipe::SPEC`]). Other honest recipes exist; the checks
/// of another implementation accept any one of them.
pub fn expected_scale<F: Element>(rate: f64) -> F {
    ScaleRecipe::SPEC.apply(F::one(), rate)
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
        let kept = match self.recipes.recipe() {
            Some(r) if r != ScaleRecipe::SPEC && self.recipes.holds() => {
                r.describe(self.recipes.element.unwrap_or("f32"))
            }
            _ => format!("x*{scale}"),
        };
        let mut observed = format!(
            "{} kept == {kept} bit-exact, {} dropped == +0.0, {} other",
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
        } else if !self.recipes.holds() {
            observed.push_str(&format!("; {}", self.recipes.summary()));
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

/// One train call on `x`, audited element by element ([`SurvivorAudit`]).
pub fn audit_train_call<F: Element>(
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> crate::check::Result<SurvivorAudit> {
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
            super::scale_recipe::not_judged(subject),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
