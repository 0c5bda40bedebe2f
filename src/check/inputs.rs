//! The inputs the checks feed a subject, drawn from a stream of their own.
//!
//! Every audit input comes from ChaCha20 keyed by the case's seed *and* a fixed
//! domain tag, never from the stream a subject is seeded with. A subject that
//! follows SPEC §2's own advice (ChaCha8 from the same seed, one `u32` against
//! a threshold) would otherwise read the very numbers that chose each input:
//! at rate 0.6 every subnormal input then landed on a drop, so no kept
//! subnormal was ever audited.

use ndarray::ArrayD;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The tag that keys the audit stream apart from any subject's (16 bytes).
const DOMAIN: &[u8; 16] = b"nncheck audit in";

/// The generator of audit inputs for `seed`: ChaCha20 keyed by `seed` and the
/// audit domain tag, so it shares no key (and no round count) with a ChaCha8
/// stream seeded by `seed`, however the subject derives its key.
///
/// ```
/// use rand::RngExt;
/// let a: u64 = nncheck::check::inputs::audit_rng(7).random();
/// let b: u64 = nncheck::check::inputs::audit_rng(7).random();
/// assert_eq!(a, b);
/// ```
pub fn audit_rng(seed: u64) -> ChaCha20Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[16..].copy_from_slice(DOMAIN);
    ChaCha20Rng::from_seed(key)
}

/// Nonzero finite values of both signs, magnitudes in `[0.01, 100)`, so a
/// `+0.0` output can only be a drop.
pub fn nonzero_input(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = audit_rng(seed);
    ArrayD::from_shape_simple_fn(shape.to_vec(), || {
        let v: f32 = rng.random_range(0.01f32..100.0);
        if rng.random_bool(0.5) {
            -v
        } else {
            v
        }
    })
}

/// Values that break careless implementations: NaN (with a payload), both
/// infinities, -0.0, subnormals, extremes, each about a tenth of the input.
pub fn special_input(shape: &[usize], seed: u64) -> ArrayD<f32> {
    const SPECIAL: [f32; 9] = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        1e-45,
        -1e-40,
        f32::MAX,
        f32::MIN,
        1.0,
    ];
    let mut rng = audit_rng(seed);
    let payload_nan = f32::from_bits(0x7fc0_1234);
    ArrayD::from_shape_simple_fn(shape.to_vec(), || match rng.random_range(0..10) {
        9 => payload_nan,
        i => SPECIAL[i],
    })
}

/// Strictly positive finite values, so any zero output is a drop whatever sign
/// convention the subject follows.
pub fn positive_input(shape: &[usize], seed: u64) -> ArrayD<f32> {
    nonzero_input(shape, seed).mapv(f32::abs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn nonzero_input_has_both_signs_and_no_zero() {
        let x = nonzero_input(&[1000], 7);
        assert!(x.iter().all(|v| (0.01..100.0).contains(&v.abs())));
        assert!(x.iter().any(|&v| v < 0.0) && x.iter().any(|&v| v > 0.0));
        assert!(positive_input(&[1000], 7).iter().all(|&v| v > 0.0));
    }

    #[test]
    fn special_input_holds_every_special_value() {
        let bits: Vec<u32> = special_input(&[1000], 7)
            .iter()
            .map(|v| v.to_bits())
            .collect();
        for (want, what) in [
            (0x7fc0_1234, "NaN with a payload"),
            (f32::NAN.to_bits(), "NaN"),
            (f32::INFINITY.to_bits(), "+inf"),
            (f32::NEG_INFINITY.to_bits(), "-inf"),
            ((-0.0f32).to_bits(), "-0.0"),
            (1e-45f32.to_bits(), "the smallest subnormal"),
            ((-1e-40f32).to_bits(), "a negative subnormal"),
            (f32::MAX.to_bits(), "f32::MAX"),
            (f32::MIN.to_bits(), "f32::MIN"),
            (1.0f32.to_bits(), "1.0"),
        ] {
            assert!(bits.contains(&want), "no {what}");
        }
    }

    /// The audit stream of a seed is not the ChaCha8 stream a subject seeded
    /// with the same number draws: their first words differ.
    #[test]
    fn the_audit_stream_is_not_a_subjects_stream_of_the_same_seed() {
        for seed in [0u64, 1, 7, 42, u64::MAX] {
            let mut audit = audit_rng(seed);
            let mut subject = crate::rng::chacha(seed);
            let a: Vec<u32> = (0..8).map(|_| audit.next_u32()).collect();
            let s: Vec<u32> = (0..8).map(|_| subject.next_u32()).collect();
            assert!(a.iter().zip(&s).all(|(x, y)| x != y), "seed {seed}");
        }
    }
}
