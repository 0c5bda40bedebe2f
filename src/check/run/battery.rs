//! Running the lists: a battery is a list of checks of one kind
//! ([`crate::check::dropout::CHECKS`], [`crate::check::noise::CHECKS`],
//! [`crate::check::training::CHECKS`] and the core-only lists), run on one
//! subject at one case. Whether a check applies is decided before it runs,
//! from what it needs and what the subject declares; a check that does not
//! apply gets a not-applicable record naming what is missing, never a pass.

use super::cases::{DropoutCase, TrainingCase};
use crate::check::capability::{Capabilities, Capability};
use crate::check::error::catching;
use crate::check::registry::{Check, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::subjects::{DropoutSubject, ModelSpec, ModelSubject, NoiseSubject};

/// A list of checks of one kind, on subject `S` at case `C`.
pub struct Battery<S: ?Sized, C> {
    /// The checks, in the order they run.
    pub checks: Vec<Check<S, C>>,
}

impl<S: ?Sized, C> std::fmt::Debug for Battery<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(Check::id))
            .finish()
    }
}

impl<S: ?Sized, C> Clone for Battery<S, C> {
    fn clone(&self) -> Self {
        Battery {
            checks: self.checks.clone(),
        }
    }
}

impl<S: ?Sized, C> Battery<S, C> {
    /// A battery of `checks`.
    pub fn of(checks: &[Check<S, C>]) -> Self {
        Battery {
            checks: checks.to_vec(),
        }
    }

    /// This battery and `check` after it: how a project adds a check of its own.
    pub fn with(mut self, check: Check<S, C>) -> Self {
        self.checks.push(check);
        self
    }

    /// Every record the battery can produce, in order.
    pub fn records(&self) -> Vec<RecordSpec> {
        self.checks
            .iter()
            .flat_map(|c| c.records.iter().copied())
            .collect()
    }

    /// Runs every check on `subject` at `case`: a check whose needs
    /// `capabilities` does not meet gets one not-applicable record per record it
    /// would have produced (labelled `label`), and is not run; a panic of a
    /// check becomes its first record's failure.
    pub fn run_with(
        &self,
        subject: &S,
        name: &str,
        capabilities: &Capabilities,
        case: &C,
        settings: &Settings,
        label: &str,
    ) -> Vec<CheckReport> {
        let mut reports = Vec::new();
        for check in &self.checks {
            if let Some(missing) = capabilities.missing(check.needs) {
                reports.extend(not_applicable(check.records, label, missing));
                continue;
            }
            match catching(name, || Ok((check.run)(subject, case, settings))) {
                Ok(records) => reports.extend(records),
                Err(e) => reports.push(CheckReport::from_error(check.id(), label, &e)),
            }
        }
        reports
    }
}

/// One not-applicable record per record of a check, the optional ones too:
/// what the subject lacks is known whatever the case.
fn not_applicable(records: &[RecordSpec], label: &str, missing: Capability) -> Vec<CheckReport> {
    records
        .iter()
        .map(|r| {
            let mut report = CheckReport::not_applicable(r.id, label, &missing.to_string());
            report.kind = r.kind;
            report
        })
        .collect()
}

/// Every battery a run uses: the standard lists ([`Batteries::default`]), or
/// those with checks of a project's own added ([`Battery::with`]).
#[derive(Debug, Clone)]
pub struct Batteries {
    /// Dropout subjects (SPEC §2).
    pub dropout: Battery<dyn DropoutSubject, DropoutCase>,
    /// Noise subjects (SPEC §2b).
    pub noise: Battery<dyn NoiseSubject, DropoutCase>,
    /// Model subjects (SPEC §3–§5).
    pub model: Battery<dyn ModelSubject, ModelSpec>,
    /// The core's internals on a training case.
    pub core_training: Battery<(), TrainingCase>,
    /// The core's noise layers inside models.
    pub core_noise: Battery<(), DropoutCase>,
}

impl Default for Batteries {
    fn default() -> Self {
        Batteries {
            dropout: dropout(),
            noise: noise(),
            model: model(),
            core_training: core_training(),
            core_noise: core_noise(),
        }
    }
}

/// The dropout battery: every check of SPEC §2.
pub fn dropout() -> Battery<dyn DropoutSubject, DropoutCase> {
    Battery::of(crate::check::dropout::CHECKS)
}

/// The noise battery: every check of SPEC §2b on a noise subject.
pub fn noise() -> Battery<dyn NoiseSubject, DropoutCase> {
    Battery::of(crate::check::noise::CHECKS)
}

/// The model battery: every frozen-model check of SPEC §3–§5 on a model subject.
pub fn model() -> Battery<dyn ModelSubject, ModelSpec> {
    Battery::of(crate::check::training::CHECKS)
}

/// The checks that read the core's internals, on a training case.
pub fn core_training() -> Battery<(), TrainingCase> {
    Battery::of(crate::check::training::CORE_CHECKS)
}

/// The checks that read the core's noise layers inside a model.
pub fn core_noise() -> Battery<(), DropoutCase> {
    Battery::of(crate::check::noise::CORE_CHECKS)
}

