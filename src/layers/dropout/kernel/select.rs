//! The byte path's select, `drop ? +0.0 : x * scale`, window by window.
//!
//! The select is branch-free: the byte is compared with `t_hi` as a lane mask, and
//! `x * scale` has its bits cleared under the mask ([`Element::zero_where`]), which
//! is `+0.0` exactly; ties are fixed up after it ([`super::ties`]). Which driver
//! runs it is [`super::driver`]'s choice.

use super::mask::TIE_WINDOW;
use super::streams::Streams;
use super::ties::TieScan;
use crate::tensor::Element;

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
