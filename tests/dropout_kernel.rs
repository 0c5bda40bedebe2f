//! The fast dropout kernel against the plain definition of the mask.
//!
//! Invariants proved: the kernel (out of place, in place, chunked, and through the
//! `Dropout` layer's forward and backward) is bit-identical to `reference_mask`
//! followed by the plain select, for every seed, call, rate and length; and its output
//! depends only on (seed, call, element index), never on the split into parts (which
//! is what threads get) or on the total length. Since every part runs on its own
//! thread, 1 and 2 threads give the same bits (with or without the `rayon` feature).
//! Every instruction set the kernel runs on gives those same bits; a test for a set
//! the machine lacks says so (`kernel::isa::required`) instead of passing silently.

use ndarray::ArrayD;
use nncheck::layers::dropout::kernel::{Avx2, Avx512, Isa};
use nncheck::layers::dropout::{drop_threshold, reference_mask, TIE_WINDOW};
use nncheck::layers::dropout_kernel::DropoutKernel;
use nncheck::{Dropout, Layer, Phase};
use proptest::prelude::*;

use nncheck::layers::dropout::kernel::isa;

/// Lengths around window boundaries, plus small and arbitrary ones.
fn lengths() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..20,
        (TIE_WINDOW - 5)..(TIE_WINDOW + 5),
        (2 * TIE_WINDOW - 3)..(2 * TIE_WINDOW + 3),
        (3 * TIE_WINDOW - 1)..(3 * TIE_WINDOW + 300),
        0usize..(10 * TIE_WINDOW + 1),
    ]
}

/// Rates that stress every branch: ties that can drop (0.1, 0.3, 1e-9), ties that
/// never drop (1/256, 3/256), a few random bits per cell and no ties (0.5, 0.25,
/// 0.75, multiples of 1/16), threshold 0 (1e-12), threshold 2^32 (1 - 1e-12),
/// rate 1, and arbitrary rates.
fn rates() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.5),
        Just(0.25),
        Just(0.75),
        (0u32..=16).prop_map(|k| f64::from(k) / 16.0),
        Just(1.0 / 256.0),
        Just(3.0 / 256.0),
        Just(0.1),
        Just(0.3),
        Just(1e-9),
        Just(1e-12),
        Just(0.999_999),
        Just(1.0 - 1e-12),
        Just(1.0),
        (0u32..=256).prop_map(|k| f64::from(k) / 256.0),
        0.0f64..=1.0,
    ]
}

/// Arbitrary f32 bit patterns (NaN payloads, infinities, -0.0, subnormals) mixed
/// with ordinary values.
fn inputs(n: usize) -> impl Strategy<Value = Vec<f32>> {
    (any::<u64>(), any::<bool>()).prop_map(move |(s, raw)| {
        let mut state = s | 1;
        (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if raw {
                    f32::from_bits(state as u32)
                } else {
                    i as f32 * 0.25 - 3.0
                }
            })
            .collect()
    })
}

fn case() -> impl Strategy<Value = (u64, u64, f64, Vec<f32>)> {
    (any::<u64>(), any::<u64>(), rates(), lengths())
        .prop_flat_map(|(seed, call, rate, n)| (Just(seed), Just(call), Just(rate), inputs(n)))
}

