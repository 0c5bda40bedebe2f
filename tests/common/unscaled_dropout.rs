//! A deliberately broken dropout: it drops like nncheck's `Dropout` (same mask,
//! same counters) but leaves survivors unscaled, as if `1/(1-p)` were forgotten.
//!
//! Shared by the scenario test and the `broken_dropout_report` example, which
//! show that the main job's report fails when the dropout it audits is wrong.

use ndarray::{ArrayD, Zip};
use nncheck::layer::{LayerVisitor, LayerVisitorMut, WeightVisitor, WeightVisitorMut};
use nncheck::phase::ForwardCtx;
use nncheck::rng::SeedSequence;
use nncheck::{Dropout, Layer, Phase, Result, Stochastic};

/// nncheck's dropout with the survivor scale left out.
pub struct UnscaledDropout(pub Dropout<f32>);

/// A scenario factory that builds [`UnscaledDropout`] at every dropout position.
pub fn unscaled_dropout(rate: f64, seed: Option<u64>) -> Result<Box<dyn Layer<f32>>> {
    let inner = Dropout::new(rate)?;
    Ok(Box::new(UnscaledDropout(match seed {
        Some(seed) => inner.with_seed(seed),
        None => inner,
    })))
}

impl Layer<f32> for UnscaledDropout {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn set_name(&mut self, name: String) {
        self.0.set_name(name);
    }
    fn build(&mut self, shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        self.0.build(shape, seeds)
    }
    fn forward(&mut self, x: ArrayD<f32>, ctx: ForwardCtx) -> Result<ArrayD<f32>> {
        let mut y = self.0.forward(x.clone(), ctx)?;
        if ctx.phase == Phase::Train {
            // Where the real layer kept a unit, put the unscaled input back.
            Zip::from(&mut y).and(&x).for_each(|y, &x| {
                let dropped = y.to_bits() == 0 && x != 0.0;
                if !dropped {
                    *y = x;
                }
            });
        }
        Ok(y)
    }
    fn backward(&mut self, dy: ArrayD<f32>, need: bool) -> Result<Option<ArrayD<f32>>> {
        self.0.backward(dy, need)
    }
    fn trainable(&self) -> bool {
        self.0.trainable()
    }
    fn set_trainable(&mut self, trainable: bool) {
        self.0.set_trainable(trainable);
    }
    fn visit_weights(&self, _: &str, _: bool, _: &mut WeightVisitor<'_, f32>) {}
    fn visit_weights_mut(&mut self, _: &str, _: bool, _: &mut WeightVisitorMut<'_, f32>) {}
    fn visit_layers(&self, prefix: &str, f: &mut LayerVisitor<'_, f32>) {
        f(&nncheck::layer::join_path(prefix, self.name()), self);
    }
    fn visit_layers_mut(&mut self, prefix: &str, f: &mut LayerVisitorMut<'_, f32>) {
        let path = nncheck::layer::join_path(prefix, self.name());
        f(&path, self);
    }
    fn stochastic(&self) -> Option<&dyn Stochastic> {
        Some(&self.0)
    }
    fn stochastic_mut(&mut self) -> Option<&mut dyn Stochastic> {
        Some(&mut self.0)
    }
}
