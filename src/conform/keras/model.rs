//! The conformance model in Keras 3, compiled and trained with
//! `train_on_batch`, as two model subjects: the base frozen by `trainable`
//! alone, and the transfer-learning idiom `base(x, training=False)`.
//!
//! The model is `keras.Input(6)` → a `Sequential` base (`Dense(16)` →
//! `BatchNormalization()` when the spec asks → `ReLU()` → `Dropout(rate)` →
//! `Dense(8)`) → a `Dense(1)` head, Glorot-uniform kernels seeded from the
//! spec's seed, mean squared error, the spec's optimizer (Keras's `SGD`,
//! `Adam` or `AdamW`, epsilon 1e-7). Weights are read by path
//! (`base/dense/kernel`, `base/batch_normalization/moving_mean`, `head/bias`).
//! Keras keeps one step count for the whole optimizer, so the per-weight
//! optimizer state is the slots alone.

use crate::conform::python::model::PyModelSubject;
use crate::conform::python::KERAS;

/// How the Keras model's base is frozen and called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KerasVariant {
    /// `base.trainable = False`, the base called as `base(x)`.
    TrainableFalse,
    /// The base called as `base(x, training=False)` when the model is built,
    /// which Keras's transfer-learning guide uses to keep a base in inference
    /// mode; freezing is by `trainable` as in the other variant.
    TrainingFalse,
}

/// The conformance model in Keras 3 on JAX (CPU, float32), in `variant`:
/// `Keras 3.15 trainable=False` or `Keras 3.15 training=False`.
pub fn keras_model(variant: KerasVariant) -> PyModelSubject {
    let (label, python) = match variant {
        KerasVariant::TrainableFalse => ("trainable=False", "trainable_false"),
        KerasVariant::TrainingFalse => ("training=False", "training_false"),
    };
    let name = format!("{} {label}", super::name());
    PyModelSubject::new(&KERAS, name, super::version(), python)
}
