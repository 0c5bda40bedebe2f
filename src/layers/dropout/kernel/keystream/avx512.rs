//! The ChaCha8 keystream sixteen blocks at a time with AVX-512: 32 registers (the
//! sixteen state vectors and the constants fit, no spills) and a rotate
//! instruction. The blocks come out word-major and [`finish16`] transposes them in
//! registers (four shuffle stages), after which a vector is one 64-byte block: the
//! bytes of 64 consecutive cells, as the fused `f32` driver consumes them. Also the
//! four-block tie words of one window ([`words64`]).

use crate::layers::dropout::kernel::Avx512;
use crate::layers::dropout::mask::TIE_WINDOW;
use std::arch::x86_64::*;

/// One ChaCha quarter round on sixteen blocks.
macro_rules! quarter_round {
    ($x:ident, $a:literal, $b:literal, $c:literal, $d:literal) => {
        $x[$a] = _mm512_add_epi32($x[$a], $x[$b]);
        $x[$d] = _mm512_rol_epi32::<16>(_mm512_xor_si512($x[$d], $x[$a]));
        $x[$c] = _mm512_add_epi32($x[$c], $x[$d]);
        $x[$b] = _mm512_rol_epi32::<12>(_mm512_xor_si512($x[$b], $x[$c]));
        $x[$a] = _mm512_add_epi32($x[$a], $x[$b]);
        $x[$d] = _mm512_rol_epi32::<8>(_mm512_xor_si512($x[$d], $x[$a]));
        $x[$c] = _mm512_add_epi32($x[$c], $x[$d]);
        $x[$b] = _mm512_rol_epi32::<7>(_mm512_xor_si512($x[$b], $x[$c]));
    };
}

/// The initial state of blocks `block .. block + 16` of `stream`, word-major
/// (vector `w` holds word `w` of each block; the 64-bit counter wraps like
/// rand_chacha's).
///
/// # Safety
/// The CPU must support AVX-512F; only called from functions compiled for it.
#[inline(always)]
pub(crate) unsafe fn init16(key: &[u32; 8], stream: u64, block: u64) -> [__m512i; 16] {
    // SAFETY: the caller vouches for AVX-512F; every load reads a local array.
    unsafe {
        let splat = |w: u32| _mm512_set1_epi32(w as i32);
        let (lo, hi) = super::counter_words::<16>(block);
        let [c0, c1, c2, c3] = super::CHACHA_CONSTANTS;
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
            // SAFETY (of the loads): `lo` and `hi` are sixteen u32 each.
            _mm512_loadu_si512(lo.as_ptr().cast()),
            _mm512_loadu_si512(hi.as_ptr().cast()),
            splat(stream as u32),
            splat((stream >> 32) as u32),
        ]
    }
}

/// One ChaCha double round (a column and a diagonal round) on sixteen blocks.
///
/// # Safety
/// The CPU must support AVX-512F; only called from functions compiled for it.
#[inline(always)]
pub(crate) unsafe fn double_round(x: &mut [__m512i; 16]) {
    // SAFETY: the caller vouches for AVX-512F; every load reads a local array.
    unsafe {
        quarter_round!(x, 0, 4, 8, 12);
        quarter_round!(x, 1, 5, 9, 13);
        quarter_round!(x, 2, 6, 10, 14);
        quarter_round!(x, 3, 7, 11, 15);
        quarter_round!(x, 0, 5, 10, 15);
        quarter_round!(x, 1, 6, 11, 12);
        quarter_round!(x, 2, 7, 8, 13);
        quarter_round!(x, 3, 4, 9, 14);
    }
}

