//! The ChaCha8 keystream eight blocks at a time with AVX2, one block per lane of
//! each vector, and the byte select that the `f32` driver runs between its rounds
//! ([`keystream_selecting`]). Also the first tie words of eight windows at once
//! ([`tie_words8`]).

use crate::layers::dropout::kernel::Avx2;
use crate::layers::dropout::mask::TIE_WINDOW;
use std::arch::x86_64::*;

/// The byte-shuffle masks that rotate each 32-bit lane left by 16 and by 8.
///
/// Hidden from the optimiser on purpose: when LLVM sees constant masks it
/// rewrites the rotate by 16 as two word shuffles and pushes the rotate by 8
/// through the xor before it (two shuffles again), and shuffles compete with the
/// rounds' shifts for the same pipes; one shuffle per rotate is what is wanted.
#[target_feature(enable = "avx2")]
#[inline]
fn rotation_masks() -> (__m256i, __m256i) {
    let mut r16 = _mm256_setr_epi8(
        2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9,
        14, 15, 12, 13,
    );
    let mut r8 = _mm256_setr_epi8(
        3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10,
        15, 12, 13, 14,
    );
    // SAFETY: an empty asm block that only claims to change two registers.
    unsafe {
        std::arch::asm!(
            "/* {0} {1} */",
            inout(ymm_reg) r16,
            inout(ymm_reg) r8,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    (r16, r8)
}

/// One ChaCha quarter round on eight blocks; rotations by 16 and 8 are byte
/// shuffles, by 12 and 7 two shifts and an or.
macro_rules! quarter_round {
    ($x:ident, $a:literal, $b:literal, $c:literal, $d:literal, $r16:ident, $r8:ident) => {
        $x[$a] = _mm256_add_epi32($x[$a], $x[$b]);
        $x[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($x[$d], $x[$a]), $r16);
        $x[$c] = _mm256_add_epi32($x[$c], $x[$d]);
        let t = _mm256_xor_si256($x[$b], $x[$c]);
        $x[$b] = _mm256_or_si256(_mm256_slli_epi32(t, 12), _mm256_srli_epi32(t, 20));
        $x[$a] = _mm256_add_epi32($x[$a], $x[$b]);
        $x[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($x[$d], $x[$a]), $r8);
        $x[$c] = _mm256_add_epi32($x[$c], $x[$d]);
        let t = _mm256_xor_si256($x[$b], $x[$c]);
        $x[$b] = _mm256_or_si256(_mm256_slli_epi32(t, 7), _mm256_srli_epi32(t, 25));
    };
}

/// The first half of a ChaCha double round on eight blocks: the columns.
#[target_feature(enable = "avx2")]
#[inline]
fn column_round(x: &mut [__m256i; 16], r16: __m256i, r8: __m256i) {
    quarter_round!(x, 0, 4, 8, 12, r16, r8);
    quarter_round!(x, 1, 5, 9, 13, r16, r8);
    quarter_round!(x, 2, 6, 10, 14, r16, r8);
    quarter_round!(x, 3, 7, 11, 15, r16, r8);
}

/// The second half of a ChaCha double round on eight blocks: the diagonals.
#[target_feature(enable = "avx2")]
#[inline]
fn diagonal_round(x: &mut [__m256i; 16], r16: __m256i, r8: __m256i) {
    quarter_round!(x, 0, 5, 10, 15, r16, r8);
    quarter_round!(x, 1, 6, 11, 12, r16, r8);
    quarter_round!(x, 2, 7, 8, 13, r16, r8);
    quarter_round!(x, 3, 4, 9, 14, r16, r8);
}

/// Transposes eight words-across-blocks vectors (`r[w]` holds word `w` of blocks
/// 0..8) into blocks and stores block `l`'s eight words at `out + 64 * l`.
///
/// # Safety
/// The CPU must support AVX2 (only called from functions compiled for it), and
/// `out` must be writable for the eight 32-byte halves at `out + 64 * l`.
#[inline(always)]
unsafe fn transpose_store(r: &[__m256i], out: *mut u8) {
    // SAFETY: the caller vouches for AVX2 and for the eight stores.
    unsafe {
        let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
        let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
        let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
        let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
        let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
        let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
        let u0 = _mm256_unpacklo_epi64(t0, t2);
        let u1 = _mm256_unpackhi_epi64(t0, t2);
        let u2 = _mm256_unpacklo_epi64(t1, t3);
        let u3 = _mm256_unpackhi_epi64(t1, t3);
        let u4 = _mm256_unpacklo_epi64(t4, t6);
        let u5 = _mm256_unpackhi_epi64(t4, t6);
        let u6 = _mm256_unpacklo_epi64(t5, t7);
        let u7 = _mm256_unpackhi_epi64(t5, t7);
        let o = out.cast::<__m256i>(); // a block is 64 bytes: two vectors
        _mm256_storeu_si256(o, _mm256_permute2x128_si256(u0, u4, 0x20));
        _mm256_storeu_si256(o.add(2), _mm256_permute2x128_si256(u1, u5, 0x20));
        _mm256_storeu_si256(o.add(4), _mm256_permute2x128_si256(u2, u6, 0x20));
        _mm256_storeu_si256(o.add(6), _mm256_permute2x128_si256(u3, u7, 0x20));
        _mm256_storeu_si256(o.add(8), _mm256_permute2x128_si256(u0, u4, 0x31));
        _mm256_storeu_si256(o.add(10), _mm256_permute2x128_si256(u1, u5, 0x31));
        _mm256_storeu_si256(o.add(12), _mm256_permute2x128_si256(u2, u6, 0x31));
        _mm256_storeu_si256(o.add(14), _mm256_permute2x128_si256(u3, u7, 0x31));
    }
}

/// Tie words known ahead per window by [`tie_words8`]: two ChaCha blocks.
pub(crate) const KNOWN_TIE_WORDS: usize = 32;

/// The first [`KNOWN_TIE_WORDS`] words of the tie runs of eight windows: word
/// `j` of window `first + l`'s run (tie stream `stream`, words from
/// `(first + l) * TIE_WINDOW`) is `out[l][j]`. One eight-lane ChaCha8 pass per
/// block, with a different block counter in each lane, so the words of eight
/// windows cost a quarter of one window's keystream (a thirty-second per window).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn tie_words8(
    key: &[u32; 8],
    stream: u64,
    first: u64,
    out: &mut [[u32; KNOWN_TIE_WORDS]; 8],
) {
    let (r16, r8) = rotation_masks();
    const BLOCKS_PER_RUN: u64 = (TIE_WINDOW / 16) as u64;
    for half in 0..KNOWN_TIE_WORDS / 16 {
        let mut lo = [0u32; 8];
        let mut hi = [0u32; 8];
        for l in 0..8 {
            let b = first
                .wrapping_add(l as u64)
                .wrapping_mul(BLOCKS_PER_RUN)
                .wrapping_add(half as u64);
            lo[l] = b as u32;
            hi[l] = (b >> 32) as u32;
        }
        let init = initial_state(key, stream, &lo, &hi);
        let mut x = init;
        for _ in 0..4 {
            column_round(&mut x, r16, r8);
            diagonal_round(&mut x, r16, r8);
        }
        for (k, (v, i)) in x.iter().zip(init).enumerate() {
            let mut lanes = [0u32; 8];
            // SAFETY: `lanes` is 32 writable bytes.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), _mm256_add_epi32(*v, i)) };
            for (window, &word) in out.iter_mut().zip(&lanes) {
                window[16 * half + k] = word;
            }
        }
    }
}

/// ChaCha's initial state for eight blocks: counter words `lo`/`hi` per lane.
#[target_feature(enable = "avx2")]
#[inline]
fn initial_state(key: &[u32; 8], stream: u64, lo: &[u32; 8], hi: &[u32; 8]) -> [__m256i; 16] {
    let splat = |w: u32| _mm256_set1_epi32(w as i32);
    let [c0, c1, c2, c3] = super::CHACHA_CONSTANTS;
    // SAFETY: `lo` and `hi` are eight readable words each.
    let (lo, hi) = unsafe {
        (
            _mm256_loadu_si256(lo.as_ptr().cast()),
            _mm256_loadu_si256(hi.as_ptr().cast()),
        )
    };
    [
        splat(c0),
        splat(c1),
        splat(c2),
        splat(c3),
        splat(key[0]),
        splat(key[1]),
        splat(key[2]),
        splat(key[3]),
        splat(key[4]),
        splat(key[5]),
        splat(key[6]),
        splat(key[7]),
        lo,
        hi,
        splat(stream as u32),
        splat((stream >> 32) as u32),
    ]
}

/// Writes the ChaCha8 keystream of `stream` from block `block` on into `out`:
/// `N / 64` blocks, a whole number of eight-block groups (`N = TIE_WINDOW` is one
/// tie window of primary bytes).
#[inline]
pub(crate) fn keystream<const N: usize>(
    avx2: Avx2,
    key: &[u32; 8],
    stream: u64,
    block: u64,
    out: &mut [u8; N],
) {
    let _proof: Avx2 = avx2;
    // SAFETY: the `Avx2` token proves the CPU supports AVX2; without a select job
    // no pointer is followed.
    unsafe { keystream_selecting::<false, N>(key, stream, block, out, None) };
}

/// The byte select of one whole earlier window of `f32` cells, done in slices
/// between the rounds of the next window's keystream so its loads and stores
/// overlap that arithmetic.
pub(crate) struct WindowSelect<'a> {
    /// The window's primary bytes.
    pub(crate) bytes: &'a [u8; TIE_WINDOW],
    /// `TIE_WINDOW` readable cells (may equal `dst`).
    pub(crate) src: *const f32,
    /// `TIE_WINDOW` writable cells.
    pub(crate) dst: *mut f32,
    pub(crate) scale: f32,
    pub(crate) t_hi: u8,
}

