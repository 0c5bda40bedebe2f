//! candle-nn's `Dropout` as a dropout subject.
//!
//! candle builds a `Dropout` from any `f32` rate and checks it only in a
//! training forward (`[0, 1)`, so rate 1 is refused there); an evaluation
//! forward is the identity whatever the rate. The subject passes the rate on
//! unchecked, so the conventions audit sees candle's own answer. A train
//! forward multiplies the input by a mask of `0` or `1 / (1 - rate)` drawn from
//! the thread's unseedable generator, so a dropped negative is `-0.0` and a
//! dropped NaN stays NaN: convention findings, not wrong rates.
//!
//! candle holds the rate as an `f32` and computes its scale from that `f32`
//! (`1 / (1 - drop_p as f64)`), so at about a third of the rates in `(0, 1)`
//! its scale differs in the last bits from the one the `f64` rate gives. The layer claims the
//! rate the suite asked for, and the survivor audit names the recipe candle
//! follows (`x * f32(1/(1-p)), p held in f32`) as a convention, not a failure.

use super::{on_candle, to_array, to_tensor, NAME};
use crate::check::{
    unsupported, BoxedDropout, Capabilities, Capability, DropoutLike, DropoutSubject, Result,
};
use crate::phase::Phase;
use candle_core::{ModuleT, Tensor, Var};
use ndarray::ArrayD;

/// candle-nn 0.11's `Dropout` on the CPU, in f32.
///
/// Capabilities: forward in both phases and the real autograd input gradient
/// of the last train call. No seeding (candle's CPU generator cannot be
/// seeded: the subject declares no seeding, and the battery builds it
/// unseeded), no noise shape, no mask access, no counters.
///
/// ```
/// use nncheck::check::DropoutSubject;
/// use nncheck::conform::candle::CandleDropout;
/// use nncheck::Phase;
/// let mut layer = CandleDropout.build(0.5, None).unwrap();
/// let x = ndarray::ArrayD::<f32>::ones(vec![8]);
/// assert_eq!(layer.run(x.clone(), Phase::Eval).unwrap(), x);
/// assert!(CandleDropout.build(0.5, Some(7)).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CandleDropout;

impl DropoutSubject for CandleDropout {
    fn name(&self) -> String {
        NAME.into()
    }

    fn version(&self) -> Option<String> {
        Some(super::VERSION.into())
    }

    /// The input gradient of a train call, by candle's autograd; no seeding
    /// (`Device::Cpu.set_seed` refuses: "cannot seed the CPU rng with
    /// set_seed"), no noise shape, no mask, no counters.
    fn capabilities(&self) -> Capabilities {
        Capabilities::of(&[Capability::Backward])
    }

    fn build(&self, rate: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        if seed.is_some() {
            return unsupported(Capability::SeedAtBuild);
        }
        Ok(Box::new(CandleDropoutLayer {
            layer: candle_nn::Dropout::new(rate as f32),
            rate,
            last_train: None,
        }))
    }
}

/// A built candle `Dropout`, holding what its backward pass needs.
struct CandleDropoutLayer {
    layer: candle_nn::Dropout,
    /// The rate the suite asked for (candle holds it rounded to `f32`).
    rate: f64,
    /// The input (as a `Var`, so autograd tracks it) and the output of the last
    /// train call.
    last_train: Option<(Var, Tensor)>,
}

impl DropoutLike<f32> for CandleDropoutLayer {
    fn rate(&self) -> f64 {
        self.rate
    }

    fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        let layer = &self.layer;
        match phase {
            Phase::Train => {
                let (input, y, out) = on_candle(|| {
                    let input = Var::from_tensor(&to_tensor(&x)?)?;
                    let y = layer.forward_t(input.as_tensor(), true)?;
                    let out = to_array(&y)?;
                    Ok((input, y, out))
                })?;
                self.last_train = Some((input, y));
                Ok(out)
            }
            Phase::Eval => on_candle(|| to_array(&layer.forward_t(&to_tensor(&x)?, false)?)),
        }
    }

    /// The gradient of `sum(y * dy)` with respect to the last train call's
    /// input, by candle's autograd.
    fn run_backward(&mut self, dy: ArrayD<f32>) -> Result<ArrayD<f32>> {
        let Some((input, y)) = &self.last_train else {
            return Err(crate::Error::NoForwardCache {
                layer: format!("{NAME} Dropout"),
            }
            .into());
        };
        on_candle(|| {
            let grads = (y * to_tensor(&dy)?)?.sum_all()?.backward()?;
            match grads.get(input.as_tensor()) {
                Some(g) => to_array(g),
                None => candle_core::bail!("autograd gave no gradient for the dropout's input"),
            }
        })
    }
}
