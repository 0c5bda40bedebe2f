//! The dropout subject: what any implementation provides so that every SPEC §2
//! check can run on it, nncheck's own layer being just the first.
//!
//! A subject is a factory ([`DropoutSubject`]) that builds layers at a rate and
//! an optional seed; a built layer ([`DropoutLike`]) runs forward in a phase.
//! Everything else is a capability a layer may lack: a backward pass, reseeding,
//! a noise shape, the last mask, counters. The subject declares the ones it has
//! ([`DropoutSubject::capabilities`]); a check that needs one it lacks is
//! reported *not applicable* with the capability's name, never run, never a
//! pass and never a failure.

use crate::check::capability::{Capabilities, Capability};
use crate::check::error::{catching, unsupported, Error, Result};
use crate::phase::Phase;
use crate::stochastic::NoiseStats;
use crate::tensor::Element;
use ndarray::ArrayD;

/// A dropout-like layer as the checks see it: a rate and a forward in a phase,
/// plus optional capabilities whose defaults say the layer lacks them.
pub trait DropoutLike<F: Element> {
    /// The rate it claims.
    fn rate(&self) -> f64;
    /// One forward call.
    fn run(&mut self, x: ArrayD<F>, phase: Phase) -> Result<ArrayD<F>>;
    /// The input gradient of the last forward call, for the output gradient `dy`.
    fn run_backward(&mut self, _dy: ArrayD<F>) -> Result<ArrayD<F>> {
        unsupported(Capability::Backward)
    }
    /// Restarts the layer's mask stream at `seed`: after it, the same calls give
    /// the same masks.
    fn reseed(&mut self, _seed: u64) -> Result<()> {
        unsupported(Capability::Reseed)
    }
    /// The keep mask of the last train call (`true` = kept), input-shaped.
    fn last_mask(&self) -> Result<ArrayD<bool>> {
        unsupported(Capability::Mask)
    }
    /// Counters of the train calls so far.
    fn counters(&self) -> Result<NoiseStats> {
        unsupported(Capability::Counters)
    }
}

impl<F: Element, T: DropoutLike<F> + ?Sized> DropoutLike<F> for Box<T> {
    fn rate(&self) -> f64 {
        (**self).rate()
    }
    fn run(&mut self, x: ArrayD<F>, phase: Phase) -> Result<ArrayD<F>> {
        (**self).run(x, phase)
    }
    fn run_backward(&mut self, dy: ArrayD<F>) -> Result<ArrayD<F>> {
        (**self).run_backward(dy)
    }
    fn reseed(&mut self, seed: u64) -> Result<()> {
        (**self).reseed(seed)
    }
    fn last_mask(&self) -> Result<ArrayD<bool>> {
        (**self).last_mask()
    }
    fn counters(&self) -> Result<NoiseStats> {
        (**self).counters()
    }
}

/// A built dropout layer of some subject, as the battery holds it.
pub type BoxedDropout = Box<dyn DropoutLike<f32>>;

/// A dropout implementation under test: builds layers at a rate and seed.
///
/// ```
/// use nncheck::check::{DropoutSubject, CoreDropout};
/// use nncheck::Phase;
/// let mut layer = CoreDropout.build(0.5, Some(7)).unwrap();
/// let x = ndarray::ArrayD::<f32>::ones(vec![8]);
/// assert_eq!(layer.run(x.clone(), Phase::Eval).unwrap(), x);
/// ```
pub trait DropoutSubject {
    /// A short name for reports, e.g. `nncheck` or `candle-nn 0.11`.
    fn name(&self) -> String;
    /// What the subject's layers can do beyond a forward pass; a check needing
    /// anything else is not applicable to it, and is not run.
    fn capabilities(&self) -> Capabilities;
    /// The exact version of the implementation under test (its crate's, or
    /// its framework's), which conformance records carry; `None` when unknown.
    fn version(&self) -> Option<String> {
        None
    }
    /// A layer dropping at `rate`, with its masks seeded by `seed` (always
    /// `None` for a subject without [`Capability::SeedAtBuild`]). A rate the
    /// subject refuses is an error; a panic, caught by the battery, counts as one.
    fn build(&self, rate: f64, seed: Option<u64>) -> Result<BoxedDropout>;
    /// A layer whose mask cells are shared along the axes where `noise_shape`
    /// is `Some(1)` (Keras `noise_shape`, batch axis included).
    fn build_with_noise_shape(
        &self,
        _rate: f64,
        _seed: Option<u64>,
        _noise_shape: &[Option<usize>],
    ) -> Result<BoxedDropout> {
        unsupported(Capability::NoiseShape)
    }
}

/// Builds a layer of `subject` at `rate`, seeded by `seed` where the subject
/// can seed at build and unseeded where it cannot; a panic becomes an error.
pub fn build_layer(subject: &dyn DropoutSubject, rate: f64, seed: u64) -> Result<BoxedDropout> {
    let seed = subject
        .capabilities()
        .has(Capability::SeedAtBuild)
        .then_some(seed);
    catching(&subject.name(), || subject.build(rate, seed))
}

/// nncheck's own [`Dropout`](crate::Dropout) as a subject: every capability but
/// the mask (the backward pass shows it).
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreDropout;

impl DropoutSubject for CoreDropout {
    fn name(&self) -> String {
        "nncheck".into()
    }
    fn version(&self) -> Option<String> {
        Some(env!("CARGO_PKG_VERSION").into())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::of(&[
            Capability::Backward,
            Capability::Reseed,
            Capability::SeedAtBuild,
            Capability::NoiseShape,
            Capability::Counters,
        ])
    }
    fn build(&self, rate: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        Ok(Box::new(seeded(crate::layers::Dropout::new(rate)?, seed)))
    }
    fn build_with_noise_shape(
        &self,
        rate: f64,
        seed: Option<u64>,
        noise_shape: &[Option<usize>],
    ) -> Result<BoxedDropout> {
        let layer = crate::layers::Dropout::new(rate)?.with_noise_shape(noise_shape.to_vec());
        Ok(Box::new(seeded(layer, seed)))
    }
}