/// The keystream of sixteen blocks after the rounds: the feed-forward add, then
/// a transpose so that element `l` of the result is block `l`'s 64 bytes.
///
/// # Safety
/// The CPU must support AVX-512F; only called from functions compiled for it.
#[inline(always)]
pub(crate) unsafe fn finish16(mut x: [__m512i; 16], init: &[__m512i; 16]) -> [__m512i; 16] {
    // SAFETY: the caller vouches for AVX-512F; every load reads a local array.
    unsafe {
        for (v, i) in x.iter_mut().zip(init) {
            *v = _mm512_add_epi32(*v, *i);
        }
        // Words 4a..4a+4 of each block, 4x4-transposed inside 128-bit lanes:
        // v[a][c] holds, in lane g, words 4a..4a+4 of block 4g + c.
        let mut v = [[_mm512_setzero_si512(); 4]; 4];
        for (a, v) in v.iter_mut().enumerate() {
            let t0 = _mm512_unpacklo_epi32(x[4 * a], x[4 * a + 1]);
            let t1 = _mm512_unpackhi_epi32(x[4 * a], x[4 * a + 1]);
            let t2 = _mm512_unpacklo_epi32(x[4 * a + 2], x[4 * a + 3]);
            let t3 = _mm512_unpackhi_epi32(x[4 * a + 2], x[4 * a + 3]);
            v[0] = _mm512_unpacklo_epi64(t0, t2);
            v[1] = _mm512_unpackhi_epi64(t0, t2);
            v[2] = _mm512_unpacklo_epi64(t1, t3);
            v[3] = _mm512_unpackhi_epi64(t1, t3);
        }
        // Then the 128-bit lanes: block 4g + c is lane g of v[0][c], .., v[3][c].
        let mut out = [_mm512_setzero_si512(); 16];
        for c in 0..4 {
            let p0 = _mm512_shuffle_i32x4::<0x44>(v[0][c], v[1][c]);
            let p1 = _mm512_shuffle_i32x4::<0xee>(v[0][c], v[1][c]);
            let p2 = _mm512_shuffle_i32x4::<0x44>(v[2][c], v[3][c]);
            let p3 = _mm512_shuffle_i32x4::<0xee>(v[2][c], v[3][c]);
            out[c] = _mm512_shuffle_i32x4::<0x88>(p0, p2);
            out[4 + c] = _mm512_shuffle_i32x4::<0xdd>(p0, p2);
            out[8 + c] = _mm512_shuffle_i32x4::<0x88>(p1, p3);
            out[12 + c] = _mm512_shuffle_i32x4::<0xdd>(p1, p3);
        }
        out
    }
}

/// Writes the ChaCha8 keystream of `stream` from block `block` on (64 blocks,
/// one tie window) into `out`.
#[inline]
pub(crate) fn keystream(
    avx512: Avx512,
    key: &[u32; 8],
    stream: u64,
    block: u64,
    out: &mut [u8; TIE_WINDOW],
) {
    let _proof: Avx512 = avx512;
    // SAFETY: the `Avx512` token proves the CPU supports AVX-512F.
    unsafe { keystream_compiled(key, stream, block, out) }
}

/// [`keystream`], compiled for AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn keystream_compiled(key: &[u32; 8], stream: u64, block: u64, out: &mut [u8; TIE_WINDOW]) {
    for (g, group) in out.chunks_exact_mut(16 * 64).enumerate() {
        // SAFETY: AVX-512F is enabled here; `group` is 16 blocks of 64 bytes.
        unsafe {
            let init = init16(key, stream, block.wrapping_add(16 * g as u64));
            let mut x = init;
            for _ in 0..4 {
                double_round(&mut x);
            }
            for (l, b) in finish16(x, &init).iter().enumerate() {
                _mm512_storeu_si512(group.as_mut_ptr().add(64 * l).cast(), *b);
            }
        }
    }
}

