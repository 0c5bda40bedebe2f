//! `GaussianNoise`: additive zero-centred Gaussian noise in `Train` (SPEC §2b).
//!
//! Invariants served: in `Eval` (and at `stddev = 0`) the output *is* the input,
//! bit for bit and without a copy; in `Train` element `i` of call `k` becomes
//! `x + e` with `e = stddev * z` rounded once to the element type, `z` being
//! the `i`-th of [`standard_normals`]`(seed, k, n)`, so the noise depends only on
//! `(seed, k, i)`. Backward passes `dy` through unchanged.

use crate::error::{Error, Result};
use crate::layer::{leaf_layer_common, noise_layer_common, Layer};
use crate::layers::noise_stream::{standard_normals, NoiseStream};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::SeedSequence;
use crate::tensor::{checked_len, shape_mismatch, Element};
use ndarray::ArrayD;

/// Adds `N(0, stddev^2)` noise to every element in `Train`; the identity in `Eval`.
///
/// `stddev` must be finite and at least 0. Keras 3 also refuses `stddev > 1`;
/// nncheck accepts it, since how much noise suits an input depends on the
/// input's scale, which the layer does not know (every stddev Keras accepts
/// behaves the same here).
///
/// ```
/// use nncheck::{GaussianNoise, Layer, Phase, phase::ForwardCtx};
/// use ndarray::ArrayD;
/// let mut noise = GaussianNoise::<f32>::new(0.1).unwrap().with_seed(3);
/// let x = ArrayD::<f32>::zeros(vec![2, 4]);
/// let y = noise.forward(x.clone(), ForwardCtx::top(Phase::Train)).unwrap();
/// assert!(y.iter().all(|&v| v != 0.0 && v.abs() < 1.0));
/// assert_eq!(noise.forward(x.clone(), ForwardCtx::top(Phase::Eval)).unwrap(), x);
/// assert!(GaussianNoise::<f32>::new(-1.0).is_err());
/// ```
pub struct GaussianNoise<F: Element> {
    name: String,
    trainable: bool,
    stddev: f64,
    noise: NoiseStream,
    /// The shape of the last forward (backward is the identity, so nothing else).
    cache: Option<Vec<usize>>,
    _element: std::marker::PhantomData<F>,
}

impl<F: Element> std::fmt::Debug for GaussianNoise<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaussianNoise")
            .field("name", &self.name)
            .field("trainable", &self.trainable)
            .field("stddev", &self.stddev)
            .field("noise", &self.noise)
            .finish_non_exhaustive()
    }
}

impl<F: Element> GaussianNoise<F> {
    /// A layer adding noise of standard deviation `stddev` (finite, at least 0);
    /// anything else is [`Error::InvalidHyperParameter`] naming the value.
    pub fn new(stddev: f64) -> Result<Self> {
        if !(stddev.is_finite() && stddev >= 0.0) {
            return Err(Error::InvalidHyperParameter {
                name: "GaussianNoise stddev",
                value: stddev,
                expected: "a finite number >= 0",
            });
        }
        Ok(GaussianNoise {
            name: "gaussian_noise".into(),
            trainable: true,
            stddev,
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

    /// The standard deviation of the noise.
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
}

impl<F: Element> Layer<F> for GaussianNoise<F> {
    leaf_layer_common!();

    fn build(&mut self, input_shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        self.noise.on_build(seeds);
        Ok(input_shape.to_vec())
    }

    fn forward(&mut self, mut x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>> {
        let units = checked_len(x.shape())?;
        self.cache = Some(x.shape().to_vec());
        if ctx.phase == Phase::Eval {
            return Ok(x);
        }
        if self.stddev == 0.0 {
            self.noise.begin_call(units as u64, 0);
            return Ok(x);
        }
        let call = self.noise.begin_call(units as u64, units as u64);
        let z = standard_normals(self.noise.seed(), call, units);
        let stddev = self.stddev;
        x.iter_mut()
            .zip(z)
            .for_each(|(v, z)| *v += F::round_from(stddev * z));
        Ok(x)
    }

    fn backward(&mut self, dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>> {
        let shape = self.cache.as_ref().ok_or_else(|| Error::NoForwardCache {
            layer: self.name.clone(),
        })?;
        if dy.shape() != shape.as_slice() {
            return Err(shape_mismatch(
                &format!("GaussianNoise `{}` backward dy", self.name),
                format!("{shape:?}"),
                dy.shape(),
            ));
        }
        Ok(need_input_grad.then_some(dy))
    }

    noise_layer_common!(noise);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stddev_and_seed_are_the_ones_given() {
        assert_eq!(GaussianNoise::<f32>::new(0.7).unwrap().stddev(), 0.7);
        assert_eq!(
            GaussianNoise::<f32>::new(0.7).unwrap().with_seed(12).seed(),
            12
        );
    }

    fn train(layer: &mut GaussianNoise<f32>, x: ArrayD<f32>) -> ArrayD<f32> {
        layer.forward(x, ForwardCtx::top(Phase::Train)).unwrap()
    }

    #[test]
    fn noise_is_stddev_times_the_defined_draws() {
        let mut layer = GaussianNoise::<f32>::new(0.25).unwrap().with_seed(11);
        let x = ArrayD::from_shape_fn(vec![3, 5], |i| (i[0] * 5 + i[1]) as f32);
        let _ = train(&mut layer, x.clone());
        let y = train(&mut layer, x.clone());
        let z = standard_normals(11, 1, 15);
        for ((&y, &x), z) in y.iter().zip(x.iter()).zip(z) {
            assert_eq!(y.to_bits(), (x + (0.25 * z) as f32).to_bits());
        }
    }

    #[test]
    fn backward_is_dy_and_eval_returns_the_same_buffer() {
        let mut layer = GaussianNoise::<f32>::new(1.0).unwrap().with_seed(1);
        let x = ArrayD::from_elem(vec![4], f32::NAN);
        let ptr = x.as_ptr();
        let y = layer.forward(x, ForwardCtx::top(Phase::Eval)).unwrap();
        assert_eq!(y.as_ptr(), ptr);
        let _ = train(&mut layer, ArrayD::ones(vec![4]));
        let dy = ArrayD::from_shape_vec(vec![4], vec![1.0f32, -2.0, 0.5, -0.0]).unwrap();
        let dx = layer.backward(dy.clone(), true).unwrap().unwrap();
        assert!(crate::tensor::bits_equal(&dx, &dy));
        assert!(layer.backward(ArrayD::ones(vec![5]), true).is_err());
    }

    #[test]
    fn bad_stddev_is_a_typed_error() {
        for s in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                GaussianNoise::<f32>::new(s),
                Err(Error::InvalidHyperParameter { .. })
            ));
        }
        assert!(GaussianNoise::<f32>::new(0.0).is_ok());
    }
}
