//! The broken dropouts: nncheck's own layer (as [`CoreDropout`] builds it) or
//! the SPEC-advised masked dropout, wrong in one way each, wired in as a third
//! party wires in its own subject.

use super::masked_dropout::{Flaw as MaskedFlaw, MaskedSubject, Scaling};
use ndarray::{ArrayD, Zip};
use nncheck::check::{
    BoxedDropout, Capabilities, CoreDropout, DropoutLike, DropoutSubject, Result,
};
use nncheck::stochastic::NoiseStats;
use nncheck::Phase;

/// What a broken core dropout does differently from the core's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flaw {
    NoRescale,
    ScaleByInverseP,
    RateOffByAHundredth,
    ActiveInEval,
    MaskReusedAcrossCalls,
    NeighboursShareADraw,
    EveryTenthPositionNeverDropped,
    BackwardDrawsItsOwnMask,
    CountersMiss,
    ReseedIgnored,
    BuildSeedIgnored,
    NoiseShapeIgnored,
    DroppedTimesZero,
    DroppedNanAndNegativeZeroLeftAlone,
    RateOneKeepsUnits,
    /// `x * mask / (1 - rate)` at rate 1: `0 * inf`, NaN everywhere.
    RateOneGivesNan,
    RateOneRefused,
    InvalidRateAccepted,
}

/// The core dropout with one flaw, as a subject named after it.
pub struct Twin(pub Flaw);

impl DropoutSubject for Twin {
    fn name(&self) -> String {
        format!("{:?}", self.0)
    }
    fn capabilities(&self) -> Capabilities {
        CoreDropout.capabilities()
    }
    fn build(&self, rate: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        let flaw = self.0;
        let claimed = rate;
        if flaw == Flaw::RateOneRefused && rate == 1.0 {
            return Err(nncheck::Error::InvalidRate { rate }.into());
        }
        let (inner_rate, seed) = match flaw {
            Flaw::RateOffByAHundredth => ((rate + 0.01).min(1.0), seed),
            Flaw::InvalidRateAccepted if !(0.0..=1.0).contains(&rate) => (0.5, seed),
            Flaw::BuildSeedIgnored => (rate, None),
            _ => (rate, seed),
        };
        Ok(Box::new(TwinLayer {
            inner: CoreDropout.build(inner_rate, seed)?,
            shadow: CoreDropout.build(inner_rate, Some(99))?,
            claimed,
            flaw,
            last_input: None,
        }))
    }
    fn build_with_noise_shape(
        &self,
        rate: f64,
        seed: Option<u64>,
        noise_shape: &[Option<usize>],
    ) -> Result<BoxedDropout> {
        if self.0 == Flaw::NoiseShapeIgnored {
            return self.build(rate, seed);
        }
        CoreDropout.build_with_noise_shape(rate, seed, noise_shape)
    }
}

struct TwinLayer {
    inner: BoxedDropout,
    /// A second stream, for the twin whose backward draws a mask of its own.
    shadow: BoxedDropout,
    claimed: f64,
    flaw: Flaw,
    last_input: Option<ArrayD<f32>>,
}

impl DropoutLike<f32> for TwinLayer {
    fn rate(&self) -> f64 {
        self.claimed
    }

    fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        let phase = match self.flaw {
            Flaw::ActiveInEval => Phase::Train,
            _ => phase,
        };
        if phase == Phase::Eval {
            return self.inner.run(x, phase);
        }
        if self.flaw == Flaw::MaskReusedAcrossCalls {
            self.inner.reseed(9)?;
        }
        self.last_input = Some(x.clone());
        // The real mask, read off a run on ones; the flaw is in what is done with it.
        let mut mask = self.inner.run(ArrayD::ones(x.raw_dim()), Phase::Train)?;
        if self.flaw == Flaw::NeighboursShareADraw {
            if let Some(m) = mask.as_slice_mut() {
                for pair in m.chunks_exact_mut(2) {
                    pair[1] = pair[0];
                }
            }
        }
        if self.flaw == Flaw::EveryTenthPositionNeverDropped {
            mask.iter_mut().step_by(10).for_each(|m| *m = 1.0);
        }
        let rate = self.claimed;
        let scale = (1.0 / (1.0 - rate)) as f32;
        let flaw = self.flaw;
        Ok(Zip::from(&x).and(&mask).map_collect(|&v, &m| {
            let kept = m != 0.0;
            match (flaw, kept) {
                (Flaw::RateOneKeepsUnits, _) if rate == 1.0 => v,
                (Flaw::RateOneGivesNan, _) if rate == 1.0 => v * m * scale,
                (Flaw::NoRescale, true) => v,
                (Flaw::ScaleByInverseP, true) => v * (1.0 / rate) as f32,
                (_, true) => v * scale,
                (Flaw::DroppedTimesZero, false) => v * 0.0,
                (Flaw::DroppedNanAndNegativeZeroLeftAlone, false)
                    if v.is_nan() || (v == 0.0 && v.is_sign_negative()) =>
                {
                    v
                }
                (_, false) => 0.0,
            }
        }))
    }

    fn run_backward(&mut self, dy: ArrayD<f32>) -> Result<ArrayD<f32>> {
        if self.flaw == Flaw::BackwardDrawsItsOwnMask {
            let x = self.last_input.clone().unwrap_or_else(|| dy.clone());
            self.shadow.run(x, Phase::Train)?;
            return self.shadow.run_backward(dy);
        }
        self.inner.run_backward(dy)
    }

    fn reseed(&mut self, seed: u64) -> Result<()> {
        if self.flaw == Flaw::ReseedIgnored {
            return Ok(());
        }
        self.inner.reseed(seed)
    }

    fn counters(&self) -> Result<NoiseStats> {
        let mut stats = self.inner.counters()?;
        if self.flaw == Flaw::CountersMiss {
            stats.units_dropped /= 2;
        }
        Ok(stats)
    }
}

/// The SPEC-advised masked dropout, broken in one way.
pub const fn masked(name: &'static str, scaling: Scaling, flaw: MaskedFlaw) -> MaskedSubject {
    MaskedSubject {
        name,
        scaling,
        flaw,
    }
}
