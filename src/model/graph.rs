//! The functional model: a graph with one input, layer nodes and concatenations.
//!
//! Serves SPEC §4: a node's pin reaches its own subtree only, so a base model
//! pinned to `Eval` never silences a sibling head's dropout. Backward sums the
//! gradients of branches that share an input and skips every node that has no
//! trainable weight upstream or inside.

use super::concat::{concat_backward, concat_forward, concat_shape};
use super::{unique_name, Body, Model};
use crate::error::{Error, Result};
use crate::layer::{Layer, LayerVisitor, LayerVisitorMut, WeightVisitor, WeightVisitorMut};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::SeedSequence;
use crate::tensor::Element;
use ndarray::ArrayD;

/// A node of a functional model under construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeId(usize);

pub(crate) enum Op<F: Element> {
    Input,
    Layer {
        layer: Box<dyn Layer<F>>,
        input: usize,
        pin: Option<Phase>,
    },
    Concat {
        inputs: Vec<usize>,
    },
}

pub(crate) struct GraphNode<F: Element> {
    op: Op<F>,
    shape: Vec<usize>,
    /// How many later nodes read this node's value (the output counts as one).
    readers: usize,
}

/// The body of a functional model.
pub(crate) struct GraphBody<F: Element> {
    nodes: Vec<GraphNode<F>>,
    output: usize,
}

impl<F: Element> GraphBody<F> {
    pub(crate) fn forward(
        &mut self,
        x: ArrayD<F>,
        ctx: ForwardCtx,
        trainable: bool,
    ) -> Result<ArrayD<F>> {
        let mut values: Vec<Option<ArrayD<F>>> = (0..self.nodes.len()).map(|_| None).collect();
        let mut left: Vec<usize> = self.nodes.iter().map(|n| n.readers).collect();
        // The last reader of a value takes it; earlier readers get a copy.
        let mut take = |values: &mut Vec<Option<ArrayD<F>>>, i: usize| -> ArrayD<F> {
            left[i] -= 1;
            if left[i] == 0 {
                values[i].take().expect("computed before its readers")
            } else {
                values[i].clone().expect("computed before its readers")
            }
        };
        let mut x = Some(x);
        for n in 0..self.nodes.len() {
            let value = match &mut self.nodes[n].op {
                Op::Input => x.take().expect("one input node"),
                Op::Layer { layer, input, pin } => {
                    let input = take(&mut values, *input);
                    layer.forward(input, ctx.child(*pin, trainable))?
                }
                Op::Concat { inputs } => {
                    let parts: Vec<ArrayD<F>> =
                        inputs.iter().map(|&i| take(&mut values, i)).collect();
                    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                    concat_forward(&views)?
                }
            };
            values[n] = Some(value);
        }
        Ok(take(&mut values, self.output))
    }

