//! Agreement with Keras 3 (SPEC §5b): the core's numerics against reference values
//! computed by Keras 3.16 (JAX backend), in both `f64` and `f32`.
//!
//! The reference files are in `tests/data/`; their README gives the formulas and
//! the tolerances used here: about 1e-12
//! relative per operation and 1e-10 over a whole fit in `f64`, 1e-5 and 1e-4 in
//! `f32` (the summation order differs from Keras). Two groups of float64 values
//! were computed by Keras partly in float32 (loss values and gradients, BatchNorm
//! forward values) and are held to bounds that fit that; see [`Tolerance`]. What
//! this file proves, per element type:
//!
//! - `Dense`: forward output, input gradient, kernel and bias gradients;
//! - every optimizer case (SGD, momentum, Nesterov, momentum with decoupled weight
//!   decay, Adam, AdamW), step by step from the same gradients;
//! - the losses (MSE, binary cross-entropy from probabilities and from logits):
//!   value and gradient;
//! - `BatchNormalization`: a train-phase call with batch statistics, the moving
//!   statistics it commits, an eval call after it, a frozen call in the train phase
//!   (inference mode, nothing moves) and the train-phase gradients;
//! - `fit`: a small MLP trained with SGD and momentum for three epochs: the loss of
//!   each epoch, the final weights and `evaluate`.
//!
//! Every case is read from the data, so a case added to the reference is either
//! checked or makes a test fail (unknown optimizer or argument), never skipped.

use approx::relative_eq;
use ndarray::{ArrayD, Dimension};
use nncheck::optim::{Adam, Optimizer, Sgd};
use nncheck::phase::ForwardCtx;
use nncheck::tensor::bits_equal;
use nncheck::{
    BatchNormalization, Dense, Element, FitConfig, Layer, Loss, Phase, ReLU, Sequential, Weight,
    WeightKind,
};
use serde_json::Value;
use std::collections::HashMap;

/// Tolerances from the reference README: relative, with the same number as an
/// absolute floor for values below 1 in magnitude (`approx::relative_eq`).
#[derive(Debug, Clone, Copy)]
struct Tolerance {
    /// One operation (a layer call, an optimizer step, a backward pass).
    op: f64,
    /// A whole `fit` (many operations, errors accumulate).
    fit: f64,
    /// Loss values and loss gradients. The float64 reference computed them partly
    /// in float32 (its losses ran under Keras' default float32 dtype policy): each
    /// per-sample loss was rounded to float32 before the batch mean, and the loss
    /// gradient carries `1 / batch` rounded to float32 (for the batch of 6 here,
    /// exactly `1 + 2^-25` times too large). Redoing the reference's arithmetic
    /// with those roundings reproduces every one of its loss values bit for bit,
    /// and an exact float64 computation lies within `2^-23` of it; that is the
    /// float64 bound. (The fit's gradients use `1 / 4`, exact in float32, so its
    /// final weights do agree to 1e-10.)
    loss: f64,
    /// BatchNorm forward values (outputs and moving statistics). The float64
    /// reference has float32 numbers here (every one exactly representable in
    /// float32: Keras ran that forward in float32), about 2e-6 relative from the
    /// float64 result; they can only be held to the float32 bound. The BatchNorm
    /// gradients are float64 numbers and are held to `op`.
    bn_forward: f64,
}

const F64_TOLERANCE: Tolerance = Tolerance {
    op: 1e-12,
    fit: 1e-10,
    loss: 1.0 / (1u64 << 23) as f64,
    bn_forward: 1e-5,
};
const F32_TOLERANCE: Tolerance = Tolerance {
    op: 1e-5,
    fit: 1e-4,
    loss: 1e-5,
    bn_forward: 1e-5,
};

/// An element type with its reference file and tolerances.
trait Precision: Element {
    /// The reference file's contents.
    const JSON: &'static str;
    /// The file's `dtype` field.
    const KERAS_DTYPE: &'static str;
    /// The README's tolerances for this type.
    const TOLERANCE: Tolerance;
}

impl Precision for f64 {
    const JSON: &'static str = include_str!("data/keras_reference_float64.json");
    const KERAS_DTYPE: &'static str = "float64";
    const TOLERANCE: Tolerance = F64_TOLERANCE;
}

impl Precision for f32 {
    const JSON: &'static str = include_str!("data/keras_reference_float32.json");
    const KERAS_DTYPE: &'static str = "float32";
    const TOLERANCE: Tolerance = F32_TOLERANCE;
}

