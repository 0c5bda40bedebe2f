//! The byte path for `f32` on CPUs with AVX-512: the keystream is never written
//! out. Sixteen blocks are computed at once and transposed in registers so that
//! one vector is the bytes of 64 consecutive cells; one unsigned byte compare gives
//! their drop mask in a mask register, which zero-masks four 16-lane multiplies.
//! The select of one group of sixteen blocks is interleaved with the rounds of the
//! next, so the memory traffic overlaps the keystream arithmetic. Each window's
//! ties are then decided from four tie-stream blocks computed here
//! ([`words64`]).

use crate::layers::dropout::kernel::keystream::avx512::{double_round, finish16, init16, words64};
use crate::layers::dropout::kernel::select::select_window;
use crate::layers::dropout::kernel::streams::Streams;
use crate::layers::dropout::kernel::ties::BaseScan;
use crate::layers::dropout::kernel::Avx512;
use crate::layers::dropout::mask::TIE_WINDOW;
use std::arch::x86_64::*;

/// The window loop for `f32` with AVX-512: each full window's keystream is computed
/// in registers and consumed there, so the bytes never pass through memory. A short
/// last window takes the buffered path, whose keystream is the AVX-512 one too.
pub(crate) fn select_windows(
    avx512: Avx512,
    mut streams: Streams,
    x: Option<&[f32]>,
    out: &mut [f32],
    scale: f32,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    let full = out.len() / TIE_WINDOW;
    let (head, tail) = out.split_at_mut(full * TIE_WINDOW);
    let dst = head.as_mut_ptr();
    let src = match x {
        Some(x) => x[..full * TIE_WINDOW].as_ptr(),
        None => dst.cast_const(),
    };
    let block = (streams.first_window * (TIE_WINDOW / 64)) as u64;
    let _proof: Avx512 = avx512;
    // SAFETY: the `Avx512` token proves the CPU supports AVX-512F, BW and POPCNT;
    // `src` and `dst` each address `full` whole windows of f32 (the same ones when
    // in place, which the function allows).
    let mut dropped = unsafe {
        select_windows_f32(
            &streams.key,
            streams.stream,
            block,
            full,
            src,
            dst,
            scale,
            t_hi,
            t_lo,
            streams.stream.wrapping_add(1),
        )
    };
    if !tail.is_empty() {
        // A short last window: the buffered path (on the AVX-512 keystream).
        let mut window = [0u8; TIE_WINDOW];
        let mut positions = [0u16; TIE_WINDOW];
        streams.fill_window(full, &mut window);
        let bytes = &window[..tail.len()];
        let xt = x.map(|x| &x[full * TIE_WINDOW..]);
        let count = select_window(
            &mut streams,
            BaseScan,
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

/// Keystream groups (of sixteen blocks, 1024 cells) per tie window.
const GROUPS: usize = TIE_WINDOW / (16 * 64);

/// `windows` full windows from block `block` of `stream` on:
/// `dst[i] = if byte i < t_hi { +0.0 } else { src[i] * scale }`, then the ties.
/// Returns the drop count.
///
/// Software-pipelined: the select of group `g - 1` is interleaved with the
/// rounds of group `g` (a quarter of its blocks after each double round), so the
/// loads and stores run under the keystream's vector arithmetic instead of after
/// it. A group leaves behind
/// only its sixteen 64-bit drop masks. When `t_lo != 0`, once the select of a
/// window is complete its ties are decided from `tie_stream` ([`words64`]) and
/// applied. `block` must be `64 * first_window`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and POPCNT; `src` must be readable
/// and `dst` writable for `windows * TIE_WINDOW` f32. They may be equal (in
/// place: every vector is loaded before it is stored) but must not otherwise
/// overlap.
#[target_feature(enable = "avx512f,avx512bw,popcnt")]
#[allow(clippy::too_many_arguments)] // the whole state of the run, kept inline
pub(crate) unsafe fn select_windows_f32(
    key: &[u32; 8],
    stream: u64,
    block: u64,
    windows: usize,
    src: *const f32,
    dst: *mut f32,
    scale: f32,
    t_hi: u8,
    t_lo: u32,
    tie_stream: u64,
) -> u64 {
    let find_ties = t_lo != 0;
    let t = _mm512_set1_epi8(t_hi as i8);
    let s = _mm512_set1_ps(scale);
    let mut positions = [0u16; TIE_WINDOW];
    let mut tie_masks = [0u32; TIE_WINDOW];
    let mut masks = [0u64; 16];
    // The window's tie bits (bit k of word i: cell 64 i + k is a tie), turned into
    // positions once the window is selected, away from the pipelined loop.
    let mut tie_bits = [0u64; TIE_WINDOW / 64];
    let mut dropped = 0u64;
    let groups = windows * GROUPS;
    for g in 0..=groups {
        let next = g < groups;
        let init = if next {
            // SAFETY: AVX-512F is enabled here.
            unsafe { init16(key, stream, block.wrapping_add(16 * g as u64)) }
        } else {
            [_mm512_setzero_si512(); 16]
        };
        let mut x = init;
        for r in 0..4 {
            if next {
                // SAFETY: AVX-512F is enabled here.
                unsafe { double_round(&mut x) };
            }
            if g > 0 {
                for (l, &drop) in masks.iter().enumerate().skip(4 * r).take(4) {
                    let base = ((g - 1) * 16 + l) * 64;
                    let keep = !drop;
                    for j in 0..4 {
                        // SAFETY: AVX-512F is enabled here; every offset is below
                        // `windows * TIE_WINDOW` (the previous group's cells), and
                        // each vector is loaded before the same cells are stored.
                        unsafe {
                            let v = _mm512_loadu_ps(src.add(base + 16 * j));
                            let m = (keep >> (16 * j)) as u16;
                            let o = _mm512_maskz_mul_ps(m, v, s);
                            _mm512_storeu_ps(dst.add(base + 16 * j), o);
                        }
                    }
                }
            }
        }
        if g > 0 && g % GROUPS == 0 {
            // Window `w` is selected: its ties can be decided and applied.
            let w = g / GROUPS - 1;
            let mut n = 0usize;
            if find_ties {
                // Most words are zero (a tie is 1/256 per cell): a summary bit per
                // non-zero word, from eight vector tests, lets the scan skip them.
                let mut words = 0u64;
                for (q, eight) in tie_bits.chunks_exact(8).enumerate() {
                    // SAFETY: `eight` is eight u64 (64 bytes); AVX-512F is enabled.
                    let v = unsafe { _mm512_loadu_si512(eight.as_ptr().cast()) };
                    words |= u64::from(_mm512_test_epi64_mask(v, v)) << (8 * q);
                }
                while words != 0 {
                    let k = words.trailing_zeros() as usize;
                    words &= words - 1;
                    let base = (64 * k) as u32;
                    let mut ties = tie_bits[k];
                    while ties != 0 {
                        // n < cells before this one in the window < TIE_WINDOW.
                        positions[n] = (base + ties.trailing_zeros()) as u16;
                        n += 1;
                        ties &= ties - 1;
                    }
                }
            }
            if n > 0 {
                // Tie j of window W reads word j of block run W * 256 of the
                // tie stream (W * TIE_WINDOW words in).
                let run = (block / 64)
                    .wrapping_add(w as u64)
                    .wrapping_mul(TIE_WINDOW as u64 / 16);
                for (c, chunk) in tie_masks[..n].chunks_mut(64).enumerate() {
                    // SAFETY: AVX-512F is enabled here.
                    let words = unsafe { words64(key, tie_stream, run.wrapping_add(4 * c as u64)) };
                    for (m, &word) in chunk.iter_mut().zip(&words) {
                        *m = 0u32.wrapping_sub(u32::from(word >> 8 < t_lo));
                    }
                }
                for (&i, &m) in positions[..n].iter().zip(&tie_masks[..n]) {
                    // SAFETY: `i < TIE_WINDOW`, so the cell is in window `w`.
                    unsafe {
                        let cell = dst.add(w * TIE_WINDOW + usize::from(i));
                        *cell = f32::from_bits((*cell).to_bits() & !m);
                    }
                    dropped += u64::from(m & 1);
                }
            }
        }
        if next {
            // SAFETY: AVX-512F is enabled here.
            let blocks = unsafe { finish16(x, &init) };
            let first = (g % GROUPS) * 16 * 64;
            for (l, (bytes, mask)) in blocks.iter().zip(masks.iter_mut()).enumerate() {
                *mask = _mm512_cmplt_epu8_mask(*bytes, t);
                dropped += u64::from(mask.count_ones());
                if find_ties {
                    tie_bits[first / 64 + l] = _mm512_cmpeq_epu8_mask(*bytes, t);
                }
            }
        }
    }
    dropped
}
