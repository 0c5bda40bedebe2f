//! The kernel at rates whose threshold needs at most four bits: rate 1/2 (one random
//! bit per cell), 1/4 and 3/4 (two), the other multiples of 1/16 (four).
//!
//! Invariant served: the whole kernel's. The output is bit-identical to
//! [`reference_mask`](crate::layers::dropout::reference_mask) followed by the plain
//! select, and it depends only on (seed, call, cell index).
//!
//! Why a path of its own: when the threshold `t` is a multiple of `2^(32 - bits)`,
//! a cell whose `bits`-bit field `f` is compared with `t >> (32 - bits)` drops with
//! probability exactly `t / 2^32`, and no tie is left to resolve. At rate 0.5 the
//! keystream is then an eighth of the byte path's, and the select's loads and
//! stores are most of the cost. Each window's bits are computed first and then
//! selected from L1, not fused: there is little arithmetic to hide the traffic under.
//!
//! Layout: window `w` of [`TIE_WINDOW`] cells reads bytes `w * TIE_WINDOW * bits / 8
//! ..` of the primary stream (`8 * bits` whole ChaCha blocks, so it can be sought
//! there). Cell `c` of the window is bits `c * bits ..`, least significant first,
//! read from little-endian `u32` words. Shifting a word left until the field's top
//! bit is bit 31 leaves only lower fields' bits below it. So the field is below
//! `t >> (32 - bits)` exactly when the shifted word is below `t`: one shift and one
//! compare per cell, with no masking.

#[cfg(target_arch = "x86_64")]
use super::keystream;
use super::mask::{mask_rng, TIE_WINDOW};
use super::{Avx2, DropoutKernel};
#[cfg(target_arch = "x86_64")]
use crate::tensor::Cells;
use crate::tensor::Element;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Bytes of the widest window's bits (four bits per cell).
const MAX_WINDOW_BYTES: usize = TIE_WINDOW / 2;

/// Bytes of one eight-block AVX2 keystream group.
#[cfg(target_arch = "x86_64")]
const GROUP_BYTES: usize = 8 * 64;

/// The kernel's output at a packed rate: `bits` is 1, 2 or 4 (see
/// [`cell_bits`](crate::layers::dropout::cell_bits)), `t` the threshold.
pub(super) fn run<F: Element>(
    kernel: &DropoutKernel,
    bits: u32,
    t: u32,
    first_window: usize,
    x: Option<&[F]>,
    out: &mut [F],
    scale: F,
) -> u64 {
    match bits {
        1 => select_windows(PackedBits::<1>::new(kernel, first_window), t, x, out, scale),
        2 => select_windows(PackedBits::<2>::new(kernel, first_window), t, x, out, scale),
        _ => select_windows(PackedBits::<4>::new(kernel, first_window), t, x, out, scale),
    }
}

/// The mask of the first `mask.len()` cells at a packed rate, `true` where dropped.
pub(super) fn mask(kernel: &DropoutKernel, bits: u32, t: u32, mask: &mut [bool]) {
    match bits {
        1 => mask_windows(PackedBits::<1>::new(kernel, 0), t, mask),
        2 => mask_windows(PackedBits::<2>::new(kernel, 0), t, mask),
        _ => mask_windows(PackedBits::<4>::new(kernel, 0), t, mask),
    }
}

/// The primary stream of one call read `BITS` bits per cell, window by window.
// Elsewhere than x86-64 only rand_chacha's generator is read.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct PackedBits<const BITS: usize> {
    /// rand_chacha's generator on the primary stream, sought to `first_window`.
    primary: ChaCha8Rng,
    first_window: usize,
    /// The key and primary stream number, for the AVX2 keystream.
    key: [u32; 8],
    stream: u64,
    /// The AVX2 keystream (and, for `f32`, the AVX2 select) when the kernel's
    /// instruction set includes AVX2.
    avx2: Option<Avx2>,
    buffer: [u8; MAX_WINDOW_BYTES],
}

impl<const BITS: usize> PackedBits<BITS> {
    /// Bytes of one window's bits.
    const WINDOW_BYTES: usize = TIE_WINDOW * BITS / 8;
    /// Cells per little-endian `u32` word.
    const CELLS_PER_WORD: usize = 32 / BITS;

    fn new(kernel: &DropoutKernel, first_window: usize) -> Self {
        let stream = kernel.call.wrapping_mul(2);
        let mut primary = mask_rng(kernel.seed);
        primary.set_stream(stream);
        primary.set_word_pos((first_window * Self::WINDOW_BYTES / 4) as u128);
        PackedBits {
            primary,
            first_window,
            key: kernel.key,
            stream,
            avx2: kernel.isa.avx2(),
            buffer: [0; MAX_WINDOW_BYTES],
        }
    }

