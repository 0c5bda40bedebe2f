//! The broken noise layers: nncheck's own (as [`CoreNoise`] builds them), one
//! kind wrong in one way each, wired in through the noise subject API a third
//! party implements.

use ndarray::ArrayD;
use nncheck::check::{
    BoxedDropout, Capabilities, CoreNoise, DropoutLike, NoiseKind, NoiseSubject, Result,
};
use nncheck::layers::dropout::{drop_threshold, reference_mask};
use nncheck::{Dropout, Phase};

/// What a broken noise layer does differently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseFlaw {
    /// GaussianNoise draws with a standard deviation 10% above the one claimed.
    StddevOffByTenPercent,
    /// GaussianDropout's multiplier has variance `rate`, not `rate / (1 - rate)`.
    VarianceRate,
    /// Every layer draws noise in `Eval` too.
    NoisyInEval,
    /// SpatialDropout drops single elements, not whole channels.
    PerElementSpatial,
    /// AlphaDropout without its affine correction: kept units stay `x`, dropped
    /// ones become `alpha_p`.
    AlphaWithoutAffine,
}

/// nncheck's noise layers with one flaw, as a subject named after it.
pub struct NoiseTwin(pub NoiseFlaw);

impl NoiseSubject for NoiseTwin {
    fn name(&self) -> String {
        format!("{:?}", self.0)
    }
    fn capabilities(&self) -> Capabilities {
        CoreNoise.capabilities()
    }
    fn build(&self, kind: NoiseKind, param: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        let claimed = |inner: BoxedDropout| -> BoxedDropout {
            Box::new(Claimed {
                inner,
                rate: param,
                eval_as_train: false,
            })
        };
        Ok(match (self.0, kind) {
            (NoiseFlaw::StddevOffByTenPercent, NoiseKind::GaussianNoise) => {
                claimed(CoreNoise.build(kind, param * 1.1, seed)?)
            }
            (NoiseFlaw::VarianceRate, NoiseKind::GaussianDropout) => {
                // The twin's own rate r' has r' / (1 - r') = rate.
                claimed(CoreNoise.build(kind, param / (1.0 + param), seed)?)
            }
            (NoiseFlaw::NoisyInEval, _) => Box::new(Claimed {
                inner: CoreNoise.build(kind, param, seed)?,
                rate: param,
                eval_as_train: true,
            }),
            (NoiseFlaw::PerElementSpatial, NoiseKind::SpatialDropout { .. }) => {
                let layer = Dropout::<f32>::new(param)?;
                let layer = match seed {
                    Some(s) => layer.with_seed(s),
                    None => layer,
                };
                Box::new(layer)
            }
            (NoiseFlaw::AlphaWithoutAffine, NoiseKind::AlphaDropout) => {
                Box::new(AlphaWithoutAffine {
                    rate: param,
                    seed: seed.unwrap_or(0),
                    calls: 0,
                })
            }
            _ => CoreNoise.build(kind, param, seed)?,
        })
    }
}

/// A layer claiming `rate` whatever it was built with, and running its train
/// behaviour in `Eval` where told to.
struct Claimed {
    inner: BoxedDropout,
    rate: f64,
    eval_as_train: bool,
}

impl DropoutLike<f32> for Claimed {
    fn rate(&self) -> f64 {
        self.rate
    }
    fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        let phase = if self.eval_as_train {
            Phase::Train
        } else {
            phase
        };
        self.inner.run(x, phase)
    }
    fn reseed(&mut self, seed: u64) -> Result<()> {
        self.inner.reseed(seed)
    }
}

/// AlphaDropout without its affine correction: kept units stay `x`, dropped
/// units become `alpha_p`, on Dropout's very mask.
struct AlphaWithoutAffine {
    rate: f64,
    seed: u64,
    calls: u64,
}

impl DropoutLike<f32> for AlphaWithoutAffine {
    fn rate(&self) -> f64 {
        self.rate
    }
    fn run(&mut self, mut x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        if phase == Phase::Eval {
            return Ok(x);
        }
        let alpha_p = (-1.673_263_242_354_377_2_f64 * 1.050_700_987_355_480_5) as f32;
        let mask = reference_mask(self.seed, self.calls, drop_threshold(self.rate), x.len());
        self.calls += 1;
        x.iter_mut().zip(mask).for_each(|(v, drop)| {
            if drop {
                *v = alpha_p;
            }
        });
        Ok(x)
    }
}