// ---------------------------------------------------------------------------
// Reading the reference
// ---------------------------------------------------------------------------

/// The parsed reference for `F`, after checking it is the file for `F`.
fn reference<F: Precision>() -> Value {
    let r: Value = serde_json::from_str(F::JSON).expect("reference file is valid JSON");
    assert_eq!(at(&r, "dtype").as_str(), Some(F::KERAS_DTYPE));
    assert_eq!(at(&r, "keras_version").as_str(), Some("3.16.0"));
    r
}

/// `v[key]`, naming the key when it is missing.
fn at<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key)
        .unwrap_or_else(|| panic!("reference has no `{key}` in {v:.80}"))
}

/// A number of the reference.
fn number(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v:.80}"))
}

/// A nested list of numbers (row-major) as an array, each number rounded once to `F`.
fn array<F: Element>(v: &Value) -> ArrayD<F> {
    let mut shape = Vec::new();
    let mut probe = v;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut flat = Vec::new();
    flatten(v, &mut flat);
    ArrayD::from_shape_vec(shape, flat.into_iter().map(F::round_from).collect())
        .unwrap_or_else(|e| panic!("ragged nested list in the reference: {e}"))
}

fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(number(other)),
    }
}

/// `array(v[key])`.
fn field<F: Element>(v: &Value, key: &str) -> ArrayD<F> {
    array(at(v, key))
}

// ---------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------

fn close(got: f64, want: f64, tol: f64) -> bool {
    relative_eq!(got, want, epsilon = tol, max_relative = tol)
}

/// Every element of `got` within `tol` of `want`; names the worst element otherwise.
#[track_caller]
fn assert_close<F: Element>(what: &str, got: &ArrayD<F>, want: &ArrayD<F>, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "{} {what}: shape", F::NAME);
    let worst = got
        .indexed_iter()
        .zip(want.iter())
        .map(|((index, g), w)| {
            let (g, w) = (Element::to_f64(*g), Element::to_f64(*w));
            (index, g, w, (g - w).abs() / w.abs().max(1.0))
        })
        .filter(|&(_, g, w, _)| !close(g, w, tol))
        .max_by(|a, b| a.3.total_cmp(&b.3));
    if let Some((index, g, w, err)) = worst {
        panic!(
            "{} {what}: element {:?} is {g:e}, Keras gives {w:e} (error {err:.2e} > {tol:e})",
            F::NAME,
            index.slice()
        );
    }
}

#[track_caller]
fn assert_close_scalar<F: Element>(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        close(got, want, tol),
        "{} {what}: {got:e}, Keras gives {want:e} (tolerance {tol:e})",
        F::NAME
    );
}

/// True when `model`'s weights are bit-identical to `before`.
fn weights_are<F: Element>(model: &nncheck::Model<F>, before: &[ArrayD<F>]) -> bool {
    let now = model.get_weights();
    now.len() == before.len() && now.iter().zip(before).all(|(a, b)| bits_equal(a, b))
}

/// The gradient of every weight of `model` with a gradient, by weight name.
fn weight_grads<F: Element>(model: &impl Layer<F>) -> HashMap<&'static str, ArrayD<F>> {
    let mut grads = HashMap::new();
    model.visit_weights("", true, &mut |_, w, _| {
        if let Some(g) = &w.grad {
            grads.insert(w.name, g.clone());
        }
    });
    grads
}

// ---------------------------------------------------------------------------
// The checks, generic over the element type
// ---------------------------------------------------------------------------

fn dense_forward_and_backward<F: Precision>() {
    let r = reference::<F>();
    let d = at(&r, "dense");
    let tol = F::TOLERANCE.op;
    let (x, kernel, bias) = (
        field::<F>(d, "x"),
        field::<F>(d, "kernel"),
        field(d, "bias"),
    );
    let (inputs, units) = (kernel.shape()[0], kernel.shape()[1]);
    let mut model = Sequential::<F>::new("m")
        .add(Dense::new(units))
        .build(&[inputs], Some(0))
        .unwrap();
    model.set_weights(vec![kernel, bias]).unwrap();

    let y = Layer::forward(&mut model, x.clone(), ForwardCtx::top(Phase::Train)).unwrap();
    assert_close("Dense y", &y, &field(d, "y"), tol);
    let dx = Layer::backward(&mut model, field(d, "dy"), true)
        .unwrap()
        .expect("the input gradient was asked for");
    assert_close("Dense dx", &dx, &field(d, "dx"), tol);
    let grads = weight_grads(&model);
    assert_close("Dense dkernel", &grads["kernel"], &field(d, "dkernel"), tol);
    assert_close("Dense dbias", &grads["bias"], &field(d, "dbias"), tol);

    // Dense has no phase-dependent behaviour: predict gives the same numbers.
    let predicted = model.predict(&x).unwrap();
    assert!(
        bits_equal(&predicted, &y),
        "{} Dense: predict != train forward",
        F::NAME
    );
}

