//! A second, plainly written implementation of SPEC §3–§5, the oracle of the
//! state-machine test: it knows what every weight, optimizer slot, step count,
//! BatchNorm statistic and trainable flag of `model_AB` should be after any
//! sequence of builds, freezes, compiles, fits and failed steps.
//!
//! It shares no code with the crate: it imports nothing from `nncheck`, computes
//! in `f64` loops over row-major matrices (`matrix`), and draws its own initial
//! weights and data (`init`), which the test pushes into the system under test.

pub mod architecture;
pub mod init;
pub mod matrix;
pub mod network;
pub mod optimizer;
pub mod training;

use network::{Node, Weight};
use optimizer::{OptimizerKind, Slot};
use std::collections::BTreeMap;

/// The reference model: the network, the optimizer it is compiled with and the
/// optimizer state of every parameter that has been updated, by path.
#[derive(Debug, Clone)]
pub struct ReferenceModel {
    pub network: Node,
    pub optimizer: OptimizerKind,
    pub slots: BTreeMap<String, Slot>,
}

impl ReferenceModel {
    pub fn new(network: Node, optimizer: OptimizerKind) -> Self {
        ReferenceModel {
            network,
            optimizer,
            slots: BTreeMap::new(),
        }
    }

    /// A new optimizer starts with no state: every slot and step count is gone.
    pub fn compile(&mut self, optimizer: OptimizerKind) {
        self.optimizer = optimizer;
        self.slots.clear();
    }

    /// `(path, weight, effectively trainable)` for every weight, in model order.
    pub fn weights(&self) -> Vec<(String, &Weight, bool)> {
        let mut out = Vec::new();
        self.network.weights("", true, &mut out);
        out
    }

    /// `(path, own flag, effective flag)` of every layer and model, the top first.
    pub fn layers(&self) -> Vec<(String, bool, bool)> {
        let mut out = Vec::new();
        self.network.layers("", true, &mut out);
        out
    }

    /// True when the reference can still replay every value.
    pub fn all_known(&self) -> bool {
        self.weights().iter().all(|(_, w, _)| w.known) && self.slots.values().all(|s| s.known)
    }

    /// Sets the flag at `path` (recursively for a model); false for an unknown path.
    pub fn set_trainable_at(&mut self, path: &str, trainable: bool) -> bool {
        self.network.set_trainable_at("", path, trainable)
    }

    /// `freeze` / `unfreeze` of the whole model.
    pub fn set_trainable(&mut self, trainable: bool) {
        self.network.set_trainable(trainable);
    }
}
