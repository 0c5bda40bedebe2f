//! How a kept dropout unit may be scaled: SPEC's recipe and the other honest
//! ways of computing `x / (1 - p)`, told apart bit for bit.
//!
//! SPEC §2 scales a kept unit by `1/(1-p)` computed in f64 and rounded once
//! (`x * fl(1/(1-p))`). Frameworks compute the same quotient in other, equally
//! correct ways that differ in the last bit: PyTorch rounds `1 - p` to f32 before
//! taking the reciprocal, Keras on NumPy or eager JAX divides (`x / fl(1-p)`), a
//! hand-written layer divides in f64, and candle-nn holds the rate itself as an
//! f32. Each is a [`ScaleRecipe`]. A subject passes the survivor invariant when
//! every kept unit of a call follows one listed recipe, and the recipe it follows
//! is a convention ([`RecipeAudit::convention`]); survivors that fit no recipe,
//! or a call that mixes recipes, fail, with the distance in ulps and an example.

use crate::check::report::CheckReport;
use crate::tensor::Element;

/// How `x / (1 - p)` is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ScaleFormula {
    /// `x * fl(1/(1-p))`: the reciprocal in f64, rounded once (SPEC's; candle-nn, burn, TF).
    ReciprocalInF64,
    /// `x * fl(1/fl(1-p))`: `1 - p` rounded to the element type, then its reciprocal there (PyTorch CPU).
    ReciprocalInElement,
    /// `x / fl(1-p)`: true division in the element type (Keras on NumPy, eager JAX).
    DivisionInElement,
    /// `fl(x / (1-p))`: true division in f64, rounded once (hand-written layers).
    DivisionInF64,
}

impl ScaleFormula {
    /// Every formula, SPEC's first.
    pub const ALL: [ScaleFormula; 4] = [
        ScaleFormula::ReciprocalInF64,
        ScaleFormula::ReciprocalInElement,
        ScaleFormula::DivisionInElement,
        ScaleFormula::DivisionInF64,
    ];
}

/// One way of scaling a kept unit: a formula, and whether the rate is held in
/// f32 before the formula sees it (candle-nn takes `drop_p: f32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ScaleRecipe {
    /// How the quotient is rounded.
    pub formula: ScaleFormula,
    /// The rate is rounded to f32 first.
    pub rate_in_f32: bool,
}

impl ScaleRecipe {
    /// SPEC §2's recipe.
    pub const SPEC: ScaleRecipe = ScaleRecipe {
        formula: ScaleFormula::ReciprocalInF64,
        rate_in_f32: false,
    };

    /// Every recipe the checks accept, SPEC's first: each formula with the rate
    /// as given, then each with the rate held in f32.
    pub const ALL: [ScaleRecipe; 8] = {
        let mut all = [Self::SPEC; 8];
        let mut i = 0;
        while i < 8 {
            all[i] = ScaleRecipe {
                formula: ScaleFormula::ALL[i % 4],
                rate_in_f32: i >= 4,
            };
            i += 1;
        }
        all
    };

    /// The kept unit `x` at `rate`, scaled by this recipe.
    ///
    /// ```
    /// use nncheck::check::dropout::scale_recipe::ScaleRecipe;
    /// let x = 0.1f32;
    /// assert_eq!(ScaleRecipe::SPEC.apply(x, 0.6), x * (1.0f64 / 0.4) as f32);
    /// ```
    pub fn apply<F: Element>(self, x: F, rate: f64) -> F {
        let rate = if self.rate_in_f32 {
            f64::from(rate as f32)
        } else {
            rate
        };
        let keep = 1.0 - rate;
        match self.formula {
            ScaleFormula::ReciprocalInF64 => x * F::round_from(1.0 / keep),
            ScaleFormula::ReciprocalInElement => x * (F::one() / F::round_from(keep)),
            ScaleFormula::DivisionInElement => x / F::round_from(keep),
            ScaleFormula::DivisionInF64 => F::round_from(x.to_f64() / keep),
        }
    }

    /// The recipe as a formula, in the element type's name, e.g.
    /// `x / f32(1-p)`, `x * f32(1/(1-p)), p held in f32`.
    pub fn describe(self, element: &str) -> String {
        let formula = match self.formula {
            ScaleFormula::ReciprocalInF64 => format!("x * {element}(1/(1-p))"),
            ScaleFormula::ReciprocalInElement => format!("x * (1/{element}(1-p))"),
            ScaleFormula::DivisionInElement => format!("x / {element}(1-p)"),
            ScaleFormula::DivisionInF64 => format!("{element}(x/(1-p)) in f64"),
        };
        if self.rate_in_f32 {
            format!("{formula}, p held in f32")
        } else {
            formula
        }
    }
}

