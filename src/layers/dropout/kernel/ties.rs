//! Ties: the cells whose primary byte equals the threshold's leading byte `t_hi`
//! (probability 1/256), decided after the select by a word of the tie stream.
//!
//! A tie can only drop when the low 24 bits of the threshold, `t_lo`, are non-zero
//! (`word >> 8 < t_lo`), so at rates such as 1/256 no tie is even looked for. The
//! `j`-th tie of window `w` reads word `j` of the window's tie run (stream `2k + 1`,
//! words `w * TIE_WINDOW ..`). Positions are collected with byte compares and
//! move-masks ([`TieScan`]), and the result is applied with a mask, not a branch.
//! The words come from rand_chacha sought once per window, unless the caller
//! computed the first ones ahead (the fused drivers do).

use super::mask::TIE_WINDOW;
use super::streams::Streams;
#[cfg(target_arch = "x86_64")]
use super::Avx2;
use rand::Rng;

/// Cells per tie-search block: ties are located through a 64-bit bit mask.
pub(super) const TIE_BLOCK: usize = 64;

impl Streams {
    /// Resolves the ties of window `local` (relative to `first_window`): for the
    /// `j`-th cell `i` of the window whose byte equals `t_hi`, calls
    /// `resolve(i, mask)` with `mask` all ones iff tie word `j` drops it
    /// (`word >> 8 < t_lo`), else zero. Returns how many ties dropped.
    ///
    /// Mostly branch-free, since ties are rare and unpredictable: tie positions are
    /// collected with byte compares and move-masks (a chunk's lowest tie is stored
    /// unconditionally; only chunks with two or more ties loop), then the window's
    /// tie words are read in order and applied with a mask.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // all per-window state, kept inline
    pub(super) fn resolve_ties(
        &mut self,
        scan: impl TieScan,
        local: usize,
        bytes: &[u8],
        t_hi: u8,
        t_lo: u32,
        positions: &mut [u16; TIE_WINDOW],
        known: &[u32],
        resolve: impl FnMut(usize, u32),
    ) -> u32 {
        let mut n = 0usize;
        let mut collect = |mut ties: u64, block: usize| {
            let base = (block * TIE_BLOCK) as u16;
            // The slot at `n` is free (n < number of cells seen so far <= TIE_WINDOW).
            positions[n] = base + ties.trailing_zeros() as u16;
            n += usize::from(ties != 0);
            ties &= ties.wrapping_sub(1);
            while ties != 0 {
                positions[n] = base + ties.trailing_zeros() as u16;
                n += 1;
                ties &= ties - 1;
            }
        };
        let mut chunks = bytes.chunks_exact(TIE_BLOCK);
        for (block, chunk) in chunks.by_ref().enumerate() {
            let chunk: &[u8; TIE_BLOCK] = chunk.try_into().expect("exact chunk");
            collect(scan.bits64(chunk, t_hi), block);
        }
        if !chunks.remainder().is_empty() {
            collect(scan.bits(chunks.remainder(), t_hi), bytes.len() / TIE_BLOCK);
        }
        self.apply_ties(local, &positions[..n], t_lo, known, resolve)
    }

    /// The second half of [`resolve_ties`](Self::resolve_ties): `positions` are the
    /// window's tie cells in increasing order; the `j`-th reads tie word `j`, taken
    /// from `known` (the run's first words, when the caller computed them) or else
    /// from rand_chacha sought there.
    #[inline(always)]
    pub(super) fn apply_ties(
        &mut self,
        local: usize,
        positions: &[u16],
        t_lo: u32,
        known: &[u32],
        mut resolve: impl FnMut(usize, u32),
    ) -> u32 {
        let mut dropped = 0u32;
        for (j, &i) in positions.iter().enumerate() {
            // The j-th tie of the window reads word j of the window's tie run.
            let word = match known.get(j) {
                Some(&word) => word,
                None => {
                    if j == known.len() {
                        let window = (self.first_window + local) as u128;
                        self.ties
                            .set_word_pos(window * TIE_WINDOW as u128 + j as u128);
                    }
                    self.ties.next_u32()
                }
            };
            let mask = 0u32.wrapping_sub(u32::from(word >> 8 < t_lo));
            resolve(usize::from(i), mask);
            dropped = dropped.wrapping_sub(mask);
        }
        dropped
    }
}

