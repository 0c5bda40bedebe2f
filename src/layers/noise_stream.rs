//! What every noise layer other than `Dropout` shares: its seed, its call count
//! and counters (the [`Stochastic`] capability) and the definition of its
//! Gaussian draws.
//!
//! Invariant served (SPEC §2 and §2b): the noise of call `k` of a layer seeded
//! `s` depends only on `(s, k, element index)`. For the Gaussian layers that is
//! [`standard_normals`]: element `i` takes the `(i mod NORMAL_BLOCK)`-th draw of
//! rand_distr's ziggurat [`StandardNormal`] from the ChaCha8 generator keyed by
//! `s`, on stream `k`, sought to word `(i / NORMAL_BLOCK) << 32`. A ziggurat
//! consumes a variable number of words per draw, so a single stream could not be
//! split; blocks of their own, each far more than long enough, can be computed
//! in any order or on any thread and give the same numbers.

use crate::error::{Error, Result};
use crate::rng::{os_seed, SeedSequence};
use crate::stochastic::{NoiseCheckpoint, NoiseStats, Stochastic};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Elements per independent block of Gaussian draws (see the module docs).
pub const NORMAL_BLOCK: usize = 4096;

/// The standard-normal draws of call `call` of a layer seeded `seed`, for
/// elements `0..n` in row-major order: the definition every Gaussian layer uses.
/// Drawn as they are consumed, so a forward allocates no buffer for them.
///
/// ```
/// use nncheck::layers::noise_stream::standard_normals;
/// let a: Vec<f64> = standard_normals(7, 0, 10_000).collect();
/// assert_eq!(a, standard_normals(7, 0, 10_000).collect::<Vec<_>>());
/// assert_ne!(a, standard_normals(7, 1, 10_000).collect::<Vec<_>>());
/// // A prefix is the same numbers: the draws do not depend on the batch size.
/// assert!(standard_normals(7, 0, 5000).eq(a[..5000].iter().copied()));
/// ```
pub fn standard_normals(seed: u64, call: u64, n: usize) -> impl Iterator<Item = f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(call);
    (0..n).map(move |i| {
        if i % NORMAL_BLOCK == 0 {
            rng.set_word_pos(((i / NORMAL_BLOCK) as u128) << 32);
        }
        StandardNormal.sample(&mut rng)
    })
}

/// `rate` when it lies in `[0, 1)`, the range of GaussianDropout and
/// AlphaDropout (rate 1 has no finite noise), else the typed error naming it.
pub(crate) fn rate_below_one(name: &'static str, rate: f64) -> Result<f64> {
    if (0.0..1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(Error::InvalidHyperParameter {
            name,
            value: rate,
            expected: "a number in [0, 1)",
        })
    }
}

/// A noise layer's seed, call count and counters: its [`Stochastic`] face.
///
/// A model reaches it through `Layer::stochastic`, so it reseeds, checkpoints and
/// restores the layer without knowing the layer's type.
#[derive(Debug, Clone)]
pub(crate) struct NoiseStream {
    seed: u64,
    pinned: bool,
    calls: u64,
    stats: NoiseStats,
}

impl NoiseStream {
    /// A stream seeded from OS entropy until a seed is pinned or the layer is built.
    pub(crate) fn new() -> Self {
        NoiseStream {
            seed: os_seed(),
            pinned: false,
            calls: 0,
            stats: NoiseStats::default(),
        }
    }

    /// Pins the seed: a model's seed no longer replaces it at build.
    pub(crate) fn pin(&mut self, seed: u64) {
        self.seed = seed;
        self.pinned = true;
    }

    /// Takes the next seed of the model's sequence unless one was pinned, as
    /// `Dropout::build` does, so a model seed pins every noise layer in it.
    pub(crate) fn on_build(&mut self, seeds: &mut SeedSequence) {
        if !self.pinned {
            self.pin(seeds.next_seed());
        }
    }

    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    pub(crate) fn calls(&self) -> u64 {
        self.calls
    }

    /// Counts one `Train` call over `units` elements and `draws` random draws,
    /// and returns the call's index in the stream.
    pub(crate) fn begin_call(&mut self, units: u64, draws: u64) -> u64 {
        self.stats.train_calls += 1;
        self.stats.units_seen += units;
        self.stats.draws += draws;
        let call = self.calls;
        self.calls += 1;
        call
    }

    /// Adds the drops of the current call.
    pub(crate) fn count_drops(&mut self, units_dropped: u64, draws_dropped: u64) {
        self.stats.units_dropped += units_dropped;
        self.stats.draws_dropped += draws_dropped;
    }
}

