//! The kernel's fast paths against their definitions: each SIMD keystream and tie
//! word generator against rand_chacha, each driver against `reference_mask`. A test
//! that needs an instruction set the machine lacks says so (see
//! [`isa::required`](super::isa::required)) rather than passing having run nothing.

use super::isa::{self, Isa};
#[cfg(target_arch = "x86_64")]
use super::keystream::{avx2, avx512};
use super::mask::{drop_threshold, mask_rng, reference_mask, TIE_WINDOW};
use super::ties::{BaseScan, TieScan};
#[cfg(target_arch = "x86_64")]
use super::{fused, select::select_into, ties::Avx2Scan};
use super::{DropoutKernel, Plan};
use rand::Rng;

#[test]
fn tie_bits_finds_every_tie() {
    let chunk: Vec<u8> = (0..64).map(|i| if i % 7 == 0 { 9 } else { 3 }).collect();
    let bits = BaseScan.bits(&chunk, 9);
    for (k, &b) in chunk.iter().enumerate() {
        assert_eq!(bits >> k & 1 == 1, b == 9);
    }
    assert_eq!(BaseScan.bits(&chunk[..5], 9), 1);
    #[cfg(target_arch = "x86_64")]
    if let Some(avx2) = isa::required("avx2", "tie_bits_finds_every_tie").and_then(Isa::avx2) {
        let scan = Avx2Scan::new(avx2);
        assert_eq!(scan.bits(&chunk, 9), bits);
        assert_eq!(scan.bits(&chunk[..5], 9), 1);
    }
}

/// `count` words of rand_chacha's ChaCha8 for `seed`, on `stream`, from word
/// `word`: the definition the SIMD tie words are checked against.
fn rand_chacha_words(seed: u64, stream: u64, word: u128, count: usize) -> Vec<u32> {
    let mut rng = mask_rng(seed);
    rng.set_stream(stream);
    rng.set_word_pos(word);
    (0..count).map(|_| rng.next_u32()).collect()
}

/// `len` bytes of rand_chacha's ChaCha8 for `mask_rng(seed)` on `stream`, from
/// word `word`.
fn rand_chacha_bytes(seed: u64, stream: u64, word: u128, len: usize) -> Vec<u8> {
    let mut rng = mask_rng(seed);
    rng.set_stream(stream);
    rng.set_word_pos(word);
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// Asserts that `keystream(key, stream, block, out)` writes the same window of
/// bytes as rand_chacha's ChaCha8 at that stream and block, for several seeds.
fn assert_keystream_is_rand_chachas(
    blocks: &[u64],
    streams: &[u64],
    keystream: impl Fn(&[u32; 8], u64, u64, &mut [u8; TIE_WINDOW]),
) {
    for seed in [0u64, 1, 0xdead_beef, u64::MAX] {
        let kernel = DropoutKernel::new(seed, 0, 1);
        for &stream in streams {
            for &block in blocks {
                let want = rand_chacha_bytes(seed, stream, u128::from(block) * 16, TIE_WINDOW);
                let mut got = [0u8; TIE_WINDOW];
                keystream(&kernel.key, stream, block, &mut got);
                assert!(want == got, "seed {seed} stream {stream} block {block}");
            }
        }
    }
}

/// The AVX2 keystream equals rand_chacha's, including across the 2^32 and 2^64
/// block-counter boundaries and at extreme stream numbers.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_keystream_is_rand_chachas() {
    let Some(token) = isa::required("avx2", "avx2_keystream_is_rand_chachas").and_then(Isa::avx2)
    else {
        return;
    };
    let blocks = [0u64, 64, 1 << 20, (1 << 32) - 3, u64::MAX - 5];
    let streams = [0u64, 1, 2, 0x1234_5678_9abc_def0, u64::MAX];
    assert_keystream_is_rand_chachas(&blocks, &streams, |key, stream, block, out| {
        avx2::keystream(token, key, stream, block, out)
    });
}

/// The AVX-512 keystream equals rand_chacha's, at odd and even block offsets,
/// across the 2^32 and 2^64 block-counter boundaries (which fall inside a
/// sixteen-block group at some of these offsets) and at extreme stream numbers.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_keystream_is_rand_chachas() {
    let Some(token) =
        isa::required("avx512", "avx512_keystream_is_rand_chachas").and_then(Isa::avx512)
    else {
        return;
    };
    let blocks = [
        0u64,
        1,
        7,
        64,
        1 << 20,
        (1 << 32) - 3,
        (1 << 32) - 17,
        u64::MAX - 5,
        u64::MAX - 40,
    ];
    let streams = [0u64, 1, 2, 3, 0x1234_5678_9abc_def0, u64::MAX];
    assert_keystream_is_rand_chachas(&blocks, &streams, |key, stream, block, out| {
        avx512::keystream(token, key, stream, block, out)
    });
}