    pub(crate) fn backward(
        &mut self,
        dy: ArrayD<F>,
        need_input_grad: bool,
        path_trainable: bool,
    ) -> Result<Option<ArrayD<F>>> {
        // wants[n]: does some trainable weight lie at or upstream of node n (or
        // does the caller want dx)? Only such nodes need a gradient.
        let mut wants = vec![false; self.nodes.len()];
        for n in 0..self.nodes.len() {
            wants[n] = match &self.nodes[n].op {
                Op::Input => need_input_grad,
                Op::Layer { layer, input, .. } => {
                    wants[*input] || layer.has_trainable_params(path_trainable)
                }
                Op::Concat { inputs } => inputs.iter().any(|&i| wants[i]),
            };
        }
        let mut grads: Vec<Option<ArrayD<F>>> = (0..self.nodes.len()).map(|_| None).collect();
        grads[self.output] = Some(dy);
        let add = |grads: &mut Vec<Option<ArrayD<F>>>, i: usize, g: ArrayD<F>| {
            grads[i] = Some(match grads[i].take() {
                Some(sum) => sum + g,
                None => g,
            });
        };
        for n in (0..self.nodes.len()).rev() {
            let Some(g) = grads[n].take() else { continue };
            if !wants[n] {
                continue;
            }
            let widths: Vec<usize> = match &self.nodes[n].op {
                Op::Concat { inputs } => inputs
                    .iter()
                    .map(|&i| {
                        *self.nodes[i]
                            .shape
                            .last()
                            .expect("concat inputs have an axis")
                    })
                    .collect(),
                _ => Vec::new(),
            };
            match &mut self.nodes[n].op {
                Op::Input => return Ok(Some(g)),
                Op::Layer { layer, input, .. } => {
                    if let Some(dx) = layer.backward(g, wants[*input])? {
                        add(&mut grads, *input, dx);
                    }
                }
                Op::Concat { inputs } => {
                    for (&i, part) in inputs.iter().zip(concat_backward(&g, &widths)) {
                        if wants[i] {
                            add(&mut grads, i, part);
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    fn layers(&self) -> impl Iterator<Item = &dyn Layer<F>> {
        self.nodes.iter().filter_map(|n| match &n.op {
            Op::Layer { layer, .. } => Some(layer.as_ref()),
            _ => None,
        })
    }

    pub(crate) fn layers_mut(&mut self) -> impl Iterator<Item = &mut Box<dyn Layer<F>>> {
        self.nodes.iter_mut().filter_map(|n| match &mut n.op {
            Op::Layer { layer, .. } => Some(layer),
            _ => None,
        })
    }

    pub(crate) fn visit_weights(&self, prefix: &str, path: bool, f: &mut WeightVisitor<'_, F>) {
        self.layers().for_each(|l| l.visit_weights(prefix, path, f));
    }

    pub(crate) fn visit_weights_mut(
        &mut self,
        prefix: &str,
        path: bool,
        f: &mut WeightVisitorMut<'_, F>,
    ) {
        self.layers_mut()
            .for_each(|l| l.visit_weights_mut(prefix, path, f));
    }

    pub(crate) fn visit_layers(&self, prefix: &str, f: &mut LayerVisitor<'_, F>) {
        self.layers().for_each(|l| l.visit_layers(prefix, f));
    }

    pub(crate) fn visit_layers_mut(&mut self, prefix: &str, f: &mut LayerVisitorMut<'_, F>) {
        self.layers_mut()
            .for_each(|l| l.visit_layers_mut(prefix, f));
    }
}

/// Builds a functional [`Model`] node by node; layers are built as they are applied.
///
/// ```
/// use nncheck::{Functional, Dense, Dropout, Phase};
/// let mut g = Functional::<f32>::new("two_branches", Some(3));
/// let x = g.input(&[4]).unwrap();
/// let a = g.apply(Dense::new(2), x).unwrap();
/// let b = g.apply_pinned(Dropout::new(0.5).unwrap(), x, Phase::Eval).unwrap();
/// let both = g.concat(&[a, b]).unwrap();
/// let y = g.apply(Dense::new(1), both).unwrap();
/// let model = g.build(y).unwrap();
/// assert_eq!(model.output_shape(), &[1]);
/// ```
pub struct Functional<F: Element> {
    name: String,
    seeds: SeedSequence,
    nodes: Vec<GraphNode<F>>,
    taken_names: Vec<String>,
}

impl<F: Element> std::fmt::Debug for Functional<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functional")
            .field("name", &self.name)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl<F: Element> Functional<F> {
    /// A new, empty graph; `seed` pins every initialiser and mask (OS entropy when `None`).
    pub fn new(name: impl Into<String>, seed: Option<u64>) -> Self {
        Functional {
            name: name.into(),
            seeds: SeedSequence::new(seed),
            nodes: Vec::new(),
            taken_names: Vec::new(),
        }
    }

    fn node(&self, id: NodeId) -> Result<&GraphNode<F>> {
        self.nodes.get(id.0).ok_or_else(|| Error::UnknownNode {
            model: self.name.clone(),
            node: id.0,
        })
    }

    /// Declares the model's one input, samples of `shape`.
    ///
    /// Fails with [`Error::EmptySample`] when an axis of `shape` is 0 and with
    /// [`Error::TooLarge`] when a sample would exceed [`crate::MAX_ELEMENTS`].
    pub fn input(&mut self, shape: &[usize]) -> Result<NodeId> {
        if !self.nodes.is_empty() {
            return Err(Error::EmptyModel {
                model: self.name.clone(),
                reason: "input() must be the first node and comes once",
            });
        }
        crate::tensor::checked_sample_shape(&self.name, shape)?;
        self.nodes.push(GraphNode {
            op: Op::Input,
            shape: shape.to_vec(),
            readers: 0,
        });
        Ok(NodeId(0))
    }

    /// Applies `layer` (or a model) to `input`, in the caller's phase.
    pub fn apply(&mut self, layer: impl Layer<F> + 'static, input: NodeId) -> Result<NodeId> {
        self.push_layer(Box::new(layer), input, None)
    }

    /// Applies a layer already boxed (one chosen at run time, as a model read
    /// from a file is) to `input`, in the caller's phase.
    pub fn apply_boxed(&mut self, layer: Box<dyn Layer<F>>, input: NodeId) -> Result<NodeId> {
        self.push_layer(layer, input, None)
    }

    /// Applies `layer` pinned to `phase` (Keras `layer(x, training=...)`).
    pub fn apply_pinned(
        &mut self,
        layer: impl Layer<F> + 'static,
        input: NodeId,
        phase: Phase,
    ) -> Result<NodeId> {
        self.push_layer(Box::new(layer), input, Some(phase))
    }

    fn push_layer(
        &mut self,
        mut layer: Box<dyn Layer<F>>,
        input: NodeId,
        pin: Option<Phase>,
    ) -> Result<NodeId> {
        let in_shape = self.node(input)?.shape.clone();
        let shape = layer.build(&in_shape, &mut self.seeds)?;
        layer.set_name(unique_name(layer.name(), &mut self.taken_names));
        self.nodes[input.0].readers += 1;
        self.nodes.push(GraphNode {
            op: Op::Layer {
                layer,
                input: input.0,
                pin,
            },
            shape,
            readers: 0,
        });
        Ok(NodeId(self.nodes.len() - 1))
    }

    /// Concatenates nodes on the last axis.
    pub fn concat(&mut self, inputs: &[NodeId]) -> Result<NodeId> {
        let shapes = inputs
            .iter()
            .map(|&i| self.node(i).map(|n| n.shape.clone()))
            .collect::<Result<Vec<_>>>()?;
        let shape = concat_shape(&shapes)?;
        for i in inputs {
            self.nodes[i.0].readers += 1;
        }
        self.nodes.push(GraphNode {
            op: Op::Concat {
                inputs: inputs.iter().map(|i| i.0).collect(),
            },
            shape,
            readers: 0,
        });
        Ok(NodeId(self.nodes.len() - 1))
    }

    /// Finishes the model with `output` as its output.
    pub fn build(mut self, output: NodeId) -> Result<Model<F>> {
        self.node(output)?;
        if output.0 == 0 {
            return Err(Error::EmptyModel {
                model: self.name,
                reason: "the output is the input: add a layer",
            });
        }
        self.nodes[output.0].readers += 1;
        let input_shape = self.nodes[0].shape.clone();
        let output_shape = self.nodes[output.0].shape.clone();
        Ok(Model::from_body(
            self.name,
            input_shape,
            output_shape,
            Body::Graph(GraphBody {
                nodes: self.nodes,
                output: output.0,
            }),
        ))
    }
}
