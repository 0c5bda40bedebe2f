//! nncheck: a minimal Keras-semantics model core, and the checks that prove how
//! training-phase semantics behave.
//!
//! The question it answers: *in a frozen model (`trainable = false`), are dropout
//! layers still active during training?* Yes. `trainable` decides whether weights
//! and internal state may change; the phase (`Train` in `fit`, `Eval` in
//! `predict`) decides how a layer behaves. The one exception, as in Keras: a frozen
//! BatchNormalization runs in inference mode.
//!
//! ```
//! use nncheck::{Sequential, Dense, Dropout, Phase, Loss, FitConfig, optim::Sgd, tensor::bits_equal};
//! use ndarray::ArrayD;
//!
//! // A small base model, frozen.
//! let mut base = Sequential::<f32>::new("base")
//!     .add(Dense::new(8))
//!     .add(Dropout::new(0.5).unwrap())
//!     .build(&[4], Some(7))
//!     .unwrap();
//! base.freeze();
//! let frozen_before = base.get_weights();
//!
//! // A trainable head on top of it.
//! let mut model = Sequential::<f32>::new("model").add(base).add(Dense::new(1)).build(&[4], Some(8)).unwrap();
//! model.compile(Sgd::new(0.1).momentum(0.9).weight_decay(0.01), Loss::MeanSquaredError).unwrap();
//! let x = ArrayD::from_shape_fn(vec![64, 4], |i| (i[0] * 4 + i[1]) as f32 / 256.0);
//! let y = ArrayD::from_shape_fn(vec![64, 1], |i| (i[0] % 2) as f32);
//! model.fit(&x, &y, &FitConfig { epochs: 2, batch_size: 16, shuffle: true, seed: Some(1) }).unwrap();
//!
//! // The frozen weights did not move, bit for bit ...
//! let after = model.get_weights();
//! assert!(frozen_before.iter().zip(&after).all(|(a, b)| bits_equal(a, b)));
//! // ... yet the frozen model's dropout dropped units during fit.
//! let (_, stats) = &model.dropout_stats()[0];
//! assert!(stats.units_dropped > 0 && stats.units_dropped < stats.units_seen);
//! ```
#![warn(missing_docs, missing_debug_implementations)]

/// The README's code blocks pass through rustdoc, so a Rust block added to the
/// front page without `ignore` must compile (the ones it has are quoted from
/// `tests/verify_your_own_layer.rs`, which runs them).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod check;
pub mod conform;
pub mod error;
pub mod fit;
#[cfg(feature = "inspect")]
pub mod inspect;
pub mod layer;
pub mod layers;
pub mod loss;
pub mod model;
pub mod optim;
pub mod phase;
pub mod rng;
pub mod scenario;
pub mod stochastic;

pub mod tensor;

pub use error::{Error, Result};
pub use fit::{FitConfig, History};
pub use layer::{Layer, Weight, WeightId, WeightKind};
pub use layers::{
    AlphaDropout, BatchNormalization, DataFormat, Dense, Dropout, DropoutStats, GaussianDropout,
    GaussianNoise, ReLU, SpatialDropout,
};
pub use loss::Loss;
pub use model::graph::{Functional, NodeId};
pub use model::sequential::Sequential;
pub use model::{Model, WeightInfo};
pub use phase::Phase;
pub use stochastic::{NoiseStats, Stochastic};
pub use tensor::{Element, MAX_ELEMENTS};
