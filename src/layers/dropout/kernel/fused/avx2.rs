//! The byte path for `f32` on CPUs with AVX2 (and without AVX-512): window `w`'s
//! keystream is computed while window `w - 1`'s select runs in slices between its
//! ChaCha rounds, so the loads and stores overlap the arithmetic instead of
//! following it. A window's bytes go through a 4 KiB buffer (there are only sixteen
//! vector registers), read back from L1. The first tie words of eight windows are
//! computed in one eight-lane pass ([`avx2::tie_words8`]); a window's rare ties past
//! those read rand_chacha.

use crate::layers::dropout::kernel::keystream::avx2;
use crate::layers::dropout::kernel::select::select_window;
use crate::layers::dropout::kernel::streams::Streams;
use crate::layers::dropout::kernel::ties::Avx2Scan;
use crate::layers::dropout::kernel::Avx2;
use crate::layers::dropout::mask::TIE_WINDOW;
use crate::tensor::Element;

/// The window loop for `f32` with AVX2: `out` (with input `x` when it is not `out`
/// itself) from the window `streams` stands at. Returns the drop count.
///
/// # Panics
/// When `x` is shorter than `out` (the public entry points check lengths first).
pub(crate) fn select_windows(
    avx2: Avx2,
    streams: Streams,
    x: Option<&[f32]>,
    out: &mut [f32],
    scale: f32,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    // SAFETY: the `Avx2` token proves the CPU supports AVX2.
    unsafe { select_windows_compiled(Avx2Scan::new(avx2), streams, x, out, scale, t_hi, t_lo) }
}

/// [`select_windows`], compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn select_windows_compiled(
    scan: Avx2Scan,
    mut streams: Streams,
    x: Option<&[f32]>,
    out: &mut [f32],
    scale: f32,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    let full = out.len() / TIE_WINDOW;
    let (head, tail) = out.split_at_mut(full * TIE_WINDOW);
    // Every access to `head` below goes through `dst` (or `src` when in place),
    // so no new borrow of `head` invalidates them while the loop runs.
    let dst = head.as_mut_ptr();
    let src = match x {
        Some(x) => x[..full * TIE_WINDOW].as_ptr(),
        None => dst.cast_const(),
    };
    let mut buffers = [[0u8; TIE_WINDOW]; 2];
    // The keystream of window `full` (computed in the loop's last pass, while the
    // last whole window, if any, is selected): the bytes of the short last window.
    let mut last = [0u8; TIE_WINDOW];
    let mut positions = [0u16; TIE_WINDOW];
    let mut dropped = 0u64;
    let first_block = (streams.first_window * (TIE_WINDOW / 64)) as u64;
    let mut known = [[0u32; avx2::KNOWN_TIE_WORDS]; 8];
    for w in 0..=full {
        let (a, b) = buffers.split_at_mut(1);
        let (this, prev) = if w % 2 == 0 {
            (&mut a[0], &b[0])
        } else {
            (&mut b[0], &a[0])
        };
        let job = (w > 0).then(|| avx2::WindowSelect {
            bytes: prev,
            src: src.wrapping_add((w - 1) * TIE_WINDOW),
            dst: dst.wrapping_add((w - 1) * TIE_WINDOW),
            scale,
            t_hi,
        });
        let next = if w < full { this } else { &mut last };
        let block = first_block.wrapping_add((w * (TIE_WINDOW / 64)) as u64);
        // SAFETY: AVX2 is enabled here; the job's pointers address window `w - 1`,
        // a whole window of `src` and of `dst`.
        let count = unsafe {
            avx2::keystream_selecting::<true, TIE_WINDOW>(
                &streams.key,
                streams.stream,
                block,
                next,
                job.as_ref(),
            )
        };
        dropped += u64::from(count);
        if w > 0 && t_lo != 0 {
            let local = w - 1;
            if local % 8 == 0 {
                let first = (streams.first_window + local) as u64;
                // SAFETY: AVX2 is enabled here.
                unsafe {
                    avx2::tie_words8(
                        &streams.key,
                        streams.stream.wrapping_add(1),
                        first,
                        &mut known,
                    )
                };
            }
            // SAFETY: window `local` of `head`, reached through `dst` (see above);
            // nothing else touches it while `o` lives.
            let o =
                unsafe { std::slice::from_raw_parts_mut(dst.add(local * TIE_WINDOW), TIE_WINDOW) };
            let count = streams.resolve_ties(
                scan,
                local,
                prev,
                t_hi,
                t_lo,
                &mut positions,
                &known[local % 8],
                |i, m| {
                    o[i] = o[i].zero_where(m);
                },
            );
            dropped += u64::from(count);
        }
    }
    if !tail.is_empty() {
        let bytes = &last[..tail.len()];
        let xt = x.map(|x| &x[full * TIE_WINDOW..]);
        let count = select_window(
            &mut streams,
            scan,
            full,
            bytes,
            xt,
            tail,
            scale,
            t_hi,
            t_lo,
            &mut positions,
        );
        dropped += u64::from(count);
    }
    dropped
}
