//! The conformance model in PyTorch, trained in an eager loop, as two model
//! subjects: frozen by `requires_grad_(False)` alone, and by that plus
//! `.eval()` on the frozen part (re-applied after every `model.train()`).
//!
//! The model is `nn.Linear(6, 16)` → `nn.BatchNorm1d(16)` when the spec asks
//! (Keras's momentum and epsilon in torch's terms) → `nn.ReLU()` →
//! `nn.Dropout(rate)` → `nn.Linear(16, 8)` under an `nn.Linear(8, 1)` head,
//! Xavier-uniform weights and zero biases from the spec's seed, `nn.MSELoss`,
//! and the spec's `torch.optim` optimizer (SGD, Adam or AdamW, epsilon 1e-7)
//! over every parameter. Weights are the `state_dict`, by torch's names with
//! `/` (`base/0/weight`, `base/1/running_mean`, `head/bias`).

use crate::conform::python::model::PyModelSubject;
use crate::conform::python::TORCH;

/// How the PyTorch model's part is frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchVariant {
    /// `part.requires_grad_(False)` only.
    RequiresGrad,
    /// `part.requires_grad_(False)` and `part.eval()`.
    RequiresGradEval,
}

/// The conformance model in PyTorch (CPU, float32), frozen as `variant` says:
/// `PyTorch 2.15 requires_grad` or `PyTorch 2.15 requires_grad+eval`.
pub fn torch_model(variant: TorchVariant) -> PyModelSubject {
    let (label, python) = match variant {
        TorchVariant::RequiresGrad => ("requires_grad", "requires_grad"),
        TorchVariant::RequiresGradEval => ("requires_grad+eval", "requires_grad_eval"),
    };
    let name = format!("{} {label}", super::name());
    PyModelSubject::new(&TORCH, name, super::version(), python)
}
