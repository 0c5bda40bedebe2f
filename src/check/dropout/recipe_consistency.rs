//! One scale recipe across rates (SPEC §2, §7b): an honest implementation
//! rounds `x / (1 - p)` one way at every rate, while a value that is off (by an
//! ulp, say) may coincide with another recipe at one rate and with none at the
//! next, and so pass a survivor audit at that rate alone.

use super::scale_recipe::{RecipeAudit, ScaleRecipe};
use super::survivors::audit_train_call;
use crate::check::error::catching;
use crate::check::inputs::positive_input;
use crate::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{build_layer, DropoutSubject};

/// The rates at which one recipe must fit a subject's survivors throughout:
/// rates where the recipes part from each other (not 0.5 or 0.75, where every
/// recipe gives the same bits).
pub const RECIPE_RATES: [f64; 6] = [0.1, 0.15, 0.3, 0.45, 0.6, 0.9];

/// One recipe across rates: an honest implementation rounds `x / (1 - p)` one
/// way at every rate, while a value that is off (by an ulp, say) may coincide
/// with some other recipe at one rate and with none at the next.
pub const CHECK: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "scale_recipe_consistent",
        "one and the same listed recipe fits the kept units at the case's rate and at 0.1, 0.15, 0.3, 0.45, 0.6 and 0.9",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: run_consistent,
};

fn run_consistent(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    _: &Settings,
) -> Vec<CheckReport> {
    let name = subject.name();
    let label = case.label(&name);
    let x = positive_input(&[10_000], case.seed ^ 10);
    let mut rates: Vec<f64> = RECIPE_RATES.to_vec();
    if !rates.contains(&case.rate) {
        rates.push(case.rate);
    }
    let mut per_rate = Vec::new();
    for &rate in &rates {
        let audit = catching(&name, || {
            let mut layer = build_layer(subject, rate, case.seed)?;
            audit_train_call(&mut layer, &x)
        });
        match audit {
            Ok(audit) => per_rate.push((rate, audit.recipes)),
            Err(e) => return vec![CheckReport::from_error(CHECK.id(), &label, &e)],
        }
    }
    vec![recipes_across_rates(&label, &per_rate)]
}

/// The verdict of [`CHECK`] from each rate's recipe audit: some recipe
/// fits every rate's kept units.
pub fn recipes_across_rates(subject: &str, per_rate: &[(f64, RecipeAudit)]) -> CheckReport {
    let common: Vec<ScaleRecipe> = ScaleRecipe::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            per_rate
                .iter()
                .all(|(_, a)| a.fits_none == 0 && a.misfits[*i] == 0)
        })
        .map(|(_, r)| *r)
        .collect();
    let element = per_rate
        .iter()
        .find_map(|(_, a)| a.element)
        .unwrap_or("f32");
    let rates: Vec<String> = per_rate.iter().map(|(r, _)| r.to_string()).collect();
    let observed = match common.first() {
        Some(r) => format!(
            "{} fits every rate ({})",
            r.describe(element),
            rates.join(", ")
        ),
        None => {
            let each: Vec<String> = per_rate
                .iter()
                .map(|(rate, a)| {
                    let fits: Vec<String> =
                        a.consistent().iter().map(|r| r.describe(element)).collect();
                    if a.fits_none > 0 || fits.is_empty() {
                        format!("{rate}: none")
                    } else {
                        format!("{rate}: {}", fits.join(" or "))
                    }
                })
                .collect();
            format!("no one recipe fits every rate: {}", each.join("; "))
        }
    };
    CheckReport::exact(
        CHECK.id(),
        subject,
        observed,
        "one listed recipe fits every rate".into(),
        !common.is_empty() && !per_rate.is_empty(),
    )
}
