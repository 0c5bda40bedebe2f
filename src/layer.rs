//! The `Layer` trait every layer and every model implements, and the `Weight` it owns.
//!
//! A layer is small: it builds itself for an input shape, runs forward in a
//! [`ForwardCtx`] (phase and whether its enclosing models are trainable), runs
//! backward, and shows its weights to a visitor together with their *effective*
//! trainability. Freezing is therefore a filter read at every step, not a compiled
//! state (SPEC §3).

use crate::error::Result;
use crate::phase::ForwardCtx;
use crate::rng::SeedSequence;
use crate::stochastic::Stochastic;
use crate::tensor::Element;
use ndarray::ArrayD;
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};

/// A process-unique identity of a weight; optimizer slots are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WeightId(u64);

impl WeightId {
    fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        WeightId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Whether a weight is learned by the optimizer or is internal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightKind {
    /// Learned by gradient descent (Dense kernel and bias, BatchNorm gamma and beta).
    Param,
    /// Updated by the layer itself (BatchNorm moving mean and variance).
    State,
}

/// One named array a layer owns, with its gradient buffer.
#[derive(Debug, Clone)]
pub struct Weight<F: Element> {
    id: WeightId,
    /// The weight's name inside its layer, e.g. `kernel`.
    pub name: &'static str,
    /// Learned or state.
    pub kind: WeightKind,
    /// The current value.
    pub value: ArrayD<F>,
    /// The gradient of the last backward, when it was computed (reused between steps).
    pub grad: Option<ArrayD<F>>,
}

impl<F: Element> Weight<F> {
    /// A new weight with a fresh id.
    pub fn new(name: &'static str, kind: WeightKind, value: ArrayD<F>) -> Self {
        Weight {
            id: WeightId::fresh(),
            name,
            kind,
            value,
            grad: None,
        }
    }

    /// The weight's identity.
    pub fn id(&self) -> WeightId {
        self.id
    }

    /// Writes `grad` into the reusable gradient buffer.
    pub fn set_grad(&mut self, grad: ndarray::ArrayViewD<'_, F>) {
        match &mut self.grad {
            Some(g) if g.shape() == grad.shape() => g.assign(&grad),
            slot => *slot = Some(grad.to_owned()),
        }
    }
}

/// A visitor over weights: the weight's layer path, the weight, and whether it is
/// effectively trainable (its layer and every enclosing model trainable).
pub type WeightVisitor<'v, F> = dyn FnMut(&str, &Weight<F>, bool) + 'v;
/// A visitor over weights, mutable.
pub type WeightVisitorMut<'v, F> = dyn FnMut(&str, &mut Weight<F>, bool) + 'v;
/// A visitor over the layer tree: the layer's path and the layer.
pub type LayerVisitor<'v, F> = dyn FnMut(&str, &dyn Layer<F>) + 'v;
/// A visitor over the layer tree, mutable.
pub type LayerVisitorMut<'v, F> = dyn FnMut(&str, &mut dyn Layer<F>) + 'v;

/// Joins a container path and a child name with `/`.
pub fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The interface of every layer and every (nested) model.
pub trait Layer<F: Element>: Send {
    /// The layer's name (unique inside its model).
    fn name(&self) -> &str;

    /// Renames the layer (a model does it to keep names unique, Keras style `dense_1`).
    fn set_name(&mut self, name: String);

