//! The noise subject: the train-only layers beside Dropout (GaussianNoise,
//! GaussianDropout, AlphaDropout, SpatialDropout, SPEC §2b) of any
//! implementation, built by kind, parameter and seed and seen through
//! [`DropoutLike`] (a forward in a phase, reseeding), so the noise battery judges
//! another framework's layers as it judges nncheck's own ([`CoreNoise`]).

use super::dropout::{BoxedDropout, DropoutLike, LayerAsDropout};
use crate::check::capability::{Capabilities, Capability};
use crate::check::error::Result;
use crate::layer::Layer;
use crate::layers::{AlphaDropout, DataFormat, GaussianDropout, GaussianNoise, SpatialDropout};

/// Which train-only layer to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum NoiseKind {
    /// Adds `N(0, stddev^2)` in training; the parameter is the standard deviation.
    GaussianNoise,
    /// Multiplies by `N(1, rate / (1 - rate))` in training.
    GaussianDropout,
    /// SELU-preserving dropout (SPEC §2b).
    AlphaDropout,
    /// Whole channels dropped, over `rank` spatial axes (1, 2 or 3).
    SpatialDropout {
        /// Spatial axes: 1, 2 or 3.
        rank: usize,
        /// Where the channel axis is.
        format: DataFormat,
    },
}

impl NoiseKind {
    /// The layer's name as Keras spells it, e.g. `SpatialDropout2D`.
    pub fn name(self) -> String {
        match self {
            NoiseKind::GaussianNoise => "GaussianNoise".into(),
            NoiseKind::GaussianDropout => "GaussianDropout".into(),
            NoiseKind::AlphaDropout => "AlphaDropout".into(),
            NoiseKind::SpatialDropout { rank, .. } => format!("SpatialDropout{rank}D"),
        }
    }
}

/// An implementation of the train-only layers under test.
///
/// ```
/// use nncheck::check::subjects::{CoreNoise, NoiseKind, NoiseSubject};
/// use nncheck::Phase;
/// let mut layer = CoreNoise.build(NoiseKind::GaussianNoise, 0.3, Some(1)).unwrap();
/// let x = ndarray::ArrayD::<f32>::ones(vec![4, 8]);
/// assert_eq!(layer.run(x.clone(), Phase::Eval).unwrap(), x);
/// ```
pub trait NoiseSubject {
    /// A short name for reports, e.g. `nncheck` or `Keras 3.15 (JAX)`.
    fn name(&self) -> String;
    /// The exact version of the implementation under test; `None` when unknown.
    fn version(&self) -> Option<String> {
        None
    }
    /// What its layers can do beyond a forward pass; [`Capability::Reseed`] and
    /// [`Capability::ChannelsFirst`] are the ones the noise battery asks about.
    fn capabilities(&self) -> Capabilities;
    /// A layer of `kind` with parameter `param` (GaussianNoise's standard
    /// deviation, the others' rate), seeded by `seed` where the subject can seed.
    /// Its [`DropoutLike::rate`] is `param`.
    fn build(&self, kind: NoiseKind, param: f64, seed: Option<u64>) -> Result<BoxedDropout>;
}

/// nncheck's own noise layers as a subject: every kind, both data formats,
/// reseeding.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreNoise;

impl NoiseSubject for CoreNoise {
    fn name(&self) -> String {
        "nncheck".into()
    }
    fn version(&self) -> Option<String> {
        Some(env!("CARGO_PKG_VERSION").into())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::of(&[
            Capability::Reseed,
            Capability::SeedAtBuild,
            Capability::ChannelsFirst,
            Capability::Counters,
            Capability::SameBuffer,
        ])
    }
    fn build(&self, kind: NoiseKind, param: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        let layer: Box<dyn Layer<f32>> = match (kind, seed) {
            (NoiseKind::GaussianNoise, Some(s)) => {
                Box::new(GaussianNoise::new(param)?.with_seed(s))
            }
            (NoiseKind::GaussianNoise, None) => Box::new(GaussianNoise::new(param)?),
            (NoiseKind::GaussianDropout, Some(s)) => {
                Box::new(GaussianDropout::new(param)?.with_seed(s))
            }
            (NoiseKind::GaussianDropout, None) => Box::new(GaussianDropout::new(param)?),
            (NoiseKind::AlphaDropout, Some(s)) => Box::new(AlphaDropout::new(param)?.with_seed(s)),
            (NoiseKind::AlphaDropout, None) => Box::new(AlphaDropout::new(param)?),
            (NoiseKind::SpatialDropout { rank, format }, seed) => {
                let layer = SpatialDropout::new(rank, param, format)?;
                match seed {
                    Some(s) => Box::new(layer.with_seed(s)),
                    None => Box::new(layer),
                }
            }
        };
        let wrapped: Box<dyn DropoutLike<f32>> = Box::new(LayerAsDropout::new(layer, param));
        Ok(wrapped)
    }
}
