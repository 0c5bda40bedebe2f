//! `torch.nn.Dropout` as a dropout subject.
//!
//! PyTorch refuses rates outside `[0, 1]` with a `ValueError` at construction
//! and accepts rate 1 (all zeros). A training call multiplies by a mask of `0`
//! or `1 / (1 - p)` computed in `f32`, so a dropped negative is `-0.0` and a
//! dropped NaN stays NaN: convention findings the audit names.

use crate::check::{BoxedDropout, Capabilities, Capability, DropoutSubject, Result};
use crate::conform::python::layer::{fold_seed, PyLayer};
use crate::conform::python::TORCH;
use pyo3::prelude::PyAnyMethods;

/// PyTorch's `nn.Dropout` on the CPU, float32.
///
/// Capabilities: the autograd input gradient, seeding at build, reseeding and
/// the keep mask of the last training call. No noise shape, no counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct TorchDropout;

impl DropoutSubject for TorchDropout {
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
            Capability::Mask,
        ])
    }

    fn build(&self, rate: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        let seed = seed.map(fold_seed);
        let layer = PyLayer::new(&TORCH, &self.name(), rate, |_, m| {
            m.getattr("Dropout")?.call1((rate, seed, "Dropout"))
        })?;
        Ok(Box::new(layer))
    }
}
