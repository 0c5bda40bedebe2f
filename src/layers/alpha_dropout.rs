//! `AlphaDropout`: dropout for self-normalising (SELU) networks (SPEC §2b).
//!
//! Invariants served: in `Eval` (and at rate 0) the output *is* the input, bit
//! for bit and without a copy. In `Train` each mask cell is dropped exactly as
//! `Dropout`'s cell is (the mask of [`reference_mask`], so drop counts are
//! exactly binomial at `drop_threshold(rate) / 2^32`); then every element is
//! `a * x + b` where kept and `a * alpha_p + b` where dropped, which keeps mean 0
//! and variance 1 for any input of mean 0 and variance 1.
//!
//! [`reference_mask`]: crate::layers::dropout::reference_mask

use crate::error::{Error, Result};
use crate::layer::{leaf_layer_common, noise_layer_common, Layer};
use crate::layers::dropout::drop_threshold;
use crate::layers::dropout::kernel::DropoutKernel;
use crate::layers::noise_shape::{check_noise_shape_at_build, resolve_noise_shape};
use crate::layers::noise_stream::{rate_below_one, NoiseStream};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::SeedSequence;
use crate::tensor::{checked_len, shape_mismatch, Element};
use ndarray::{ArrayD, Zip};

/// SELU's `alpha`: the f64 nearest Keras' literal `1.6732632423543772848170429916717`
/// (rounding it to 17 digits first, `...773`, would give the next f64 up and
/// move `b` by one ulp).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_2;
/// SELU's `scale`: the f64 nearest Keras' literal `1.0507009873554804934193349852946`.
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// The affine correction of AlphaDropout at `rate`, in f64 as Keras computes it:
/// `(a, b, alpha_p)` with `alpha_p = -SELU_ALPHA * SELU_SCALE`,
/// `a = ((1 - rate) * (1 + rate * alpha_p^2))^-0.5` (by `powf`, as Python's `**`)
/// and `b = -a * alpha_p * rate`, evaluated left to right.
///
/// ```
/// let (a, b, alpha_p) = nncheck::layers::alpha_dropout::affine(0.0);
/// assert_eq!((a, b), (1.0, 0.0));
/// assert!((alpha_p + 1.7580993408473766).abs() < 1e-15);
/// ```
pub fn affine(rate: f64) -> (f64, f64, f64) {
    let alpha_p = -SELU_ALPHA * SELU_SCALE;
    let a = ((1.0 - rate) * (1.0 + rate * alpha_p.powi(2))).powf(-0.5);
    let b = -a * alpha_p * rate;
    (a, b, alpha_p)
}

/// What backward needs from the forward.
#[derive(Debug, Clone)]
enum MaskCache {
    Identity,
    Cells(ArrayD<bool>),
}

/// Alpha dropout with Keras 3 semantics, and three choices where Keras is loose:
///
/// - **Rate 1 is refused** ([`Error::InvalidHyperParameter`]): Keras accepts it,
///   but then `a = (0 * ...)^-0.5` is infinite and every output is NaN
///   (`-inf + inf`). The rate lies in `[0, 1)`.
/// - **Rate 0 is the identity** in `Train` too (Keras skips the layer when
///   `rate == 0`; the affine map is then `a = 1, b = 0` anyway).
/// - **Dropped units take `alpha_p` whatever the input** (a select, as nncheck's
///   Dropout gives `+0.0`): Keras computes `x * kept + alpha_p * (1 - kept)`, so
///   a dropped NaN or infinite input gives NaN there.
///
/// The noise shape follows SPEC §2 (each entry `None`, 1 or the input's size;
/// Keras does not validate it and lets broadcasting fail later).
///
/// In the element type `F`: `a`, `b` and `alpha_p` are rounded once from f64,
/// and the output is `(a * x) + b` with two roundings (no fused multiply-add),
/// `(a * alpha_p) + b` for dropped units: the operation order of Keras' `a * x + b`.
///
/// ```
/// use nncheck::{AlphaDropout, Layer, Phase, phase::ForwardCtx};
/// use ndarray::ArrayD;
/// let mut ad = AlphaDropout::<f32>::new(0.1).unwrap().with_seed(2);
/// let x = ArrayD::<f32>::zeros(vec![4, 8]);
/// let y = ad.forward(x.clone(), ForwardCtx::top(Phase::Train)).unwrap();
/// let (a, b, alpha_p) = nncheck::layers::alpha_dropout::affine(0.1);
/// let (kept, dropped) = (b as f32, (a as f32) * (alpha_p as f32) + b as f32);
/// assert!(y.iter().all(|&v| v == kept || v == dropped));
/// assert_eq!(ad.forward(x.clone(), ForwardCtx::top(Phase::Eval)).unwrap(), x);
/// assert!(AlphaDropout::<f32>::new(1.0).is_err());
/// ```
pub struct AlphaDropout<F: Element> {
    name: String,
    trainable: bool,
    rate: f64,
    threshold: u64,
    a: F,
    b: F,
    dropped_value: F,
    noise_shape: Option<Vec<Option<usize>>>,
    noise: NoiseStream,
    cache: Option<(MaskCache, Vec<usize>)>,
}