/// The fused, pipelined AVX-512 windows (keystream, select, tie positions, tie
/// words, tie fix-ups) agree with the buffered definition over several windows
/// deep into the stream, in place and not.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_fused_windows_match_buffered() {
    let Some(token) =
        isa::required("avx512", "avx512_fused_windows_match_buffered").and_then(Isa::avx512)
    else {
        return;
    };
    const WINDOWS: usize = 3;
    let n = WINDOWS * TIE_WINDOW;
    let x: Vec<f32> = (0..n).map(|i| (i as f32 - 5000.5) * 0.37).collect();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let cases = [
        (3u64, 0u64, 0u64),
        (9, 7, 64 * 5),
        (1, u64::MAX, u64::MAX - 63),
    ];
    for (seed, stream, block) in cases {
        let kernel = DropoutKernel::new(seed, 0, 1);
        for t_hi in [0u8, 1, 25, 128, 255] {
            let scale = 1.7f32;
            // Buffered: keystream, plain select, then each tie from rand_chacha's
            // tie stream, window by window as in the definition.
            let t_lo = 0x0080_0000u32;
            let tie_stream = stream.wrapping_add(1);
            let mut ties = mask_rng(seed);
            ties.set_stream(tie_stream);
            let mut want = vec![0.0f32; n];
            let mut want_count = 0u64;
            for w in 0..WINDOWS {
                let mut bytes = [0u8; TIE_WINDOW];
                let b = block.wrapping_add(64 * w as u64);
                avx512::keystream(token, &kernel.key, stream, b, &mut bytes);
                let cells = w * TIE_WINDOW..(w + 1) * TIE_WINDOW;
                let (xw, ow) = (&x[cells.clone()], &mut want[cells]);
                want_count += u64::from(select_into(&bytes, xw, ow, scale, t_hi));
                let window = u128::from(block / 64 + w as u64) % (1u128 << 58);
                ties.set_word_pos(window * TIE_WINDOW as u128);
                for (i, _) in bytes.iter().enumerate().filter(|(_, &b)| b == t_hi) {
                    if ties.next_u32() >> 8 < t_lo {
                        ow[i] = 0.0;
                        want_count += 1;
                    }
                }
            }
            for in_place in [false, true] {
                let mut got = if in_place { x.clone() } else { vec![0.0f32; n] };
                let dst = got.as_mut_ptr();
                let src = if in_place {
                    dst.cast_const()
                } else {
                    x.as_ptr()
                };
                let _proof = token;
                // SAFETY: the `Avx512` token proves AVX-512F/BW and POPCNT; both
                // buffers hold WINDOWS whole windows (the same ones when in place).
                let count = unsafe {
                    fused::avx512::select_windows_f32(
                        &kernel.key,
                        stream,
                        block,
                        WINDOWS,
                        src,
                        dst,
                        scale,
                        t_hi,
                        t_lo,
                        tie_stream,
                    )
                };
                assert_eq!(count, want_count, "t_hi {t_hi}");
                assert_eq!(bits(&got), bits(&want), "t_hi {t_hi}");
            }
        }
    }
}

/// The four-block tie words equal rand_chacha's, at odd block offsets, across the
/// 2^32 and 2^64 counter boundaries and at extreme stream numbers.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_tie_words_are_rand_chachas() {
    let Some(token) =
        isa::required("avx512", "avx512_tie_words_are_rand_chachas").and_then(Isa::avx512)
    else {
        return;
    };
    let blocks = [0u64, 1, 3, 256, (1 << 32) - 2, u64::MAX - 1, u64::MAX];
    for seed in [0u64, 7, u64::MAX] {
        let kernel = DropoutKernel::new(seed, 0, 1);
        for stream in [1u64, 5, 0x1234_5678_9abc_def1, u64::MAX] {
            for block in blocks {
                let want = rand_chacha_words(seed, stream, u128::from(block) * 16, 64);
                let _proof = token;
                // SAFETY: the `Avx512` token proves AVX-512F.
                let got = unsafe { avx512::words64(&kernel.key, stream, block) };
                assert_eq!(
                    &got[..],
                    &want[..],
                    "seed {seed} stream {stream} block {block}"
                );
            }
        }
    }
}

