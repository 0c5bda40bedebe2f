//! The layers: each one a small file behind the [`crate::Layer`] trait.

pub mod batch_norm;
pub mod dense;
pub mod dropout;
pub mod relu;

/// The dropout kernel under its former path; it lives in [`dropout::kernel`].
pub use dropout::kernel as dropout_kernel;

pub use batch_norm::BatchNormalization;
pub use dense::Dense;
pub use dropout::{Dropout, DropoutCall, DropoutStats};
pub use relu::ReLU;
