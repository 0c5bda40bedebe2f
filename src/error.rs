//! The one error type of the crate.
//!
//! Every public entry point returns [`Error`](enum@Error) for bad input instead of panicking
//! (SPEC §7), and a call that returns an error has changed nothing in the model.
//! Messages name the bad value and what was expected, so a new user can fix the
//! call without reading the source.

use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in nncheck, one variant per kind of bad input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// A dropout rate that is NaN, infinite or outside `[0, 1]`.
    #[error("dropout rate must be a number in [0, 1], got {rate}")]
    InvalidRate {
        /// The rejected rate.
        rate: f64,
    },
    /// A hyper-parameter (learning rate, momentum, epsilon, ...) out of its range.
    #[error("{name} must be {expected}, got {value}")]
    InvalidHyperParameter {
        /// Which parameter.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// A tensor whose shape does not fit where it was used.
    #[error("shape mismatch in {context}: expected {expected}, got {got:?}")]
    ShapeMismatch {
        /// Where the mismatch was found (layer or call name).
        context: String,
        /// What was expected, in words.
        expected: String,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A noise shape entry that is neither the input's size on that axis nor 1, or a
    /// noise shape of the wrong rank.
    #[error(
        "noise shape {} does not fit input shape {}: it needs one entry per axis, each `None`, 1 or the input's size on that axis",
        dims(noise_shape, "None"),
        dims(input_shape, "batch")
    )]
    InvalidNoiseShape {
        /// The noise shape as declared (`None`: the input's size on that axis).
        noise_shape: Vec<Option<usize>>,
        /// The input's shape, batch included (`None`: the batch axis, when the model
        /// is being built and the batch size is not known yet).
        input_shape: Vec<Option<usize>>,
    },
    /// A tensor with no elements where at least one is needed, e.g. an empty batch.
    #[error("{context}: empty input (shape {shape:?}); at least one sample is needed")]
    EmptyInput {
        /// Where the empty input was given.
        context: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A model input shape (one sample, batch axis excluded) with an axis of length 0.
    ///
    /// Every batch of such a model would hold no elements, so it is refused when
    /// the model is built rather than on its first call.
    #[error("model `{model}`: input shape {shape:?} has an axis of length 0, so every sample would be empty; each axis of a sample needs a length of at least 1")]
    EmptySample {
        /// The model being built.
        model: String,
        /// The per-sample input shape that was given.
        shape: Vec<usize>,
    },
    /// Two tensors that must share their batch size do not.
    #[error("x has {x_samples} samples but y has {y_samples}: they must match")]
    BatchSizeMismatch {
        /// Samples in x.
        x_samples: usize,
        /// Samples in y.
        y_samples: usize,
    },
    /// A batch size, epoch count or layer width of zero.
    #[error("{name} must be at least 1, got 0")]
    Zero {
        /// Which quantity.
        name: &'static str,
    },
    /// A shape whose element count overflows `usize` or exceeds [`crate::MAX_ELEMENTS`].
    #[error("shape {shape:?} has more than {cap} elements (the per-tensor cap) or its element count overflows")]
    TooLarge {
        /// The shape (batch included) as far as it was known.
        shape: Vec<usize>,
        /// The cap it exceeds.
        cap: usize,
    },
    /// The model was asked to train before an optimizer and a loss were set.
    #[error("model `{model}` is not compiled: call compile(optimizer, loss) before fit or train_on_batch")]
    NotCompiled {
        /// The model's name.
        model: String,
    },
    /// `set_weights` got the wrong number of arrays.
    #[error("set_weights on `{model}` expected {expected} arrays, got {got}")]
    WeightCount {
        /// The model's name.
        model: String,
        /// How many weights the model has.
        expected: usize,
        /// How many were given.
        got: usize,
    },
    /// backward was called without a matching train forward.
    #[error("{layer}: backward called without a preceding forward")]
    NoForwardCache {
        /// The layer's name.
        layer: String,
    },
    /// The loss of a training step was NaN or infinite; the step was not applied.
    #[error("non-finite loss {loss} at epoch {epoch}, step {step}: the step was not applied and the model keeps the weights of its last good step")]
    NonFiniteLoss {
        /// Epoch (0-based) of the failing step.
        epoch: usize,
        /// Step (0-based) within the epoch.
        step: usize,
        /// The loss value.
        loss: f64,
    },
    /// A gradient, an update or a state update of a training step was NaN or infinite.
    #[error("non-finite {what} in `{weight}` at epoch {epoch}, step {step}: the step was not applied and the model keeps the weights of its last good step")]
    NonFiniteStep {
        /// Epoch (0-based).
        epoch: usize,
        /// Step (0-based) within the epoch.
        step: usize,
        /// "gradient", "update" or "state".
        what: &'static str,
        /// The weight concerned.
        weight: String,
    },
    /// A graph node id that does not belong to the builder.
    #[error("functional model `{model}`: unknown node {node}")]
    UnknownNode {
        /// The model being built.
        model: String,
        /// The node id.
        node: usize,
    },
    /// A layer or weight path that names nothing in the model.
    #[error("model `{model}` has no {what} at path `{path}`: paths start with the model's name, as `{model}/dense/kernel` (Model::layer_paths and Model::weights list them)")]
    UnknownPath {
        /// The model asked.
        model: String,
        /// `layer` or `weight`.
        what: &'static str,
        /// The path that was given.
        path: String,
    },
    /// A model with no layers or a graph with no input.
    #[error("model `{model}` is empty: {reason}")]
    EmptyModel {
        /// The model's name.
        model: String,
        /// What is missing.
        reason: &'static str,
    },
}

/// Renders a shape whose unknown entries are written as `unknown`: `[batch, 4]`.
fn dims(shape: &[Option<usize>], unknown: &str) -> String {
    let entries: Vec<String> = shape
        .iter()
        .map(|d| d.map_or_else(|| unknown.to_string(), |d| d.to_string()))
        .collect();
    format!("[{}]", entries.join(", "))
}
