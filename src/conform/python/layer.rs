//! A layer built by a Python subject module as a [`DropoutLike`]: both modules'
//! layer classes answer `run(x, training)`, `backward(dy)`, `mask()` and
//! `reseed(seed)`, so one wrapper serves every Python framework. What a class
//! lacks, its subject does not declare, and the battery never asks.

use super::{bools_from_numpy, from_numpy, to_numpy, Environment};
use crate::check::{DropoutLike, Result};
use crate::phase::Phase;
use ndarray::ArrayD;
use pyo3::prelude::*;
use pyo3::types::PyModule;

/// A layer object living in the embedded Python.
pub struct PyLayer {
    env: &'static Environment,
    subject: String,
    rate: f64,
    object: Py<PyAny>,
}

impl std::fmt::Debug for PyLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyLayer")
            .field("subject", &self.subject)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl PyLayer {
    /// The object `make` builds from `env`'s module, claiming `rate`; a Python
    /// exception (a rate the framework refuses) is the subject's error.
    pub fn new(
        env: &'static Environment,
        subject: &str,
        rate: f64,
        make: impl for<'py> FnOnce(Python<'py>, &Bound<'py, PyModule>) -> PyResult<Bound<'py, PyAny>>,
    ) -> Result<Self> {
        let object = env.call(subject, |py, m| Ok(make(py, m)?.unbind()))?;
        Ok(PyLayer {
            env,
            subject: subject.into(),
            rate,
            object,
        })
    }

    fn call<T>(&self, f: impl FnOnce(Python<'_>, &Bound<'_, PyAny>) -> PyResult<T>) -> Result<T> {
        self.env
            .call(&self.subject, |py, _| f(py, self.object.bind(py)))
    }
}

impl DropoutLike<f32> for PyLayer {
    fn rate(&self) -> f64 {
        self.rate
    }

    fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        let training = matches!(phase, Phase::Train);
        self.call(|py, layer| from_numpy(&layer.call_method1("run", (to_numpy(py, &x), training))?))
    }

    fn run_backward(&mut self, dy: ArrayD<f32>) -> Result<ArrayD<f32>> {
        self.call(|py, layer| from_numpy(&layer.call_method1("backward", (to_numpy(py, &dy),))?))
    }

    fn reseed(&mut self, seed: u64) -> Result<()> {
        let seed = fold_seed(seed);
        self.call(|_, layer| layer.call_method1("reseed", (seed,)).map(|_| ()))
    }

    fn last_mask(&self) -> Result<ArrayD<bool>> {
        self.call(|_, layer| bools_from_numpy(&layer.call_method0("mask")?))
    }
}

/// A seed as both frameworks take it: 32 bits (Keras' seed state is `uint32`,
/// torch's CPU generator keeps the low 32 bits), folded so that seeds that
/// differ only in their high half still differ.
pub fn fold_seed(seed: u64) -> u32 {
    (seed ^ (seed >> 32)) as u32
}