/// The optimizer a reference case describes; panics on anything it does not know.
fn optimizer_for<F: Element>(case_name: &str, case: &Value) -> Box<dyn Optimizer<F>> {
    let args = at(case, "args").as_object().expect("`args` is an object");
    let known = ["learning_rate", "momentum", "nesterov", "weight_decay"];
    if let Some(unknown) = args.keys().find(|k| !known.contains(&k.as_str())) {
        panic!("optimizer case `{case_name}`: argument `{unknown}` is not handled by this test");
    }
    let num = |key: &str| args.get(key).map(number);
    let learning_rate = num("learning_rate").expect("every case sets learning_rate");
    let adam = |adam: Adam<F>| -> Box<dyn Optimizer<F>> {
        let defaults = at(case, "defaults");
        assert_eq!(
            adam.epsilon,
            number(at(defaults, "epsilon")),
            "{case_name}: epsilon"
        );
        assert_eq!(
            adam.beta_1,
            number(at(defaults, "beta_1")),
            "{case_name}: beta_1"
        );
        assert_eq!(
            adam.beta_2,
            number(at(defaults, "beta_2")),
            "{case_name}: beta_2"
        );
        Box::new(adam)
    };
    match at(case, "optimizer").as_str() {
        Some("SGD") => Box::new(
            Sgd::<F>::new(learning_rate)
                .momentum(num("momentum").unwrap_or(0.0))
                .nesterov(
                    args.get("nesterov")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                )
                .weight_decay(num("weight_decay").unwrap_or(0.0)),
        ),
        Some("Adam") => {
            adam(Adam::new(learning_rate).weight_decay(num("weight_decay").unwrap_or(0.0)))
        }
        Some("AdamW") => {
            let adamw = Adam::adamw(learning_rate);
            let decay = num("weight_decay").unwrap_or(adamw.weight_decay);
            adam(adamw.weight_decay(decay))
        }
        other => panic!("optimizer case `{case_name}`: unknown optimizer {other:?}"),
    }
}

fn optimizers_step_by_step<F: Precision>() {
    let r = reference::<F>();
    let cases = at(&r, "optimizers")
        .as_object()
        .expect("an object of cases");
    assert_eq!(
        cases.len(),
        6,
        "SGD, momentum, Nesterov, momentum + decay, Adam, AdamW"
    );
    for (name, case) in cases {
        let mut optimizer = optimizer_for::<F>(name, case);
        optimizer.validate().unwrap();
        let mut w = Weight::new("w", WeightKind::Param, field::<F>(case, "w0"));
        let grads = field::<F>(case, "grads");
        let after = field::<F>(case, "weights_after_each_step");
        assert_eq!(
            grads.shape()[0],
            after.shape()[0],
            "{name}: one gradient per step"
        );
        for (step, (g, want)) in grads.outer_iter().zip(after.outer_iter()).enumerate() {
            w.grad = Some(g.to_owned());
            assert!(optimizer.update_is_finite(&w), "{name} step {step}");
            optimizer.apply(&mut w);
            let what = format!("{name} ({}) after step {}", optimizer.name(), step + 1);
            assert_close(&what, &w.value, &want.to_owned(), F::TOLERANCE.op);
            let steps = optimizer.state(w.id()).map(|s| s.steps);
            assert_eq!(steps, Some(step as u64 + 1), "{what}: step count");
        }
    }
}