impl<F: Element> std::fmt::Debug for AlphaDropout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlphaDropout")
            .field("name", &self.name)
            .field("trainable", &self.trainable)
            .field("rate", &self.rate)
            .field("noise_shape", &self.noise_shape)
            .field("noise", &self.noise)
            .finish_non_exhaustive()
    }
}

impl<F: Element> AlphaDropout<F> {
    /// A layer dropping with probability `rate` in `[0, 1)`; anything else is
    /// [`Error::InvalidHyperParameter`] naming the value.
    pub fn new(rate: f64) -> Result<Self> {
        let rate = rate_below_one("AlphaDropout rate", rate)?;
        let (a, b, alpha_p) = affine(rate);
        let (a, b, alpha_p) = (F::round_from(a), F::round_from(b), F::round_from(alpha_p));
        Ok(AlphaDropout {
            name: "alpha_dropout".into(),
            trainable: true,
            rate,
            threshold: drop_threshold(rate),
            a,
            b,
            dropped_value: a * alpha_p + b,
            noise_shape: None,
            noise: NoiseStream::new(),
            cache: None,
        })
    }

    /// Names the layer.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Pins the mask seed; a model's seed no longer replaces it at build.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.noise.pin(seed);
        self
    }

    /// Shares mask cells along axes, exactly as [`Dropout::with_noise_shape`](crate::Dropout::with_noise_shape).
    pub fn with_noise_shape(mut self, noise_shape: Vec<Option<usize>>) -> Self {
        self.noise_shape = Some(noise_shape);
        self
    }

    /// The rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// `(a, b)` in the element type: kept units become `a * x + b`.
    pub fn affine_in_element_type(&self) -> (F, F) {
        (self.a, self.b)
    }

    /// The value every dropped unit takes, `a * alpha_p + b` in the element type.
    pub fn dropped_value(&self) -> F {
        self.dropped_value
    }

    /// The mask seed in use.
    pub fn seed(&self) -> u64 {
        self.noise.seed()
    }

    /// How many train calls have drawn a mask (the next call's index).
    pub fn calls(&self) -> u64 {
        self.noise.calls()
    }

    fn train_in_place(&mut self, x: &mut ArrayD<F>) -> Result<MaskCache> {
        let cell_shape = resolve_noise_shape(self.noise_shape.as_deref(), x.shape())?;
        let units = checked_len(x.shape())?;
        let cells = checked_len(&cell_shape)?;
        if self.rate == 0.0 {
            self.noise.begin_call(units as u64, cells as u64);
            return Ok(MaskCache::Identity);
        }
        let call = self.noise.begin_call(units as u64, cells as u64);
        let mask = DropoutKernel::new(self.noise.seed(), call, self.threshold).mask(cells);
        let mask = ArrayD::from_shape_vec(cell_shape, mask).expect("length is the cell count");
        let broadcast = mask.broadcast(x.raw_dim()).expect("noise shape validated");
        let (a, b, dropped_value) = (self.a, self.b, self.dropped_value);
        let mut dropped_units = 0u64;
        Zip::from(&mut *x).and(&broadcast).for_each(|v, &drop| {
            dropped_units += u64::from(drop);
            *v = if drop { dropped_value } else { a * *v + b };
        });
        let dropped_cells = mask.iter().filter(|&&d| d).count() as u64;
        self.noise.count_drops(dropped_units, dropped_cells);
        Ok(MaskCache::Cells(mask))
    }
}

impl<F: Element> Layer<F> for AlphaDropout<F> {
    leaf_layer_common!();

    fn build(&mut self, input_shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        check_noise_shape_at_build(self.noise_shape.as_deref(), input_shape)?;
        self.noise.on_build(seeds);
        Ok(input_shape.to_vec())
    }

