//! The checks: library functions that return [`CheckReport`] verdicts.
//!
//! Tests assert on these verdicts, the main job, `nncheck verify` and `nncheck
//! conform` print them; nothing is checked in two different ways. Checks are
//! written against small traits, the subjects under test ([`DropoutSubject`]
//! and [`DropoutLike`] for dropout, [`model_subject::ModelSubject`] for a
//! trainable model), so that another implementation, or a deliberately broken
//! one, runs through the very same checks as nncheck's own core.

pub mod alpha_dropout;
pub mod batch_norm;
pub mod battery;
pub mod cases;
pub mod conventions;
pub mod determinism;
pub mod dropout;
pub mod frozen;
pub mod frozen_subject;
pub mod inputs;
pub mod model_subject;
pub mod noise;
pub mod noise_in_frozen_fit;
pub mod observed;
pub mod phase;
pub mod report;
pub mod scale_recipe;
pub mod seeding;
pub mod snapshot;
pub mod spatial_dropout;
pub mod stats;
pub mod subject;
pub mod verify;

pub use report::{all_pass, no_failures, CheckReport, RecordKind, Verdict};
pub use subject::{
    unsupported, BoxedDropout, Capability, CoreDropout, DropoutLike, DropoutSubject, LayerAsDropout,
};