impl Battery<dyn DropoutSubject, DropoutCase> {
    /// Runs the battery on `subject` at `case`.
    pub fn run(
        &self,
        subject: &(dyn DropoutSubject + 'static),
        case: &DropoutCase,
        settings: &Settings,
    ) -> Vec<CheckReport> {
        let name = subject.name();
        let label = case.label(&name);
        self.run_with(
            subject,
            &name,
            &subject.capabilities(),
            case,
            settings,
            &label,
        )
    }
}

impl Battery<dyn NoiseSubject, DropoutCase> {
    /// Runs the battery on `subject` at `case`: the case's rate is every layer's
    /// parameter (GaussianNoise's standard deviation too).
    pub fn run(
        &self,
        subject: &(dyn NoiseSubject + 'static),
        case: &DropoutCase,
        settings: &Settings,
    ) -> Vec<CheckReport> {
        let name = subject.name();
        let label = format!("{name} noise layers({}) seed {}", case.rate, case.seed);
        self.run_with(
            subject,
            &name,
            &subject.capabilities(),
            case,
            settings,
            &label,
        )
    }
}

impl Battery<dyn ModelSubject, ModelSpec> {
    /// Runs the battery on `subject` at `case`: the spec asks for a BatchNorm in
    /// the base where the subject has one; a case whose optimizer (or weight
    /// decay) the subject lacks makes every check not applicable.
    pub fn run(
        &self,
        subject: &(dyn ModelSubject + 'static),
        case: &TrainingCase,
        settings: &Settings,
    ) -> Vec<CheckReport> {
        let name = subject.name();
        let caps = subject.capabilities();
        let spec = model_spec(case, &caps);
        let label = spec.label(&name);
        let mut needs = vec![Capability::Optimizer(case.optimizer)];
        if case.weight_decay > 0.0 {
            needs.push(Capability::WeightDecay(case.optimizer));
        }
        if let Some(missing) = caps.missing(&needs) {
            return self
                .checks
                .iter()
                .flat_map(|c| not_applicable(c.records, &label, missing))
                .collect();
        }
        self.run_with(subject, &name, &caps, &spec, settings, &label)
    }
}

impl<C> Battery<(), C> {
    /// Runs a battery of the core's internals at `case`.
    pub fn run(&self, case: &C, settings: &Settings, label: &str) -> Vec<CheckReport> {
        self.run_with(&(), "nncheck", &Capabilities::none(), case, settings, label)
    }
}

/// The spec a training case asks a subject to build: the case's rate,
/// optimizer, weight decay, seed and steps, its learning rate, and a BatchNorm
/// in the base where the subject has one.
pub fn model_spec(case: &TrainingCase, caps: &Capabilities) -> ModelSpec {
    ModelSpec {
        rate: case.rate,
        batch_norm: caps.has(Capability::BatchNorm),
        optimizer: case.optimizer,
        learning_rate: case.optimizer.learning_rate(),
        weight_decay: case.weight_decay,
        seed: case.seed,
        steps: case.steps,
    }
}

/// Every SPEC §2 check on one case of `subject`'s dropout.
///
/// ```
/// use nncheck::check::run::battery::dropout_battery;
/// use nncheck::check::run::cases::DropoutCase;
/// use nncheck::check::{all_pass, CoreDropout};
/// let case = DropoutCase { rate: 0.3, shape: vec![64, 4], seed: 5 };
/// assert!(all_pass(&dropout_battery(&CoreDropout, &case, 1e-9)));
/// ```
pub fn dropout_battery(
    subject: &(dyn DropoutSubject + 'static),
    case: &DropoutCase,
    alpha: f64,
) -> Vec<CheckReport> {
    dropout().run(subject, case, &Settings { alpha })
}

/// Every SPEC §2b check on one case of `subject`'s noise layers.
pub fn noise_battery(
    subject: &(dyn NoiseSubject + 'static),
    case: &DropoutCase,
    alpha: f64,
) -> Vec<CheckReport> {
    noise().run(subject, case, &Settings { alpha })
}

/// Every frozen-model check on one training case of `subject`.
///
/// ```
/// use nncheck::check::run::battery::training_battery;
/// use nncheck::check::run::cases::TrainingCase;
/// use nncheck::check::{all_pass, subjects::CoreModel};
/// let case = TrainingCase::generate(&mut nncheck::rng::chacha(3));
/// assert!(all_pass(&training_battery(&CoreModel, &case)));
/// ```
pub fn training_battery(
    subject: &(dyn ModelSubject + 'static),
    case: &TrainingCase,
) -> Vec<CheckReport> {
    model().run(subject, case, &Settings { alpha: 1e-9 })
}

/// Every check of the core's internals on one training case.
pub fn core_training_battery(case: &TrainingCase) -> Vec<CheckReport> {
    core_training().run(
        case,
        &Settings { alpha: 1e-9 },
        &crate::check::training::core::label(case),
    )
}

/// The core's noise layers in frozen models, at one dropout case.
pub fn core_noise_battery(case: &DropoutCase, alpha: f64) -> Vec<CheckReport> {
    let label = format!("noise layers({}) seed {}", case.rate, case.seed);
    core_noise().run(case, &Settings { alpha }, &label)
}
