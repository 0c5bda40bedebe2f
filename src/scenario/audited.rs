//! A wrapper layer that audits every call of the dropout layer inside it.
//!
//! The scenario wraps each of its dropout positions in one, whatever layer a
//! [`DropoutFactory`](super::DropoutFactory) built there, so the report judges
//! what the layer did (its inputs and outputs) and not what it claims. To the
//! model the wrapper is its inner layer: same name, path, weights and random
//! state.

use crate::check::dropout::SurvivorAudit;
use crate::error::Result;
use crate::layer::{Layer, LayerVisitor, LayerVisitorMut, WeightVisitor, WeightVisitorMut};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::SeedSequence;
use crate::stochastic::Stochastic;
use ndarray::ArrayD;
use std::sync::{Arc, Mutex};

/// What the audit of one dropout position tallied.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DropoutAudit {
    /// Train calls: drops, survivors and their scale, bit for bit.
    pub(crate) train: SurvivorAudit,
    /// Eval elements seen.
    pub(crate) eval_seen: u64,
    /// Eval elements whose output bits differ from the input's.
    pub(crate) eval_differing: u64,
}

/// The audit, shared between the wrapper inside the model and the scenario.
pub(crate) type SharedAudit = Arc<Mutex<DropoutAudit>>;

/// The inner layer and the audit its calls feed.
pub(crate) struct Audited {
    inner: Box<dyn Layer<f32>>,
    rate: f64,
    audit: SharedAudit,
}

impl Audited {
    /// Wraps `inner`, which claims `rate`; returns the wrapper and its audit.
    pub(crate) fn new(inner: Box<dyn Layer<f32>>, rate: f64) -> (Self, SharedAudit) {
        let audit = SharedAudit::default();
        let wrapper = Audited {
            inner,
            rate,
            audit: Arc::clone(&audit),
        };
        (wrapper, audit)
    }

    fn record(&self, phase: Phase, x: &ArrayD<f32>, y: &ArrayD<f32>) {
        let mut a = self.audit.lock().expect("audit lock");
        match phase {
            Phase::Train => a.train.observe(x.view(), y.view(), self.rate),
            Phase::Eval => {
                a.eval_seen += x.len() as u64;
                let same = x
                    .iter()
                    .zip(y.iter())
                    .filter(|(x, y)| x.to_bits() == y.to_bits())
                    .count();
                a.eval_differing += (x.len() - same) as u64;
            }
        }
    }
}

impl Layer<f32> for Audited {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn set_name(&mut self, name: String) {
        self.inner.set_name(name);
    }
    fn build(&mut self, input_shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        self.inner.build(input_shape, seeds)
    }
    fn forward(&mut self, x: ArrayD<f32>, ctx: ForwardCtx) -> Result<ArrayD<f32>> {
        let input = x.clone();
        let y = self.inner.forward(x, ctx)?;
        self.record(ctx.phase, &input, &y);
        Ok(y)
    }
    fn backward(&mut self, dy: ArrayD<f32>, need: bool) -> Result<Option<ArrayD<f32>>> {
        self.inner.backward(dy, need)
    }
    fn trainable(&self) -> bool {
        self.inner.trainable()
    }
    fn set_trainable(&mut self, trainable: bool) {
        self.inner.set_trainable(trainable);
    }
    fn visit_weights(&self, prefix: &str, path: bool, f: &mut WeightVisitor<'_, f32>) {
        self.inner.visit_weights(prefix, path, f);
    }
    fn visit_weights_mut(&mut self, prefix: &str, path: bool, f: &mut WeightVisitorMut<'_, f32>) {
        self.inner.visit_weights_mut(prefix, path, f);
    }
    fn visit_layers(&self, prefix: &str, f: &mut LayerVisitor<'_, f32>) {
        self.inner.visit_layers(prefix, f);
    }
    fn visit_layers_mut(&mut self, prefix: &str, f: &mut LayerVisitorMut<'_, f32>) {
        self.inner.visit_layers_mut(prefix, f);
    }
    fn commit_state(&mut self) {
        self.inner.commit_state();
    }
    fn pending_state_finite(&self) -> bool {
        self.inner.pending_state_finite()
    }
    fn stochastic(&self) -> Option<&dyn Stochastic> {
        self.inner.stochastic()
    }
    fn stochastic_mut(&mut self) -> Option<&mut dyn Stochastic> {
        self.inner.stochastic_mut()
    }
    fn has_trainable_params(&self, path_trainable: bool) -> bool {
        self.inner.has_trainable_params(path_trainable)
    }
}
