//! Honest dropouts that round `x / (1 - p)` another way than SPEC's recipe
//! pass every invariant at every swept rate, and the recipe each follows is
//! reported as a convention (SPEC §2, §7b): PyTorch's reciprocal in f32,
//! Keras' division in f32, a division in f64, and SPEC's own. Through the
//! public API only: the conformance macros with their default sweep, and the
//! expectations file `tests/scale_recipes.toml` saying what differs.
//!
//! The subjects draw their masks as SPEC §2 advises another implementation to
//! (ChaCha8 from `seed_from_u64(seed)`, one `u32` per unit): the audit inputs
//! come from a stream of their own, so kept subnormals are audited at every
//! rate even so.

#[path = "common/masked_dropout.rs"]
mod masked_dropout;

use masked_dropout::{Flaw, MaskedSubject, Scaling};
use nncheck::check::dropout::scale_recipe::{RecipeAudit, ScaleRecipe};
use nncheck::check::{CheckReport, Verdict};

const SPEC: MaskedSubject = MaskedSubject {
    name: "SPEC's recipe",
    scaling: Scaling::Spec,
    flaw: Flaw::None,
};
const TORCH_STYLE: MaskedSubject = MaskedSubject {
    name: "reciprocal in f32 (PyTorch)",
    scaling: Scaling::ReciprocalInF32,
    flaw: Flaw::None,
};
const KERAS_STYLE: MaskedSubject = MaskedSubject {
    name: "division in f32 (Keras)",
    scaling: Scaling::DivisionInF32,
    flaw: Flaw::None,
};
const F64_DIVISION: MaskedSubject = MaskedSubject {
    name: "division in f64",
    scaling: Scaling::DivisionInF64,
    flaw: Flaw::None,
};

nncheck::dropout_conformance_tests!(spec_recipe, SPEC, expect = "tests/scale_recipes.toml");
nncheck::dropout_conformance_tests!(
    reciprocal_in_f32,
    TORCH_STYLE,
    expect = "tests/scale_recipes.toml"
);
nncheck::dropout_conformance_tests!(
    division_in_f32,
    KERAS_STYLE,
    expect = "tests/scale_recipes.toml"
);
nncheck::dropout_conformance_tests!(
    division_in_f64,
    F64_DIVISION,
    expect = "tests/scale_recipes.toml"
);

fn records<'a>(reports: &'a [CheckReport], check: &str, rate: f64) -> Vec<&'a CheckReport> {
    let case = format!("Dropout({rate}) ");
    let found: Vec<&CheckReport> = reports
        .iter()
        .filter(|r| r.check == check && r.subject.contains(&case))
        .collect();
    assert!(!found.is_empty(), "no {check} record at rate {rate}");
    found
}

/// Where the recipes part (rate 0.15), each subject's recipe is named; where
/// they agree (rate 0.5), every subject reads as SPEC's.
#[test]
fn each_recipe_is_named_where_the_recipes_part() {
    for (reports, formula) in [
        (spec_recipe::reports(), "x * f32(1/(1-p)) (SPEC's)"),
        (reciprocal_in_f32::reports(), "x * (1/f32(1-p))"),
        (division_in_f32::reports(), "x / f32(1-p)"),
        (division_in_f64::reports(), "f32(x/(1-p)) in f64"),
    ] {
        for r in records(reports, "scale_recipe", 0.15) {
            assert!(r.observed.starts_with(formula), "{}", r.line());
        }
        for r in records(reports, "scale_recipe", 0.5) {
            assert_eq!(r.verdict(), Verdict::Convention(true), "{}", r.line());
            assert!(
                r.observed.contains("every recipe gives the same bits"),
                "{}",
                r.line()
            );
        }
    }
}

/// The special-value audit's kept units include subnormals at every swept
/// rate and shape, although the subject draws from the generator the case's
/// seed would give a careless audit.
#[test]
fn kept_subnormals_are_audited_at_every_swept_rate() {
    let sweep = spec_recipe::options().sweep;
    for rate in &sweep.rates {
        let audits = records(spec_recipe::reports(), "special_values_kept_scaled", *rate);
        assert_eq!(audits.len(), sweep.shapes.len());
        for r in audits {
            let kept = r
                .observed
                .split("subnormal x")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<usize>().ok());
            assert!(kept.is_some_and(|n| n > 0), "{}", r.line());
        }
    }
}

/// nncheck's own dropout follows SPEC's recipe exactly, at each of the 99
/// rates 0.01 to 0.99.
#[test]
fn the_core_follows_specs_recipe_at_every_rate() {
    let x = nncheck::check::inputs::positive_input(&[64, 256], 3);
    for i in 1..100 {
        let rate = f64::from(i) / 100.0;
        let mut layer = nncheck::Dropout::<f32>::new(rate)
            .unwrap()
            .with_seed(u64::from(i as u32));
        let audit = nncheck::check::dropout::survivors::audit_train_call(&mut layer, &x).unwrap();
        assert!(
            audit.kept > 0 && audit.violations == 0,
            "rate {rate}: {audit:?}"
        );
        assert_eq!(
            audit.recipes.misfits[0], 0,
            "rate {rate}: SPEC's recipe misfits"
        );
        assert_eq!(audit.recipes.recipe(), Some(ScaleRecipe::SPEC));
    }
    // The recipes do part at some of those rates, so the test could fail.
    let parts = (1..100).any(|i| {
        let values = RecipeAudit::values(1.1f32, f64::from(i) / 100.0);
        values.iter().any(|v| v.to_bits() != values[0].to_bits())
    });
    assert!(parts);
}
