//! `Model`: a named container (sequential or functional) that is itself a layer.
//!
//! Serves SPEC §3: setting `trainable` on a model sets it on every layer inside,
//! recursively, and a weight is effectively trainable only when its layer and every
//! model on its path are. Models nest inside models as layers.

pub mod concat;
pub mod graph;
pub mod sequential;
mod weights;

pub use weights::WeightInfo;

use crate::error::{Error, Result};
use crate::layer::{
    join_path, Layer, LayerVisitor, LayerVisitorMut, WeightVisitor, WeightVisitorMut,
};
use crate::loss::Loss;
use crate::optim::Optimizer;
use crate::phase::{ForwardCtx, Phase};
use crate::rng::SeedSequence;
use crate::stochastic::{NoiseCheckpoint, NoiseStats, Stochastic};
use crate::tensor::{shape_mismatch, Element};
use ndarray::ArrayD;

use graph::GraphBody;
use sequential::SequentialBody;

pub(crate) enum Body<F: Element> {
    Sequential(SequentialBody<F>),
    Graph(GraphBody<F>),
}

/// Dispatches one call to whichever body the model has.
macro_rules! body {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            Body::Sequential($b) => $e,
            Body::Graph($b) => $e,
        }
    };
}

/// What `compile` sets: the optimizer and the loss.
pub(crate) struct Compiled<F: Element> {
    pub(crate) optimizer: Box<dyn Optimizer<F>>,
    pub(crate) loss: Loss,
}

/// A model: built by [`Sequential`](sequential::Sequential) or
/// [`Functional`](graph::Functional), trained with `fit`, nested as a layer.
pub struct Model<F: Element = f32> {
    name: String,
    trainable: bool,
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
    pub(crate) body: Body<F>,
    pub(crate) compiled: Option<Compiled<F>>,
    /// The trainable path of the last forward, so backward agrees with it.
    last_path: bool,
}

impl<F: Element> std::fmt::Debug for Model<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("trainable", &self.trainable)
            .field("input_shape", &self.input_shape)
            .field("output_shape", &self.output_shape)
            .field("compiled", &self.compiled.is_some())
            .finish_non_exhaustive()
    }
}

/// Picks `base`, or `base_1`, `base_2`, ... if taken, and records it.
pub(crate) fn unique_name(base: &str, taken: &mut Vec<String>) -> String {
    let mut name = base.to_string();
    let mut k = 0;
    while taken.contains(&name) {
        k += 1;
        name = format!("{base}_{k}");
    }
    taken.push(name.clone());
    name
}

impl<F: Element> Model<F> {
    pub(crate) fn from_body(
        name: String,
        input_shape: Vec<usize>,
        output_shape: Vec<usize>,
        body: Body<F>,
    ) -> Self {
        Model {
            name,
            trainable: true,
            input_shape,
            output_shape,
            body,
            compiled: None,
            last_path: true,
        }
    }

    /// The per-sample input shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// The per-sample output shape.
    pub fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn check_batch(&self, x: &ArrayD<F>, expected: &[usize], what: &str) -> Result<()> {
        if x.ndim() != expected.len() + 1 || &x.shape()[1..] != expected {
            return Err(shape_mismatch(
                &format!("model `{}` {what}", self.name),
                format!(
                    "[batch, {}]",
                    expected
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                x.shape(),
            ));
        }
        if x.shape()[0] == 0 {
            return Err(Error::EmptyInput {
                context: format!("model `{}` {what}", self.name),
                shape: x.shape().to_vec(),
            });
        }
        Ok(())
    }

    pub(crate) fn check_input(&self, x: &ArrayD<F>) -> Result<()> {
        self.check_batch(x, &self.input_shape, "input")
    }

    pub(crate) fn check_target(&self, y: &ArrayD<F>) -> Result<()> {
        self.check_batch(y, &self.output_shape, "target")
    }

    /// Runs the model on `x` in `phase` (Keras `model(x, training=...)`). In
    /// `Train` the BatchNorm statistics of effectively trainable layers move.
    pub fn call(&mut self, x: &ArrayD<F>, phase: Phase) -> Result<ArrayD<F>> {
        self.check_input(x)?;
        let y = self.leaving_no_trace_on_error(|m| m.forward(x.clone(), ForwardCtx::top(phase)))?;
        if phase == Phase::Train && self.pending_state_finite() {
            self.commit_state();
        }
        Ok(y)
    }

    /// Runs `f`; if it fails, every noise layer's stream and counters are put
    /// back, so a failed call leaves the model as it found it (SPEC §7).
    pub(crate) fn leaving_no_trace_on_error<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let mut saved: Vec<NoiseCheckpoint> = Vec::new();
        self.for_each_stochastic(&mut |_, s| saved.push(s.checkpoint()));
        let result = f(self);
        if result.is_err() {
            let mut saved = saved.into_iter();
            self.for_each_stochastic(&mut |_, s| s.restore(saved.next().expect("same layers")));
        }
        result
    }

