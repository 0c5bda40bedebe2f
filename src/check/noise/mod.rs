//! The checks of SPEC §2b on the other train-only layers of any
//! [`NoiseSubject`](crate::check::subjects::NoiseSubject): GaussianNoise,
//! GaussianDropout, AlphaDropout and SpatialDropout, each check declared as a
//! [`NoiseCheck`] value beside its function, and [`CHECKS`], the list the noise
//! battery runs; plus [`CORE_CHECKS`], which put nncheck's own layers inside a
//! frozen model and read their counters.
//!
//! Boundary: the claimed distributions and values are computed here from the
//! claimed parameter, never read from the layer; the statistics come from
//! [`crate::check::stats`].

pub mod alpha_dropout;
pub mod eval_identity;
pub mod gaussian;
pub mod harness;
pub mod in_frozen_fit;
pub mod spatial_dropout;

use crate::check::registry::{CoreNoiseCheck, NoiseCheck};

/// Every noise check, in the order the battery runs them.
pub const CHECKS: &[NoiseCheck] = &[
    eval_identity::CHECK,
    gaussian::NOISE,
    gaussian::DROPOUT,
    alpha_dropout::EXACT,
    alpha_dropout::DROP_RATE,
    alpha_dropout::MOMENTS,
    spatial_dropout::WHOLE_CHANNELS,
    spatial_dropout::CHANNEL_RATE,
];

/// The checks that need nncheck's own noise layers inside a model.
pub const CORE_CHECKS: &[CoreNoiseCheck] = &[in_frozen_fit::CHECK];
