//! `Dropout`: the semantics of SPEC §2, written plainly.
//!
//! Invariants served: in `Eval` (and at rate 0) the output *is* the input; in
//! `Train` every mask cell is dropped independently with probability `rate`
//! (resolution 2^-32), a dropped unit is `+0.0` whatever the input, and a kept
//! unit is exactly `x * scale` with `scale = 1 / (1 - rate)` rounded once.
//!
//! The layer is built in three parts, each depending only on those listed before it:
//! - [`mask`]: the definition of the mask (which cells call `k` of a layer seeded
//!   `s` drops) and [`reference_mask`], its plain statement;
//! - [`kernel`]: the fast kernel, bit-identical to that definition;
//! - this module: the layer, its counters and its backward.
//!
//! # Where the kernel runs
//! A train-phase call without a noise shape on a standard-layout array runs the
//! kernel in place and keeps no mask: backward recomputes it from the (seed, call)
//! of that forward with the same kernel (one more keystream pass, no memory held
//! between forward and backward, and the same mask bit for bit). With a noise shape
//! or another memory layout the kernel's mask (equal to [`reference_mask`]) is
//! materialised and broadcast, and kept for backward.

pub mod kernel;
pub mod mask;

pub use mask::{cell_bits, drop_threshold, mask_rng, reference_mask, TIE_WINDOW};

use crate::error::{Error, Result};
use crate::layer::{leaf_layer_common, Layer, WeightVisitor, WeightVisitorMut};
use crate::layers::noise_shape::{check_noise_shape_at_build, resolve_noise_shape};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::{os_seed, SeedSequence};
use crate::stochastic::{NoiseCheckpoint, NoiseStats, Stochastic};
use crate::tensor::{checked_len, Element};
use kernel::DropoutKernel;
use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn, Zip};

/// Counters of what a dropout layer did in `Train` calls (SPEC §2, observability).
pub type DropoutStats = crate::stochastic::NoiseStats;

/// What an observer sees of one forward call.
#[derive(Debug)]
pub struct DropoutCall<'a, F: Element> {
    /// The layer's path-free name.
    pub layer: &'a str,
    /// The phase the call ran in.
    pub phase: Phase,
    /// The layer's rate.
    pub rate: f64,
    /// The scale applied to kept units.
    pub scale: F,
    /// The input of the call.
    pub input: ArrayViewD<'a, F>,
    /// The output of the call.
    pub output: ArrayViewD<'a, F>,
}