    /// The bits of window `local` (relative to `first_window`); windows must be
    /// asked for in order, each once.
    fn window(&mut self, local: usize) -> &[u8] {
        let bytes = &mut self.buffer[..Self::WINDOW_BYTES];
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = self.avx2 {
            let block = ((self.first_window + local) * Self::WINDOW_BYTES / 64) as u64;
            for (g, group) in bytes
                .as_chunks_mut::<GROUP_BYTES>()
                .0
                .iter_mut()
                .enumerate()
            {
                let first = block.wrapping_add(8 * g as u64);
                keystream::avx2::keystream(avx2, &self.key, self.stream, first, group);
            }
            return bytes;
        }
        let _ = local;
        self.primary.fill_bytes(bytes);
        bytes
    }
}

/// All ones when cell `j` of `word` drops at threshold `t`, else zero.
#[inline(always)]
fn drop_mask<const BITS: usize>(word: u32, j: usize, t: u32) -> u32 {
    // The field's top bit lands on bit 31; only lower cells' bits remain below it,
    // and they cannot reach the next multiple of 2^(32 - BITS), which `t` is.
    let shifted = word << (32 - BITS - BITS * j);
    0u32.wrapping_sub(u32::from(shifted < t))
}

/// [`mask`] at one bit width: each window's bits, decoded cell by cell.
fn mask_windows<const BITS: usize>(mut bits: PackedBits<BITS>, t: u32, mask: &mut [bool]) {
    for (w, cells) in mask.chunks_mut(TIE_WINDOW).enumerate() {
        let words = bits.window(w).as_chunks::<4>().0;
        for (cells, word) in cells
            .chunks_mut(PackedBits::<BITS>::CELLS_PER_WORD)
            .zip(words)
        {
            let word = u32::from_le_bytes(*word);
            for (j, m) in cells.iter_mut().enumerate() {
                *m = drop_mask::<BITS>(word, j, t) != 0;
            }
        }
    }
}

/// The window loop: each window's bits, then its select (AVX2 for `f32` when the
/// kernel's instruction set has it, else the portable loop). Returns the drop count.
fn select_windows<F: Element, const BITS: usize>(
    bits: PackedBits<BITS>,
    t: u32,
    x: Option<&[F]>,
    out: &mut [F],
    scale: F,
) -> u64 {
    #[cfg(target_arch = "x86_64")]
    let (x, out, scale) = match (bits.avx2, F::as_f32_cells(Cells { x, out, scale })) {
        (Some(avx2), Ok(Cells { x, out, scale })) => {
            let head = |bytes: &[u8], x: Option<&[f32]>, o: &mut [f32]| {
                select_head_f32::<BITS>(avx2, bytes, t, x, o, scale)
            };
            return select_windows_with(bits, t, x, out, scale, head);
        }
        (_, Ok(Cells { x, out, scale })) => {
            return select_windows_with(bits, t, x, out, scale, |_, _, _| (0, 0));
        }
        (_, Err(Cells { x, out, scale })) => (x, out, scale),
    };
    select_windows_with(bits, t, x, out, scale, |_, _, _| (0, 0))
}

/// The window loop: each window's bits, then `head` selects a prefix of the window
/// (returning how many cells it covered and their drop count) and the portable
/// select the rest.
#[inline(always)]
fn select_windows_with<F: Element, const BITS: usize>(
    mut bits: PackedBits<BITS>,
    t: u32,
    x: Option<&[F]>,
    out: &mut [F],
    scale: F,
    mut head: impl FnMut(&[u8], Option<&[F]>, &mut [F]) -> (usize, u32),
) -> u64 {
    let mut dropped = 0u64;
    for (w, o) in out.chunks_mut(TIE_WINDOW).enumerate() {
        let xw = x.map(|x| &x[w * TIE_WINDOW..][..o.len()]);
        let bytes = bits.window(w);
        let (done, count) = head(bytes, xw, o);
        let rest = select_portable::<F, BITS>(bytes, t, xw, o, scale, done);
        dropped += u64::from(count) + u64::from(rest);
    }
    dropped
}

/// The whole words of one window of `f32` cells, selected by [`select_f32_avx2`];
/// returns how many cells that covered and their drop count. `x`, when given, is
/// as long as `o`; `bytes` are the whole window's bits.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn select_head_f32<const BITS: usize>(
    avx2: Avx2,
    bytes: &[u8],
    t: u32,
    x: Option<&[f32]>,
    o: &mut [f32],
    scale: f32,
) -> (usize, u32) {
    let _proof: Avx2 = avx2;
    let per_word = PackedBits::<BITS>::CELLS_PER_WORD;
    let done = o.len() / per_word * per_word;
    assert!(x.is_none_or(|x| x.len() == o.len()) && bytes.len() * 8 >= done * BITS);
    let dst = o.as_mut_ptr();
    let src = x.map_or(dst.cast_const(), <[f32]>::as_ptr);
    // SAFETY: the `Avx2` token proves the CPU supports AVX2; `src` (the input, as
    // long as `o`, or `dst` in place) is readable and `dst` writable for
    // `o.len() >= done` cells, whose bits are in `bytes` (asserted).
    let count = unsafe { select_f32_avx2::<BITS>(bytes, t, src, dst, done, scale) };
    (done, count)
}

