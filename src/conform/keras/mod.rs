//! Keras 3 on the JAX backend (CPU, float32) as a subject (feature `keras`):
//! `keras.layers.Dropout` as a dropout subject ([`KerasDropout`]), its other
//! noise layers as a noise subject ([`KerasNoise`]), and the conformance model
//! compiled and trained with `train_on_batch` as two model subjects
//! ([`keras_model`]): the base frozen with `trainable = False`, and the same
//! model with the base called as `base(x, training=False)`, the
//! transfer-learning idiom.
//!
//! The layers and the model are Keras's own, built and called by the embedded
//! Python (`src/conform/python/keras_subjects.py`) in the environment
//! `python/make-env.sh keras` makes; nothing about them is re-implemented
//! here. How Keras's notions map to the subject API:
//!
//! - Phase: a call's `training` argument (`Train` is `training=True`).
//! - Freezing: `layer.trainable = False`, recursively, then `compile()` with a
//!   fresh optimizer, as Keras's fine-tuning guide does (Keras refuses to step a
//!   built optimizer over a changed set of trainable variables).
//! - Seeding: a layer's `seed` argument, 32 bits wide in Keras (a 64-bit seed is
//!   folded, see [`fold_seed`](crate::conform::python::layer::fold_seed));
//!   reseeding restarts the layer's `SeedGenerator` state as a fresh layer
//!   with that seed would have it.
//! - The mask and the input gradient of a training call come from replaying
//!   that call with the seed state it read: `jax.grad` of a sum for the
//!   gradient, a call on ones for the mask.
//! - Errors: a Python exception becomes the subject's error with its type and
//!   message (`ValueError: ...`).

mod dropout;
mod model;
mod noise;

pub use dropout::KerasDropout;
pub use model::{keras_model, KerasVariant};
pub use noise::KerasNoise;

use crate::conform::python::KERAS;

/// The Keras version the environment pins (`python/requirements-keras.txt`),
/// which loading the environment checks is the one installed.
pub fn version() -> &'static str {
    KERAS.pinned("keras").unwrap_or("3")
}

/// The subjects' column name: `Keras 3.15`.
pub fn name() -> String {
    let version = version();
    let minor: Vec<&str> = version.split('.').take(2).collect();
    format!("Keras {}", minor.join("."))
}
