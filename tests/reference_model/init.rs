//! The reference's own randomness: initial weights and the data set, from a seed.
//!
//! Serves the state-machine oracle: the reference chooses every initial value and
//! pushes it into the system under test (`set_weight`), so a weight that was
//! never updated can be compared bit for bit, and the reference needs none of
//! the system's initialisers or generators. SplitMix64 is enough: these values
//! need to be varied, not cryptographic.

use super::matrix::Matrix;

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`, from 53 random bits.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }
}

/// A Glorot-uniform kernel `[inputs, units]` (the Keras default initialiser's law).
pub fn glorot_kernel(rng: &mut SplitMix, inputs: usize, units: usize) -> Vec<f64> {
    let limit = (6.0 / (inputs + units) as f64).sqrt();
    (0..inputs * units)
        .map(|_| rng.uniform(-limit, limit))
        .collect()
}

/// `samples` inputs uniform in `[-1, 1)` and a smooth target of them.
pub fn data_set(seed: u64, samples: usize, features: usize) -> (Matrix, Matrix) {
    let mut rng = SplitMix::new(seed ^ 0x6461_7461);
    let x = Matrix::from_fn(samples, features, |_, _| rng.uniform(-1.0, 1.0));
    let y = Matrix::from_fn(samples, 1, |r, _| {
        let dot: f64 = (0..features)
            .map(|j| x.at(r, j) * (j as f64 * 0.7).cos())
            .sum();
        dot.sin() + 0.1 * x.at(r, 0)
    });
    (x, y)
}
