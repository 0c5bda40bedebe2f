//! The layers: each one a small file behind the [`crate::Layer`] trait.

pub mod batch_norm;
pub mod dense;
pub mod dropout;
pub mod dropout_kernel;
pub mod relu;

pub use batch_norm::BatchNormalization;
pub use dense::Dense;
pub use dropout::{Dropout, DropoutCall, DropoutStats};
pub use relu::ReLU;
