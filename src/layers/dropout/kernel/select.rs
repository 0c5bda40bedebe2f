//! The byte path's select, `drop ? +0.0 : x * scale`, and the choice of driver.
//!
//! The select is branch-free: the byte is compared with `t_hi` as a lane mask, and
//! `x * scale` has its bits cleared under the mask ([`Element::zero_where`]), which
//! is `+0.0` exactly; ties are fixed up after it ([`super::ties`]). [`dispatch`]
//! picks the driver from the kernel's [`Isa`](super::Isa) and the element type:
//! for `f32` the fused drivers of [`super::fused`], for other types this window
//! loop, compiled a second time with AVX2 enabled where the CPU has it.

use super::mask::TIE_WINDOW;
use super::streams::Streams;
#[cfg(target_arch = "x86_64")]
use super::ties::Avx2Scan;
use super::ties::{BaseScan, TieScan};
#[cfg(target_arch = "x86_64")]
use super::Avx2;
#[cfg(target_arch = "x86_64")]
use crate::tensor::Cells;
use crate::tensor::Element;

/// Runs the byte path on one part: `out` (with input `x` when it is not `out`
/// itself) from the window `streams` stands at. Returns the drop count.
pub(super) fn dispatch<F: Element>(
    streams: Streams,
    x: Option<&[F]>,
    out: &mut [F],
    scale: F,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    #[cfg(target_arch = "x86_64")]
    let (x, out, scale) = match F::as_f32_cells(Cells { x, out, scale }) {
        Ok(Cells { x, out, scale }) => {
            if let Some(avx512) = streams.isa.avx512() {
                return super::fused::avx512::select_windows(
                    avx512, streams, x, out, scale, t_hi, t_lo,
                );
            }
            if let Some(avx2) = streams.isa.avx2() {
                return super::fused::avx2::select_windows(
                    avx2, streams, x, out, scale, t_hi, t_lo,
                );
            }
            return select_windows(BaseScan, streams, x, out, scale, t_hi, t_lo);
        }
        Err(Cells { x, out, scale }) => (x, out, scale),
    };
    #[cfg(target_arch = "x86_64")]
    if let Some(avx2) = streams.isa.avx2() {
        return select_windows_avx2(avx2, streams, x, out, scale, t_hi, t_lo);
    }
    select_windows(BaseScan, streams, x, out, scale, t_hi, t_lo)
}

/// The per-window loop: draw the window's bytes, select, fix up ties.
#[inline(always)]
pub(super) fn select_windows<F: Element>(
    scan: impl TieScan,
    mut streams: Streams,
    x: Option<&[F]>,
    out: &mut [F],
    scale: F,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    let mut window = [0u8; TIE_WINDOW];
    let mut positions = [0u16; TIE_WINDOW];
    let mut dropped = 0u64;
    for (w, o) in out.chunks_mut(TIE_WINDOW).enumerate() {
        streams.fill_window(w, &mut window);
        let bytes = &window[..o.len()];
        let xw = x.map(|x| &x[w * TIE_WINDOW..][..o.len()]);
        let count = select_window(
            &mut streams,
            scan,
            w,
            bytes,
            xw,
            o,
            scale,
            t_hi,
            t_lo,
            &mut positions,
        );
        dropped += u64::from(count);
    }
    dropped
}

/// One window (or a short last one) from its primary `bytes`: the select, then
/// the ties (read from rand_chacha); `x` is the window's input when it is not `o`
/// itself. Returns the drop count.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // all per-window state, kept inline
pub(super) fn select_window<F: Element>(
    streams: &mut Streams,
    scan: impl TieScan,
    local: usize,
    bytes: &[u8],
    x: Option<&[F]>,
    o: &mut [F],
    scale: F,
    t_hi: u8,
    t_lo: u32,
    positions: &mut [u16; TIE_WINDOW],
) -> u32 {
    let mut count = match x {
        Some(x) => select_into(bytes, x, o, scale, t_hi),
        None => select_in_place(bytes, o, scale, t_hi),
    };
    if t_lo != 0 {
        count += streams.resolve_ties(scan, local, bytes, t_hi, t_lo, positions, &[], |i, m| {
            o[i] = o[i].zero_where(m);
        });
    }
    count
}

/// `out[i] = if bytes[i] < t_hi { +0.0 } else { x[i] * scale }`; the drop count.
///
/// Branch-free: the byte is widened and compared in 32 bits, giving an all-ones
/// lane mask where dropped; the product's bits are cleared under the mask (which
/// is `+0.0` exactly) and the mask's low bit is counted. This form vectorises to a
/// widen, a compare, a multiply and an and-not per vector.
#[inline(always)]
pub(super) fn select_into<F: Element>(
    bytes: &[u8],
    x: &[F],
    out: &mut [F],
    scale: F,
    t_hi: u8,
) -> u32 {
    let mut dropped = 0u32;
    for ((o, &v), &b) in out.iter_mut().zip(x).zip(bytes) {
        let mask = drop_mask(b, t_hi);
        dropped = dropped.wrapping_sub(mask);
        *o = F::zero_where(v * scale, mask);
    }
    dropped
}

/// [`select_into`] on the buffer itself.
#[inline(always)]
fn select_in_place<F: Element>(bytes: &[u8], out: &mut [F], scale: F, t_hi: u8) -> u32 {
    let mut dropped = 0u32;
    for (o, &b) in out.iter_mut().zip(bytes) {
        let mask = drop_mask(b, t_hi);
        dropped = dropped.wrapping_sub(mask);
        *o = F::zero_where(*o * scale, mask);
    }
    dropped
}

/// All ones when `b < t_hi` (the cell drops on its byte), else zero.
#[inline(always)]
fn drop_mask(b: u8, t_hi: u8) -> u32 {
    ((i32::from(b) - i32::from(t_hi)) >> 31) as u32
}

/// [`select_windows`] with the AVX2 tie scan, compiled for AVX2 so the select loop
/// runs eight lanes wide (the keystream is chosen in [`Streams::fill_window`]).
#[cfg(target_arch = "x86_64")]
fn select_windows_avx2<F: Element>(
    avx2: Avx2,
    streams: Streams,
    x: Option<&[F]>,
    out: &mut [F],
    scale: F,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn compiled<F: Element>(
        scan: Avx2Scan,
        streams: Streams,
        x: Option<&[F]>,
        out: &mut [F],
        scale: F,
        t_hi: u8,
        t_lo: u32,
    ) -> u64 {
        select_windows(scan, streams, x, out, scale, t_hi, t_lo)
    }
    // SAFETY: the `Avx2` token proves the CPU supports AVX2.
    unsafe { compiled(Avx2Scan::new(avx2), streams, x, out, scale, t_hi, t_lo) }
}