/// The distance between `a` and `b` in units in the last place of the element
/// type, counting across zero; `None` when either is NaN.
///
/// ```
/// use nncheck::check::dropout::scale_recipe::ulps_between;
/// assert_eq!(ulps_between(1.0f32, f32::from_bits(1.0f32.to_bits() + 2)), Some(2));
/// assert_eq!(ulps_between(-0.0f32, 0.0), Some(0));
/// assert_eq!(ulps_between(f32::NAN, 1.0), None);
/// ```
pub fn ulps_between<F: Element>(a: F, b: F) -> Option<u64> {
    if a.is_nan() || b.is_nan() {
        return None;
    }
    let bits = std::mem::size_of::<F>() * 8;
    let sign = 1u64 << (bits - 1);
    // Maps the bits to a line on which adjacent floats are adjacent integers and
    // both zeros meet.
    let line = |v: F| -> i128 {
        let raw = v.to_bits_u64();
        if raw & sign != 0 {
            -i128::from(raw & !sign)
        } else {
            i128::from(raw)
        }
    };
    Some((line(a) - line(b)).unsigned_abs() as u64)
}

/// An element whose output fits a recipe that is not the call's, or none.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ScaleExample {
    /// The input.
    pub x: f64,
    /// The subject's output.
    pub output: f64,
    /// Each recipe's value, in [`ScaleRecipe::ALL`] order.
    pub recipes: [f64; 8],
    /// Ulps from the nearest recipe's value (`None`: NaN against a number).
    pub ulps: Option<u64>,
}

impl ScaleExample {
    /// True when this example lies farther from every recipe than `other`: a
    /// NaN where a number was due is the farthest of all.
    fn farther_than(&self, other: Option<&ScaleExample>) -> bool {
        match (other, self.ulps) {
            (None, _) => true,
            (Some(o), Some(mine)) => o.ulps.is_some_and(|theirs| mine > theirs),
            (Some(o), None) => o.ulps.is_some(),
        }
    }

    fn of<F: Element>(x: F, output: F, values: &[F; 8]) -> Self {
        let ulps = values.iter().filter_map(|&v| ulps_between(output, v)).min();
        ScaleExample {
            x: x.to_f64(),
            output: output.to_f64(),
            recipes: values.map(|v| v.to_f64()),
            ulps: if output.is_nan() { None } else { ulps },
        }
    }

    /// `x = .., output .., recipes give ..`, each value printed in the element
    /// type `element` (`f32` values in their shortest f32 form).
    fn text(&self, element: &str) -> String {
        let show = |v: f64| {
            if element == "f32" {
                (v as f32).to_string()
            } else {
                v.to_string()
            }
        };
        // Recipes that agree are named once: each distinct value with the
        // first recipe giving it and how many others do.
        let mut groups: Vec<(u64, String, usize)> = Vec::new();
        for (recipe, &v) in ScaleRecipe::ALL.iter().zip(&self.recipes) {
            match groups.iter_mut().find(|(bits, _, _)| *bits == v.to_bits()) {
                Some((_, _, others)) => *others += 1,
                None => groups.push((v.to_bits(), recipe.describe(element), 0)),
            }
        }
        let values: Vec<String> = groups
            .iter()
            .map(|&(bits, ref first, others)| {
                let value = show(f64::from_bits(bits));
                match others {
                    0 => format!("{value} by {first}"),
                    n => format!("{value} by {first} and {n} more"),
                }
            })
            .collect();
        format!(
            "x = {}, output {}; recipes give {}",
            show(self.x),
            show(self.output),
            values.join(", ")
        )
    }
}

/// Which recipes the kept units of one or more calls fit, tallied unit by unit.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct RecipeAudit {
    /// Units judged as kept (their output fits at least one recipe).
    pub kept: u64,
    /// Per recipe, in [`ScaleRecipe::ALL`] order: kept units whose output it does not give.
    pub misfits: [u64; 8],
    /// Units whose output fits no recipe.
    pub fits_none: u64,
    /// Per recipe: the first kept unit it does not fit.
    pub first_misfit: [Option<ScaleExample>; 8],
    /// The unit fitting no recipe that lies farthest from the nearest one.
    pub farthest: Option<ScaleExample>,
    /// The element type's name, once a unit was seen (`f32` or `f64`).
    pub element: Option<&'static str>,
}