/// The plain statement: reference mask, then select.
fn reference_select(mask: &[bool], x: &[f32], scale: f32) -> Vec<u32> {
    x.iter()
        .zip(mask)
        .map(|(&v, &d)| if d { 0.0f32 } else { v * scale }.to_bits())
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn scale_of(rate: f64) -> f32 {
    if rate < 1.0 {
        (1.0 / (1.0 - rate)) as f32
    } else {
        0.0
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Out of place, in place, chunked (1..=5 parts) and the mask: all equal the
    /// reference, bit for bit, with the same drop count.
    #[test]
    fn kernel_matches_reference_select((seed, call, rate, x) in case(), parts in 1usize..=5) {
        let t = drop_threshold(rate);
        let scale = scale_of(rate);
        let mask = reference_mask(seed, call, t, x.len());
        let want = reference_select(&mask, &x, scale);
        let want_dropped = mask.iter().filter(|&&d| d).count() as u64;
        let kernel = DropoutKernel::new(seed, call, t);

        prop_assert_eq!(kernel.mask(x.len()), mask);

        let mut out = vec![f32::NAN; x.len()];
        prop_assert_eq!(kernel.forward_into(&x, &mut out, scale).unwrap(), want_dropped);
        prop_assert_eq!(bits(&out), want.clone());

        let mut inplace = x.clone();
        prop_assert_eq!(kernel.forward_in_place(&mut inplace, scale).unwrap(), want_dropped);
        prop_assert_eq!(bits(&inplace), want.clone());

        let mut chunked = vec![f32::NAN; x.len()];
        prop_assert_eq!(
            kernel.forward_into_chunked(&x, &mut chunked, scale, parts).unwrap(),
            want_dropped
        );
        prop_assert_eq!(bits(&chunked), want.clone());

        let mut chunked_inplace = x.clone();
        prop_assert_eq!(
            kernel.forward_in_place_chunked(&mut chunked_inplace, scale, parts).unwrap(),
            want_dropped
        );
        prop_assert_eq!(bits(&chunked_inplace), want);
    }

    /// The output at index i depends only on (seed, call, i): any split into parts
    /// (what threads get) and any total length give the same value there.
    #[test]
    fn output_depends_only_on_seed_call_index(
        (seed, call, rate, x) in case(),
        parts_a in 0usize..=9,
        parts_b in 0usize..=9,
        cut in 0.0f64..=1.0,
    ) {
        let t = drop_threshold(rate);
        let scale = scale_of(rate);
        let kernel = DropoutKernel::new(seed, call, t);
        let mut a = vec![0.0f32; x.len()];
        let mut b = vec![0.0f32; x.len()];
        let da = kernel.forward_into_chunked(&x, &mut a, scale, parts_a).unwrap();
        let db = kernel.forward_into_chunked(&x, &mut b, scale, parts_b).unwrap();
        prop_assert_eq!(da, db);
        prop_assert_eq!(bits(&a), bits(&b));

        // A prefix of the input gets the prefix of the output.
        let m = (x.len() as f64 * cut) as usize;
        let mut prefix = vec![0.0f32; m];
        kernel.forward_into_chunked(&x[..m], &mut prefix, scale, parts_b).unwrap();
        prop_assert_eq!(bits(&prefix), bits(&a[..m]));

        // A fresh kernel from the same (seed, call) agrees.
        let again = DropoutKernel::new(seed, call, t);
        let mut c = vec![0.0f32; x.len()];
        again.forward_into(&x, &mut c, scale).unwrap();
        prop_assert_eq!(bits(&c), bits(&a));
    }

    /// Through the layer: train forward and backward equal the reference mask's
    /// select, call after call, in f32 and f64.
    #[test]
    fn layer_forward_backward_match_reference(
        seed in any::<u64>(),
        rate in rates(),
        rows in 1usize..6,
        cols in prop_oneof![1usize..10, 1000usize..3000],
    ) {
        let n = rows * cols;
        let x: Vec<f32> = (0..n).map(|i| i as f32 - 7.5).collect();
        let mut layer = Dropout::<f32>::new(rate).unwrap().with_seed(seed);
        let mut layer64 = Dropout::<f64>::new(rate).unwrap().with_seed(seed);
        let t = drop_threshold(rate);
        let scale = layer.scale();
        let scale64 = layer64.scale();
        for call in 0..3u64 {
            let xa = ArrayD::from_shape_vec(vec![rows, cols], x.clone()).unwrap();
            let y = layer.apply(xa, Phase::Train).unwrap();
            let mask = if rate == 0.0 {
                vec![false; n]
            } else {
                reference_mask(seed, call, t, n)
            };
            prop_assert_eq!(
                bits(y.as_slice().unwrap()),
                reference_select(&mask, &x, scale)
            );
            let dy = ArrayD::from_shape_vec(vec![rows, cols], vec![1.5f32; n]).unwrap();
            let dx = layer.backward(dy, true).unwrap().unwrap();
            prop_assert_eq!(
                bits(dx.as_slice().unwrap()),
                reference_select(&mask, &vec![1.5f32; n], scale)
            );

            let x64 = ArrayD::from_shape_vec(
                vec![rows, cols],
                x.iter().map(|&v| f64::from(v)).collect(),
            )
            .unwrap();
            let y64 = layer64.apply(x64, Phase::Train).unwrap();
            for ((&o, &v), &d) in y64.iter().zip(&x).zip(&mask) {
                let want = if d { 0.0 } else { f64::from(v) * scale64 };
                prop_assert_eq!(o.to_bits(), want.to_bits());
            }
        }
    }
}

/// A transposed (non-standard layout) input takes the mask path and still follows
/// the row-major definition, forward and backward.
#[test]
fn non_standard_layout_follows_row_major_mask() {
    let rate = 0.3;
    let base = ArrayD::from_shape_fn(vec![70, 90], |i| (i[0] * 90 + i[1]) as f32);
    let xt = base.clone().reversed_axes(); // shape [90, 70], Fortran order
    let mut layer = Dropout::<f32>::new(rate).unwrap().with_seed(11);
    let y = layer.apply(xt.clone(), Phase::Train).unwrap();
    let mask = reference_mask(11, 0, drop_threshold(rate), xt.len());
    let scale = layer.scale();
    for ((&o, &v), &d) in y.iter().zip(xt.iter()).zip(&mask) {
        assert_eq!(o.to_bits(), if d { 0.0 } else { v * scale }.to_bits());
    }
    let dy = ArrayD::from_elem(vec![70, 90], 2.0f32).reversed_axes();
    let dx = layer.backward(dy, true).unwrap().unwrap();
    for (&g, &d) in dx.iter().zip(&mask) {
        assert_eq!(g.to_bits(), if d { 0.0 } else { 2.0 * scale }.to_bits());
    }
}

/// The packed layout as the docs state it, read independently: the primary bytes
/// are one little-endian number, and cell `i` is its bits `i * bits ..`. At the
/// widths 1, 2 and 4 the mask drops exactly the cells whose field is below
/// `t >> (32 - bits)`.
#[test]
fn packed_cells_read_least_significant_bits_first() {
    let cells = 3 * TIE_WINDOW + 77;
    for (bits, t) in [
        (1u32, 1u64 << 31),
        (2, 1 << 30),
        (2, 3 << 30),
        (4, 11 << 28),
    ] {
        let kernel = DropoutKernel::new(17, 5, t);
        let mut bytes = vec![0u8; cells * bits as usize / 8 + 16];
        kernel.primary_bytes_into(&mut bytes);
        let fields_per_chunk = 128 / bits as usize;
        let want: Vec<bool> = (0..cells)
            .map(|i| {
                let chunk = &bytes[i / fields_per_chunk * 16..][..16];
                let number = u128::from_le_bytes(chunk.try_into().unwrap());
                let field = number >> (bits as usize * (i % fields_per_chunk)) & ((1 << bits) - 1);
                field < u128::from(t >> (32 - bits))
            })
            .collect();
        assert_eq!(reference_mask(17, 5, t, cells), want, "bits {bits}");
        assert_eq!(kernel.mask(cells), want, "bits {bits}");
    }
}

/// Mismatched buffers are a typed error and leave the output untouched.
#[test]
fn length_mismatch_is_an_error() {
    let kernel = DropoutKernel::new(1, 0, drop_threshold(0.5));
    let mut out = vec![9.0f32; 3];
    assert!(kernel.forward_into(&[1.0f32; 4], &mut out, 2.0).is_err());
    assert_eq!(out, vec![9.0; 3]);
}

/// One thread and two threads give the same bits: two parts run on two threads
/// (scoped threads, or the rayon pool with the `rayon` feature).
#[test]
fn one_and_two_threads_agree() {
    let n = 5 * TIE_WINDOW * 64 + 123;
    let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 - 500.0).collect();
    for rate in [0.1, 0.5, 0.3] {
        let kernel = DropoutKernel::new(3, 1, drop_threshold(rate));
        let scale = scale_of(rate);
        let run = |threads: usize| {
            let mut out = vec![0.0f32; n];
            let dropped = kernel
                .forward_into_chunked(&x, &mut out, scale, threads)
                .unwrap();
            let mut in_place = x.clone();
            let dropped_in_place = kernel
                .forward_in_place_chunked(&mut in_place, scale, threads)
                .unwrap();
            (dropped, dropped_in_place, bits(&out), bits(&in_place))
        };
        let (one, two) = (run(1), run(2));
        assert!(one.0 > 0, "rate {rate}: nothing dropped");
        assert_eq!(one, two, "rate {rate}");
    }
}

/// With rayon, a 1-thread and a 2-thread pool give the same bits, through the
/// kernel and through the layer.
#[cfg(feature = "rayon")]
#[test]
fn rayon_one_and_two_threads_agree() {
    let n = 5 * TIE_WINDOW * 64 + 123;
    let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 - 500.0).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut out = vec![0.0f32; n];
            let kernel = DropoutKernel::new(3, 1, drop_threshold(0.1));
            let dropped = kernel
                .forward_into_chunked(&x, &mut out, 1.0 / 0.9, rayon::current_num_threads())
                .unwrap();
            let mut layer = Dropout::<f32>::new(0.1).unwrap().with_seed(3);
            let y = layer
                .apply(
                    ArrayD::from_shape_vec(vec![n], x.clone()).unwrap(),
                    Phase::Train,
                )
                .unwrap();
            (dropped, bits(&out), bits(y.as_slice().unwrap()))
        })
    };
    assert_eq!(run(1), run(2));
}

