//! The layers: each one a small file behind the [`crate::Layer`] trait.

pub mod alpha_dropout;
pub mod batch_norm;
pub mod dense;
pub mod dropout;
pub mod gaussian_dropout;
pub mod gaussian_noise;
pub mod noise_shape;
pub mod noise_stream;
pub mod relu;
pub mod spatial_dropout;

/// The dropout kernel under its former path; it lives in [`dropout::kernel`].
pub use dropout::kernel as dropout_kernel;

pub use alpha_dropout::AlphaDropout;
pub use batch_norm::BatchNormalization;
pub use dense::Dense;
pub use dropout::{Dropout, DropoutCall, DropoutStats};
pub use gaussian_dropout::GaussianDropout;
pub use gaussian_noise::GaussianNoise;
pub use relu::ReLU;
pub use spatial_dropout::{DataFormat, SpatialDropout};