/// Eight cells of a [`WindowSelect`], from cell `i`: `dst = bytes < t_hi ? +0.0 :
/// src * scale`, with the dropped lanes subtracted from `count` (all ones is -1).
///
/// # Safety
/// The CPU must support AVX2; `i + 8 <= TIE_WINDOW`, and `job.src` must be
/// readable and `job.dst` writable for `TIE_WINDOW` cells.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn select8(job: &WindowSelect, i: usize, count: &mut __m256i) {
    // SAFETY: the caller vouches for `i + 8 <= TIE_WINDOW` and for `src` and `dst`.
    unsafe {
        let b = _mm_loadl_epi64(job.bytes.as_ptr().add(i).cast());
        let drop = _mm256_cmpgt_epi32(
            _mm256_set1_epi32(i32::from(job.t_hi)),
            _mm256_cvtepu8_epi32(b),
        );
        let v = _mm256_mul_ps(_mm256_loadu_ps(job.src.add(i)), _mm256_set1_ps(job.scale));
        _mm256_storeu_ps(
            job.dst.add(i),
            _mm256_andnot_ps(_mm256_castsi256_ps(drop), v),
        );
        *count = _mm256_sub_epi32(*count, drop);
    }
}

/// [`keystream`], and when `SELECT` the whole of `job` in slices between the
/// rounds; returns `job`'s drop count.
///
/// # Safety
/// The CPU must support AVX2; with `SELECT`, `job.src` must be readable and
/// `job.dst` writable for `TIE_WINDOW` cells.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn keystream_selecting<const SELECT: bool, const N: usize>(
    key: &[u32; 8],
    stream: u64,
    mut block: u64,
    out: &mut [u8; N],
    job: Option<&WindowSelect>,
) -> u32 {
    const { assert!(N.is_multiple_of(8 * 64) && (!SELECT || N == TIE_WINDOW)) };
    let (r16, r8) = rotation_masks();
    // Cells selected per slice: two slices per double round, 8 groups x 4
    // double rounds x 2 slices x 64 cells = one window.
    const SLICE: usize = TIE_WINDOW / (8 * 4 * 2);
    let mut count = _mm256_setzero_si256();
    let mut cell = 0usize;
    macro_rules! slice {
        () => {
            if SELECT {
                if let Some(job) = job {
                    for k in 0..SLICE / 8 {
                        // SAFETY: `cell + 8 * k + 8 <= TIE_WINDOW` (see `SLICE`);
                        // the caller vouches for the job's pointers.
                        unsafe { select8(job, cell + 8 * k, &mut count) };
                    }
                    cell += SLICE;
                }
            }
        };
    }
    for group in out.chunks_exact_mut(8 * 64) {
        let (lo, hi) = super::counter_words::<8>(block);
        let init = initial_state(key, stream, &lo, &hi);
        let mut x = init;
        for _ in 0..4 {
            column_round(&mut x, r16, r8);
            slice!();
            diagonal_round(&mut x, r16, r8);
            slice!();
        }
        for (v, i) in x.iter_mut().zip(init) {
            *v = _mm256_add_epi32(*v, i);
        }
        // SAFETY: AVX2 is enabled here; `group` is eight 64-byte blocks, whose
        // first halves the first call writes and whose second halves the second.
        unsafe {
            transpose_store(&x[..8], group.as_mut_ptr());
            transpose_store(&x[8..], group.as_mut_ptr().add(32));
        }
        block = block.wrapping_add(8);
    }
    drop_count(count)
}

/// The sum of the eight lanes of a drop counter (each lane counts its drops,
/// having had all-ones masks, i.e. -1, subtracted from it).
#[target_feature(enable = "avx2")]
pub(crate) fn drop_count(count: __m256i) -> u32 {
    let mut lanes = [0u32; 8];
    // SAFETY: `lanes` is 32 writable bytes.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), count) };
    lanes.iter().fold(0u32, |a, &l| a.wrapping_add(l))
}
