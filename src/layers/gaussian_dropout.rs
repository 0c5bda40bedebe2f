//! `GaussianDropout`: multiplicative one-centred Gaussian noise in `Train`
//! (SPEC §2b).
//!
//! Invariants served: in `Eval` (and at rate 0) the output *is* the input, bit
//! for bit and without a copy; in `Train` element `i` of call `k` becomes `x * m`
//! with `m = 1 + s * z` computed in f64 and rounded once to the element type,
//! `s = sqrt(rate / (1 - rate))` and `z` the `i`-th of [`standard_normals`]`(seed, k, n)`.
//! Backward is `dy * m` with the forward's `m`, recomputed from the forward's
//! `(seed, call)` rather than stored, since it depends on nothing else.

use crate::error::{Error, Result};
use crate::layer::{leaf_layer_common, noise_layer_common, Layer};
use crate::layers::noise_stream::{rate_below_one, standard_normals, NoiseStream};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::SeedSequence;
use crate::tensor::{checked_len, shape_mismatch, Element};
use ndarray::ArrayD;

/// What backward needs: nothing for an identity call, else the draws' address.
#[derive(Debug, Clone, Copy)]
enum Noise {
    Identity,
    Drawn { seed: u64, call: u64 },
}

/// Multiplies every element by `N(1, rate / (1 - rate))` noise in `Train`; the
/// identity in `Eval`.
///
/// The rate lies in `[0, 1)`: Keras 3 accepts 1 at construction but then fails
/// on its first train call (a division by zero), so nncheck refuses it up front.
///
/// ```
/// use nncheck::{GaussianDropout, Layer, Phase, phase::ForwardCtx};
/// use ndarray::ArrayD;
/// let mut gd = GaussianDropout::<f32>::new(0.2).unwrap().with_seed(5);
/// let x = ArrayD::<f32>::ones(vec![2, 3]);
/// let y = gd.forward(x.clone(), ForwardCtx::top(Phase::Train)).unwrap();
/// assert!(y.iter().any(|&v| v != 1.0));
/// assert_eq!(gd.forward(x.clone(), ForwardCtx::top(Phase::Eval)).unwrap(), x);
/// assert!(GaussianDropout::<f32>::new(1.0).is_err());
/// ```
pub struct GaussianDropout<F: Element> {
    name: String,
    trainable: bool,
    rate: f64,
    stddev: f64,
    noise: NoiseStream,
    cache: Option<(Noise, Vec<usize>)>,
    _element: std::marker::PhantomData<F>,
}

impl<F: Element> std::fmt::Debug for GaussianDropout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaussianDropout")
            .field("name", &self.name)
            .field("trainable", &self.trainable)
            .field("rate", &self.rate)
            .field("noise", &self.noise)
            .finish_non_exhaustive()
    }
}

impl<F: Element> GaussianDropout<F> {
    /// A layer with multiplicative noise of variance `rate / (1 - rate)`, `rate`
    /// in `[0, 1)`; anything else (1, NaN, infinities, negatives) is
    /// [`Error::InvalidHyperParameter`] naming the value.
    pub fn new(rate: f64) -> Result<Self> {
        let rate = rate_below_one("GaussianDropout rate", rate)?;
        Ok(GaussianDropout {
            name: "gaussian_dropout".into(),
            trainable: true,
            rate,
            stddev: (rate / (1.0 - rate)).sqrt(),
            noise: NoiseStream::new(),
            cache: None,
            _element: std::marker::PhantomData,
        })
    }

