//! Fuzz target bodies, shared as source by the cargo-fuzz crate and the tests.
//!
//! Each submodule holds one target's body as `pub fn run(data: &[u8])`. The same
//! body runs from the cargo-fuzz crate in `fuzz/` (coverage-guided, which
//! includes this folder by path) and from `tests/fuzz_corpus_replay.rs` (every
//! committed corpus and regression file, stable toolchain), so `cargo test` is
//! the regression gate even without nightly. The bodies drive the public API
//! only, and the library itself does not depend on `arbitrary`.
//!
//! A body decodes the bytes with [`arbitrary::Unstructured`], drives the public API
//! and panics only when an invariant is violated (SPEC §2, §3, §5, §7), asserting
//! through the checks of `nncheck::check` and comparing models through
//! `nncheck::check::training::snapshot::ModelSnapshot` where those exist:
//! - [`dropout`]: invalid configuration gives the typed error; valid configuration
//!   gives the exact mask, zeros, scale and eval identity of SPEC §2.
//! - [`model_build`]: any stack or graph is either a typed error or a model whose
//!   forward works on inputs of its declared shape and returns its declared shape.
//! - [`fit_sequence`]: frozen weights never move, a rejected call changes nothing,
//!   and a fit stopped by a non-finite step keeps the weights of its last good step.
//! - [`batch_norm`]: frozen or `Eval` BatchNorm never moves its statistics.
//! - [`inspect_archive`]: a `.keras` file or `config.json` of any bytes is read
//!   or refused with a typed error, never a panic.
//!
//! Sizes are bounded inside the bodies (at most [`MAX_FUZZ_ELEMENTS`] elements per
//! allocated tensor) so one execution stays in the millisecond range. A body never
//! panics on exhausted input: it stops early instead.

pub mod batch_norm;
pub mod dropout;
pub mod fit_sequence;
pub mod inspect_archive;
pub mod model_build;

use arbitrary::Unstructured;
use ndarray::ArrayD;
use nncheck::error::Error;

/// The most elements a fuzz body allocates for one tensor.
pub const MAX_FUZZ_ELEMENTS: usize = 4096;

/// What a body returns internally; running out of bytes ends the run quietly.
pub type FuzzResult = arbitrary::Result<()>;

/// An `f32` that is often special: NaN (with payloads), infinities, signed zeros,
/// subnormals, extremes, raw bit patterns, or a small ordinary number.
pub fn any_f32(u: &mut Unstructured<'_>) -> arbitrary::Result<f32> {
    let sign = |neg: bool| if neg { 0x8000_0000u32 } else { 0 };
    Ok(match u.int_in_range(0u8..=15)? {
        0 => f32::NAN,
        1 => f32::from_bits(u.arbitrary::<u32>()? | 0x7f80_0001),
        2 => f32::INFINITY,
        3 => f32::NEG_INFINITY,
        4 => 0.0,
        5 => -0.0,
        6 => f32::from_bits(u.int_in_range(1u32..=0x007f_ffff)? | sign(u.arbitrary()?)),
        7 => {
            if u.arbitrary()? {
                f32::MAX
            } else {
                f32::MIN
            }
        }
        8 => f32::from_bits(u.arbitrary::<u32>()?),
        _ => small_f32(u)?,
    })
}

/// One of `choices`, decoded as `#[derive(Arbitrary)]` decodes an enum (a `u32`
/// scaled to the count), so inputs keep their meaning from when the core's
/// enums derived `Arbitrary` themselves.
fn choose_like_derive<T: Copy>(u: &mut Unstructured<'_>, choices: &[T]) -> arbitrary::Result<T> {
    let v = u64::from(u.arbitrary::<u32>()?);
    Ok(choices[((v * choices.len() as u64) >> 32) as usize])
}

/// A loss, any of them.
pub fn loss(u: &mut Unstructured<'_>) -> arbitrary::Result<nncheck::Loss> {
    use nncheck::Loss::*;
    choose_like_derive(
        u,
        &[
            MeanSquaredError,
            BinaryCrossentropy,
            BinaryCrossentropyFromLogits,
        ],
    )
}

/// A small ordinary `f32` in about `[-8, 8]`, on a 1/4096 grid.
pub fn small_f32(u: &mut Unstructured<'_>) -> arbitrary::Result<f32> {
    Ok(f32::from(u.arbitrary::<i16>()?) / 4096.0)
}

/// An array of `shape` filled with [`small_f32`], or with [`any_f32`] when `wild`.
///
/// The caller keeps `shape` within [`MAX_FUZZ_ELEMENTS`] elements.
pub fn array(
    u: &mut Unstructured<'_>,
    shape: &[usize],
    wild: bool,
) -> arbitrary::Result<ArrayD<f32>> {
    let n: usize = shape.iter().product();
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        values.push(if wild { any_f32(u)? } else { small_f32(u)? });
    }
    Ok(ArrayD::from_shape_vec(shape.to_vec(), values).expect("length is the product"))
}

/// True for the two errors a training step reports for non-finite numbers (the
/// ones that may follow earlier good steps of the same `fit`); every other error
/// is a rejection of bad input and must leave the model exactly as it was.
pub fn is_non_finite(e: &Error) -> bool {
    matches!(e, Error::NonFiniteLoss { .. } | Error::NonFiniteStep { .. })
}

/// The element count of `shape` if it is at most `cap`, without overflow.
pub fn len_within(shape: &[usize], cap: usize) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= cap)
}