/// The eight-window tie words equal rand_chacha's tie runs, including where
/// the block counter wraps and at extreme stream numbers.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_tie_words_are_rand_chachas() {
    let Some(token) = isa::required("avx2", "avx2_tie_words_are_rand_chachas").and_then(Isa::avx2)
    else {
        return;
    };
    let firsts = [0u64, 1, 13, (1 << 24) + 5, (1 << 56) - 3, u64::MAX - 4];
    for seed in [0u64, 7, u64::MAX] {
        let kernel = DropoutKernel::new(seed, 0, 1);
        for stream in [1u64, 0x1234_5678_9abc_def1, u64::MAX] {
            for first in firsts {
                let mut got = [[0u32; avx2::KNOWN_TIE_WORDS]; 8];
                let _proof = token;
                // SAFETY: the `Avx2` token proves AVX2.
                unsafe { avx2::tie_words8(&kernel.key, stream, first, &mut got) };
                for (l, words) in got.iter().enumerate() {
                    let window = u128::from(first.wrapping_add(l as u64));
                    let run = window * TIE_WINDOW as u128;
                    let want = rand_chacha_words(seed, stream, run, words.len());
                    assert_eq!(
                        &words[..],
                        &want[..],
                        "seed {seed} stream {stream} window {window}"
                    );
                }
            }
        }
    }
}

/// Tie words past the known ones come from rand_chacha sought to the right
/// word: a window with more ties than [`avx2::KNOWN_TIE_WORDS`] (impossible to
/// provoke through the keystream on demand) decides every tie as the plain path.
#[cfg(target_arch = "x86_64")]
#[test]
fn known_tie_words_then_rand_chacha() {
    let Some(token) = isa::required("avx2", "known_tie_words_then_rand_chacha").and_then(Isa::avx2)
    else {
        return;
    };
    let kernel = DropoutKernel::new(21, 3, drop_threshold(0.3));
    let Plan::Mixed { t_lo, .. } = kernel.plan else {
        panic!("0.3 has ties")
    };
    let positions: Vec<u16> = (0..300).map(|i| i * 13).collect();
    for local in [0usize, 5, 9] {
        let mut plain = kernel.streams(2);
        let mut want = Vec::new();
        plain.apply_ties(local, &positions, t_lo, &[], |i, m| want.push((i, m)));
        let mut batch = [[0u32; avx2::KNOWN_TIE_WORDS]; 8];
        let first = (2 + local - local % 8) as u64;
        let tie_stream = kernel.call.wrapping_mul(2).wrapping_add(1);
        let _proof = token;
        // SAFETY: the `Avx2` token proves AVX2.
        unsafe { avx2::tie_words8(&kernel.key, tie_stream, first, &mut batch) };
        let mut fast = kernel.streams(2);
        let mut got = Vec::new();
        fast.apply_ties(local, &positions, t_lo, &batch[local % 8], |i, m| {
            got.push((i, m))
        });
        assert_eq!(got, want, "window {local}");
        assert!(want.iter().any(|&(_, m)| m != 0) && want.iter().any(|&(_, m)| m == 0));
    }
}

/// The fused AVX2 `f32` loop (the path of CPUs without AVX-512) equals the
/// reference select bit for bit, in place and not, across eight-window tie
/// batches and a short last window, whichever SIMD the test machine has.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_fused_windows_match_reference() {
    let Some(token) =
        isa::required("avx2", "avx2_fused_windows_match_reference").and_then(Isa::avx2)
    else {
        return;
    };
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for n in [0, 5, TIE_WINDOW, TIE_WINDOW + 1, 17 * TIE_WINDOW + 333] {
        let x: Vec<f32> = (0..n).map(|i| (i as f32 - 5000.5) * 0.37).collect();
        // 129/256: a byte per cell and no ties (rate 0.5 takes the packed path).
        for rate in [0.1, 129.0 / 256.0, 0.3, 1e-9, 0.999] {
            for (seed, call, first_window) in [(3u64, 0u64, 0usize), (9, 7, 6), (1, u64::MAX, 1)] {
                let t = drop_threshold(rate);
                let kernel = DropoutKernel::new(seed, call, t);
                let Plan::Mixed { t_hi, t_lo } = kernel.plan else {
                    panic!("rate {rate} is mixed")
                };
                let mask = reference_mask(seed, call, t, first_window * TIE_WINDOW + n);
                let mask = &mask[first_window * TIE_WINDOW..];
                let scale = 1.7f32;
                let want: Vec<f32> = x
                    .iter()
                    .zip(mask)
                    .map(|(&v, &d)| if d { 0.0 } else { v * scale })
                    .collect();
                let want_count = mask.iter().filter(|&&d| d).count() as u64;
                for in_place in [false, true] {
                    let streams = kernel
                        .clone()
                        .with_isa(Isa::Avx2(token))
                        .streams(first_window);
                    let mut got = if in_place {
                        x.clone()
                    } else {
                        vec![f32::NAN; n]
                    };
                    let input = (!in_place).then_some(&x[..]);
                    let count = fused::avx2::select_windows(
                        token, streams, input, &mut got, scale, t_hi, t_lo,
                    );
                    let case = format!("n {n} rate {rate} seed {seed} in place {in_place}");
                    assert_eq!(count, want_count, "{case}");
                    assert_eq!(bits(&got), bits(&want), "{case}");
                }
            }
        }
    }
}