    /// Names the layer.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Pins the noise seed; a model's seed no longer replaces it at build.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.noise.pin(seed);
        self
    }

    /// The rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The standard deviation of the multiplier, `sqrt(rate / (1 - rate))` in f64.
    pub fn stddev(&self) -> f64 {
        self.stddev
    }

    /// The noise seed in use.
    pub fn seed(&self) -> u64 {
        self.noise.seed()
    }

    /// How many train calls have drawn noise (the next call's index).
    pub fn calls(&self) -> u64 {
        self.noise.calls()
    }

    /// The multipliers of call `call` of a layer seeded `seed`, for `n` elements.
    fn multipliers(&self, seed: u64, call: u64, n: usize) -> impl Iterator<Item = F> {
        let stddev = self.stddev;
        standard_normals(seed, call, n).map(move |z| F::round_from(1.0 + stddev * z))
    }
}

impl<F: Element> Layer<F> for GaussianDropout<F> {
    leaf_layer_common!();

    fn build(&mut self, input_shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        self.noise.on_build(seeds);
        Ok(input_shape.to_vec())
    }

    fn forward(&mut self, mut x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>> {
        let units = checked_len(x.shape())?;
        let noise = match ctx.phase {
            Phase::Eval => Noise::Identity,
            Phase::Train if self.rate == 0.0 => {
                self.noise.begin_call(units as u64, 0);
                Noise::Identity
            }
            Phase::Train => {
                let call = self.noise.begin_call(units as u64, units as u64);
                let seed = self.noise.seed();
                x.iter_mut()
                    .zip(self.multipliers(seed, call, units))
                    .for_each(|(v, m)| *v *= m);
                Noise::Drawn { seed, call }
            }
        };
        self.cache = Some((noise, x.shape().to_vec()));
        Ok(x)
    }

    fn backward(&mut self, mut dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>> {
        let (noise, shape) = self.cache.as_ref().ok_or_else(|| Error::NoForwardCache {
            layer: self.name.clone(),
        })?;
        if dy.shape() != shape.as_slice() {
            return Err(shape_mismatch(
                &format!("GaussianDropout `{}` backward dy", self.name),
                format!("{shape:?}"),
                dy.shape(),
            ));
        }
        if !need_input_grad {
            return Ok(None);
        }
        if let Noise::Drawn { seed, call } = *noise {
            let n = dy.len();
            dy.iter_mut()
                .zip(self.multipliers(seed, call, n))
                .for_each(|(d, m)| *d *= m);
        }
        Ok(Some(dy))
    }

    noise_layer_common!(noise);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_stddev_and_seed_are_the_ones_given() {
        let layer = GaussianDropout::<f32>::new(0.2).unwrap();
        assert_eq!(layer.rate(), 0.2);
        assert_eq!(layer.stddev(), 0.5);
        assert_eq!(layer.with_seed(12).seed(), 12);
    }

    #[test]
    fn backward_multiplies_by_the_forward_multipliers() {
        let mut layer = GaussianDropout::<f32>::new(0.3).unwrap().with_seed(9);
        let ones = ArrayD::<f32>::ones(vec![2, 50]);
        let m = layer
            .forward(ones.clone(), ForwardCtx::top(Phase::Train))
            .unwrap();
        // Reseeding after the forward must not change what backward uses.
        crate::stochastic::Stochastic::reseed(layer.stochastic_mut().unwrap(), 1234);
        let dy = ArrayD::from_shape_fn(vec![2, 50], |i| (i[1] as f32) - 20.5);
        let dx = layer.backward(dy.clone(), true).unwrap().unwrap();
        assert_eq!(dx.shape(), dy.shape());
        for ((&dx, &dy), &m) in dx.iter().zip(dy.iter()).zip(m.iter()) {
            assert_eq!(dx.to_bits(), (dy * m).to_bits());
        }
        let s = (0.3f64 / 0.7).sqrt();
        let z = standard_normals(9, 0, 100);
        assert!(m.iter().zip(z).all(|(&m, z)| m == (1.0 + s * z) as f32));
    }

    #[test]
    fn bad_rates_are_typed_errors() {
        for r in [1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                GaussianDropout::<f32>::new(r),
                Err(Error::InvalidHyperParameter { .. })
            ));
        }
    }
}
