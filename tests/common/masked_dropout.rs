//! A dropout written the way SPEC §2 advises another implementation to write
//! one: a ChaCha8 stream from `seed_from_u64(seed)`, one `u32` per unit against
//! the threshold `round(rate * 2^32)`. Its kept units are scaled by a
//! [`Scaling`] of choice (SPEC's recipe, another framework's, or a wrong one),
//! and a [`Flaw`] can break it in one way, so the recipe tests and the twins
//! share one honest implementation to vary.
//!
//! Its stream is the very generator the audit inputs would align with if they
//! were drawn from the subject's own seed.

use ndarray::{ArrayD, Zip};
use nncheck::check::{BoxedDropout, Capabilities, Capability, DropoutLike, DropoutSubject, Result};
use nncheck::Phase;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How kept units are scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(dead_code)]
pub enum Scaling {
    /// SPEC's: `x * f32(1/(1-p))`.
    Spec,
    /// PyTorch CPU's: `x * (1/f32(1-p))`.
    ReciprocalInF32,
    /// Keras on NumPy, eager JAX: `x / f32(1-p)`.
    DivisionInF32,
    /// A hand-written layer's: `f32(x/(1-p))` in f64.
    DivisionInF64,
    /// SPEC's value two ulps up: close, and wrong.
    TwoUlpsOff,
    /// SPEC's recipe at even positions, division at odd ones.
    MixedRecipes,
}

impl Scaling {
    fn scale(self, x: f32, rate: f64, index: usize) -> f32 {
        let keep = 1.0 - rate;
        let spec = x * (1.0 / keep) as f32;
        match self {
            Scaling::Spec => spec,
            Scaling::ReciprocalInF32 => x * (1.0 / keep as f32),
            Scaling::DivisionInF32 => x / keep as f32,
            Scaling::DivisionInF64 => (f64::from(x) / keep) as f32,
            Scaling::TwoUlpsOff => f32::from_bits(spec.to_bits() + 2),
            Scaling::MixedRecipes if index % 2 == 1 => x / keep as f32,
            Scaling::MixedRecipes => spec,
        }
    }
}

/// What is broken, beside the scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(dead_code)]
pub enum Flaw {
    /// Nothing.
    None,
    /// Kept subnormal inputs come out as `+0.0` (a flush-to-zero mode).
    FlushesSubnormals,
    /// A batch of one row passes through untouched in training.
    InertOnOneRowBatches,
    /// The keystream of a call repeats every 2^16 units (a 16-bit block counter).
    MaskRepeatsInsideACall,
}

/// The subject: builds [`MaskedDropout`] layers.
#[derive(Debug, Clone, Copy)]
pub struct MaskedSubject {
    /// The subject's name in reports.
    pub name: &'static str,
    /// How kept units are scaled.
    pub scaling: Scaling,
    /// What is broken.
    pub flaw: Flaw,
}

impl DropoutSubject for MaskedSubject {
    fn name(&self) -> String {
        self.name.into()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::of(&[
            Capability::Backward,
            Capability::Reseed,
            Capability::SeedAtBuild,
        ])
    }
    fn build(&self, rate: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(nncheck::Error::InvalidRate { rate }.into());
        }
        Ok(Box::new(MaskedDropout {
            rate,
            scaling: self.scaling,
            flaw: self.flaw,
            rng: ChaCha8Rng::seed_from_u64(seed.unwrap_or(0)),
            last_mask: None,
        }))
    }
}

/// One built layer.
pub struct MaskedDropout {
    rate: f64,
    scaling: Scaling,
    flaw: Flaw,
    rng: ChaCha8Rng,
    last_mask: Option<ArrayD<bool>>,
}

impl MaskedDropout {
    /// The keep mask of one call: a unit is dropped when its `u32` is below
    /// `round(rate * 2^32)`.
    fn draw(&mut self, shape: &[usize]) -> ArrayD<bool> {
        let threshold = (self.rate * 4_294_967_296.0).round() as u64;
        let n: usize = shape.iter().product();
        let period = match self.flaw {
            Flaw::MaskRepeatsInsideACall => n.min(1 << 16),
            _ => n,
        };
        let block: Vec<bool> = (0..period)
            .map(|_| u64::from(self.rng.next_u32()) >= threshold)
            .collect();
        let cells = (0..n).map(|k| block[k % period.max(1)]).collect();
        ArrayD::from_shape_vec(shape.to_vec(), cells).expect("n cells")
    }
}

impl DropoutLike<f32> for MaskedDropout {
    fn rate(&self) -> f64 {
        self.rate
    }
    fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        if phase == Phase::Eval || self.rate == 0.0 {
            return Ok(x);
        }
        if self.flaw == Flaw::InertOnOneRowBatches && x.ndim() >= 2 && x.shape()[0] == 1 {
            self.last_mask = Some(ArrayD::from_elem(x.raw_dim(), true));
            return Ok(x);
        }
        let mask = self.draw(x.shape());
        let (rate, scaling, flaw) = (self.rate, self.scaling, self.flaw);
        let mut index = 0usize;
        let y = Zip::from(&x).and(&mask).map_collect(|&v, &keep| {
            index += 1;
            match (keep, flaw) {
                (false, _) => 0.0,
                (true, Flaw::FlushesSubnormals) if v.is_subnormal() => 0.0,
                (true, _) => scaling.scale(v, rate, index - 1),
            }
        });
        self.last_mask = Some(mask);
        Ok(y)
    }
    fn run_backward(&mut self, dy: ArrayD<f32>) -> Result<ArrayD<f32>> {
        let mask = self
            .last_mask
            .as_ref()
            .ok_or_else(|| nncheck::Error::NoForwardCache {
                layer: "masked dropout".into(),
            })?;
        let (rate, scaling) = (self.rate, self.scaling);
        let mut index = 0usize;
        Ok(Zip::from(&dy).and(mask).map_collect(|&g, &keep| {
            index += 1;
            if keep {
                scaling.scale(g, rate, index - 1)
            } else {
                0.0
            }
        }))
    }
    fn reseed(&mut self, seed: u64) -> Result<()> {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        Ok(())
    }
}
