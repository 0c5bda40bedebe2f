//! Seeds: from a model seed to a seed per layer.
//!
//! A model built with a seed hands each layer that has none of its own a seed
//! drawn, in build order, from a ChaCha8 stream keyed by the model seed; so the
//! same program gives the same weights and masks on every run and machine. A
//! model without a seed draws its stream key from OS entropy.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The deterministic source of per-layer seeds used while a model is built.
#[derive(Debug, Clone)]
pub struct SeedSequence {
    rng: ChaCha8Rng,
}

impl SeedSequence {
    /// A sequence keyed by `seed`, or by OS entropy when `None`.
    ///
    /// ```
    /// use nncheck::rng::SeedSequence;
    /// let mut a = SeedSequence::new(Some(7));
    /// let mut b = SeedSequence::new(Some(7));
    /// assert_eq!(a.next_seed(), b.next_seed());
    /// ```
    pub fn new(seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(os_seed);
        SeedSequence {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The next layer seed.
    pub fn next_seed(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// A fresh seed from OS entropy, for layers and models built without one.
pub fn os_seed() -> u64 {
    rand::rng().next_u64()
}

/// A ChaCha8 generator for a layer seed (weight initialisers, shuffles).
pub fn chacha(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}