impl RecipeAudit {
    /// The value of every recipe for `x` at `rate`.
    pub fn values<F: Element>(x: F, rate: f64) -> [F; 8] {
        ScaleRecipe::ALL.map(|r| r.apply(x, rate))
    }

    /// Which recipes give `output` for `x` at `rate`: a NaN output fits a recipe
    /// whose value is NaN, any other fits only its exact bits.
    pub fn fitting<F: Element>(output: F, values: &[F; 8]) -> [bool; 8] {
        values.map(|v| {
            if output.is_nan() {
                v.is_nan()
            } else {
                v.to_bits_u64() == output.to_bits_u64()
            }
        })
    }

    /// Records a unit known (or taken) to be kept: `output` for input `x`.
    /// Returns whether it fits any recipe.
    pub fn observe<F: Element>(&mut self, x: F, output: F, rate: f64) -> bool {
        let values = Self::values(x, rate);
        self.observe_values(x, output, &values)
    }

    /// As [`observe`](Self::observe), with the recipes' values already computed.
    pub fn observe_values<F: Element>(&mut self, x: F, output: F, values: &[F; 8]) -> bool {
        self.element = Some(F::NAME);
        let fits = Self::fitting(output, values);
        if !fits.iter().any(|&f| f) {
            self.fits_none += 1;
            let example = ScaleExample::of(x, output, values);
            if example.farther_than(self.farthest.as_ref()) {
                self.farthest = Some(example);
            }
            return false;
        }
        self.kept += 1;
        for (i, &fit) in fits.iter().enumerate() {
            if !fit {
                self.misfits[i] += 1;
                if self.first_misfit[i].is_none() {
                    self.first_misfit[i] = Some(ScaleExample::of(x, output, values));
                }
            }
        }
        true
    }

    /// The recipes every kept unit fits, in [`ScaleRecipe::ALL`] order.
    pub fn consistent(&self) -> Vec<ScaleRecipe> {
        ScaleRecipe::ALL
            .iter()
            .zip(&self.misfits)
            .filter(|(_, &m)| m == 0)
            .map(|(r, _)| *r)
            .collect()
    }

    /// True when every kept unit fits one and the same recipe.
    pub fn holds(&self) -> bool {
        self.fits_none == 0 && self.misfits.contains(&0)
    }

    /// The recipe the units follow, for a report: SPEC's where it fits, else
    /// the first that fits; `None` when none fits every unit.
    pub fn recipe(&self) -> Option<ScaleRecipe> {
        self.consistent().first().copied()
    }

    /// The words a record adds about its kept units when they are not plainly
    /// SPEC's: which other recipe they follow, or why none fits.
    pub fn note(&self) -> Option<String> {
        (!self.holds() || self.recipe().is_some_and(|r| r != ScaleRecipe::SPEC))
            .then(|| self.summary())
    }

    /// Words for what the kept units follow: `x * f32(1/(1-p)) (SPEC's)`, a
    /// recipe's formula, or why there is none, with the farthest or an example
    /// element.
    pub fn summary(&self) -> String {
        let element = self.element.unwrap_or("f32");
        if self.fits_none > 0 {
            let far = self
                .farthest
                .map(|e| {
                    let ulps = e.ulps.map_or("a NaN against a number".to_string(), |u| {
                        format!("{u} ulps")
                    });
                    format!(
                        "{} fit no listed recipe, the farthest {ulps} from the nearest: {}",
                        self.fits_none,
                        e.text(element)
                    )
                })
                .unwrap_or_default();
            return far;
        }
        match self.recipe() {
            Some(r) if r == ScaleRecipe::SPEC => {
                format!("{} (SPEC's)", r.describe(element))
            }
            Some(r) => r.describe(element),
            None => {
                // Every unit fits some recipe, none fits all: name the recipe
                // closest to fitting and a unit it misses.
                let (best, misses) = self
                    .misfits
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, &m)| m)
                    .expect("eight recipes");
                let example = self.first_misfit[best]
                    .map(|e| e.text(element))
                    .unwrap_or_default();
                format!(
                    "a mix of recipes: none fits all {} kept units (the closest, {}, misses {misses}); e.g. {example}",
                    self.kept,
                    ScaleRecipe::ALL[best].describe(element),
                )
            }
        }
    }

    /// The `scale_recipe` convention record: SPEC's recipe where every kept unit
    /// fits it, another named recipe otherwise. Where the survivors fit no single
    /// recipe the survivor invariant has failed already and says why; this
    /// record is then not judged and points there, so the failure is reported
    /// once.
    pub fn convention(&self, subject: &str, rate: f64) -> CheckReport {
        let element = self.element.unwrap_or("f32");
        if !self.holds() {
            return not_judged(subject);
        }
        let agree = self.consistent().len() == ScaleRecipe::ALL.len();
        let observed = if self.kept == 0 {
            "no unit kept, so every recipe fits".to_string()
        } else if agree {
            format!(
                "{} (every recipe gives the same bits at rate {rate})",
                self.summary()
            )
        } else {
            let others: Vec<String> = self
                .consistent()
                .iter()
                .skip(1)
                .map(|r| r.describe(element))
                .collect();
            let mut text = self.summary();
            if !others.is_empty() {
                text.push_str(&format!(" (also fits: {})", others.join("; ")));
            }
            text
        };
        CheckReport::convention(
            "scale_recipe",
            subject,
            observed,
            format!(
                "{} (SPEC's); any listed recipe passes",
                ScaleRecipe::SPEC.describe(element)
            ),
            self.misfits[0] == 0,
        )
    }
}

