//! `keras.layers.Dropout` as a dropout subject.
//!
//! Keras accepts rate 1 (the output is all zeros) and refuses rates outside
//! `[0, 1]` with a `ValueError` at construction; the subject passes every rate
//! on, so the conventions audit sees Keras's own answer. Under JAX's `jit`
//! XLA rewrites the division by `1 - rate` into a product with its `f32`
//! reciprocal: the survivor audit names that recipe as a convention.

use crate::check::{BoxedDropout, Capabilities, Capability, DropoutSubject, Result};
use crate::conform::python::layer::{fold_seed, PyLayer};
use crate::conform::python::KERAS;
use pyo3::prelude::PyAnyMethods;

/// Keras 3's `Dropout` on JAX (CPU, float32).
///
/// Capabilities: the input gradient (`jax.grad`), seeding at build (the
/// `seed` argument), reseeding, `noise_shape`, and the keep mask of the last
/// training call. No drop counters (Keras keeps none).
#[derive(Debug, Clone, Copy, Default)]
pub struct KerasDropout;

impl DropoutSubject for KerasDropout {
    fn name(&self) -> String {
        super::name()
    }

    fn version(&self) -> Option<String> {
        Some(super::version().into())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of(&[
            Capability::Backward,
            Capability::Reseed,
            Capability::SeedAtBuild,
            Capability::NoiseShape,
            Capability::Mask,
        ])
    }

    fn build(&self, rate: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        self.build_with(rate, seed, None)
    }

    fn build_with_noise_shape(
        &self,
        rate: f64,
        seed: Option<u64>,
        noise_shape: &[Option<usize>],
    ) -> Result<BoxedDropout> {
        self.build_with(rate, seed, Some(noise_shape))
    }
}

impl KerasDropout {
    fn build_with(
        &self,
        rate: f64,
        seed: Option<u64>,
        noise_shape: Option<&[Option<usize>]>,
    ) -> Result<BoxedDropout> {
        let seed = seed.map(fold_seed);
        let noise_shape = noise_shape.map(<[Option<usize>]>::to_vec);
        let layer = PyLayer::new(&KERAS, &self.name(), rate, |_, m| {
            m.getattr("Dropout")?.call1((rate, seed, noise_shape))
        })?;
        Ok(Box::new(layer))
    }
}
