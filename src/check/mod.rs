//! The checks: library functions that return [`CheckReport`] verdicts.
//!
//! Tests assert on these verdicts, the main job and `nncheck verify` print them;
//! nothing is checked in two different ways. Checks are written against small
//! traits ([`DropoutLike`]) so that another implementation, or a deliberately
//! broken one, can be run through the very same checks.

pub mod alpha_dropout;
pub mod batch_norm;
pub mod battery;
pub mod cases;
pub mod determinism;
pub mod dropout;
pub mod frozen;
pub mod noise;
pub mod noise_in_frozen_fit;
pub mod observed;
pub mod phase;
pub mod report;
pub mod seeding;
pub mod snapshot;
pub mod spatial_dropout;
pub mod stats;
pub mod verify;

pub use report::{all_pass, CheckReport};

use crate::error::Result;
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;

/// A dropout-like layer as the checks see it: a rate and a forward in a phase.
pub trait DropoutLike<F: Element> {
    /// The rate it claims.
    fn rate(&self) -> f64;
    /// One forward call.
    fn run(&mut self, x: ArrayD<F>, phase: Phase) -> Result<ArrayD<F>>;
    /// The input gradient of the last forward call.
    fn run_backward(&mut self, dy: ArrayD<F>) -> Result<ArrayD<F>>;
}

impl<F: Element> DropoutLike<F> for crate::layers::Dropout<F> {
    fn rate(&self) -> f64 {
        crate::layers::Dropout::rate(self)
    }
    fn run(&mut self, x: ArrayD<F>, phase: Phase) -> Result<ArrayD<F>> {
        self.apply(x, phase)
    }
    fn run_backward(&mut self, dy: ArrayD<F>) -> Result<ArrayD<F>> {
        use crate::layer::Layer;
        Ok(self.backward(dy, true)?.expect("input gradient requested"))
    }
}

/// Any layer as a [`DropoutLike`], given the rate it claims: forward runs it as a
/// top-level call in the phase, backward asks for the input gradient.
///
/// ```
/// use nncheck::check::{DropoutLike, LayerAsDropout};
/// use nncheck::{Dropout, Phase};
/// use ndarray::ArrayD;
/// let mut d = LayerAsDropout::new(Box::new(Dropout::new(0.5).unwrap().with_seed(1)), 0.5);
/// let y = d.run(ArrayD::<f32>::ones(vec![4]), Phase::Eval).unwrap();
/// assert_eq!(y, ArrayD::ones(vec![4]));
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
        self.layer.forward(x, crate::phase::ForwardCtx::top(phase))
    }
    fn run_backward(&mut self, dy: ArrayD<F>) -> Result<ArrayD<F>> {
        Ok(self
            .layer
            .backward(dy, true)?
            .expect("input gradient requested"))
    }
}
