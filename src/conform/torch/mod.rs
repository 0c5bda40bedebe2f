//! PyTorch on the CPU (float32) as a subject (feature `torch`): `nn.Dropout`
//! as a dropout subject ([`TorchDropout`]), `AlphaDropout` and the feature
//! dropouts `Dropout1d/2d/3d` as a noise subject ([`TorchNoise`]), and the
//! conformance model trained in an eager loop with `torch.optim` as two model
//! subjects ([`torch_model`]): frozen by `requires_grad_(False)` alone, and by
//! that plus `base.eval()`, the way PyTorch users are told to freeze.
//!
//! The layers and the loop are PyTorch's own, built and called by the embedded
//! Python (`src/conform/python/torch_subjects.py`) in the environment
//! `python/make-env.sh torch` makes. How PyTorch's notions map to the subject
//! API:
//!
//! - Phase: a module's `train()` / `eval()` mode.
//! - Freezing: `requires_grad_(False)` on the part (plus `.eval()` in the
//!   second variant); the optimizer holds every parameter, as users build it,
//!   and skips those without a gradient.
//! - Seeding: each layer and model owns a generator state started as
//!   `torch.manual_seed(seed)` starts the global one (the low 32 bits count; a
//!   64-bit seed is folded, see
//!   [`fold_seed`](crate::conform::python::layer::fold_seed)).
//! - The mask and the input gradient come from torch's autograd graph of the
//!   training call itself.
//! - Errors: a Python exception becomes the subject's error with its type and
//!   message.

mod dropout;
mod model;
mod noise;

pub use dropout::TorchDropout;
pub use model::{torch_model, TorchVariant};
pub use noise::TorchNoise;

use crate::conform::python::TORCH;

/// The PyTorch version the environment pins (`python/requirements-torch.txt`),
/// which loading the environment checks is the one installed.
pub fn version() -> &'static str {
    TORCH.pinned("torch").unwrap_or("2")
}

/// The subjects' column name: `PyTorch 2.15`.
pub fn name() -> String {
    let version = version();
    let minor: Vec<&str> = version.split('.').take(2).collect();
    format!("PyTorch {}", minor.join("."))
}