impl Stochastic for NoiseStream {
    fn noise_stats(&self) -> NoiseStats {
        self.stats
    }
    fn reset_noise_stats(&mut self) {
        self.stats = NoiseStats::default();
    }
    fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.calls = 0;
    }
    fn checkpoint(&self) -> NoiseCheckpoint {
        NoiseCheckpoint {
            calls: self.calls,
            stats: self.stats,
        }
    }
    fn restore(&mut self, checkpoint: NoiseCheckpoint) {
        self.calls = checkpoint.calls;
        self.stats = checkpoint.stats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;
    use crate::layers::{AlphaDropout, GaussianDropout, GaussianNoise};
    use crate::phase::{ForwardCtx, Phase};
    use ndarray::ArrayD;

    /// `calls` reads the layer's stream: the index of the next train call's
    /// draws, which eval calls leave alone.
    fn assert_calls_count_train_calls_only<L: Layer<f32>>(mut layer: L, calls: fn(&L) -> u64) {
        let x = ArrayD::from_elem(vec![2, 3], 1.0_f32);
        assert_eq!(calls(&layer), 0);
        for (phase, after) in [
            (Phase::Train, 1),
            (Phase::Eval, 1),
            (Phase::Train, 2),
            (Phase::Train, 3),
        ] {
            layer.forward(x.clone(), ForwardCtx::top(phase)).unwrap();
            assert_eq!(calls(&layer), after, "after a {phase:?} call");
        }
    }

    #[test]
    fn every_noise_layers_calls_counts_train_calls_only() {
        let alpha = AlphaDropout::<f32>::new(0.3).unwrap().with_seed(5);
        assert_calls_count_train_calls_only(alpha, AlphaDropout::calls);
        let gaussian = GaussianDropout::<f32>::new(0.2).unwrap().with_seed(5);
        assert_calls_count_train_calls_only(gaussian, GaussianDropout::calls);
        let noise = GaussianNoise::<f32>::new(0.7).unwrap().with_seed(5);
        assert_calls_count_train_calls_only(noise, GaussianNoise::calls);
    }

    #[test]
    fn block_k_starts_at_word_k_shifted_32() {
        // The stated layout, written out for the third block: seed, stream =
        // call, word position 2 << 32, then the draws in order.
        let (seed, call) = (7, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(call);
        rng.set_word_pos(2u128 << 32);
        let expected: Vec<f64> = (0..4).map(|_| StandardNormal.sample(&mut rng)).collect();
        let drawn: Vec<f64> = standard_normals(seed, call, 2 * NORMAL_BLOCK + 4)
            .skip(2 * NORMAL_BLOCK)
            .collect();
        assert_eq!(drawn, expected);
    }

    /// One of each noise layer that draws from this stream, seeded.
    fn noise_layers() -> Vec<Box<dyn Layer<f32>>> {
        vec![
            Box::new(AlphaDropout::<f32>::new(0.3).unwrap().with_seed(5)),
            Box::new(GaussianDropout::<f32>::new(0.2).unwrap().with_seed(5)),
            Box::new(GaussianNoise::<f32>::new(0.7).unwrap().with_seed(5)),
        ]
    }

    /// Resetting a layer's statistics zeroes every count of them.
    #[test]
    fn every_noise_layers_reset_zeroes_its_statistics() {
        use crate::stochastic::NoiseStats;
        for mut layer in noise_layers() {
            let x = ArrayD::from_elem(vec![2, 3], 1.0_f32);
            layer.forward(x, ForwardCtx::top(Phase::Train)).unwrap();
            let s = layer.stochastic_mut().unwrap();
            assert_eq!(s.noise_stats().train_calls, 1);
            s.reset_noise_stats();
            assert_eq!(s.noise_stats(), NoiseStats::default());
        }
    }

    /// A checkpoint holds the calls made and the counters; restoring it makes
    /// the next train call draw what the call after the checkpoint drew (how
    /// a failed step gives back the noise it used).
    #[test]
    fn every_noise_layers_checkpoint_restores_its_stream_and_counts() {
        for mut layer in noise_layers() {
            let x = ArrayD::from_elem(vec![2, 3], 1.0_f32);
            let train = |layer: &mut Box<dyn Layer<f32>>| {
                layer
                    .forward(x.clone(), ForwardCtx::top(Phase::Train))
                    .unwrap()
            };
            train(&mut layer);
            train(&mut layer);
            let checkpoint = layer.stochastic().unwrap().checkpoint();
            assert_eq!(checkpoint.calls, 2);
            assert_eq!(checkpoint.stats, layer.stochastic().unwrap().noise_stats());
            let third = train(&mut layer);
            layer.stochastic_mut().unwrap().restore(checkpoint);
            assert_eq!(layer.stochastic().unwrap().noise_stats(), checkpoint.stats);
            assert_eq!(train(&mut layer), third);
        }
    }
}
