//! Keras's other train-only layers as a noise subject: GaussianNoise,
//! GaussianDropout, AlphaDropout and SpatialDropout1D/2D/3D, each built by its
//! class with the case's parameter and seed.
//!
//! Keras's SpatialDropout1D has no `data_format` (channels last only), so a
//! channels-first 1D layer is not applicable; 2D and 3D take both formats.

use crate::check::subjects::{NoiseKind, NoiseSubject};
use crate::check::{unsupported, BoxedDropout, Capabilities, Capability, Result};
use crate::conform::python::layer::{fold_seed, PyLayer};
use crate::conform::python::KERAS;
use crate::layers::DataFormat;
use pyo3::prelude::PyAnyMethods;

/// Keras 3's noise layers on JAX (CPU, float32): seeded, reseedable, both data
/// formats for SpatialDropout2D/3D.
#[derive(Debug, Clone, Copy, Default)]
pub struct KerasNoise;

impl NoiseSubject for KerasNoise {
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
        let data_format = match kind {
            NoiseKind::SpatialDropout {
                rank: 1,
                format: DataFormat::ChannelsFirst,
            } => return unsupported(Capability::ChannelsFirst),
            NoiseKind::SpatialDropout {
                rank: 2 | 3,
                format,
            } => Some(match format {
                DataFormat::ChannelsLast => "channels_last",
                DataFormat::ChannelsFirst => "channels_first",
            }),
            _ => None,
        };
        let class = kind.name();
        let seed = seed.map(fold_seed);
        let layer = PyLayer::new(&KERAS, &self.name(), param, |_, m| {
            m.getattr("NoiseLayer")?
                .call1((class.as_str(), param, seed, data_format))
        })?;
        Ok(Box::new(layer))
    }
}