    /// Runs the model in `Eval` (dropout is the identity, BatchNorm uses moving statistics).
    pub fn predict(&mut self, x: &ArrayD<F>) -> Result<ArrayD<F>> {
        self.call(x, Phase::Eval)
    }

    /// Every noise layer's path and counters (dropout and every other layer
    /// with random state), in layer order.
    pub fn noise_stats(&self) -> Vec<(String, NoiseStats)> {
        let mut out = Vec::new();
        self.visit_layers("", &mut |path, layer| {
            if let Some(s) = layer.stochastic() {
                out.push((path.to_string(), s.noise_stats()));
            }
        });
        out
    }

    /// Every dropout layer's path and counters: [`Model::noise_stats`] under
    /// the name the frozen-model question uses. It lists every layer with random
    /// state, so GaussianNoise and GaussianDropout appear too, with
    /// `units_dropped` 0.
    pub fn dropout_stats(&self) -> Vec<(String, NoiseStats)> {
        self.noise_stats()
    }

    /// Calls `f` on every layer with random state inside, with its path.
    pub fn for_each_stochastic(&mut self, f: &mut dyn FnMut(&str, &mut dyn Stochastic)) {
        self.visit_layers_mut("", &mut |path, layer| {
            if let Some(s) = layer.stochastic_mut() {
                f(path, s);
            }
        });
    }

    /// Calls `f` on every layer of type `L` inside, with its path, e.g. to set an
    /// observer on every [`Dropout`](crate::Dropout):
    ///
    /// ```
    /// use nncheck::{Dense, Dropout, Sequential};
    /// let mut m = Sequential::<f32>::new("m").add(Dense::new(2)).add(Dropout::new(0.5).unwrap())
    ///     .build(&[3], Some(1)).unwrap();
    /// let mut paths = Vec::new();
    /// m.for_each_layer::<Dropout<f32>>(&mut |path, _| paths.push(path.to_string()));
    /// assert_eq!(paths, ["m/dropout"]);
    /// ```
    pub fn for_each_layer<L: 'static>(&mut self, f: &mut dyn FnMut(&str, &mut L)) {
        self.visit_layers_mut("", &mut |path, layer| {
            if let Some(l) = layer.as_any_mut().and_then(|a| a.downcast_mut::<L>()) {
                f(path, l);
            }
        });
    }

    /// Reseeds every noise layer from `seed` (in layer order) and restarts their call counts.
    pub fn reseed(&mut self, seed: u64) {
        let mut seeds = SeedSequence::new(Some(seed));
        self.for_each_stochastic(&mut |_, s| s.reseed(seeds.next_seed()));
    }

    /// Sets the trainable flag of this model and of every layer inside.
    pub fn freeze(&mut self) {
        self.set_trainable(false);
    }

    /// Clears the frozen flag of this model and of every layer inside.
    pub fn unfreeze(&mut self) {
        self.set_trainable(true);
    }

    /// Sets `trainable` on the layer or model at `path` (e.g. `model_AB/model_A`),
    /// recursively. A path that names no layer is [`Error::UnknownPath`], and
    /// changes nothing; [`Model::layer_paths`] lists the paths there are.
    ///
    /// ```
    /// use nncheck::{Dense, Error, Sequential};
    /// let mut m = Sequential::<f32>::new("m").add(Dense::new(2)).build(&[3], Some(1)).unwrap();
    /// m.set_trainable_at("m/dense", false).unwrap();
    /// assert!(m.trainable_weights().is_empty());
    /// assert!(matches!(m.set_trainable_at("m/dense_9", true), Err(Error::UnknownPath { .. })));
    /// ```
    pub fn set_trainable_at(&mut self, path: &str, trainable: bool) -> Result<()> {
        let mut found = false;
        self.visit_layers_mut("", &mut |p, layer| {
            if p == path {
                layer.set_trainable(trainable);
                found = true;
            }
        });
        if found {
            Ok(())
        } else {
            Err(Error::UnknownPath {
                model: self.name.clone(),
                what: "layer",
                path: path.to_string(),
            })
        }
    }

    /// The paths of every layer and model inside, this model first.
    pub fn layer_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit_layers("", &mut |p, _| out.push(p.to_string()));
        out
    }
}

