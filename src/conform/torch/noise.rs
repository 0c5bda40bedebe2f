//! PyTorch's other train-only layers as a noise subject: `AlphaDropout`, and
//! `Dropout1d/2d/3d` as SpatialDropout1D/2D/3D (whole channels dropped,
//! channels first). PyTorch has no GaussianNoise or GaussianDropout layer and
//! no channels-last feature dropout: those are not applicable, by name.

use crate::check::subjects::{NoiseKind, NoiseSubject};
use crate::check::{unsupported, BoxedDropout, Capabilities, Capability, Result};
use crate::conform::python::layer::{fold_seed, PyLayer};
use crate::conform::python::TORCH;
use crate::layers::DataFormat;
use pyo3::prelude::PyAnyMethods;

/// PyTorch's `AlphaDropout` and feature dropouts on the CPU, float32.
#[derive(Debug, Clone, Copy, Default)]
pub struct TorchNoise;

impl NoiseSubject for TorchNoise {
    fn name(&self) -> String {
        super::name()
    }

    fn version(&self) -> Option<String> {
        Some(super::version().into())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of(&[
            Capability::Reseed,
            Capability::SeedAtBuild,
            Capability::ChannelsFirst,
        ])
    }

    fn build(&self, kind: NoiseKind, param: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        let class = match kind {
            NoiseKind::AlphaDropout => "AlphaDropout".to_string(),
            NoiseKind::SpatialDropout {
                rank,
                format: DataFormat::ChannelsFirst,
            } => format!("Dropout{rank}d"),
            NoiseKind::SpatialDropout { .. } => return unsupported(Capability::ChannelsLast),
            NoiseKind::GaussianNoise | NoiseKind::GaussianDropout => {
                return unsupported(Capability::NoiseLayer(kind))
            }
        };
        let seed = seed.map(fold_seed);
        let layer = PyLayer::new(&TORCH, &self.name(), param, |_, m| {
            m.getattr("Dropout")?.call1((param, seed, class.as_str()))
        })?;
        Ok(Box::new(layer))
    }
}
