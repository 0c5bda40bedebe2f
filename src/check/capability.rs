//! What a subject can do beyond a forward pass, declared before any check runs.
//!
//! Every check states the capabilities it needs; every subject states the ones
//! it has. A check whose needs the subject does not meet is reported *not
//! applicable*, naming what is missing, without being run: never a pass, never
//! a failure (SPEC §7b).

use super::optimizer::OptimizerKind;
use super::subjects::NoiseKind;
use serde::Serialize;

/// One thing a subject may lack; named in a not-applicable record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Capability {
    /// The input gradient of the last train call.
    Backward,
    /// Restarting the stream a built layer draws from (`reseed`).
    Reseed,
    /// Building a layer with a seed, so that two builds draw the same masks.
    SeedAtBuild,
    /// Mask cells shared along axes (Keras `noise_shape`).
    NoiseShape,
    /// The keep mask of the last train call.
    Mask,
    /// Counters of units seen and dropped.
    Counters,
    /// The channels-first data format of a spatial dropout.
    ChannelsFirst,
    /// The channels-last data format of a spatial dropout (PyTorch's feature
    /// dropouts have only channels-first).
    ChannelsLast,
    /// Handing the input's own buffer back where it returns the input (not
    /// visible through a bridge to another language, which copies both ways).
    SameBuffer,
    /// A train-only layer of this kind at all.
    NoiseLayer(NoiseKind),
    /// A model with a BatchNormalization layer.
    BatchNorm,
    /// Training with this optimizer.
    Optimizer(OptimizerKind),
    /// Weight decay with this optimizer.
    WeightDecay(OptimizerKind),
    /// Reading the optimizer's per-weight state.
    OptimizerState,
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Capability::Backward => f.write_str("backward pass"),
            Capability::Reseed => f.write_str("reseeding"),
            Capability::SeedAtBuild => f.write_str("seeding at build"),
            Capability::NoiseShape => f.write_str("noise shape"),
            Capability::Mask => f.write_str("mask access"),
            Capability::Counters => f.write_str("drop counters"),
            Capability::ChannelsFirst => f.write_str("channels-first data format"),
            Capability::ChannelsLast => f.write_str("channels-last data format"),
            Capability::SameBuffer => f.write_str("buffer identity visible to the caller"),
            Capability::NoiseLayer(kind) => write!(f, "{} layer", kind.name()),
            Capability::BatchNorm => f.write_str("BatchNormalization"),
            Capability::Optimizer(kind) => write!(f, "{} optimizer", kind.name()),
            Capability::WeightDecay(kind) => write!(f, "{} weight decay", kind.name()),
            Capability::OptimizerState => f.write_str("optimizer state access"),
        }
    }
}

/// The capabilities a subject declares.
///
/// ```
/// use nncheck::check::{Capabilities, Capability};
/// let caps = Capabilities::of(&[Capability::Backward, Capability::Reseed]);
/// assert!(caps.has(Capability::Backward));
/// assert_eq!(caps.missing(&[Capability::Backward, Capability::Mask]), Some(Capability::Mask));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities(Vec<Capability>);

impl Capabilities {
    /// A forward pass and nothing more.
    pub fn none() -> Self {
        Capabilities(Vec::new())
    }

    /// Exactly `list`.
    pub fn of(list: &[Capability]) -> Self {
        Capabilities(list.to_vec())
    }

    /// These and `capability`.
    pub fn with(mut self, capability: Capability) -> Self {
        if !self.has(capability) {
            self.0.push(capability);
        }
        self
    }

    /// Every optimizer the suite knows, each with weight decay.
    pub fn every_optimizer() -> Self {
        OptimizerKind::ALL
            .iter()
            .fold(Capabilities::none(), |caps, &kind| {
                caps.with(Capability::Optimizer(kind))
                    .with(Capability::WeightDecay(kind))
            })
    }

    /// True when `capability` is declared.
    pub fn has(&self, capability: Capability) -> bool {
        self.0.contains(&capability)
    }

    /// The first of `needs` not declared, if any.
    pub fn missing(&self, needs: &[Capability]) -> Option<Capability> {
        needs.iter().copied().find(|c| !self.has(*c))
    }

    /// Every declared capability.
    pub fn iter(&self) -> impl Iterator<Item = Capability> + '_ {
        self.0.iter().copied()
    }
}
