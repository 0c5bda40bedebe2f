//! The checks of SPEC §3–§5: freezing and the training phase.
//!
//! - On any [`ModelSubject`](crate::check::subjects::ModelSubject), through its
//!   small [`TrainableModel`](crate::check::subjects::TrainableModel) interface
//!   alone ([`freezing`], [`train_phase`]), listed in [`CHECKS`].
//! - On nncheck's own core, reading its internals (flags, counters, optimizer
//!   records, pins: [`core`], with the snapshot comparisons of [`frozen`],
//!   [`phase`], [`batch_norm`] and [`determinism`]), listed in [`CORE_CHECKS`].
//!
//! Boundary: the subject checks never look inside a subject; the core checks
//! run the core only.

pub mod batch_norm;
pub mod core;
pub mod determinism;
pub mod freezing;
pub mod frozen;
pub mod harness;
pub mod phase;
pub mod snapshot;
pub mod train_phase;

use crate::check::registry::{CoreTrainingCheck, ModelCheck};

/// Every model-subject check, in the order the battery runs them.
pub const CHECKS: &[ModelCheck] = &[
    freezing::FROZEN_WEIGHTS,
    freezing::TRAINABLE_MOVED,
    freezing::FROZEN_SLOTS,
    train_phase::DROPOUT_ACTIVE,
    freezing::FREEZE_RECURSIVE,
    freezing::GRADIENT_PASSES,
    freezing::UNFREEZE,
    train_phase::INFERENCE_DETERMINISTIC,
    train_phase::BATCHNORM_INFERENCE,
    freezing::ONLY_STEPS,
];

/// Every check of the core's internals, in the order the battery runs them.
pub const CORE_CHECKS: &[CoreTrainingCheck] = &[
    core::FLAGS,
    core::FROZEN_WEIGHTS,
    core::FROZEN_SLOTS,
    core::TRAINABLE_MOVED,
    core::DROPOUT_COUNTED,
    core::INACTIVE_IN_PREDICT,
    core::BATCHNORM,
    core::PREDICT_DETERMINISTIC,
    core::GRADIENT_PASSES,
    core::PIN_IN_SUBTREE,
];
