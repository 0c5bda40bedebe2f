//! The choice of driver for the byte path's select: [`dispatch`] picks it from
//! the kernel's [`Isa`](super::Isa) and the element type: for `f32` the fused
//! drivers of [`super::fused`], for other types the window loop of
//! [`super::select`], compiled a second time with AVX2 enabled where the CPU has
//! it. Kept apart from the select so the fused drivers, which call the select's
//! per-window step, and the choice between them import one way only.

use super::select::select_windows;
use super::streams::Streams;
#[cfg(target_arch = "x86_64")]
use super::ties::Avx2Scan;
use super::ties::BaseScan;
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
