//! A stack of layers, each fed the previous one's output.
//!
//! Serves SPEC §3 and §4: each node hands its child the resolved phase (its pin,
//! else the caller's) and the AND of the trainable path; backward stops at the
//! first layer below which nothing is trainable, so a frozen base costs no
//! backward pass at all.

use super::{unique_name, Model};
use crate::error::{Error, Result};
use crate::layer::{Layer, LayerVisitor, LayerVisitorMut, WeightVisitor, WeightVisitorMut};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::SeedSequence;
use crate::tensor::Element;
use ndarray::ArrayD;

/// The body of a sequential model: layers with optional phase pins.
pub(crate) struct SequentialBody<F: Element> {
    pub(crate) nodes: Vec<(Box<dyn Layer<F>>, Option<Phase>)>,
}

impl<F: Element> SequentialBody<F> {
    pub(crate) fn forward(
        &mut self,
        mut x: ArrayD<F>,
        ctx: ForwardCtx,
        trainable: bool,
    ) -> Result<ArrayD<F>> {
        for (layer, pin) in &mut self.nodes {
            x = layer.forward(x, ctx.child(*pin, trainable))?;
        }
        Ok(x)
    }

    pub(crate) fn backward(
        &mut self,
        mut dy: ArrayD<F>,
        need_input_grad: bool,
        path_trainable: bool,
    ) -> Result<Option<ArrayD<F>>> {
        // needs_grad_below[i]: does anything at or before layer i-1 (or the caller) want dx of layer i?
        let mut needs_grad_below = Vec::with_capacity(self.nodes.len());
        let mut any = need_input_grad;
        for (layer, _) in &self.nodes {
            needs_grad_below.push(any);
            any |= layer.has_trainable_params(path_trainable);
        }
        for (i, (layer, _)) in self.nodes.iter_mut().enumerate().rev() {
            let want_dx = needs_grad_below[i];
            if !want_dx && !layer.has_trainable_params(path_trainable) {
                return Ok(None);
            }
            match layer.backward(dy, want_dx)? {
                Some(dx) => dy = dx,
                None => return Ok(None),
            }
        }
        Ok(Some(dy))
    }

    pub(crate) fn visit_weights(&self, prefix: &str, path: bool, f: &mut WeightVisitor<'_, F>) {
        for (layer, _) in &self.nodes {
            layer.visit_weights(prefix, path, f);
        }
    }

    pub(crate) fn visit_weights_mut(
        &mut self,
        prefix: &str,
        path: bool,
        f: &mut WeightVisitorMut<'_, F>,
    ) {
        for (layer, _) in &mut self.nodes {
            layer.visit_weights_mut(prefix, path, f);
        }
    }

    pub(crate) fn visit_layers(&self, prefix: &str, f: &mut LayerVisitor<'_, F>) {
        for (layer, _) in &self.nodes {
            layer.visit_layers(prefix, f);
        }
    }

    pub(crate) fn visit_layers_mut(&mut self, prefix: &str, f: &mut LayerVisitorMut<'_, F>) {
        for (layer, _) in &mut self.nodes {
            layer.visit_layers_mut(prefix, f);
        }
    }

    pub(crate) fn layers_mut(&mut self) -> impl Iterator<Item = &mut Box<dyn Layer<F>>> {
        self.nodes.iter_mut().map(|(l, _)| l)
    }
}

/// Builds a sequential [`Model`]: `Sequential::new(name).add(..).add(..).build(shape, seed)`.
///
/// ```
/// use nncheck::{Sequential, Dense, Dropout, ReLU, Phase};
/// let model = Sequential::<f32>::new("mlp")
///     .add(Dense::new(8))
///     .add(ReLU::new())
///     .add_pinned(Dropout::new(0.5).unwrap(), Phase::Train) // Monte-Carlo dropout
///     .add(Dense::new(1))
///     .build(&[4], Some(42))
///     .unwrap();
/// assert_eq!(model.output_shape(), &[1]);
/// ```
pub struct Sequential<F: Element> {
    name: String,
    nodes: Vec<(Box<dyn Layer<F>>, Option<Phase>)>,
}

impl<F: Element> std::fmt::Debug for Sequential<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layers: Vec<&str> = self.nodes.iter().map(|(l, _)| l.name()).collect();
        f.debug_struct("Sequential")
            .field("name", &self.name)
            .field("layers", &layers)
            .finish_non_exhaustive()
    }
}

impl<F: Element> Sequential<F> {
    /// An empty stack named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Sequential {
            name: name.into(),
            nodes: Vec::new(),
        }
    }

    /// Appends a layer (or a model) that runs in the caller's phase.
    #[allow(clippy::should_implement_trait)] // Keras' name; not arithmetic
    pub fn add(mut self, layer: impl Layer<F> + 'static) -> Self {
        self.nodes.push((Box::new(layer), None));
        self
    }

    /// Appends a layer already boxed (one chosen at run time, as a model read
    /// from a file is), in the caller's phase.
    pub fn add_boxed(mut self, layer: Box<dyn Layer<F>>) -> Self {
        self.nodes.push((layer, None));
        self
    }

    /// Appends a layer pinned to `phase` (Keras `layer(x, training=...)`); the pin
    /// covers that layer's subtree only.
    pub fn add_pinned(mut self, layer: impl Layer<F> + 'static, phase: Phase) -> Self {
        self.nodes.push((Box::new(layer), Some(phase)));
        self
    }

    /// Builds every layer for samples of `input_shape`, drawing initialiser and
    /// mask seeds from `seed` (OS entropy when `None`).
    ///
    /// Fails with [`Error::EmptySample`] when an axis of `input_shape` is 0, with
    /// [`Error::TooLarge`] when a sample would exceed [`crate::MAX_ELEMENTS`], and
    /// with the first layer's error when a layer does not fit its input.
    pub fn build(mut self, input_shape: &[usize], seed: Option<u64>) -> Result<Model<F>> {
        if self.nodes.is_empty() {
            return Err(Error::EmptyModel {
                model: self.name,
                reason: "a sequential model needs at least one layer",
            });
        }
        crate::tensor::checked_sample_shape(&self.name, input_shape)?;
        let mut seeds = SeedSequence::new(seed);
        let mut taken = Vec::new();
        let mut shape = input_shape.to_vec();
        for (layer, _) in &mut self.nodes {
            let name = unique_name(layer.name(), &mut taken);
            layer.set_name(name);
            shape = layer.build(&shape, &mut seeds)?;
        }
        Ok(Model::from_body(
            self.name,
            input_shape.to_vec(),
            shape,
            super::Body::Sequential(SequentialBody { nodes: self.nodes }),
        ))
    }
}
