//! How models are put together and looked into (SPEC §3, §5): the unique names a
//! model gives its layers, nested models included; reaching a layer of a known
//! type, a nested model too; looking a weight up by path; counting parameters;
//! concatenating only what shares every axis but the last; and a frozen model
//! doing no backward work at all (SPEC §3: a frozen layer's gradients are not
//! computed), even when a layer inside it has its own flag set back to trainable.
//!
//! Two layers written here through the public [`Layer`] trait stand in for a new
//! user's own: one that swaps its two axes (the only way, with the core's layers,
//! to make branches whose leading axes differ) and one that counts its backward
//! calls.

use ndarray::{ArrayD, IxDyn};
use nncheck::layer::{join_path, LayerVisitor, LayerVisitorMut, WeightVisitor, WeightVisitorMut};
use nncheck::optim::Sgd;
use nncheck::phase::ForwardCtx;
use nncheck::rng::SeedSequence;
use nncheck::tensor::bits_equal;
use nncheck::{
    BatchNormalization, Dense, Error, Functional, Layer, Loss, Model, Result, Sequential,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Swaps the two axes of each sample: `[a, b]` in, `[b, a]` out.
struct SwapAxes {
    name: String,
    trainable: bool,
}

impl SwapAxes {
    fn new() -> Self {
        SwapAxes {
            name: "swap_axes".into(),
            trainable: true,
        }
    }
}

impl Layer<f32> for SwapAxes {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn build(&mut self, shape: &[usize], _: &mut SeedSequence) -> Result<Vec<usize>> {
        match shape {
            [a, b] => Ok(vec![*b, *a]),
            _ => Err(Error::ShapeMismatch {
                context: "SwapAxes input".into(),
                expected: "[a, b]".into(),
                got: shape.to_vec(),
            }),
        }
    }
    fn forward(&mut self, x: ArrayD<f32>, _: ForwardCtx) -> Result<ArrayD<f32>> {
        Ok(x.permuted_axes(IxDyn(&[0, 2, 1]))
            .as_standard_layout()
            .to_owned())
    }
    fn backward(&mut self, dy: ArrayD<f32>, need: bool) -> Result<Option<ArrayD<f32>>> {
        Ok(need.then(|| {
            dy.permuted_axes(IxDyn(&[0, 2, 1]))
                .as_standard_layout()
                .to_owned()
        }))
    }
    fn trainable(&self) -> bool {
        self.trainable
    }
    fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
    }
    fn visit_weights(&self, _: &str, _: bool, _: &mut WeightVisitor<'_, f32>) {}
    fn visit_weights_mut(&mut self, _: &str, _: bool, _: &mut WeightVisitorMut<'_, f32>) {}
    fn visit_layers(&self, prefix: &str, f: &mut LayerVisitor<'_, f32>) {
        f(&join_path(prefix, &self.name), self);
    }
    fn visit_layers_mut(&mut self, prefix: &str, f: &mut LayerVisitorMut<'_, f32>) {
        let path = join_path(prefix, &self.name);
        f(&path, self);
    }
}

/// A Dense that counts its backward calls; otherwise the Dense itself.
struct CountingBackward {
    dense: Dense<f32>,
    calls: Arc<AtomicUsize>,
}

impl Layer<f32> for CountingBackward {
    fn name(&self) -> &str {
        self.dense.name()
    }
    fn set_name(&mut self, name: String) {
        self.dense.set_name(name);
    }
    fn build(&mut self, shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        self.dense.build(shape, seeds)
    }
    fn forward(&mut self, x: ArrayD<f32>, ctx: ForwardCtx) -> Result<ArrayD<f32>> {
        self.dense.forward(x, ctx)
    }
    fn backward(&mut self, dy: ArrayD<f32>, need: bool) -> Result<Option<ArrayD<f32>>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.dense.backward(dy, need)
    }
    fn trainable(&self) -> bool {
        self.dense.trainable()
    }
    fn set_trainable(&mut self, trainable: bool) {
        self.dense.set_trainable(trainable);
    }
    fn visit_weights(&self, prefix: &str, path: bool, f: &mut WeightVisitor<'_, f32>) {
        self.dense.visit_weights(prefix, path, f);
    }
    fn visit_weights_mut(&mut self, prefix: &str, path: bool, f: &mut WeightVisitorMut<'_, f32>) {
        self.dense.visit_weights_mut(prefix, path, f);
    }
    fn visit_layers(&self, prefix: &str, f: &mut LayerVisitor<'_, f32>) {
        self.dense.visit_layers(prefix, f);
    }
    fn visit_layers_mut(&mut self, prefix: &str, f: &mut LayerVisitorMut<'_, f32>) {
        self.dense.visit_layers_mut(prefix, f);
    }
}

fn nested(name: &str, seed: u64) -> Model<f32> {
    Sequential::new(name)
        .add(Dense::new(3))
        .build(&[3], Some(seed))
        .expect("build")
}

#[test]
fn nested_models_of_one_name_get_unique_paths() {
    let model = Sequential::new("outer")
        .add(nested("inner", 1))
        .add(nested("inner", 2))
        .build(&[3], Some(3))
        .expect("build");
    assert_eq!(
        model.layer_paths(),
        [
            "outer",
            "outer/inner",
            "outer/inner/dense",
            "outer/inner_1",
            "outer/inner_1/dense",
        ]
    );
    let mut g = Functional::<f32>::new("graph", Some(4));
    let x = g.input(&[3]).expect("input");
    let a = g.apply(nested("inner", 5), x).expect("apply");
    let b = g.apply(nested("inner", 6), x).expect("apply");
    let both = g.concat(&[a, b]).expect("concat");
    let model = g.build(both).expect("build");
    assert_eq!(
        model.layer_paths(),
        [
            "graph",
            "graph/inner",
            "graph/inner/dense",
            "graph/inner_1",
            "graph/inner_1/dense",
        ]
    );
}

#[test]
fn a_nested_model_is_reachable_by_its_type() {
    let mut model = Sequential::new("outer")
        .add(nested("inner", 1))
        .add(Dense::new(2))
        .build(&[3], Some(2))
        .expect("build");
    let mut paths = Vec::new();
    model.for_each_layer::<Model<f32>>(&mut |path, inner| {
        paths.push(format!("{path} {}", inner.layer_paths().len()));
    });
    // The outer model sees itself too: a caller asking for models gets every one.
    assert_eq!(paths, ["outer 4", "outer/inner 2"]);
    let any = Layer::as_any(&model).expect("a model is reachable as Any");
    assert!(any.downcast_ref::<Model<f32>>().is_some());
}

#[test]
fn an_unknown_weight_path_is_an_error_not_another_weight() {
    let model = Sequential::<f32>::new("m")
        .add(Dense::new(2))
        .add(Dense::new(1))
        .build(&[3], Some(1))
        .expect("build");
    for path in ["m/dense/gamma", "m/dense_2/kernel", "m", ""] {
        match model.weight(path) {
            Err(Error::UnknownPath { path: got, .. }) => assert_eq!(got, path),
            other => panic!("weight({path:?}) gave {other:?}"),
        }
    }
    assert_eq!(
        model.weight("m/dense_1/kernel").expect("known").shape(),
        [2, 1]
    );
    assert_eq!(model.weight("m/dense/bias").expect("known").shape(), [2]);
}

#[test]
fn count_params_splits_trainable_from_the_rest() {
    let mut model = Sequential::<f32>::new("m")
        .add(Dense::new(4)) // 3*4 + 4 = 16
        .add(BatchNormalization::new()) // gamma, beta: 8; moving mean, variance: 8
        .add(Dense::new(2)) // 4*2 + 2 = 10
        .build(&[3], Some(1))
        .expect("build");
    assert_eq!(model.count_params(), (34, 8));
    model.set_trainable_at("m/dense", false).expect("path");
    assert_eq!(model.count_params(), (18, 24));
    model.freeze();
    assert_eq!(model.count_params(), (0, 42));
}

#[test]
fn concatenation_needs_every_axis_but_the_last_equal() {
    let mut g = Functional::<f32>::new("g", Some(1));
    let x = g.input(&[2, 3]).expect("input");
    let swapped = g.apply(SwapAxes::new(), x).expect("apply");
    match g.concat(&[x, swapped]) {
        Err(Error::ShapeMismatch { got, .. }) => assert_eq!(got, [3, 2]),
        other => panic!("[2, 3] joined to [3, 2] gave {other:?}"),
    }
    let back = g.apply(SwapAxes::new(), swapped).expect("apply");
    let joined = g.concat(&[x, back]).expect("[2, 3] and [2, 3]");
    let mut model = g.build(joined).expect("build");
    let input = ArrayD::from_shape_fn(vec![1, 2, 3], |i| (i[1] * 3 + i[2]) as f32);
    let y = model.predict(&input).expect("predict");
    assert_eq!(y.shape(), [1, 2, 6]);
    assert_eq!(
        y.iter().copied().collect::<Vec<_>>(),
        [0., 1., 2., 0., 1., 2., 3., 4., 5., 3., 4., 5.]
    );
}

#[test]
fn a_frozen_model_does_no_backward_work_even_with_a_layer_flagged_trainable_inside() {
    let first = Arc::new(AtomicUsize::new(0));
    let second = Arc::new(AtomicUsize::new(0));
    let counting = |name: &str, calls: &Arc<AtomicUsize>| CountingBackward {
        dense: Dense::new(3).named(name),
        calls: Arc::clone(calls),
    };
    let mut model = Sequential::<f32>::new("m")
        .add(counting("first", &first))
        .add(counting("second", &second))
        .build(&[3], Some(1))
        .expect("build");
    model
        .compile(Sgd::new(0.1), Loss::MeanSquaredError)
        .expect("compile");
    let x = ArrayD::from_elem(vec![4, 3], 0.5f32);
    let y = ArrayD::from_elem(vec![4, 3], 1.0f32);

    // The counter sees backward calls when something is trainable.
    model.train_on_batch(&x, &y).expect("step");
    assert_eq!(
        (
            first.load(Ordering::Relaxed),
            second.load(Ordering::Relaxed)
        ),
        (1, 1)
    );

    // Frozen, then one layer's own flag set back: the model on its path still
    // freezes it, so no weight is effectively trainable and no gradient is needed.
    model.freeze();
    model.set_trainable_at("m/first", true).expect("path");
    assert!(model.trainable_weights().is_empty());
    let values = |m: &Model<f32>| -> Vec<ArrayD<f32>> {
        m.weights()
            .iter()
            .map(|w| m.weight(&w.path).expect("listed"))
            .collect()
    };
    let before = values(&model);
    model.train_on_batch(&x, &y).expect("step");
    assert_eq!(
        (
            first.load(Ordering::Relaxed),
            second.load(Ordering::Relaxed)
        ),
        (1, 1)
    );
    assert!(before
        .iter()
        .zip(values(&model))
        .all(|(a, b)| bits_equal(a, &b)));
}
