//! What every check declares of itself: the records it produces (each an
//! invariant or a convention, with the rule it holds a subject to), the
//! capabilities it needs, whether it judges exactly or by a hypothesis test,
//! and how to run it on one case. A battery is a list of these values, and
//! `verify`, the scoreboard, the conformance macros, the property tests and the
//! invariant table all iterate the same lists, so adding a check is one file
//! and one list entry.

use super::capability::Capability;
use super::report::{CheckReport, RecordKind};
use super::run::cases::{DropoutCase, TrainingCase};
use super::subjects::{DropoutSubject, ModelSubject, NoiseSubject};

/// One record a check produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpec {
    /// The record's name, e.g. `survivors_scaled_exactly`; unique across batteries.
    pub id: &'static str,
    /// An invariant (pass or fail) or a convention (SPEC's choice or another).
    pub kind: RecordKind,
    /// The rule it holds a subject to, in one sentence (the invariant table's).
    pub rule: &'static str,
    /// A case may produce no record of it (a shape with no second axis to share
    /// a mask along, a rate 1 the subject refused).
    pub optional: bool,
}

impl RecordSpec {
    /// An invariant every case produces.
    pub const fn invariant(id: &'static str, rule: &'static str) -> Self {
        RecordSpec {
            id,
            kind: RecordKind::Invariant,
            rule,
            optional: false,
        }
    }

    /// A convention every case produces.
    pub const fn convention(id: &'static str, rule: &'static str) -> Self {
        RecordSpec {
            id,
            kind: RecordKind::Convention,
            rule,
            optional: false,
        }
    }

    /// The same record, which some cases do not produce.
    pub const fn optional(self) -> Self {
        RecordSpec {
            optional: true,
            ..self
        }
    }
}

/// How a check judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// Bit for bit, or by exact counts: any one wrong element fails.
    Exact,
    /// A hypothesis test at the run's alpha, its power stated in the record.
    Statistical,
}

/// What every check of a run shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// The false-alarm probability of each statistical check.
    pub alpha: f64,
}

/// A check as a value: its records, its needs, how it judges, and how to run
/// it on subject `S` at case `C`.
pub struct Check<S: ?Sized, C> {
    /// The records it produces, its own first.
    pub records: &'static [RecordSpec],
    /// What the subject must be able to do; a subject lacking any of it gets
    /// not-applicable records, and the check does not run.
    pub needs: &'static [Capability],
    /// Exact or statistical.
    pub judged: Judged,
    /// Runs it: one record per entry of `records` (an optional one may be
    /// absent), or the first alone when the subject failed before a verdict.
    pub run: fn(&S, &C, &Settings) -> Vec<CheckReport>,
}

impl<S: ?Sized, C> Clone for Check<S, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ?Sized, C> Copy for Check<S, C> {}

impl<S: ?Sized, C> std::fmt::Debug for Check<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("records", &self.records)
            .field("needs", &self.needs)
            .field("judged", &self.judged)
            .finish_non_exhaustive()
    }
}

impl<S: ?Sized, C> Check<S, C> {
    /// The check's own record name (its first).
    pub fn id(&self) -> &'static str {
        self.records[0].id
    }

    /// The ids of every record the check gives, in order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.records.iter().map(|r| r.id).collect()
    }
}

/// A check of a dropout subject (SPEC §2).
pub type DropoutCheck = Check<dyn DropoutSubject, DropoutCase>;
/// A check of a noise subject (SPEC §2b), at a dropout case's rate and seed.
pub type NoiseCheck = Check<dyn NoiseSubject, DropoutCase>;
/// A check of a model subject (SPEC §3–§5), on the spec a training case asks for.
pub type ModelCheck = Check<dyn ModelSubject, super::subjects::ModelSpec>;
/// A check that reads nncheck's own internals (layer flags, counters inside a
/// model, optimizer records across `fit` epochs, pins), on a training case.
pub type CoreTrainingCheck = Check<(), TrainingCase>;
/// A check that reads the internals of nncheck's own noise layers inside a
/// model, at a dropout case's rate and seed.
pub type CoreNoiseCheck = Check<(), DropoutCase>;