    /// Builds the layer for inputs whose per-sample shape is `input_shape` and
    /// returns the per-sample output shape. Called once; building an already built
    /// layer only checks that the shape matches.
    fn build(&mut self, input_shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>>;

    /// Runs the layer on a batch. Takes the input by value so a layer that leaves
    /// it unchanged (eval-phase dropout) returns it without a copy.
    fn forward(&mut self, x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>>;

    /// Back-propagates `dy` through the last forward. Weight gradients are computed
    /// only for weights that were effectively trainable in that forward; the input
    /// gradient only when `need_input_grad` (else `None`).
    fn backward(&mut self, dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>>;

    /// The layer's own trainable flag.
    fn trainable(&self) -> bool;

    /// Sets the trainable flag; a model sets it on every layer inside, recursively.
    fn set_trainable(&mut self, trainable: bool);

    /// Shows every weight, with its effective trainability under `path_trainable`.
    fn visit_weights(&self, prefix: &str, path_trainable: bool, f: &mut WeightVisitor<'_, F>);

    /// Shows every weight, mutably.
    fn visit_weights_mut(
        &mut self,
        prefix: &str,
        path_trainable: bool,
        f: &mut WeightVisitorMut<'_, F>,
    );

    /// Shows this layer and, for models, every layer inside.
    fn visit_layers(&self, prefix: &str, f: &mut LayerVisitor<'_, F>);

    /// Shows this layer and every layer inside, mutably.
    fn visit_layers_mut(&mut self, prefix: &str, f: &mut LayerVisitorMut<'_, F>);

    /// Applies state computed by the last train forward (BatchNorm moving
    /// statistics). Training calls it only once the whole step is known to be good.
    fn commit_state(&mut self) {}

    /// True when the state the last forward would commit is finite.
    fn pending_state_finite(&self) -> bool {
        true
    }

    /// The layer's random state, when it draws noise in `Train` (dropout and
    /// its kin): counters, reseed, checkpoint and restore. `None` for the rest.
    fn stochastic(&self) -> Option<&dyn Stochastic> {
        None
    }

    /// The layer's random state, mutably.
    fn stochastic_mut(&mut self) -> Option<&mut dyn Stochastic> {
        None
    }

    /// The layer as [`Any`], so a caller can reach a layer of a type it knows
    /// (see [`Model::for_each_layer`](crate::Model::for_each_layer)). The layers
    /// of this crate return themselves; the default is `None`.
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }

    /// The layer as [`Any`], mutably.
    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        None
    }

    /// True when some weight inside is effectively trainable under `path_trainable`.
    fn has_trainable_params(&self, path_trainable: bool) -> bool {
        let mut any = false;
        self.visit_weights("", path_trainable, &mut |_, w, eff| {
            any |= eff && w.kind == WeightKind::Param;
        });
        any
    }
}

/// The methods every leaf layer implements the same way: name, trainable flag and
/// the one-node layer visit. Expects fields `name: String` and `trainable: bool`.
macro_rules! leaf_layer_common {
    () => {
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
        fn trainable(&self) -> bool {
            self.trainable
        }
        fn set_trainable(&mut self, trainable: bool) {
            self.trainable = trainable;
        }
        fn visit_layers(&self, prefix: &str, f: &mut $crate::layer::LayerVisitor<'_, F>) {
            f(&$crate::layer::join_path(prefix, &self.name), self);
        }
        fn visit_layers_mut(
            &mut self,
            prefix: &str,
            f: &mut $crate::layer::LayerVisitorMut<'_, F>,
        ) {
            let path = $crate::layer::join_path(prefix, &self.name);
            f(&path, self);
        }
    };
}
pub(crate) use leaf_layer_common;

/// The methods every noise layer implements the same way: no weights, and its
/// random state (the field named `$noise`, which implements `Stochastic`) shown
/// to the model.
macro_rules! noise_layer_common {
    ($noise:ident) => {
        fn visit_weights(&self, _: &str, _: bool, _: &mut $crate::layer::WeightVisitor<'_, F>) {}
        fn visit_weights_mut(
            &mut self,
            _: &str,
            _: bool,
            _: &mut $crate::layer::WeightVisitorMut<'_, F>,
        ) {
        }
        fn stochastic(&self) -> Option<&dyn $crate::stochastic::Stochastic> {
            Some(&self.$noise)
        }
        fn stochastic_mut(&mut self) -> Option<&mut dyn $crate::stochastic::Stochastic> {
            Some(&mut self.$noise)
        }
    };
}
pub(crate) use noise_layer_common;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, ArrayD};

    /// Reusing the buffer saves an allocation per step; it is only sound while
    /// the shapes agree.
    #[test]
    fn set_grad_reuses_a_buffer_of_the_same_shape_and_replaces_one_of_another() {
        let mut w = Weight::new("kernel", WeightKind::Param, ArrayD::<f32>::zeros(vec![2]));
        w.set_grad(arr1(&[1.0f32, 2.0]).into_dyn().view());
        let before = w.grad.as_ref().map(|g| g.as_ptr());
        w.set_grad(arr1(&[3.0f32, 4.0]).into_dyn().view());
        assert_eq!(
            w.grad.as_ref().map(|g| g.as_ptr()),
            before,
            "same shape: buffer reused"
        );
        assert_eq!(w.grad.as_ref().unwrap().as_slice().unwrap(), &[3.0, 4.0]);
        // A weight whose value was replaced by one of another shape must take the new
        // gradient whole, not broadcast it into the old buffer.
        w.set_grad(arr1(&[5.0f32, 6.0, 7.0]).into_dyn().view());
        assert_eq!(
            w.grad.as_ref().unwrap().as_slice().unwrap(),
            &[5.0, 6.0, 7.0]
        );
    }
}