/// The `scale_recipe` record of a call whose survivors could not be judged
/// (an error, or no recipe fits): no verdict of its own, pointing at
/// `survivors_scaled_exactly`, which has one.
pub fn not_judged(subject: &str) -> CheckReport {
    CheckReport::not_judged(
        "scale_recipe",
        subject,
        "survivors_scaled_exactly has no single recipe to name",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four formulas differ at the rates the issue table names, and agree
    /// where the scale is a power of two.
    #[test]
    fn the_recipes_agree_at_powers_of_two_and_part_elsewhere() {
        let xs: Vec<f32> = (1..2000).map(|i| i as f32 * 0.013_7).collect();
        let differ = |rate: f64| {
            xs.iter().any(|&x| {
                let v = RecipeAudit::values(x, rate);
                v.iter().any(|y| y.to_bits() != v[0].to_bits())
            })
        };
        assert!(!differ(0.5) && !differ(0.75));
        for rate in [0.1, 0.3, 0.6, 0.15, 0.45] {
            assert!(differ(rate), "rate {rate}");
        }
    }

    /// The distance counts representable values between two floats, across zero.
    #[test]
    fn ulps_count_across_zero_and_refuse_nan() {
        let up = |v: f32, n: u32| f32::from_bits(v.to_bits() + n);
        assert_eq!(ulps_between(1.0f32, up(1.0, 3)), Some(3));
        assert_eq!(ulps_between(f32::from_bits(1), -f32::from_bits(1)), Some(2));
        assert_eq!(ulps_between(1.0f64, 1.0f64), Some(0));
        assert_eq!(ulps_between(f32::INFINITY, f32::MAX), Some(1));
        assert_eq!(ulps_between(1.0f32, f32::NAN), None);
    }

    /// One recipe throughout is consistent; two interleaved are a mix; an
    /// output two ulps off fits none and the summary says by how much.
    #[test]
    fn the_audit_tells_one_recipe_a_mix_and_none_apart() {
        let rate = 0.1;
        let xs: Vec<f32> = (1..4000).map(|i| i as f32 * 0.0071).collect();
        let division = ScaleRecipe {
            formula: ScaleFormula::DivisionInElement,
            rate_in_f32: false,
        };
        let mut one = RecipeAudit::default();
        let mut mixed = RecipeAudit::default();
        let mut off = RecipeAudit::default();
        for (i, &x) in xs.iter().enumerate() {
            one.observe(x, division.apply(x, rate), rate);
            let r = if i % 2 == 0 {
                ScaleRecipe::SPEC
            } else {
                division
            };
            mixed.observe(x, r.apply(x, rate), rate);
            let two_up = f32::from_bits(ScaleRecipe::SPEC.apply(x, rate).to_bits() + 2);
            off.observe(x, two_up, rate);
        }
        assert!(one.holds() && one.recipe() == Some(division));
        assert!(!one.convention("s", rate).pass);
        assert_eq!(
            mixed.convention("s", rate).verdict(),
            crate::check::report::Verdict::NotApplicable(
                "survivors_scaled_exactly has no single recipe to name".into()
            )
        );
        assert!(one.summary().starts_with("x / f32(1-p)"));
        assert!(mixed.fits_none == 0 && !mixed.holds(), "{mixed:?}");
        assert!(mixed.summary().starts_with("a mix of recipes"));
        assert!(!off.holds());
        let text = off.summary();
        assert!(
            text.contains("fit no listed recipe") && text.contains("ulps"),
            "{text}"
        );
    }
}