/// Words `16 * block ..` of `stream`: four blocks, computed row-wise (one block
/// per 128-bit lane), for the few tie words a window reads. Four blocks cover the
/// ties of almost every window (sixteen on average at rate 0.1), at a fraction of
/// the cost of seeking rand_chacha, which regenerates its buffer on every seek.
///
/// # Safety
/// The CPU must support AVX-512F.
// Inline across modules: the fused driver in another file calls it for every
// window with ties, and a call into another codegen unit is measurably slower.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn words64(key: &[u32; 8], stream: u64, block: u64) -> [u32; 64] {
    let mut r3 = [0u32; 16];
    for (l, lane) in r3.chunks_exact_mut(4).enumerate() {
        let b = block.wrapping_add(l as u64);
        lane.copy_from_slice(&[
            b as u32,
            (b >> 32) as u32,
            stream as u32,
            (stream >> 32) as u32,
        ]);
    }
    let row = |w: [u32; 4]| {
        _mm512_setr_epi32(
            w[0] as i32,
            w[1] as i32,
            w[2] as i32,
            w[3] as i32,
            w[0] as i32,
            w[1] as i32,
            w[2] as i32,
            w[3] as i32,
            w[0] as i32,
            w[1] as i32,
            w[2] as i32,
            w[3] as i32,
            w[0] as i32,
            w[1] as i32,
            w[2] as i32,
            w[3] as i32,
        )
    };
    let init = [
        row(super::CHACHA_CONSTANTS),
        row([key[0], key[1], key[2], key[3]]),
        row([key[4], key[5], key[6], key[7]]),
        // SAFETY: `r3` is sixteen u32.
        unsafe { _mm512_loadu_si512(r3.as_ptr().cast()) },
    ];
    let [mut a, mut b, mut c, mut d] = init;
    macro_rules! round {
        () => {
            a = _mm512_add_epi32(a, b);
            d = _mm512_rol_epi32::<16>(_mm512_xor_si512(d, a));
            c = _mm512_add_epi32(c, d);
            b = _mm512_rol_epi32::<12>(_mm512_xor_si512(b, c));
            a = _mm512_add_epi32(a, b);
            d = _mm512_rol_epi32::<8>(_mm512_xor_si512(d, a));
            c = _mm512_add_epi32(c, d);
            b = _mm512_rol_epi32::<7>(_mm512_xor_si512(b, c));
        };
    }
    for _ in 0..4 {
        round!();
        // Diagonals into columns, and back after the round.
        b = _mm512_shuffle_epi32::<0x39>(b);
        c = _mm512_shuffle_epi32::<0x4e>(c);
        d = _mm512_shuffle_epi32::<0x93>(d);
        round!();
        b = _mm512_shuffle_epi32::<0x93>(b);
        c = _mm512_shuffle_epi32::<0x4e>(c);
        d = _mm512_shuffle_epi32::<0x39>(d);
    }
    let r = [
        _mm512_add_epi32(a, init[0]),
        _mm512_add_epi32(b, init[1]),
        _mm512_add_epi32(c, init[2]),
        _mm512_add_epi32(d, init[3]),
    ];
    // Lane l of the four rows is block l: a 4x4 transpose of 128-bit lanes.
    let p0 = _mm512_shuffle_i32x4::<0x44>(r[0], r[1]);
    let p1 = _mm512_shuffle_i32x4::<0xee>(r[0], r[1]);
    let p2 = _mm512_shuffle_i32x4::<0x44>(r[2], r[3]);
    let p3 = _mm512_shuffle_i32x4::<0xee>(r[2], r[3]);
    let blocks = [
        _mm512_shuffle_i32x4::<0x88>(p0, p2),
        _mm512_shuffle_i32x4::<0xdd>(p0, p2),
        _mm512_shuffle_i32x4::<0x88>(p1, p3),
        _mm512_shuffle_i32x4::<0xdd>(p1, p3),
    ];
    let mut words = [0u32; 64];
    for (l, v) in blocks.iter().enumerate() {
        // SAFETY: `words[16 * l ..]` has room for sixteen u32.
        unsafe { _mm512_storeu_si512(words.as_mut_ptr().add(16 * l).cast(), *v) };
    }
    words
}