/// The kernel on `isa` (out of place, in place, chunked, the mask, and `f64`)
/// equals the reference at rates of every plan and lengths around window
/// boundaries, from several (seed, call) pairs.
fn assert_isa_matches_reference(isa: Isa) {
    let rates = [
        0.1,
        0.3,
        1e-9,
        129.0 / 256.0,
        0.5,
        0.25,
        0.75,
        3.0 / 16.0,
        0.999,
    ];
    for n in [0, 5, TIE_WINDOW, TIE_WINDOW + 1, 17 * TIE_WINDOW + 333] {
        let x: Vec<f32> = (0..n).map(|i| (i as f32 - 5000.5) * 0.37).collect();
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        for rate in rates {
            for (seed, call) in [(3u64, 0u64), (9, 7), (1, u64::MAX)] {
                let case = format!("{isa:?} n {n} rate {rate} seed {seed} call {call}");
                let t = drop_threshold(rate);
                let scale = scale_of(rate);
                let mask = reference_mask(seed, call, t, n);
                let want = reference_select(&mask, &x, scale);
                let dropped = mask.iter().filter(|&&d| d).count() as u64;
                let kernel = DropoutKernel::new(seed, call, t).with_isa(isa);
                assert_eq!(kernel.isa(), isa);
                assert_eq!(kernel.mask(n), mask, "{case}");

                let mut out = vec![f32::NAN; n];
                assert_eq!(kernel.forward_into(&x, &mut out, scale).unwrap(), dropped);
                assert_eq!(bits(&out), want, "{case}");
                let mut in_place = x.clone();
                assert_eq!(
                    kernel.forward_in_place(&mut in_place, scale).unwrap(),
                    dropped
                );
                assert_eq!(bits(&in_place), want, "{case}");
                let mut chunked = vec![f32::NAN; n];
                kernel
                    .forward_into_chunked(&x, &mut chunked, scale, 3)
                    .unwrap();
                assert_eq!(bits(&chunked), want, "{case}");

                let scale64 = f64::from(scale);
                let mut wide = x64.clone();
                assert_eq!(
                    kernel.forward_in_place(&mut wide, scale64).unwrap(),
                    dropped
                );
                for ((&o, &v), &d) in wide.iter().zip(&x64).zip(&mask) {
                    let want = if d { 0.0 } else { v * scale64 };
                    assert_eq!(o.to_bits(), want.to_bits(), "{case}");
                }
            }
        }
    }
}

