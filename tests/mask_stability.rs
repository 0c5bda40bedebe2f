//! Value stability of the dropout mask, in the style of `rand`'s value-stability
//! tests: the masks of a few fixed (seed, rate, shape) triples, pinned as literal
//! values.
//!
//! Invariant proved: the mask a seed gives is the same from release to release,
//! through the fast kernel (`Dropout::apply` in `Train` on all-ones input, where an
//! output of `0.0` is a dropped unit) and through `reference_mask`. The cases cover
//! a byte-path rate (0.3), the packed rates (0.5 one bit per cell, 0.25 two bits),
//! rates whose ties are decided by the tie stream (0.1, 0.3), a second call of the
//! same layer, a noise shape, and `f64`.
//!
//! A change of mask definition must be a visible, deliberate act: update these
//! values and say so in CHANGELOG.

use ndarray::ArrayD;
use nncheck::layers::dropout::{drop_threshold, reference_mask};
use nncheck::{Dropout, Element, Phase};

/// FNV-1a (64-bit) of a drop bitmap packed least significant bit first.
fn fnv1a(mask: &[bool]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in mask.chunks(8).map(|cells| {
        cells
            .iter()
            .enumerate()
            .fold(0u8, |b, (k, &d)| b | u8::from(d) << k)
    }) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The indices of the dropped cells.
fn dropped(mask: &[bool]) -> Vec<usize> {
    mask.iter()
        .enumerate()
        .filter_map(|(i, &d)| d.then_some(i))
        .collect()
}

/// The drop mask of `calls` consecutive train calls of a layer seeded `seed` on
/// all-ones input of `shape` (row-major; `0.0` out means dropped).
fn layer_masks<F: Element>(
    seed: u64,
    rate: f64,
    shape: &[usize],
    noise_shape: Option<Vec<Option<usize>>>,
    calls: usize,
) -> Vec<Vec<bool>> {
    let mut layer = Dropout::<F>::new(rate).unwrap().with_seed(seed);
    if let Some(noise) = noise_shape {
        layer = layer.with_noise_shape(noise);
    }
    (0..calls)
        .map(|_| {
            let y = layer
                .apply(ArrayD::from_elem(shape.to_vec(), F::one()), Phase::Train)
                .unwrap();
            y.iter().map(|&v| v == F::zero()).collect()
        })
        .collect()
}

/// The reference mask of call `call` of a layer seeded `seed` over `cells` cells.
fn reference(seed: u64, call: u64, rate: f64, cells: usize) -> Vec<bool> {
    reference_mask(seed, call, drop_threshold(rate), cells)
}

/// A small case: seed, rate, shape, and the dropped indices of calls 0 and 1.
type SmallCase<'a> = (u64, f64, &'a [usize], [&'a [usize]; 2]);

/// A large case: seed, rate, units, and (dropped count, FNV-1a of the bitmap) of
/// calls 0 and 1.
type LargeCase = (u64, f64, usize, [(usize, u64); 2]);

/// Small shapes: the dropped indices themselves, kernel and reference.
#[test]
fn small_masks_are_pinned() {
    let cases: [SmallCase; 3] = [
        (42, 0.3, &[4, 8], [&PIN_03_C0, &PIN_03_C1]),
        (7, 0.5, &[2, 16], [&PIN_05_C0, &PIN_05_C1]),
        (7, 0.25, &[3, 11], [&PIN_025_C0, &PIN_025_C1]),
    ];
    for (seed, rate, shape, want) in cases {
        let cells: usize = shape.iter().product();
        let layer = layer_masks::<f32>(seed, rate, shape, None, 2);
        let layer64 = layer_masks::<f64>(seed, rate, shape, None, 2);
        for call in 0..2 {
            let case = format!("seed {seed} rate {rate} shape {shape:?} call {call}");
            let reference = reference(seed, call as u64, rate, cells);
            assert_eq!(dropped(&reference), want[call], "reference, {case}");
            assert_eq!(dropped(&layer[call]), want[call], "layer f32, {case}");
            assert_eq!(dropped(&layer64[call]), want[call], "layer f64, {case}");
        }
    }
}

/// A noise shape: one cell per (batch, channel), shared over the middle axis; the
/// cells are the reference mask of the noise shape, broadcast.
#[test]
fn noise_shape_mask_is_pinned() {
    let (seed, rate) = (11u64, 0.3);
    let shape = [4usize, 5, 6];
    let masks = layer_masks::<f32>(seed, rate, &shape, Some(vec![None, Some(1), None]), 1);
    let cells = reference(seed, 0, rate, 4 * 6);
    assert_eq!(dropped(&cells), PIN_NOISE_CELLS, "reference cells");
    for (i, &d) in masks[0].iter().enumerate() {
        let (b, c) = (i / 30, i % 6);
        assert_eq!(d, cells[b * 6 + c], "unit {i}");
    }
    assert_eq!(
        masks[0].iter().filter(|&&d| d).count(),
        5 * PIN_NOISE_CELLS.len()
    );
}

/// 10_000 units and more (several tie windows, ties decided by the tie stream):
/// the dropped count and an FNV-1a hash of the drop bitmap.
#[test]
fn large_masks_are_pinned() {
    let cases: [LargeCase; 5] = [
        (42, 0.3, 10_000, PIN_LARGE[0]),
        (42, 0.5, 10_000, PIN_LARGE[1]),
        (42, 0.25, 10_000, PIN_LARGE[2]),
        (3, 0.1, 100_000, PIN_LARGE[3]),
        (5, 0.0625, 10_000, PIN_LARGE[4]),
    ];
    for (seed, rate, units, want) in cases {
        let layer = layer_masks::<f32>(seed, rate, &[units], None, 2);
        for (call, &(count, hash)) in want.iter().enumerate() {
            let case = format!("seed {seed} rate {rate} units {units} call {call}");
            let reference = reference(seed, call as u64, rate, units);
            let got = (reference.iter().filter(|&&d| d).count(), fnv1a(&reference));
            assert_eq!(got, (count, hash), "reference, {case}");
            let got = (
                layer[call].iter().filter(|&&d| d).count(),
                fnv1a(&layer[call]),
            );
            assert_eq!(got, (count, hash), "layer, {case}");
        }
    }
}

/// Prints the current values in the form pinned below (run with `--ignored
/// --nocapture` after a deliberate change of definition).
#[test]
#[ignore]
fn print_current_values() {
    for (name, seed, rate, cells) in [
        ("03", 42u64, 0.3, 32usize),
        ("05", 7, 0.5, 32),
        ("025", 7, 0.25, 33),
    ] {
        for call in 0..2u64 {
            let d = dropped(&reference(seed, call, rate, cells));
            println!("const PIN_{name}_C{call}: [usize; {}] = {d:?};", d.len());
        }
    }
    let d = dropped(&reference(11, 0, 0.3, 24));
    println!("const PIN_NOISE_CELLS: [usize; {}] = {d:?};", d.len());
    println!("const PIN_LARGE: [[(usize, u64); 2]; 5] = [");
    for (seed, rate, units) in [
        (42u64, 0.3, 10_000usize),
        (42, 0.5, 10_000),
        (42, 0.25, 10_000),
        (3, 0.1, 100_000),
        (5, 0.0625, 10_000),
    ] {
        let v: Vec<String> = (0..2u64)
            .map(|call| {
                let m = reference(seed, call, rate, units);
                format!(
                    "({}, {:#018x})",
                    m.iter().filter(|&&d| d).count(),
                    fnv1a(&m)
                )
            })
            .collect();
        println!("    [{}],", v.join(", "));
    }
    println!("];");
}

// The pinned values, computed once from the code as it stood before the kernel
// was split into modules.
const PIN_03_C0: [usize; 6] = [3, 11, 13, 14, 20, 26];
const PIN_03_C1: [usize; 12] = [1, 3, 5, 6, 7, 8, 13, 15, 20, 24, 27, 31];
const PIN_05_C0: [usize; 14] = [2, 6, 10, 11, 12, 13, 15, 19, 21, 26, 27, 28, 30, 31];
const PIN_05_C1: [usize; 22] = [
    1, 2, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 16, 17, 18, 19, 21, 23, 24, 27, 29, 30,
];
const PIN_025_C0: [usize; 9] = [5, 6, 13, 15, 16, 19, 21, 28, 31];
const PIN_025_C1: [usize; 11] = [2, 3, 4, 6, 8, 9, 16, 23, 28, 30, 32];
const PIN_NOISE_CELLS: [usize; 9] = [0, 4, 5, 10, 14, 15, 16, 21, 22];
const PIN_LARGE: [[(usize, u64); 2]; 5] = [
    [(3062, 0x98c0870cebc212e2), (2982, 0xd18ecdd0bf4427db)],
    [(5046, 0x8f6deed66a043d9b), (4946, 0xc13a327453dcd621)],
    [(2565, 0xdb58b4bc6b55ab8a), (2500, 0xc5bee9a6b1fc057b)],
    [(9931, 0xe4e4027e45f62f15), (10078, 0xfa2c58548c2f7c78)],
    [(656, 0x8e26dbe7c3299c77), (631, 0x8d499be66a48f8c6)],
];
