//! ChaCha8 keystreams computed several blocks at a time, one module per
//! instruction set: the same bytes as rand_chacha's `ChaCha8Rng` (key, 64-bit block
//! counter in words 12-13, stream in words 14-15), checked byte for byte against it
//! in the unit tests, including across the 2^32 and 2^64 counter boundaries.

pub(crate) mod avx2;
pub(crate) mod avx512;

/// ChaCha's four constant words ("expand 32-byte k"), shared by the SIMD keystreams.
pub(crate) const CHACHA_CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The low and high words of the 64-bit block counters `block .. block + N`, one
/// lane per block, wrapping like rand_chacha's counter.
#[inline(always)]
pub(crate) fn counter_words<const N: usize>(block: u64) -> ([u32; N], [u32; N]) {
    let mut lo = [0u32; N];
    let mut hi = [0u32; N];
    for (l, (lo, hi)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
        let b = block.wrapping_add(l as u64);
        *lo = b as u32;
        *hi = (b >> 32) as u32;
    }
    (lo, hi)
}