fn losses_value_and_gradient<F: Precision>() {
    let r = reference::<F>();
    let l = at(&r, "losses");
    let tol = F::TOLERANCE.loss;
    let cases = [
        ("mse", Loss::MeanSquaredError, "y_pred", "grad_wrt_y_pred"),
        (
            "bce_probs",
            Loss::BinaryCrossentropy,
            "y_pred",
            "grad_wrt_y_pred",
        ),
        (
            "bce_logits",
            Loss::BinaryCrossentropyFromLogits,
            "logits",
            "grad_wrt_logits",
        ),
    ];
    assert_eq!(l.as_object().map(|o| o.len()), Some(cases.len()));
    for (key, loss, pred_key, grad_key) in cases {
        let case = at(l, key);
        let (pred, target) = (field::<F>(case, pred_key), field::<F>(case, "y_true"));
        let (value, grad) = loss.value_and_grad(&pred, &target).unwrap();
        assert_close_scalar::<F>(
            &format!("{loss:?} value"),
            value,
            number(at(case, "value")),
            tol,
        );
        assert_close(
            &format!("{loss:?} gradient"),
            &grad,
            &field(case, grad_key),
            tol,
        );
    }
}

/// Binary cross-entropy at exactly its clip bounds, where Keras passes half the
/// gradient (`data/keras_bce_clip_bounds.json`, made by the script beside it;
/// float32, Keras' default dtype).
#[test]
fn bce_at_the_clip_bounds_matches_keras() {
    let r: Value =
        serde_json::from_str(include_str!("data/keras_bce_clip_bounds.json")).expect("valid JSON");
    let (pred, target) = (field::<f32>(&r, "y_pred"), field::<f32>(&r, "y_true"));
    let (value, grad) = Loss::BinaryCrossentropy
        .value_and_grad(&pred, &target)
        .unwrap();
    let tol = F32_TOLERANCE.loss;
    assert_close_scalar::<f32>("BCE value", value, number(at(&r, "value")), tol);
    assert_close("BCE gradient", &grad, &field(&r, "grad_wrt_y_pred"), tol);
}

/// A one-layer BatchNormalization model with the reference's gamma and beta and
/// fresh moving statistics (mean 0, variance 1).
fn batch_norm_model<F: Element>(b: &Value) -> nncheck::Model<F> {
    let (gamma, beta) = (field::<F>(b, "gamma"), field::<F>(b, "beta"));
    let channels = gamma.len();
    let mut model = Sequential::<F>::new("m")
        .add(BatchNormalization::new())
        .build(&[channels], Some(0))
        .unwrap();
    let (zeros, ones) = (ArrayD::zeros(vec![channels]), ArrayD::ones(vec![channels]));
    model.set_weights(vec![gamma, beta, zeros, ones]).unwrap();
    model
}

fn batch_norm_train_eval_frozen_and_gradients<F: Precision>() {
    let r = reference::<F>();
    let b = at(&r, "batch_norm");
    assert_eq!(number(at(b, "momentum")), 0.99);
    assert_eq!(number(at(b, "epsilon")), 1e-3);
    let tol = F::TOLERANCE.op;
    let x = field::<F>(b, "x");
    let forward_tol = F::TOLERANCE.bn_forward;

    // Train phase, effectively trainable: batch statistics, moving statistics committed.
    let mut model = batch_norm_model::<F>(b);
    let y = model.call(&x, Phase::Train).unwrap();
    assert_close(
        "BatchNorm train output",
        &y,
        &field(b, "train_output"),
        forward_tol,
    );
    let w = model.get_weights();
    assert_close("BatchNorm gamma", &w[0], &field(b, "gamma"), 0.0);
    assert_close("BatchNorm beta", &w[1], &field(b, "beta"), 0.0);
    let mean_want = field(b, "moving_mean_after_one_train_call");
    let var_want = field(b, "moving_variance_after_one_train_call");
    assert_close("BatchNorm moving mean", &w[2], &mean_want, forward_tol);
    assert_close("BatchNorm moving variance", &w[3], &var_want, forward_tol);

    // Eval after it: the moving statistics, nothing moves.
    let eval = model.predict(&x).unwrap();
    assert_close(
        "BatchNorm eval output",
        &eval,
        &field(b, "eval_output_after_that_call"),
        forward_tol,
    );
    assert!(
        weights_are(&model, &w),
        "{} BatchNorm: weights moved",
        F::NAME
    );

    // Frozen, train phase: inference mode (Keras TF 2.0+), nothing moves. The
    // reference froze the layer after the train call above (its frozen output
    // equals its eval output), so this freezes the same model.
    model.set_trainable(false);
    let frozen = model.call(&x, Phase::Train).unwrap();
    let frozen_want = field(b, "frozen_train_phase_output");
    assert_close(
        "BatchNorm frozen train-phase output",
        &frozen,
        &frozen_want,
        forward_tol,
    );
    assert!(
        bits_equal(&frozen, &eval),
        "frozen train phase == eval, bit for bit"
    );
    assert!(
        weights_are(&model, &w),
        "{} BatchNorm: weights moved",
        F::NAME
    );

    // The same on a fresh model frozen before any call: it runs on the initial
    // moving statistics, exactly as predict does, and changes nothing.
    let mut fresh = batch_norm_model::<F>(b);
    fresh.set_trainable(false);
    let before = fresh.get_weights();
    let frozen = fresh.call(&x, Phase::Train).unwrap();
    assert!(bits_equal(&frozen, &fresh.predict(&x).unwrap()));
    assert!(
        weights_are(&fresh, &before),
        "{} BatchNorm: weights moved",
        F::NAME
    );

    // Train-phase gradients (the batch statistics depend on x).
    let mut model = batch_norm_model::<F>(b);
    Layer::forward(&mut model, x, ForwardCtx::top(Phase::Train)).unwrap();
    let dx = Layer::backward(&mut model, field(b, "dy"), true)
        .unwrap()
        .expect("the input gradient was asked for");
    assert_close("BatchNorm train dx", &dx, &field(b, "train_dx"), tol);
    let grads = weight_grads(&model);
    assert_close(
        "BatchNorm dgamma",
        &grads["gamma"],
        &field(b, "train_dgamma"),
        tol,
    );
    assert_close(
        "BatchNorm dbeta",
        &grads["beta"],
        &field(b, "train_dbeta"),
        tol,
    );
    assert!(!grads.contains_key("moving_mean") && !grads.contains_key("moving_variance"));
}