/// A window with more ties than the fused AVX2 path knows words for, where the
/// ties past the known words both drop and stay (found by search: about one
/// window in a hundred), is decided exactly like the reference, through the
/// rand_chacha fallback.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_fused_window_with_many_ties_matches_reference() {
    let Some(token) = isa::required("avx2", "avx2_fused_window_with_many_ties_matches_reference")
        .and_then(Isa::avx2)
    else {
        return;
    };
    let seed = 17u64;
    // A tie drops iff its word's top 24 bits are below 2^23: probability 1/2.
    let t_lo = 0x0080_0000u32;
    let (window, value) = (0..4096usize)
        .find_map(|w| {
            let mut rng = mask_rng(seed);
            rng.set_word_pos((w * TIE_WINDOW / 4) as u128);
            let mut bytes = [0u8; TIE_WINDOW];
            rng.fill_bytes(&mut bytes);
            let mut histogram = [0usize; 256];
            bytes.iter().for_each(|&b| histogram[usize::from(b)] += 1);
            let (value, &ties) = histogram.iter().enumerate().max_by_key(|(_, &c)| c)?;
            let known = avx2::KNOWN_TIE_WORDS;
            let from = (w * TIE_WINDOW + known) as u128;
            let late: Vec<bool> = rand_chacha_words(seed, 1, from, ties.saturating_sub(known))
                .iter()
                .map(|&word| word >> 8 < t_lo)
                .collect();
            (late.contains(&true) && late.contains(&false)).then_some((w, value))
        })
        .expect("such a window exists");
    let threshold = (value as u64) << 24 | u64::from(t_lo);
    let kernel = DropoutKernel::new(seed, 0, threshold);
    let n = (window + 2) * TIE_WINDOW;
    let x: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
    let mask = reference_mask(seed, 0, threshold, n);
    let want: Vec<u32> = x
        .iter()
        .zip(&mask)
        .map(|(&v, &d)| if d { 0 } else { (v * 2.0).to_bits() })
        .collect();
    let streams = kernel.with_isa(Isa::Avx2(token)).streams(0);
    let mut got = vec![f32::NAN; n];
    let count =
        fused::avx2::select_windows(token, streams, Some(&x), &mut got, 2.0, value as u8, t_lo);
    assert_eq!(count, mask.iter().filter(|&&d| d).count() as u64);
    assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
}

#[test]
fn primary_bytes_are_rand_chachas() {
    let isas: Vec<Isa> = isa::required("avx2", "primary_bytes_are_rand_chachas (AVX2 part)")
        .into_iter()
        .chain([Isa::Portable])
        .collect();
    for (seed, call) in [(9u64, 4u64), (0, 0), (u64::MAX, u64::MAX / 2)] {
        let kernel = DropoutKernel::new(seed, call, drop_threshold(0.3));
        for n in [0, 1, TIE_WINDOW - 1, TIE_WINDOW, 3 * TIE_WINDOW + 17] {
            let theirs = rand_chacha_bytes(seed, call.wrapping_mul(2), 0, n);
            let mut ours = vec![0u8; n];
            kernel.primary_bytes_into(&mut ours);
            assert_eq!(ours, theirs, "seed {seed}, call {call}, {n} cells");
            // The paths the CPU picks less often: AVX2 (where it has it), then
            // rand_chacha's own.
            for &isa in &isas {
                let mut ours = vec![0u8; n];
                kernel.clone().with_isa(isa).primary_bytes_into(&mut ours);
                assert_eq!(ours, theirs, "seed {seed}, call {call}, {n} cells, {isa:?}");
            }
        }
    }
}

#[test]
fn mask_matches_reference_across_windows() {
    for rate in [0.1, 0.5, 129.0 / 256.0, 0.999, 1e-3] {
        let t = drop_threshold(rate);
        let n = 3 * TIE_WINDOW + 17;
        assert_eq!(
            DropoutKernel::new(9, 4, t).mask(n),
            reference_mask(9, 4, t, n)
        );
    }
}
