//! The checks: library functions that return [`CheckReport`] verdicts.
//!
//! Tests assert on these verdicts, the main job, `nncheck verify` and `nncheck
//! conform` print them; nothing is checked in two different ways. Checks are
//! written against small traits, the subjects under test ([`subjects`]), so
//! that another implementation, or a deliberately broken one, runs through the
//! very same checks as nncheck's own core.
//!
//! Every check declares itself as a value ([`registry::Check`]: its records,
//! the capabilities it needs, how it judges, how to run it) beside its
//! function, and the batteries are lists of those values:
//!
//! | module | what it holds |
//! |---|---|
//! | [`subjects`] | the subject API: dropout, noise layer and model subjects, nncheck's own core as the first of each |
//! | [`capability`], [`error`] | what a subject can do, and how it fails |
//! | [`dropout`] | the checks of SPEC §2 |
//! | [`noise`] | the checks of SPEC §2b |
//! | [`training`] | the checks of SPEC §3–§5 |
//! | [`stats`] | binomial regions, chi-squared, normal and Kolmogorov–Smirnov tests |
//! | [`run`] | cases, batteries, `verify`, sweeps, expectations |
//! | [`registry`], [`report`], [`inputs`] | the check value, the record, the audit inputs |

pub mod capability;
pub mod dropout;
pub mod error;
pub mod inputs;
pub mod noise;
pub mod optimizer;
pub mod registry;
pub mod report;
pub mod run;
pub mod stats;
pub mod subjects;
pub mod training;

pub use capability::{Capabilities, Capability};
pub use error::{catching, unsupported, Error, Result};
pub use optimizer::OptimizerKind;
pub use registry::{Check, Judged, RecordSpec, Settings};
pub use report::{all_pass, no_failures, CheckReport, RecordKind, Verdict};
pub use subjects::{
    BoxedDropout, CoreDropout, CoreModel, CoreNoise, CoreTrainable, DropoutLike, DropoutSubject,
    LayerAsDropout, ModelSpec, ModelSubject, NoiseKind, NoiseSubject, Part, TrainableModel,
};
