//! candle-nn 0.11 on the CPU (f32) as a subject: its `Dropout` as a
//! [`DropoutSubject`](crate::check::DropoutSubject) ([`CandleDropout`]) and a
//! small candle-nn model as a [`ModelSubject`](crate::check::ModelSubject)
//! ([`CandleModel`]), so `nncheck conform` measures candle on the same
//! batteries as nncheck's own core.
//!
//! What the suite can measure through it: the drop rate and scaling, the sign
//! of a dropped negative and of dropped special values, what candle does with
//! rate 1 and invalid rates, the independence of masks, the real autograd input
//! gradient of a dropout; and on the model, whether a frozen base stays
//! bit-identical (weights and BatchNorm running statistics), whether dropout is
//! still active in the training steps of a frozen model, and whether a freeze
//! and an unfreeze take effect.
//!
//! How candle's notions map to the subject API:
//!
//! - Phase: candle has no phase state; every call takes `train: bool`
//!   (`ModuleT::forward_t`), so `Phase::Train` is `forward_t(x, true)` and
//!   `Phase::Eval` is `forward_t(x, false)`, for the whole model at once.
//! - Freezing: candle has no trainable flag. A candle user freezes a part by
//!   giving the optimizer only the `Var`s of the parts that should learn; the
//!   model subject does exactly that, rebuilding its optimizer over the
//!   trainable parts' `Var`s whenever that set changes (see [`CandleModel`]).
//!   Nothing else changes with a freeze: a training forward still runs the
//!   frozen part in training mode.
//! - Seeding: candle's CPU generator is the thread's `rand` generator and
//!   `Device::Cpu.set_seed` refuses to seed it, so no candle layer can be seeded;
//!   seeding is reported not applicable and layers are built unseeded.
//! - Errors: candle's own errors become [`Error::Subject`] with candle's message;
//!   a candle panic is caught and becomes the same error, `panicked: ` first.

mod dropout;
mod model;

pub use dropout::CandleDropout;
pub use model::CandleModel;

use crate::check::{Error, Result};
use candle_core::{Device, Tensor};
use ndarray::ArrayD;

/// The name both subjects report.
const NAME: &str = "candle-nn 0.11";

/// The exact candle-nn release the adapter is built against (`Cargo.lock`;
/// a test holds the two together).
pub const VERSION: &str = "0.11.1";

/// A candle error as the suite records it: candle's message, as candle gave it,
/// without the backtrace candle appends when `RUST_BACKTRACE` is set (a
/// scoreboard cell is one line).
fn subject_error(e: candle_core::Error) -> Error {
    let text = e.to_string();
    Error::Subject {
        subject: NAME.into(),
        message: text.lines().next().unwrap_or_default().to_string(),
    }
}

/// Runs `f` on candle, a candle error or panic becoming [`Error::Subject`].
fn on_candle<T>(f: impl FnOnce() -> candle_core::Result<T>) -> Result<T> {
    crate::check::catching(NAME, || f().map_err(subject_error))
}

/// An ndarray as a CPU tensor of the same shape, in logical order.
fn to_tensor(x: &ArrayD<f32>) -> candle_core::Result<Tensor> {
    Tensor::from_vec(x.iter().copied().collect(), x.shape(), &Device::Cpu)
}

/// A tensor as an ndarray of the same shape.
fn to_array(t: &Tensor) -> candle_core::Result<ArrayD<f32>> {
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    ArrayD::from_shape_vec(t.dims().to_vec(), values).map_err(candle_core::Error::wrap)
}