/// How tie bytes are found: bit `k` of the result is set iff `chunk[k] == t_hi`.
pub(super) trait TieScan: Copy {
    /// The tie bits of one full block.
    fn bits64(self, chunk: &[u8; TIE_BLOCK], t_hi: u8) -> u64;

    /// The tie bits of a chunk of at most [`TIE_BLOCK`] bytes.
    #[inline(always)]
    fn bits(self, chunk: &[u8], t_hi: u8) -> u64 {
        match <&[u8; TIE_BLOCK]>::try_from(chunk) {
            Ok(full) => self.bits64(full, t_hi),
            Err(_) => {
                // A short last chunk: pad with a byte that is not a tie.
                let mut padded = [t_hi.wrapping_add(1); TIE_BLOCK];
                padded[..chunk.len()].copy_from_slice(chunk);
                self.bits64(&padded, t_hi)
            }
        }
    }
}

/// The baseline scan: SSE2 on x86-64, a plain loop elsewhere.
#[derive(Debug, Clone, Copy)]
pub(super) struct BaseScan;

impl TieScan for BaseScan {
    #[inline(always)]
    fn bits64(self, chunk: &[u8; TIE_BLOCK], t_hi: u8) -> u64 {
        tie_bits64(chunk, t_hi)
    }
}

/// [`TieScan::bits64`] with four SSE2 byte compares and move-masks on x86-64.
#[inline(always)]
fn tie_bits64(chunk: &[u8; TIE_BLOCK], t_hi: u8) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let mut bits = 0u64;
        for (k, part) in chunk.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of x86-64; `part` is 16 readable bytes.
            let m = unsafe {
                let v = _mm_loadu_si128(part.as_ptr().cast());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(t_hi as i8)))
            };
            bits |= u64::from(m as u16) << (16 * k);
        }
        bits
    }
    #[cfg(not(target_arch = "x86_64"))]
    chunk
        .iter()
        .enumerate()
        .fold(0u64, |m, (k, &b)| m | (u64::from(b == t_hi) << k))
}

/// The tie scan with two 32-byte compares per block, on CPUs with AVX2.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(super) struct Avx2Scan(Avx2);

#[cfg(target_arch = "x86_64")]
impl Avx2Scan {
    /// The scan, given proof of AVX2.
    pub(super) fn new(avx2: Avx2) -> Self {
        Avx2Scan(avx2)
    }
}

#[cfg(target_arch = "x86_64")]
impl TieScan for Avx2Scan {
    #[inline(always)]
    fn bits64(self, chunk: &[u8; TIE_BLOCK], t_hi: u8) -> u64 {
        let _proof: Avx2 = self.0;
        // SAFETY: an `Avx2Scan` holds an `Avx2` token, which only exists where the
        // CPU supports AVX2.
        unsafe { tie_bits64_avx2(chunk, t_hi) }
    }
}

/// [`TieScan::bits64`] with two AVX2 byte compares and move-masks.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn tie_bits64_avx2(chunk: &[u8; TIE_BLOCK], t_hi: u8) -> u64 {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    let t = _mm256_set1_epi8(t_hi as i8);
    // SAFETY: `chunk` is 64 readable bytes: two unaligned 32-byte loads.
    let (lo, hi) = unsafe {
        (
            _mm256_loadu_si256(chunk.as_ptr().cast()),
            _mm256_loadu_si256(chunk.as_ptr().add(32).cast()),
        )
    };
    let (lo, hi) = (_mm256_cmpeq_epi8(lo, t), _mm256_cmpeq_epi8(hi, t));
    u64::from(_mm256_movemask_epi8(lo) as u32) | u64::from(_mm256_movemask_epi8(hi) as u32) << 32
}