/// The select of cells `from ..` of one window (`from` a multiple of the cells per
/// word): `+0.0` where dropped, `x * scale` where kept. Returns the drop count.
/// Branch-free like the byte path's: a lane mask clears the product's bits.
#[inline(always)]
fn select_portable<F: Element, const BITS: usize>(
    bytes: &[u8],
    t: u32,
    x: Option<&[F]>,
    o: &mut [F],
    scale: F,
    from: usize,
) -> u32 {
    let per_word = PackedBits::<BITS>::CELLS_PER_WORD;
    let words = bytes.as_chunks::<4>().0.iter().skip(from / per_word);
    let mut dropped = 0u32;
    for (n, (cells, word)) in o[from..].chunks_mut(per_word).zip(words).enumerate() {
        let word = u32::from_le_bytes(*word);
        let base = from + n * per_word;
        for (j, cell) in cells.iter_mut().enumerate() {
            let mask = drop_mask::<BITS>(word, j, t);
            dropped = dropped.wrapping_sub(mask);
            let v = x.map_or(*cell, |x| x[base + j]);
            *cell = F::zero_where(v * scale, mask);
        }
    }
    dropped
}

/// [`select_portable`] for `f32`, eight cells per AVX2 vector: the word is
/// broadcast, shifted per lane so each cell's field tops its lane, and compared
/// with `t`. AVX2 compares only signed, so bit 31 is flipped on both sides
/// (`a < t` unsigned iff `a ^ 2^31 < t ^ 2^31` signed); on the word side that is
/// flipping every field's top bit once per word, before the shifts.
///
/// # Safety
/// The CPU must support AVX2; `src` readable and `dst` writable for `cells` cells
/// (they may be equal); `cells` a multiple of the cells per word, with their bits
/// in `bytes`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn select_f32_avx2<const BITS: usize>(
    bytes: &[u8],
    t: u32,
    src: *const f32,
    dst: *mut f32,
    cells: usize,
    scale: f32,
) -> u32 {
    use std::arch::x86_64::*;
    let per_word = PackedBits::<BITS>::CELLS_PER_WORD;
    let tops: u32 = match BITS {
        1 => u32::MAX,
        2 => 0xAAAA_AAAA,
        _ => 0x8888_8888,
    };
    let lane = |s: usize, j: usize| (32 - BITS - BITS * (8 * s + j)) as i32;
    let shifts: [__m256i; 4] = std::array::from_fn(|s| {
        let s = s % (4 / BITS); // vectors past the word's last are never used
        _mm256_setr_epi32(
            lane(s, 0),
            lane(s, 1),
            lane(s, 2),
            lane(s, 3),
            lane(s, 4),
            lane(s, 5),
            lane(s, 6),
            lane(s, 7),
        )
    });
    let threshold = _mm256_set1_epi32((t ^ 0x8000_0000) as i32);
    let scale = _mm256_set1_ps(scale);
    let mut count = _mm256_setzero_si256();
    let words = bytes.as_chunks::<4>().0;
    for (n, word) in words[..cells / per_word].iter().enumerate() {
        let word = _mm256_set1_epi32((u32::from_le_bytes(*word) ^ tops) as i32);
        for (s, shift) in shifts[..4 / BITS].iter().enumerate() {
            let i = n * per_word + 8 * s;
            let drop = _mm256_cmpgt_epi32(threshold, _mm256_sllv_epi32(word, *shift));
            // SAFETY: `i + 8 <= cells`; the caller vouches for `src` and `dst`.
            unsafe {
                let v = _mm256_mul_ps(_mm256_loadu_ps(src.add(i)), scale);
                _mm256_storeu_ps(dst.add(i), _mm256_andnot_ps(_mm256_castsi256_ps(drop), v));
            }
            count = _mm256_sub_epi32(count, drop);
        }
    }
    keystream::avx2::drop_count(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::dropout::kernel::{isa, Isa};
    use crate::layers::dropout::mask::{cell_bits, reference_mask};

    /// The compare is exact: of the `2^BITS` field values, exactly `t >> (32 - BITS)`
    /// drop, whatever the other cells' bits in the word.
    fn assert_exact<const BITS: usize>() {
        let fields = 1u32 << BITS;
        for below in 1..fields {
            let t = below << (32 - BITS);
            for j in 0..32 / BITS {
                for noise in [0u32, u32::MAX, 0x5A5A_5A5A, 0x9E37_79B9] {
                    let clear = !((fields - 1) << (BITS * j));
                    let drops = (0..fields)
                        .filter(|&f| drop_mask::<BITS>(noise & clear | f << (BITS * j), j, t) != 0)
                        .count() as u32;
                    assert_eq!(
                        drops, below,
                        "bits {BITS}, cell {j}, t {t:#x}, noise {noise:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn field_compare_drops_exactly_t_over_2_to_the_32() {
        assert_exact::<1>();
        assert_exact::<2>();
        assert_exact::<4>();
    }

    /// Both keystreams (AVX2 where the CPU has it, and rand_chacha's) and both
    /// selects give the reference's output, from the first window and from a later
    /// one, in place and out of place, on whole and partial words and windows.
    #[test]
    fn every_path_matches_reference() {
        // The portable path, and AVX2 where the CPU has it.
        let isas: Vec<Isa> = std::iter::once(Isa::Portable)
            .chain(isa::required(
                "avx2",
                "packed::every_path_matches_reference",
            ))
            .collect();
        let seed = 0x0123_4567_89ab_cdef;
        // Every packed threshold: below and above 2^31 (the AVX2 compare flips bit 31).
        let thresholds = [(1u32, 1u32 << 31), (2, 1 << 30), (2, 3 << 30)]
            .into_iter()
            .chain((1..16).step_by(2).map(|k| (4, k << 28)));
        for (bits, t) in thresholds {
            assert_eq!(cell_bits(u64::from(t)), bits, "t {t:#x}");
            for len in [0usize, 1, 7, 31, 33, 4095, 4096, 4097, 3 * 4096 + 17] {
                let mask = reference_mask(seed, 9, u64::from(t), 2 * TIE_WINDOW + len);
                let x: Vec<f32> = (0..mask.len()).map(|i| i as f32 - 0.5).collect();
                let want: Vec<u32> = x
                    .iter()
                    .zip(&mask)
                    .map(|(&v, &d)| if d { 0.0f32 } else { v * 2.0 }.to_bits())
                    .collect();
                let want64: Vec<u64> = x
                    .iter()
                    .zip(&mask)
                    .map(|(&v, &d)| if d { 0.0f64 } else { f64::from(v) * 2.0 }.to_bits())
                    .collect();
                let kernel = DropoutKernel::new(seed, 9, u64::from(t));
                let run: fn(&DropoutKernel, usize, u32, &[f32]) -> Forced = match bits {
                    1 => run_forced::<1>,
                    2 => run_forced::<2>,
                    _ => run_forced::<4>,
                };
                for &isa in &isas {
                    let kernel = kernel.clone().with_isa(isa);
                    for first_window in [0usize, 2] {
                        let cells = first_window * TIE_WINDOW..;
                        let got = run(&kernel, first_window, t, &x[cells.clone()]);
                        let dropped = mask[cells.clone()].iter().filter(|&&d| d).count() as u64;
                        let case =
                            format!("bits {bits}, len {len}, {isa:?}, window {first_window}");
                        assert_eq!(got.counts, [dropped; 3], "{case}");
                        let bits32 = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits32(&got.into), want[cells.clone()], "{case}");
                        assert_eq!(bits32(&got.in_place), want[cells.clone()], "{case}");
                        let wide: Vec<u64> = got.wide.iter().map(|v| v.to_bits()).collect();
                        assert_eq!(wide, want64[cells.clone()], "{case}");
                        if first_window == 0 {
                            assert_eq!(got.mask, mask, "{case}");
                        }
                    }
                }
            }
        }
    }

    /// What every entry of the packed path gave on one input.
    struct Forced {
        /// Drop counts: out of place, in place, `f64` in place.
        counts: [u64; 3],
        into: Vec<f32>,
        in_place: Vec<f32>,
        wide: Vec<f64>,
        /// The mask of the same cells (computed from window 0 only).
        mask: Vec<bool>,
    }

    /// Runs every entry of the packed path on `x` (the cells from window
    /// `first_window` on) on the kernel's instruction set.
    fn run_forced<const BITS: usize>(
        kernel: &DropoutKernel,
        first_window: usize,
        t: u32,
        x: &[f32],
    ) -> Forced {
        let forced = || PackedBits::<BITS>::new(kernel, first_window);
        let mut into = vec![f32::NAN; x.len()];
        let mut in_place = x.to_vec();
        let mut wide: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let counts = [
            select_windows(forced(), t, Some(x), &mut into, 2.0f32),
            select_windows(forced(), t, None, &mut in_place, 2.0f32),
            select_windows(forced(), t, None, &mut wide, 2.0f64),
        ];
        let mut mask = vec![false; x.len()];
        if first_window == 0 {
            mask_windows(forced(), t, &mut mask);
        }
        Forced {
            counts,
            into,
            in_place,
            wide,
            mask,
        }
    }
}
