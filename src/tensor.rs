//! The element type trait, shape checks and the per-tensor element cap.
//!
//! The core is generic over [`Element`] (f32 by default, f64 for gradient checks),
//! and every shape that reaches an allocation passes [`checked_len`] first, so an
//! oversized or overflowing shape becomes [`Error::TooLarge`] instead of an
//! allocation failure (SPEC §7).

use crate::error::{Error, Result};
use ndarray::{ArrayD, LinalgScalar};
use std::fmt::{Debug, Display};

/// The most elements one tensor may hold: 2^28 (1 GiB of f32).
///
/// Larger requests are rejected with [`Error::TooLarge`] before anything is allocated.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// A floating-point element type the core computes in.
///
/// Implemented for `f32` (the default) and `f64` (used by the gradient checks).
///
/// ```
/// use nncheck::Element;
/// assert_eq!(<f32 as Element>::round_from(0.1), 0.1f32);
/// assert_eq!(<f64 as Element>::NAME, "f64");
/// ```
pub trait Element:
    LinalgScalar
    + ndarray::ScalarOperand
    + num_traits::FromPrimitive
    + num_traits::NumAssign
    + num_traits::Float
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + 'static
{
    /// The type's name, for reports.
    const NAME: &'static str;
    /// Rounds an f64 to this type (once, to nearest).
    fn round_from(v: f64) -> Self;
    /// Widens to f64 (exact).
    fn to_f64(self) -> f64;
    /// The raw bits, widened to u64, for bit-exact comparisons.
    fn to_bits_u64(self) -> u64;
    /// `+0.0` where `mask` is all ones, `self` (bit for bit) where it is zero; other
    /// masks are never passed. f32 and f64 clear the bits under the mask, which is
    /// branch-free and lets the dropout kernel's select loop vectorise.
    ///
    /// ```
    /// use nncheck::Element;
    /// assert_eq!(f32::NAN.zero_where(u32::MAX).to_bits(), 0);
    /// assert_eq!((-1.5f64).zero_where(0), -1.5);
    /// ```
    #[inline(always)]
    fn zero_where(self, mask: u32) -> Self {
        if mask != 0 {
            Self::zero()
        } else {
            self
        }
    }
    /// The element-type dispatch of the dropout kernel: `Ok` with the same cells
    /// at type `f32` when `Self` is `f32` (the type the kernel has SIMD selects
    /// for), `Err` with them unchanged otherwise, which takes the portable select.
    /// The default is the portable choice; `f32` overrides it.
    #[doc(hidden)]
    #[inline(always)]
    fn as_f32_cells(
        cells: Cells<'_, Self>,
    ) -> std::result::Result<Cells<'_, f32>, Cells<'_, Self>> {
        Err(cells)
    }
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    fn round_from(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn to_bits_u64(self) -> u64 {
        u64::from(self.to_bits())
    }
    #[inline(always)]
    fn zero_where(self, mask: u32) -> Self {
        f32::from_bits(self.to_bits() & !mask)
    }
    #[inline(always)]
    fn as_f32_cells(cells: Cells<'_, f32>) -> std::result::Result<Cells<'_, f32>, Cells<'_, f32>> {
        Ok(cells)
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    fn round_from(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn to_bits_u64(self) -> u64 {
        self.to_bits()
    }
    #[inline(always)]
    fn zero_where(self, mask: u32) -> Self {
        // Sign-extend: an all-ones u32 becomes an all-ones u64.
        f64::from_bits(self.to_bits() & !(mask as i32 as i64 as u64))
    }
}

/// The input (absent when in place), output and scale of a dropout kernel select,
/// as [`Element::as_f32_cells`] passes them on.
#[doc(hidden)]
#[derive(Debug)]
pub struct Cells<'a, F> {
    /// The input, when it is not `out` itself.
    pub x: Option<&'a [F]>,
    /// The output (and the input, in place).
    pub out: &'a mut [F],
    /// The scale of kept cells.
    pub scale: F,
}

/// The element count of `shape`, or [`Error::TooLarge`] when it overflows or
/// exceeds [`MAX_ELEMENTS`].
///
/// ```
/// assert_eq!(nncheck::tensor::checked_len(&[3, 4]).unwrap(), 12);
/// assert!(nncheck::tensor::checked_len(&[usize::MAX, 2]).is_err());
/// ```
pub fn checked_len(shape: &[usize]) -> Result<usize> {
    let too_large = || Error::TooLarge {
        shape: shape.to_vec(),
        cap: MAX_ELEMENTS,
    };
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_large)?;
    if n > MAX_ELEMENTS {
        return Err(too_large());
    }
    Ok(n)
}

/// The element count of one sample of a model's input, or the error that refuses it:
/// [`Error::EmptySample`] when an axis is 0, [`Error::TooLarge`] past the cap.
///
/// A zero axis is refused because every batch of that shape would be empty (SPEC
/// §7), and because the other axes could then be of any length without holding an
/// element, which later concatenations could not represent.
///
/// ```
/// use nncheck::{tensor::checked_sample_shape, Error};
/// assert_eq!(checked_sample_shape("m", &[2, 3]).unwrap(), 6);
/// assert!(matches!(checked_sample_shape("m", &[0, 1 << 62]), Err(Error::EmptySample { .. })));
/// ```
pub fn checked_sample_shape(model: &str, shape: &[usize]) -> Result<usize> {
    if shape.contains(&0) {
        return Err(Error::EmptySample {
            model: model.to_string(),
            shape: shape.to_vec(),
        });
    }
    checked_len(shape)
}

/// True when both arrays have the same shape and every element has the same bits.
///
/// This is the comparison the suite uses for "bit-identical": NaN payloads, the
/// sign of zero and subnormals all count.
///
/// ```
/// use ndarray::arr1;
/// let a = arr1(&[0.0f32, f32::NAN]).into_dyn();
/// assert!(nncheck::tensor::bits_equal(&a, &a.clone()));
/// assert!(!nncheck::tensor::bits_equal(&a, &arr1(&[-0.0f32, f32::NAN]).into_dyn()));
/// ```
pub fn bits_equal<F: Element>(a: &ArrayD<F>, b: &ArrayD<F>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.to_bits_u64() == y.to_bits_u64())
}

/// True when every element is finite.
pub fn all_finite<F: Element>(a: &ArrayD<F>) -> bool {
    a.iter().all(|v| v.is_finite())
}

/// Builds an [`Error::ShapeMismatch`].
pub(crate) fn shape_mismatch(context: &str, expected: impl Into<String>, got: &[usize]) -> Error {
    Error::ShapeMismatch {
        context: context.to_string(),
        expected: expected.into(),
        got: got.to_vec(),
    }
}