/// A callback shown every forward call, e.g. to audit survivors during `fit`.
pub type DropoutObserver<F> = Box<dyn FnMut(&DropoutCall<'_, F>) + Send>;

/// What backward needs from the forward.
///
/// The fast path stores no mask: backward recomputes it from the (seed, call,
/// threshold) of the forward with the same kernel, since the mask depends on
/// nothing else. This keeps the forward at one pass over the data and costs no
/// memory between forward and backward; backward pays one more keystream pass.
#[derive(Debug, Clone)]
enum MaskCache {
    Identity,
    AllDropped,
    Cells(ArrayD<bool>),
    Recompute(DropoutKernel),
}

/// Inverted dropout with Keras semantics; see the module docs for the exact mask.
///
/// ```
/// use nncheck::{Dropout, Phase};
/// use ndarray::ArrayD;
/// let mut dropout = Dropout::<f32>::new(0.5).unwrap().with_seed(1);
/// let x = ArrayD::<f32>::ones(vec![1, 10]);
/// let train = dropout.apply(x.clone(), Phase::Train).unwrap();
/// assert!(train.iter().all(|&v| v == 0.0 || v == 2.0));
/// let eval = dropout.apply(x.clone(), Phase::Eval).unwrap();
/// assert_eq!(eval, x);
/// assert!(Dropout::<f32>::new(1.5).is_err());
/// ```
pub struct Dropout<F: Element> {
    name: String,
    trainable: bool,
    rate: f64,
    threshold: u64,
    scale: F,
    noise_shape: Option<Vec<Option<usize>>>,
    seed: u64,
    seed_pinned: bool,
    calls: u64,
    stats: DropoutStats,
    cache: Option<(MaskCache, Vec<usize>)>,
    observer: Option<DropoutObserver<F>>,
}

impl<F: Element> std::fmt::Debug for Dropout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dropout")
            .field("name", &self.name)
            .field("trainable", &self.trainable)
            .field("rate", &self.rate)
            .field("noise_shape", &self.noise_shape)
            .field("seed", &self.seed)
            .field("calls", &self.calls)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<F: Element> Dropout<F> {
    /// A dropout layer dropping with probability `rate` in `[0, 1]`.
    ///
    /// NaN, infinities and values outside the range give [`Error::InvalidRate`].
    pub fn new(rate: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Error::InvalidRate { rate });
        }
        let keep = 1.0 - rate;
        Ok(Dropout {
            name: "dropout".into(),
            trainable: true,
            rate,
            threshold: drop_threshold(rate),
            scale: if keep > 0.0 {
                F::round_from(1.0 / keep)
            } else {
                F::zero()
            },
            noise_shape: None,
            seed: os_seed(),
            seed_pinned: false,
            calls: 0,
            stats: DropoutStats::default(),
            cache: None,
            observer: None,
        })
    }

    /// Names the layer.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Pins the mask seed; a model's seed no longer replaces it at build.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.seed_pinned = true;
        self
    }

    /// Shares mask cells along axes (Keras `noise_shape`, batch axis included):
    /// `None` takes the input's size on that axis, `Some(1)` shares one cell
    /// across it, `Some(n)` must equal the input's size. SpatialDropout on
    /// `[batch, h, w, c]` is `[None, Some(1), Some(1), None]`.
    pub fn with_noise_shape(mut self, noise_shape: Vec<Option<usize>>) -> Self {
        self.noise_shape = Some(noise_shape);
        self
    }

    /// The rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The scale applied to kept units, `1 / (1 - rate)` rounded once (0 at rate 1).
    pub fn scale(&self) -> F {
        self.scale
    }

    /// The drop threshold out of 2^32.
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// The mask seed in use.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many train calls have drawn a mask (the next call's index).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Reseeds the masks and restarts the call count.
    pub fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.calls = 0;
    }

    /// The counters of train calls so far.
    pub fn stats(&self) -> DropoutStats {
        self.stats
    }

    /// Zeroes the counters.
    pub fn reset_stats(&mut self) {
        self.stats = DropoutStats::default();
    }

    /// Installs (or removes) an observer shown every forward call.
    pub fn set_observer(&mut self, observer: Option<DropoutObserver<F>>) {
        self.observer = observer;
    }

    /// The per-call mask cell shape for an input of `shape` (batch included).
    pub fn resolve_noise_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        resolve_noise_shape(self.noise_shape.as_deref(), shape)
    }

    /// Runs the layer on `x` in `phase`, outside any model. In `Eval` and at rate 0
    /// `x` is returned as it is, without a copy.
    pub fn apply(&mut self, x: ArrayD<F>, phase: Phase) -> Result<ArrayD<F>> {
        self.forward(x, ForwardCtx::top(phase))
    }

    /// Runs the layer on a view. In `Eval` and at rate 0 the view itself comes
    /// back (borrowed: no copy, no allocation, constant time whatever the size).
    pub fn apply_view<'a>(
        &mut self,
        x: ArrayViewD<'a, F>,
        phase: Phase,
    ) -> Result<CowArray<'a, F, IxDyn>> {
        self.resolve_noise_shape(x.shape())?;
        if phase == Phase::Eval || self.rate == 0.0 && self.observer.is_none() {
            if phase == Phase::Train {
                self.count_identity_call(x.shape())?;
            }
            return Ok(CowArray::from(x));
        }
        Ok(CowArray::from(
            self.forward(x.to_owned(), ForwardCtx::top(phase))?,
        ))
    }

    fn count_identity_call(&mut self, shape: &[usize]) -> Result<()> {
        let units = checked_len(shape)? as u64;
        let cells = checked_len(&self.resolve_noise_shape(shape)?)? as u64;
        self.stats.train_calls += 1;
        self.stats.units_seen += units;
        self.stats.draws += cells;
        self.calls += 1;
        Ok(())
    }

    fn train_in_place(&mut self, x: &mut ArrayD<F>) -> Result<MaskCache> {
        let cell_shape = self.resolve_noise_shape(x.shape())?;
        let units = checked_len(x.shape())? as u64;
        let cells = checked_len(&cell_shape)?;
        if self.rate == 0.0 {
            self.count_identity_call(x.shape())?;
            return Ok(MaskCache::Identity);
        }
        self.stats.train_calls += 1;
        self.stats.units_seen += units;
        self.stats.draws += cells as u64;
        let call = self.calls;
        self.calls += 1;
        if self.threshold >= 1 << 32 {
            x.fill(F::zero());
            self.stats.units_dropped += units;
            self.stats.draws_dropped += cells as u64;
            return Ok(MaskCache::AllDropped);
        }
        let kernel = DropoutKernel::new(self.seed, call, self.threshold);
        if self.noise_shape.is_none() {
            if let Some(slice) = x.as_slice_mut() {
                let dropped = kernel_forward_in_place(&kernel, slice, self.scale)?;
                self.stats.units_dropped += dropped;
                self.stats.draws_dropped += dropped;
                return Ok(MaskCache::Recompute(kernel));
            }
        }
        // Noise shape or a non-standard layout: materialise the cell mask (the
        // kernel's mask equals `reference_mask`) and broadcast it.
        let mask = kernel.mask(cells);
        let mask = ArrayD::from_shape_vec(cell_shape, mask).expect("length is the cell count");
        let scale = self.scale;
        let broadcast = mask.broadcast(x.raw_dim()).expect("noise shape validated");
        let mut dropped_units = 0u64;
        Zip::from(x).and(&broadcast).for_each(|v, &drop| {
            dropped_units += u64::from(drop);
            *v = if drop { F::zero() } else { *v * scale };
        });
        self.stats.units_dropped += dropped_units;
        self.stats.draws_dropped += mask.iter().filter(|&&d| d).count() as u64;
        Ok(MaskCache::Cells(mask))
    }
}

