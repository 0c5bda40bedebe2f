//! What every noise check does around its verdict: build a fresh layer of the
//! subject for the case (the case's rate as the layer's parameter, its seed
//! offset per layer), and turn an error or a panic of the subject into that
//! check's record.

use crate::check::capability::Capability;
use crate::check::error::catching;
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{BoxedDropout, NoiseKind, NoiseSubject};

/// How a noise record names its case: `GaussianNoise(0.3) seed 7`.
pub fn noise_label(layer: &str, case: &DropoutCase) -> String {
    format!("{layer}({}) seed {}", case.rate, case.seed)
}

/// A fresh `kind` layer of `subject` at the case's rate, seeded by the case's
/// seed XOR `seed_offset` where the subject seeds at build, run by `run`; an
/// error or panic becomes one record of each of `checks` (every row the run
/// would have given), so a layer the subject lacks is not applicable on each.
pub fn with_noise_layer(
    subject: &dyn NoiseSubject,
    checks: &[&str],
    label: &str,
    kind: NoiseKind,
    case: &DropoutCase,
    seed_offset: u64,
    run: impl FnOnce(BoxedDropout) -> Vec<CheckReport>,
) -> Vec<CheckReport> {
    let name = subject.name();
    let seed = subject
        .capabilities()
        .has(Capability::SeedAtBuild)
        .then_some(case.seed ^ seed_offset);
    catching(&name, || subject.build(kind, case.rate, seed))
        .and_then(|layer| catching(&name, || Ok(run(layer))))
        .unwrap_or_else(|e| {
            checks
                .iter()
                .map(|check| CheckReport::from_error(check, label, &e))
                .collect()
        })
}