    fn forward(&mut self, mut x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>> {
        let cache = match ctx.phase {
            Phase::Eval => {
                resolve_noise_shape(self.noise_shape.as_deref(), x.shape())?;
                MaskCache::Identity
            }
            Phase::Train => self.train_in_place(&mut x)?,
        };
        self.cache = Some((cache, x.shape().to_vec()));
        Ok(x)
    }

    fn backward(&mut self, mut dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>> {
        let (cache, shape) = self.cache.as_ref().ok_or_else(|| Error::NoForwardCache {
            layer: self.name.clone(),
        })?;
        if dy.shape() != shape.as_slice() {
            return Err(shape_mismatch(
                &format!("AlphaDropout `{}` backward dy", self.name),
                format!("{shape:?}"),
                dy.shape(),
            ));
        }
        if !need_input_grad {
            return Ok(None);
        }
        if let MaskCache::Cells(mask) = cache {
            let a = self.a;
            let broadcast = mask.broadcast(dy.raw_dim()).expect("same shape as forward");
            Zip::from(&mut dy).and(&broadcast).for_each(|d, &drop| {
                *d = if drop { F::zero() } else { *d * a };
            });
        }
        Ok(Some(dy))
    }

    noise_layer_common!(noise);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::dropout::reference_mask;

    #[test]
    fn the_rate_is_the_one_given() {
        assert_eq!(AlphaDropout::<f32>::new(0.3).unwrap().rate(), 0.3);
        assert_eq!(
            AlphaDropout::<f32>::new(0.3).unwrap().with_seed(12).seed(),
            12
        );
    }

    #[test]
    fn mask_is_dropouts_and_backward_is_a_dy_where_kept() {
        let mut layer = AlphaDropout::<f32>::new(0.3).unwrap().with_seed(4);
        let x = ArrayD::from_shape_fn(vec![8, 64], |i| (i[1] as f32) * 0.25 - 8.0);
        let y = layer
            .forward(x.clone(), ForwardCtx::top(Phase::Train))
            .unwrap();
        let mask = reference_mask(4, 0, drop_threshold(0.3), 512);
        let (a, b) = layer.affine_in_element_type();
        for ((&y, &x), &drop) in y.iter().zip(x.iter()).zip(&mask) {
            let want = if drop {
                layer.dropped_value()
            } else {
                a * x + b
            };
            assert_eq!(y.to_bits(), want.to_bits());
        }
        let dy = ArrayD::from_elem(vec![8, 64], 3.0f32);
        let dx = layer.backward(dy, true).unwrap().unwrap();
        assert_eq!(dx.shape(), [8, 64]);
        for (&dx, &drop) in dx.iter().zip(&mask) {
            assert_eq!(dx.to_bits(), if drop { 0.0 } else { 3.0 * a }.to_bits());
        }
        assert_eq!(
            layer.stochastic().unwrap().noise_stats().units_dropped,
            mask.iter().filter(|&&d| d).count() as u64
        );
    }

    #[test]
    fn noise_shape_shares_cells_and_misfits_are_typed_errors() {
        let mut layer = AlphaDropout::<f64>::new(0.5)
            .unwrap()
            .with_seed(1)
            .with_noise_shape(vec![None, Some(1), None]);
        let y = layer
            .forward(ArrayD::ones(vec![3, 5, 2]), ForwardCtx::top(Phase::Train))
            .unwrap();
        for b in 0..3 {
            for c in 0..2 {
                assert!((1..5).all(|t| y[[b, t, c]] == y[[b, 0, c]]));
            }
        }
        let mut bad = AlphaDropout::<f64>::new(0.5)
            .unwrap()
            .with_noise_shape(vec![None, Some(3)]);
        let mut seeds = SeedSequence::new(Some(0));
        assert!(matches!(
            bad.build(&[4], &mut seeds),
            Err(Error::InvalidNoiseShape { .. })
        ));
    }

    #[test]
    fn dropped_nan_takes_the_dropped_value() {
        let mut layer = AlphaDropout::<f32>::new(0.5).unwrap().with_seed(8);
        let y = layer
            .forward(
                ArrayD::from_elem(vec![256], f32::NAN),
                ForwardCtx::top(Phase::Train),
            )
            .unwrap();
        let dropped = y.iter().filter(|v| !v.is_nan()).count();
        assert!(dropped > 0 && y.iter().all(|v| v.is_nan() || *v == layer.dropped_value()));
    }
}