fn fit_sgd_momentum_mse<F: Precision>() {
    let r = reference::<F>();
    let f = at(&r, "fit");
    assert_eq!(
        at(f, "layers").as_str(),
        Some("Dense(3->4, relu) -> Dense(4->1)")
    );
    assert_eq!(at(f, "loss").as_str(), Some("mse"));
    assert_eq!(at(f, "shuffle").as_bool(), Some(false));
    let sgd = at(at(f, "optimizer"), "SGD");
    let (learning_rate, momentum) = (
        number(at(sgd, "learning_rate")),
        number(at(sgd, "momentum")),
    );
    let epochs = at(f, "epochs").as_u64().expect("an integer") as usize;
    let batch_size = at(f, "batch_size").as_u64().expect("an integer") as usize;
    let tol = F::TOLERANCE.fit;
    let loss_tol = tol.max(F::TOLERANCE.loss);

    let (x, y) = (field::<F>(f, "x"), field::<F>(f, "y"));
    let init = at(f, "init");
    let mut model = Sequential::<F>::new("mlp")
        .add(Dense::new(4))
        .add(ReLU::new())
        .add(Dense::new(1))
        .build(&[3], Some(0))
        .unwrap();
    let keys = ["kernel1", "bias1", "kernel2", "bias2"];
    model
        .set_weights(keys.iter().map(|k| field(init, k)).collect())
        .unwrap();
    model
        .compile(
            Sgd::<F>::new(learning_rate).momentum(momentum),
            Loss::MeanSquaredError,
        )
        .unwrap();
    let config = FitConfig {
        epochs,
        batch_size,
        shuffle: false,
        seed: Some(0),
    };
    let history = model.fit(&x, &y, &config).unwrap();

    let want = at(f, "all_trainable");
    let losses = field::<f64>(want, "loss_per_epoch");
    assert_eq!(history.loss.len(), losses.len());
    for (epoch, (&got, &want)) in history.loss.iter().zip(losses.iter()).enumerate() {
        let what = format!("fit loss of epoch {epoch}");
        assert_close_scalar::<F>(&what, got, want, loss_tol);
    }
    for (key, got) in keys.iter().zip(model.get_weights()) {
        assert_close(&format!("fit final {key}"), &got, &field(want, key), tol);
    }
    let evaluated = model.evaluate(&x, &y).unwrap();
    assert_close_scalar::<F>(
        "evaluate loss",
        evaluated,
        number(at(want, "evaluate_loss")),
        loss_tol,
    );
}

/// One test per element type for each check: `<check>::f64` and `<check>::f32`.
macro_rules! in_both_precisions {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[test]
            fn f64() {
                super::$check::<f64>();
            }
            #[test]
            fn f32() {
                super::$check::<f32>();
            }
        }
    )*};
}

in_both_precisions!(
    dense_forward_and_backward,
    optimizers_step_by_step,
    losses_value_and_gradient,
    batch_norm_train_eval_frozen_and_gradients,
    fit_sgd_momentum_mse,
);
