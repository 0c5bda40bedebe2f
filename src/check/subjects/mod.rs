//! The subjects under test: what any implementation provides so that the
//! checks can run on it, nncheck's own core being just the first of each kind.
//!
//! Boundary: this module defines the API a third party (or an adapter of
//! another framework) implements, and the core's own implementations of it. It
//! knows nothing of the checks, their batteries or their cases beyond the
//! [`ModelSpec`] a model subject builds from.
//!
//! - [`DropoutSubject`] builds dropout layers ([`DropoutLike`]) at a rate and a seed.
//! - [`NoiseSubject`] builds the other train-only layers (GaussianNoise,
//!   GaussianDropout, AlphaDropout, SpatialDropout), seen through the same
//!   [`DropoutLike`].
//! - [`ModelSubject`] builds the small base + head model the frozen-model
//!   invariants need ([`TrainableModel`]).
//!
//! Each declares its [`Capabilities`](super::Capabilities) before anything runs.

pub mod dropout;
pub mod model;
pub mod noise;
pub mod observed;

pub use dropout::{
    build_layer, BoxedDropout, CoreDropout, DropoutLike, DropoutSubject, LayerAsDropout,
};
pub use model::{CoreModel, CoreTrainable, ModelSpec, ModelSubject, Part, TrainableModel};
pub use noise::{CoreNoise, NoiseKind, NoiseSubject};
