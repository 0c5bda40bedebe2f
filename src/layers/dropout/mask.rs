//! The dropout mask, defined once: which cells call `k` of a layer seeded `s` drops.
//!
//! Call `k` of a layer with seed `s` decides mask cell `i` (row-major over the
//! resolved noise shape) from ChaCha8 keyed by `s`. Let `t` = `round(rate * 2^32)`
//! and `bits` = [`cell_bits`]`(t)`: 1, 2 or 4 when `t` is a multiple of `2^31`,
//! `2^30` or `2^28` (rates 1/2; 1/4 and 3/4; multiples of 1/16), else 8.
//! - `bits < 8`: the cell's field `f` is bits `i * bits ..` of stream `2k` (bit `j`
//!   of byte `n` being bit `8n + j`); dropped iff `f < t >> (32 - bits)`. No ties.
//! - `bits == 8`: `b` = byte `i` of stream `2k`; `t_hi = t >> 24`;
//!   `b < t_hi`: dropped; `b > t_hi`: kept;
//!   `b == t_hi` (a tie, probability 1/256): cell `i` is the `j`-th tie of its
//!   window of [`TIE_WINDOW`] cells; `r` = word `(i / TIE_WINDOW) * TIE_WINDOW + j`
//!   of stream `2k + 1`, top 24 bits; dropped iff `(b << 24 | r) < t`.
//!
//! So a drop has probability exactly `t / 2^32`, within 2^-33 of `rate`, while
//! most cells cost one random byte, and at rate 0.5 one random bit. The mask
//! depends only on (seed, call, cell index): never on batch split, chunking or
//! thread count.
//!
//! [`reference_mask`] is this definition as a plain loop, the statement everything
//! else is tested against: the fast kernel ([`super::kernel`]) must equal it bit for
//! bit. This module depends on nothing in the kernel or the layer.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Cells per tie window; ties inside one window read consecutive tie words.
pub const TIE_WINDOW: usize = 4096;

/// The drop threshold `round(rate * 2^32)`: a cell is dropped with probability
/// `threshold / 2^32`.
pub fn drop_threshold(rate: f64) -> u64 {
    (rate * 4_294_967_296.0).round() as u64
}

/// Random bits a mask cell draws from the primary stream at threshold `t`: the
/// fewest of 1, 2 and 4 that state `t / 2^32` exactly (`t` a multiple of
/// `2^(32 - bits)`), else 8 (a byte, with a tie word when it is not enough).
///
/// ```
/// use nncheck::layers::dropout::{cell_bits, drop_threshold};
/// assert_eq!(cell_bits(drop_threshold(0.5)), 1);
/// assert_eq!(cell_bits(drop_threshold(0.75)), 2);
/// assert_eq!(cell_bits(drop_threshold(3.0 / 16.0)), 4);
/// assert_eq!(cell_bits(drop_threshold(0.1)), 8);
/// assert_eq!(cell_bits(drop_threshold(1.0 / 256.0)), 8);
/// ```
pub fn cell_bits(t: u64) -> u32 {
    match t.trailing_zeros() {
        31.. => 1,
        30 => 2,
        28 | 29 => 4,
        _ => 8,
    }
}

/// The ChaCha8 generator of a seeded layer (one key per seed, streams per call).
pub fn mask_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// The mask of call `call` of a layer seeded `seed`: `true` where the cell is
/// dropped. A plain, unoptimised statement of the definition in the module docs.
///
/// ```
/// use nncheck::layers::dropout::{reference_mask, drop_threshold};
/// let a = reference_mask(7, 0, drop_threshold(0.5), 1000);
/// assert_eq!(a, reference_mask(7, 0, drop_threshold(0.5), 1000));
/// assert_ne!(a, reference_mask(7, 1, drop_threshold(0.5), 1000));
/// ```
pub fn reference_mask(seed: u64, call: u64, threshold: u64, cells: usize) -> Vec<bool> {
    let mut primary = mask_rng(seed);
    primary.set_stream(call.wrapping_mul(2));
    let bits = cell_bits(threshold) as usize;
    if bits < 8 {
        let mut bytes = vec![0u8; (cells * bits).div_ceil(8)];
        primary.fill_bytes(&mut bytes);
        let below = threshold >> (32 - bits);
        return (0..cells)
            .map(|i| {
                let field = (bytes[i * bits / 8] >> (i * bits % 8)) & ((1 << bits) - 1);
                u64::from(field) < below
            })
            .collect();
    }
    let mut bytes = vec![0u8; cells];
    primary.fill_bytes(&mut bytes);
    let mut ties = mask_rng(seed);
    ties.set_stream(call.wrapping_mul(2).wrapping_add(1));
    let t_hi = threshold >> 24;
    let mut ordinal_in_window = 0u128;
    bytes
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if i % TIE_WINDOW == 0 {
                ordinal_in_window = 0;
            }
            let b = u64::from(b);
            if b != t_hi {
                return b < t_hi;
            }
            let window_start = (i / TIE_WINDOW * TIE_WINDOW) as u128;
            ties.set_word_pos(window_start + ordinal_in_window);
            ordinal_in_window += 1;
            let r = u64::from(ties.next_u32() >> 8);
            (b << 24 | r) < threshold
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tie_whose_draw_equals_the_threshold_is_kept() {
        // Cell 0 of call 0: its byte, and the tie word it would read, written
        // out from the definition; the threshold is set to exactly that draw.
        let seed = 7;
        let mut primary = mask_rng(seed);
        primary.set_stream(0);
        let mut byte = [0u8; 1];
        primary.fill_bytes(&mut byte);
        let mut ties = mask_rng(seed);
        ties.set_stream(1);
        ties.set_word_pos(0);
        let draw = u64::from(byte[0]) << 24 | u64::from(ties.next_u32() >> 8);
        assert_eq!(cell_bits(draw), 8);
        assert!(
            !reference_mask(seed, 0, draw, 1)[0],
            "draw == threshold: kept"
        );
        assert!(
            reference_mask(seed, 0, draw + 1, 1)[0],
            "draw < threshold: dropped"
        );
        assert!(
            !reference_mask(seed, 0, draw - 1, 1)[0],
            "draw > threshold: kept"
        );
    }
}