/// Runs the kernel on a whole buffer: on the rayon pool for large buffers when the
/// `rayon` feature is on (same output, see the kernel's docs), else on this thread.
fn kernel_forward_in_place<F: Element>(
    kernel: &DropoutKernel,
    x: &mut [F],
    scale: F,
) -> Result<u64> {
    #[cfg(feature = "rayon")]
    if x.len() >= 1 << 18 {
        return kernel.forward_in_place_chunked(x, scale, rayon::current_num_threads());
    }
    kernel.forward_in_place(x, scale)
}

impl<F: Element> Layer<F> for Dropout<F> {
    leaf_layer_common!();

    fn build(&mut self, input_shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        check_noise_shape_at_build(self.noise_shape.as_deref(), input_shape)?;
        if !self.seed_pinned {
            self.seed = seeds.next_seed();
            self.seed_pinned = true;
        }
        Ok(input_shape.to_vec())
    }

    fn forward(&mut self, mut x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>> {
        let input_copy = self.observer.as_ref().map(|_| x.clone());
        let cache = match ctx.phase {
            Phase::Eval => {
                self.resolve_noise_shape(x.shape())?;
                MaskCache::Identity
            }
            Phase::Train => self.train_in_place(&mut x)?,
        };
        self.cache = Some((cache, x.shape().to_vec()));
        if let (Some(observer), Some(input)) = (&mut self.observer, &input_copy) {
            observer(&DropoutCall {
                layer: &self.name,
                phase: ctx.phase,
                rate: self.rate,
                scale: self.scale,
                input: input.view(),
                output: x.view(),
            });
        }
        Ok(x)
    }

    fn backward(&mut self, mut dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>> {
        let (cache, shape) = self.cache.as_ref().ok_or_else(|| Error::NoForwardCache {
            layer: self.name.clone(),
        })?;
        if dy.shape() != shape.as_slice() {
            return Err(crate::tensor::shape_mismatch(
                &format!("Dropout `{}` backward dy", self.name),
                format!("{shape:?}"),
                dy.shape(),
            ));
        }
        if !need_input_grad {
            return Ok(None);
        }
        match cache {
            MaskCache::Identity => {}
            MaskCache::AllDropped => dy.fill(F::zero()),
            MaskCache::Recompute(kernel) => match dy.as_slice_mut() {
                Some(slice) => {
                    kernel_forward_in_place(kernel, slice, self.scale)?;
                }
                None => {
                    let mask = kernel.mask(dy.len());
                    let scale = self.scale;
                    dy.iter_mut().zip(mask).for_each(|(d, drop)| {
                        *d = if drop { F::zero() } else { *d * scale };
                    });
                }
            },
            MaskCache::Cells(mask) => {
                let scale = self.scale;
                let broadcast = mask.broadcast(dy.raw_dim()).expect("same shape as forward");
                Zip::from(&mut dy).and(&broadcast).for_each(|d, &drop| {
                    *d = if drop { F::zero() } else { *d * scale };
                });
            }
        }
        Ok(Some(dy))
    }

    fn visit_weights(&self, _: &str, _: bool, _: &mut WeightVisitor<'_, F>) {}

    fn visit_weights_mut(&mut self, _: &str, _: bool, _: &mut WeightVisitorMut<'_, F>) {}

    fn stochastic(&self) -> Option<&dyn Stochastic> {
        Some(self)
    }

    fn stochastic_mut(&mut self) -> Option<&mut dyn Stochastic> {
        Some(self)
    }
}

impl<F: Element> Stochastic for Dropout<F> {
    fn noise_stats(&self) -> NoiseStats {
        self.stats
    }
    fn reset_noise_stats(&mut self) {
        self.reset_stats();
    }
    fn reseed(&mut self, seed: u64) {
        Dropout::reseed(self, seed);
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
