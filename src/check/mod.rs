//! The checks: library functions that return [`CheckReport`] verdicts.
//!
//! Tests assert on these verdicts, the main job and `nncheck verify` print them;
//! nothing is checked in two different ways. Checks are written against small
//! traits ([`DropoutLike`]) so that another implementation, or a deliberately
//! broken one, can be run through the very same checks.

pub mod battery;
pub mod dropout;
pub mod frozen;
pub mod phase;
pub mod report;
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
