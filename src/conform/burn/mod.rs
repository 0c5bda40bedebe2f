//! burn 0.22 on its ndarray backend (f32) as a subject: its `Dropout` layer
//! through [`DropoutSubject`](crate::check::DropoutSubject), and a small model
//! of burn modules trained the way a burn user trains one through
//! [`ModelSubject`](crate::check::ModelSubject).
//!
//! Why: burn has two ways to freeze part of a model, and they differ in exactly
//! the question nncheck exists for. `Module::freeze()` stops the gradients *and*
//! clears the module-owned training flags (dropout passes its input through,
//! BatchNorm runs on its running statistics); `Module::no_grad()` stops the
//! gradients only (dropout keeps dropping, BatchNorm keeps updating its running
//! statistics). Each is its own column on the scoreboard, so the suite measures
//! what each does to the frozen-model invariants: frozen weights and statistics
//! bit-identical, dropout active in the training steps of a frozen model,
//! unfreezing without a rebuild; and, for the layer alone, the drop rate, exact
//! scaling, eval identity and the input gradient.
//!
//! How burn's notions map onto the subject API:
//!
//! - `Phase::Train` is a forward on tensors of the autodiff device with the
//!   module's training flags as they are; `Phase::Eval` is `valid()` (training
//!   flags off) on tensors of the plain ndarray device. burn selects training
//!   behaviour by the device and the flag together, as it does for its users.
//! - Seeding: burn has no per-layer seed. Its one random stream is the
//!   backend's, seeded by `Device::seed`, and on ndarray that stream is shared
//!   by the whole process. A dropout build with a seed is therefore
//!   [`Capability::SeedAtBuild`](crate::check::Capability::SeedAtBuild) not applicable,
//!   while `reseed` restarts that shared stream, which is exactly what a burn
//!   user can do. Anything else drawing from burn in the same process between a
//!   reseed and the next call changes the masks, so runs that check seeding
//!   must not share the process with other burn work at the same time.
//! - Weights: the same Glorot-uniform kernels and zero biases as nncheck's own
//!   `Dense`, drawn from nncheck's ChaCha streams keyed by the spec's seed and
//!   set into burn `Linear` modules, so they do not depend on the shared stream;
//!   the model's dropout masks come from that stream, seeded at build.
//! - A burn panic (burn refuses bad input by panicking, e.g. a dropout rate of
//!   1) becomes [`Error::Subject`] with the panic's message, never a crash.

mod dropout;
mod model;

pub use dropout::BurnDropout;
pub use model::{BurnModel, Freezing};

use crate::check::{Error, Result};
use burn::tensor::{Device, Tensor, TensorData};
use ndarray::ArrayD;

/// The subject's name in reports.
const NAME: &str = "burn 0.22";

/// The exact burn release the adapter is built against (`Cargo.lock`; a test
/// holds the two together).
pub const VERSION: &str = "0.22.1";

/// burn's ndarray device without autodiff: where inference runs.
///
/// burn 0.22 marks its ndarray backend deprecated in favour of its newer pure
/// Rust CPU backend; the subject is the ndarray backend all the same, named
/// explicitly so that no other enabled backend is picked by default.
#[allow(deprecated)]
fn eval_device() -> Device {
    Device::ndarray()
}

/// The same device with autodiff: where training runs.
fn train_device() -> Device {
    eval_device().autodiff()
}

/// An error of burn's, in burn's words.
fn subject_error(message: impl std::fmt::Display) -> Error {
    Error::Subject {
        subject: NAME.into(),
        message: message.to_string(),
    }
}

/// `x` as a burn tensor of rank `D` on `device`, values in logical order.
fn tensor<const D: usize>(x: &ArrayD<f32>, device: &Device) -> Result<Tensor<D>> {
    if x.ndim() != D {
        return Err(crate::Error::ShapeMismatch {
            context: format!("{NAME} input"),
            expected: format!("rank {D}"),
            got: x.shape().to_vec(),
        }
        .into());
    }
    let data = TensorData::new(x.iter().copied().collect::<Vec<f32>>(), x.shape().to_vec());
    Ok(Tensor::from_data(data, device))
}

/// A burn tensor read back as an array of its own shape.
fn array<const D: usize>(t: Tensor<D>) -> Result<ArrayD<f32>> {
    let data = t.try_into_data().map_err(subject_error)?;
    let shape = data.shape().to_vec();
    let values = data.try_into_vec::<f32>().map_err(subject_error)?;
    ArrayD::from_shape_vec(shape, values).map_err(subject_error)
}