impl<F: Element> Layer<F> for Model<F> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, input_shape: &[usize], _: &mut SeedSequence) -> Result<Vec<usize>> {
        if input_shape != self.input_shape.as_slice() {
            return Err(shape_mismatch(
                &format!("model `{}` used as a layer", self.name),
                format!("{:?} (the shape it was built for)", self.input_shape),
                input_shape,
            ));
        }
        Ok(self.output_shape.clone())
    }

    fn forward(&mut self, x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>> {
        self.check_input(&x)?;
        self.last_path = ctx.path_trainable;
        let trainable = self.trainable;
        body!(&mut self.body, b => b.forward(x, ctx, trainable))
    }

    fn backward(&mut self, dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>> {
        let path = self.last_path && self.trainable;
        body!(&mut self.body, b => b.backward(dy, need_input_grad, path))
    }

    fn trainable(&self) -> bool {
        self.trainable
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
        body!(&mut self.body, b => b.layers_mut().for_each(|l| l.set_trainable(trainable)));
    }

    fn visit_weights(&self, prefix: &str, path_trainable: bool, f: &mut WeightVisitor<'_, F>) {
        let prefix = join_path(prefix, &self.name);
        let path = path_trainable && self.trainable;
        body!(&self.body, b => b.visit_weights(&prefix, path, f));
    }

    fn visit_weights_mut(
        &mut self,
        prefix: &str,
        path_trainable: bool,
        f: &mut WeightVisitorMut<'_, F>,
    ) {
        let prefix = join_path(prefix, &self.name);
        let path = path_trainable && self.trainable;
        body!(&mut self.body, b => b.visit_weights_mut(&prefix, path, f));
    }

    fn visit_layers(&self, prefix: &str, f: &mut LayerVisitor<'_, F>) {
        let prefix = join_path(prefix, &self.name);
        f(&prefix, self);
        body!(&self.body, b => b.visit_layers(&prefix, f));
    }

    fn visit_layers_mut(&mut self, prefix: &str, f: &mut LayerVisitorMut<'_, F>) {
        let prefix = join_path(prefix, &self.name);
        f(&prefix, self);
        body!(&mut self.body, b => b.visit_layers_mut(&prefix, f));
    }

    fn commit_state(&mut self) {
        body!(&mut self.body, b => b.layers_mut().for_each(|l| l.commit_state()));
    }

    fn pending_state_finite(&self) -> bool {
        let mut ok = true;
        self.visit_layers("", &mut |path, l| {
            // Skip this model itself (it would recurse forever).
            if path != self.name {
                ok &= l.pending_state_finite();
            }
        });
        ok
    }
}