/// The layer with its seed pinned, where one is given.
fn seeded(layer: crate::layers::Dropout<f32>, seed: Option<u64>) -> crate::layers::Dropout<f32> {
    match seed {
        Some(seed) => layer.with_seed(seed),
        None => layer,
    }
}

impl<F: Element> DropoutLike<F> for crate::layers::Dropout<F> {
    fn rate(&self) -> f64 {
        crate::layers::Dropout::rate(self)
    }
    fn run(&mut self, x: ArrayD<F>, phase: Phase) -> Result<ArrayD<F>> {
        Ok(self.apply(x, phase)?)
    }
    fn run_backward(&mut self, dy: ArrayD<F>) -> Result<ArrayD<F>> {
        use crate::layer::Layer;
        self.backward(dy, true)?.ok_or(Error::Unsupported {
            capability: Capability::Backward,
        })
    }
    fn reseed(&mut self, seed: u64) -> Result<()> {
        crate::layers::Dropout::reseed(self, seed);
        Ok(())
    }
    fn counters(&self) -> Result<NoiseStats> {
        Ok(self.stats())
    }
}

/// Any layer as a [`DropoutLike`], given the rate it claims: forward runs it as a
/// top-level call in the phase, backward asks for the input gradient, reseeding
/// and counters reach the layer's random state where it has one.
///
/// ```
/// use nncheck::check::{DropoutLike, LayerAsDropout};
/// use nncheck::{Dropout, Phase};
/// use ndarray::ArrayD;
/// let mut d = LayerAsDropout::new(Box::new(Dropout::new(0.5).unwrap().with_seed(1)), 0.5);
/// let y = d.run(ArrayD::<f32>::ones(vec![4]), Phase::Eval).unwrap();
/// assert_eq!(y, ArrayD::<f32>::ones(vec![4]));
/// ```
pub struct LayerAsDropout<F: Element = f32> {
    layer: Box<dyn crate::layer::Layer<F>>,
    rate: f64,
}

impl<F: Element> std::fmt::Debug for LayerAsDropout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerAsDropout")
            .field("layer", &self.layer.name())
            .field("rate", &self.rate)
            .finish()
    }
}

impl<F: Element> LayerAsDropout<F> {
    /// Wraps `layer`, which claims to drop at `rate`.
    pub fn new(layer: Box<dyn crate::layer::Layer<F>>, rate: f64) -> Self {
        LayerAsDropout { layer, rate }
    }
}

impl<F: Element> DropoutLike<F> for LayerAsDropout<F> {
    fn rate(&self) -> f64 {
        self.rate
    }
    fn run(&mut self, x: ArrayD<F>, phase: Phase) -> Result<ArrayD<F>> {
        Ok(self
            .layer
            .forward(x, crate::phase::ForwardCtx::top(phase))?)
    }
    fn run_backward(&mut self, dy: ArrayD<F>) -> Result<ArrayD<F>> {
        self.layer.backward(dy, true)?.ok_or(Error::Unsupported {
            capability: Capability::Backward,
        })
    }
    fn reseed(&mut self, seed: u64) -> Result<()> {
        match self.layer.stochastic_mut() {
            Some(s) => {
                s.reseed(seed);
                Ok(())
            }
            None => unsupported(Capability::Reseed),
        }
    }
    fn counters(&self) -> Result<NoiseStats> {
        match self.layer.stochastic() {
            Some(s) => Ok(s.noise_stats()),
            None => unsupported(Capability::Counters),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dropout, ReLU};

    /// Reseeding reaches the wrapped layer's stream, so the same seed gives
    /// the same mask; a layer with no stream says it cannot be seeded.
    #[test]
    fn layer_as_dropout_reseeds_its_layer_or_says_it_cannot() {
        let x = ArrayD::<f32>::ones(vec![64]);
        let mut d = LayerAsDropout::new(Box::new(Dropout::new(0.5).unwrap().with_seed(1)), 0.5);
        d.reseed(9).unwrap();
        let first = d.run(x.clone(), Phase::Train).unwrap();
        d.reseed(9).unwrap();
        assert_eq!(d.run(x, Phase::Train).unwrap(), first);
        let mut relu = LayerAsDropout::<f32>::new(Box::new(ReLU::new()), 0.0);
        assert!(matches!(
            relu.reseed(9),
            Err(Error::Unsupported {
                capability: Capability::Reseed
            })
        ));
    }

    /// The counters are the wrapped layer's own; a layer without a stream has
    /// none to show.
    #[test]
    fn layer_as_dropout_shows_its_layers_counters_or_says_it_cannot() {
        let x = ArrayD::<f32>::ones(vec![64]);
        let mut d = LayerAsDropout::new(Box::new(Dropout::new(0.5).unwrap().with_seed(1)), 0.5);
        let y = d.run(x, Phase::Train).unwrap();
        let stats = d.counters().unwrap();
        assert_eq!((stats.train_calls, stats.units_seen), (1, 64));
        assert_eq!(
            stats.units_dropped,
            y.iter().filter(|&&v| v == 0.0).count() as u64
        );
        let relu = LayerAsDropout::<f32>::new(Box::new(ReLU::new()), 0.5);
        assert!(relu.counters().is_err());
    }
}
