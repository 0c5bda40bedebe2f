//! A model built by a Python subject module as a [`TrainableModel`]: both
//! modules' `Model` classes answer `set_trainable(part, flag)`,
//! `fit_step(x, y)`, `forward(x, training)`, `weights()` and
//! `optimizer_state()`, each in the framework's own terms (Keras's compiled
//! `train_on_batch`, PyTorch's eager loop).

use super::{from_numpy, named_arrays, to_numpy, Environment};
use crate::check::subjects::model::{ModelSpec, ModelSubject, OptimizerKind, Part, TrainableModel};
use crate::check::{Capabilities, Capability, Result};
use crate::phase::Phase;
use ndarray::ArrayD;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A Python framework's conformance model in one way of freezing it: the
/// subject module's `Model(spec, variant)`. Every optimizer and its weight
/// decay, BatchNorm, and the optimizer's state per weight.
#[derive(Debug, Clone)]
pub struct PyModelSubject {
    env: &'static Environment,
    name: String,
    version: String,
    variant: &'static str,
}

impl PyModelSubject {
    /// The model of `env`'s module in `variant`, reported as `name` at `version`.
    pub fn new(
        env: &'static Environment,
        name: String,
        version: &str,
        variant: &'static str,
    ) -> Self {
        PyModelSubject {
            env,
            name,
            version: version.into(),
            variant,
        }
    }

    /// The environment the model runs in.
    pub fn environment(&self) -> &'static Environment {
        self.env
    }

    /// The variant's name in the subject module.
    pub fn python_variant(&self) -> &'static str {
        self.variant
    }
}

impl ModelSubject for PyModelSubject {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn version(&self) -> Option<String> {
        Some(self.version.clone())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::every_optimizer()
            .with(Capability::BatchNorm)
            .with(Capability::OptimizerState)
    }

    fn build(&self, spec: &ModelSpec) -> Result<Box<dyn TrainableModel>> {
        Ok(Box::new(PyModel::new(
            self.env,
            &self.name,
            spec,
            self.variant,
        )?))
    }
}

/// A model object living in the embedded Python.
pub struct PyModel {
    env: &'static Environment,
    subject: String,
    object: Py<PyAny>,
}

impl std::fmt::Debug for PyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyModel")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The optimizer's name as the subject modules spell it.
fn optimizer_name(kind: OptimizerKind) -> &'static str {
    match kind {
        OptimizerKind::Sgd => "sgd",
        OptimizerKind::Momentum => "momentum",
        OptimizerKind::Nesterov => "nesterov",
        OptimizerKind::Adam => "adam",
        OptimizerKind::AdamW => "adamw",
    }
}

/// `spec` as the `dict` the subject modules' `Model(spec, variant)` takes.
pub fn spec_dict<'py>(py: Python<'py>, spec: &ModelSpec) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("seed", super::layer::fold_seed(spec.seed))?;
    dict.set_item("batch_norm", spec.batch_norm)?;
    dict.set_item("rate", spec.rate)?;
    dict.set_item("optimizer", optimizer_name(spec.optimizer))?;
    dict.set_item("learning_rate", spec.learning_rate)?;
    dict.set_item("weight_decay", spec.weight_decay)?;
    Ok(dict)
}

impl PyModel {
    /// `Model(spec, variant)` of `env`'s module.
    pub fn new(
        env: &'static Environment,
        subject: &str,
        spec: &ModelSpec,
        variant: &str,
    ) -> Result<Self> {
        let object = env.call(subject, |py, m| {
            Ok(m.getattr("Model")?
                .call1((spec_dict(py, spec)?, variant))?
                .unbind())
        })?;
        Ok(PyModel {
            env,
            subject: subject.into(),
            object,
        })
    }

    fn call<T>(&self, f: impl FnOnce(Python<'_>, &Bound<'_, PyAny>) -> PyResult<T>) -> Result<T> {
        self.env
            .call(&self.subject, |py, _| f(py, self.object.bind(py)))
    }
}

impl TrainableModel for PyModel {
    fn set_trainable(&mut self, part: Part, trainable: bool) -> Result<()> {
        let part = match part {
            Part::Base => "base",
            Part::Head => "head",
            Part::Whole => "whole",
        };
        self.call(|_, m| {
            m.call_method1("set_trainable", (part, trainable))
                .map(|_| ())
        })
    }

    fn fit_step(&mut self, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<f64> {
        self.call(|py, m| {
            m.call_method1("fit_step", (to_numpy(py, x), to_numpy(py, y)))?
                .extract()
        })
    }

    fn forward(&mut self, x: &ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        let training = matches!(phase, Phase::Train);
        self.call(|py, m| from_numpy(&m.call_method1("forward", (to_numpy(py, x), training))?))
    }

    fn weights(&self) -> Result<Vec<(String, ArrayD<f32>)>> {
        self.call(|_, m| named_arrays(&m.call_method0("weights")?))
    }

    fn optimizer_state(&self) -> Result<Vec<(String, Vec<f64>)>> {
        self.call(|_, m| m.call_method0("optimizer_state")?.extract())
    }
}

/// Seconds per frozen-base training step of `Model(spec, variant)`, timed by
/// the framework's own clock inside Python (`time_fit_step`), so the bridge's
/// cost is not in the figure.
pub fn time_fit_step(
    env: &'static Environment,
    subject: &str,
    spec: &ModelSpec,
    variant: &str,
    (x, y): (&ArrayD<f32>, &ArrayD<f32>),
    steps: usize,
) -> Result<f64> {
    env.call(subject, |py, m| {
        m.call_method1(
            "time_fit_step",
            (
                spec_dict(py, spec)?,
                variant,
                to_numpy(py, x),
                to_numpy(py, y),
                steps,
            ),
        )?
        .extract()
    })
}
