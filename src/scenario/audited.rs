//! The audit of every call of the dropout layer at one of the scenario's positions.
//!
//! The scenario wraps each of its dropout positions in one, whatever layer a
//! [`DropoutFactory`](super::DropoutFactory) built there, so the report judges
//! what the layer did (its inputs and outputs) and not what it claims. To the
//! model the wrapper ([`Observed`]) is its inner layer: same name, path, weights
//! and random state.

use crate::check::dropout::survivors::SurvivorAudit;
use crate::check::subjects::observed::Observed;
use crate::layer::Layer;
use crate::phase::Phase;
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

/// Wraps `inner`, which claims `rate`, so that each of its calls feeds the
/// returned audit: drops, survivors and their scale in `Train`, differing bits in
/// `Eval`.
pub(crate) fn audited(inner: Box<dyn Layer<f32>>, rate: f64) -> (Observed<f32>, SharedAudit) {
    let audit = SharedAudit::default();
    let shared = Arc::clone(&audit);
    let observer = move |phase: Phase, x: &ArrayD<f32>, y: &ArrayD<f32>| {
        let mut a = shared.lock().expect("audit lock");
        match phase {
            Phase::Train => a.train.observe(x.view(), y.view(), rate),
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
    };
    (Observed::new(inner, Box::new(observer)), audit)
}