#[test]
fn portable_path_matches_reference() {
    assert_isa_matches_reference(Isa::Portable);
}

#[test]
fn avx2_paths_match_reference() {
    let Some(found) = isa::required("avx2", "avx2_paths_match_reference") else {
        return;
    };
    // AVX2 alone, as on CPUs without AVX-512, whatever this one has.
    let avx2 = Isa::Avx2(found.avx2().expect("AVX2 was detected"));
    assert_isa_matches_reference(avx2);
}

#[test]
fn avx512_paths_match_reference() {
    let Some(avx512) = isa::required("avx512", "avx512_paths_match_reference") else {
        return;
    };
    assert_isa_matches_reference(avx512);
}

/// The detected set is the widest the CPU has, and it is what a new kernel uses.
#[test]
fn new_kernels_run_on_the_detected_set() {
    let detected = Isa::detect();
    assert_eq!(
        DropoutKernel::new(1, 0, drop_threshold(0.1)).isa(),
        detected
    );
    // Straight from the tokens' detection: this holds on every machine, so it
    // needs no instruction set and skips nothing.
    let want = Avx512::detect()
        .map(Isa::Avx512)
        .or_else(|| Avx2::detect().map(Isa::Avx2))
        .unwrap_or(Isa::Portable);
    assert_eq!(detected, want);
}

/// The helper's own rule: a missing set is skipped with a line saying so, unless
/// `NNCHECK_REQUIRE_ISA` names it.
#[test]
fn a_missing_isa_is_skipped_unless_required() {
    assert_eq!(
        isa::missing("avx512", "t", ""),
        "SKIPPED t: needs avx512f, avx512bw (not on this machine)"
    );
    assert_eq!(
        isa::missing("avx2", "t", "avx512"),
        "SKIPPED t: needs avx2 (not on this machine)"
    );
    let required = std::panic::catch_unwind(|| isa::missing("avx512", "t", "avx2,avx512"));
    let message = *required.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("t needs avx512 (avx512f, avx512bw)"),
        "{message}"
    );
}
