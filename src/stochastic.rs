//! The capability of a layer that draws random noise in `Train`: its counters,
//! its reseed, and a checkpoint of its place in its random stream.
//!
//! A model reaches its stochastic layers only through this trait (via
//! [`Layer::stochastic`](crate::Layer::stochastic)), so a new noise layer plugs
//! in without the model knowing its type. Serves SPEC §2 (a frozen model's noise
//! layers are seen to be active during `fit`, through their counters; a model
//! seed pins every one of them) and SPEC §7 (a failed call puts every stream and
//! counter back, so it leaves no trace).

/// Counters of what a noise layer did in `Train` calls.
///
/// For dropout a unit is *dropped* when it was set to zero; a draw is one mask
/// cell (fewer than the units under a noise shape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NoiseStats {
    /// Train-phase calls.
    pub train_calls: u64,
    /// Elements that went through in those calls.
    pub units_seen: u64,
    /// Elements dropped: set to `+0.0` by dropout and SpatialDropout, to
    /// AlphaDropout's `a*alpha_p + b` by AlphaDropout; always 0 for the
    /// Gaussian layers, which perturb every element instead.
    pub units_dropped: u64,
    /// Independent mask draws (mask cells; fewer than units under a noise shape).
    pub draws: u64,
    /// Draws that dropped.
    pub draws_dropped: u64,
}

/// Where a noise layer stands: the index of its next call and its counters.
///
/// Restoring a checkpoint makes the layer draw from its stream exactly as it
/// would have without the calls made since, because a call's noise depends only
/// on (seed, call index, element index).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoiseCheckpoint {
    /// How many `Train` calls had drawn noise.
    pub calls: u64,
    /// The counters at that point.
    pub stats: NoiseStats,
}

/// A layer with random state, as a model sees it.
///
/// ```
/// use nncheck::{Dropout, Layer, Phase};
/// use ndarray::ArrayD;
/// let mut d = Dropout::<f32>::new(0.5).unwrap().with_seed(3);
/// let saved = d.stochastic().unwrap().checkpoint();
/// let first = d.apply(ArrayD::ones(vec![8]), Phase::Train).unwrap();
/// d.stochastic_mut().unwrap().restore(saved);
/// assert_eq!(d.apply(ArrayD::ones(vec![8]), Phase::Train).unwrap(), first);
/// ```
pub trait Stochastic {
    /// The counters of `Train` calls so far.
    fn noise_stats(&self) -> NoiseStats;
    /// Zeroes the counters (the stream position is kept).
    fn reset_noise_stats(&mut self);
    /// Starts the layer's noise over from `seed`, at call 0.
    fn reseed(&mut self, seed: u64);
    /// The layer's place in its stream and its counters.
    fn checkpoint(&self) -> NoiseCheckpoint;
    /// Puts the layer back at `checkpoint`.
    fn restore(&mut self, checkpoint: NoiseCheckpoint);
}
