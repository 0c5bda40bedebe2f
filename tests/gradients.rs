//! Finite-difference gradient checks (SPEC §6): every backward pass of the core
//! agrees with central differences in `f64`.
//!
//! For a model `f` and a fixed random `R` of the output's shape, the scalar
//! objective is `L(x, W) = sum(f(x; W) * R)`. Its analytic gradients are the
//! input gradient returned by `Layer::backward(model, R, true)` and the weight
//! gradients left in `Weight::grad`; its numeric gradients are central
//! differences `(L(v + eps) - L(v - eps)) / (2 eps)` with `eps = 1e-6`, one scalar
//! at a time, inputs perturbed directly and weights through `get_weights` /
//! `set_weights`. They must agree to a relative error of at most `1e-6` (defined
//! at [`relative_errors`]). Properties run 32 proptest cases from a fixed seed
//! (`tests/common`); `PROPTEST_CASES` and `PROPTEST_RNG_SEED` widen the search.
//!
//! What this file proves:
//! - `Dense`: input, kernel and bias gradients;
//! - `ReLU`: the input gradient away from the kink (inputs with `|x| > 0.1`);
//! - `BatchNormalization` in train mode (batch statistics; repeated train forwards
//!   only *propose* moving statistics, so the objective is a pure function) and in
//!   inference mode (frozen in the `Train` phase, and trainable in `Eval`);
//! - `Dropout` with its mask held fixed (every forward is call 0 after a reseed),
//!   with and without a noise shape, at rates 0 and 1 included;
//! - the three losses against their own values;
//! - a whole `Sequential` (Dense → BN → ReLU → Dropout → Dense) and a `Functional`
//!   whose two branches (one a nested model) share the input and are concatenated
//!   under a Dense head: the input gradient and every weight gradient;
//! - a frozen middle layer (Dense, BatchNorm or a nested model with dropout) still
//!   passes the gradient to the first layer, whose gradients match finite
//!   differences, while the frozen weights' `Weight::grad` stays `None`.

use ndarray::ArrayD;
use nncheck::phase::ForwardCtx;
use nncheck::{
    BatchNormalization, Dense, Dropout, Functional, Layer, Loss, Model, Phase, ReLU, Sequential,
    WeightKind,
};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;

/// The finite-difference step (SPEC §6: about 1e-6).
const EPS: f64 = 1e-6;
/// The largest relative error accepted for smooth layers (SPEC §6).
const TOLERANCE: f64 = 1e-6;
/// The denominator floor of [`max_relative_error`], relative to the gradient's scale.
const FLOOR: f64 = 1e-2;

/// The relative error of each part of a gradient (`a` analytic, `n` numeric),
/// given in parts of matching shapes: the input's, then each checked weight's.
///
/// Relative error of one component: `|a - n| / max(|a|, |n|, floor)`, the part's
/// error is the largest over its components, and
///
/// ```text
/// floor = 1e-2 * max(1, S),   S = the largest |n| over every part
/// ```
///
/// Components at or above the floor are held to a plain relative `1e-6`. The
/// floor exists because central differences in `f64` with `eps = 1e-6` carry a
/// rounding noise of about `1e-16 / 1e-6` times the size of the values inside
/// the forward, times how much the network amplifies them — which is the size of
/// its largest gradient, `S` (plus a truncation error of `eps^2 / 6` times the
/// third derivative in the nonlinear layers). A component far below that scale
/// (a BatchNorm input gradient at batch 2, or a Dense bias feeding a train-mode
/// BatchNorm, whose true gradient is exactly 0) cannot be resolved to `1e-6` of
/// itself, so it is held to `1e-6` of the floor instead: an absolute
/// `1e-8 * max(1, S)`. Measured over 3000 cases of every property here, the
/// largest `|a - n| / max(1, S)` was about `2e-9`. Any real error in a backward
/// formula is orders of magnitude above either bound.
fn relative_errors(analytic: &[ArrayD<f64>], numeric: &[ArrayD<f64>]) -> Vec<f64> {
    assert_eq!(analytic.len(), numeric.len(), "gradient parts differ");
    let scale = numeric
        .iter()
        .flat_map(|part| part.iter())
        .fold(1.0f64, |m, v| m.max(v.abs()));
    let floor = FLOOR * scale;
    analytic
        .iter()
        .zip(numeric)
        .map(|(a, n)| {
            assert_eq!(a.shape(), n.shape(), "gradient shapes differ");
            a.iter()
                .zip(n.iter())
                .map(|(&a, &n)| (a - n).abs() / a.abs().max(n.abs()).max(floor))
                .fold(0.0, f64::max)
        })
        .collect()
}

/// The largest relative error over every component of a gradient given in parts
/// (the definition is at [`relative_errors`]).
fn max_relative_error(analytic: &[ArrayD<f64>], numeric: &[ArrayD<f64>]) -> f64 {
    relative_errors(analytic, numeric)
        .into_iter()
        .fold(0.0, f64::max)
}

/// A seeded array with entries uniform in (-1, 1).
fn random_array(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0..1.0))
}

/// A seeded array whose entries are at least `0.1` away from 0 (ReLU kinks).
fn away_from_zero(shape: &[usize], seed: u64) -> ArrayD<f64> {
    random_array(shape, seed).mapv(|v| v.signum() * (0.1 + 0.9 * v.abs()))
}

/// How the objective runs the model.
#[derive(Debug, Clone, Copy)]
struct Setup {
    /// The phase of every forward.
    phase: Phase,
    /// When set, `model.reseed(seed)` runs before every forward, so each forward
    /// is call 0 of every dropout layer: the mask is the same every time.
    dropout_seed: Option<u64>,
}

impl Setup {
    fn train() -> Self {
        Setup {
            phase: Phase::Train,
            dropout_seed: None,
        }
    }

    fn train_with_mask(seed: u64) -> Self {
        Setup {
            phase: Phase::Train,
            dropout_seed: Some(seed),
        }
    }
}

/// Runs one forward as the objective sees it (no state is committed).
fn run_forward(model: &mut Model<f64>, x: &ArrayD<f64>, setup: Setup) -> ArrayD<f64> {
    if let Some(seed) = setup.dropout_seed {
        model.reseed(seed);
    }
    Layer::forward(model, x.clone(), ForwardCtx::top(setup.phase)).expect("forward")
}

/// `L = sum(forward(x) * R)`.
fn objective(model: &mut Model<f64>, x: &ArrayD<f64>, r: &ArrayD<f64>, setup: Setup) -> f64 {
    let y = run_forward(model, x, setup);
    assert_eq!(y.shape(), r.shape(), "R has the output's shape");
    (&y * r).sum()
}

/// The central difference `(L(+eps) - L(-eps)) / (2 eps)` from the two outputs.
///
/// By linearity this is `sum((y+ - y-) * R) / (2 eps)`, which is how it is
/// evaluated: the outputs are subtracted before the sum, so the sum's own rounding
/// (of size `ulp(L)`) does not enter the difference, only the outputs' rounding.
fn central_difference(plus: &ArrayD<f64>, minus: &ArrayD<f64>, r: &ArrayD<f64>) -> f64 {
    assert_eq!(plus.shape(), r.shape(), "R has the output's shape");
    ((plus - minus) * r).sum() / (2.0 * EPS)
}

/// One weight after the analytic pass.
#[derive(Debug)]
struct WeightGrad {
    /// `model/layer/name`.
    path: String,
    kind: WeightKind,
    effective: bool,
    grad: Option<ArrayD<f64>>,
}

/// The analytic gradients of `L` at the model's current weights.
struct Analytic {
    input: ArrayD<f64>,
    /// In `get_weights` order.
    weights: Vec<WeightGrad>,
}

fn analytic_gradients(
    model: &mut Model<f64>,
    x: &ArrayD<f64>,
    r: &ArrayD<f64>,
    setup: Setup,
) -> Analytic {
    // Clear every gradient buffer, so what is there afterwards was computed now.
    Layer::visit_weights_mut(model, "", true, &mut |_, w, _| w.grad = None);
    let y = run_forward(model, x, setup);
    assert_eq!(y.shape(), r.shape(), "R has the output's shape");
    if setup.dropout_seed.is_some() {
        model.for_each_layer::<Dropout<f64>>(&mut |path, d| {
            assert_eq!(d.calls(), 1, "{path}: the analytic forward was call 0");
        });
    }
    let input = Layer::backward(model, r.clone(), true)
        .expect("backward")
        .expect("the input gradient was requested");
    let mut weights = Vec::new();
    Layer::visit_weights(model, "", true, &mut |path, w, eff| {
        weights.push(WeightGrad {
            path: format!("{path}/{}", w.name),
            kind: w.kind,
            effective: eff,
            grad: w.grad.clone(),
        });
    });
    Analytic { input, weights }
}

/// Scalar `i` (row-major) of a standard-layout array.
fn scalar(a: &mut ArrayD<f64>, i: usize) -> &mut f64 {
    &mut a.as_slice_mut().expect("standard layout")[i]
}

/// Central differences of `L` with respect to every input scalar.
fn numeric_input_gradient(
    model: &mut Model<f64>,
    x: &ArrayD<f64>,
    r: &ArrayD<f64>,
    setup: Setup,
) -> ArrayD<f64> {
    let mut grad = ArrayD::zeros(x.raw_dim());
    let mut probe = x.as_standard_layout().into_owned();
    for i in 0..probe.len() {
        let original = *scalar(&mut probe, i);
        *scalar(&mut probe, i) = original + EPS;
        let plus = run_forward(model, &probe, setup);
        *scalar(&mut probe, i) = original - EPS;
        let minus = run_forward(model, &probe, setup);
        *scalar(&mut probe, i) = original;
        *scalar(&mut grad, i) = central_difference(&plus, &minus, r);
    }
    grad
}

/// Central differences of `L` with respect to every scalar of weight `k`
/// (in `get_weights` order); the weights are restored afterwards.
fn numeric_weight_gradient(
    model: &mut Model<f64>,
    k: usize,
    x: &ArrayD<f64>,
    r: &ArrayD<f64>,
    setup: Setup,
) -> ArrayD<f64> {
    let base = model.get_weights();
    let mut grad = ArrayD::zeros(base[k].raw_dim());
    for j in 0..base[k].len() {
        let mut shifted = |delta: f64| {
            let mut weights = base.clone();
            *scalar(&mut weights[k], j) += delta;
            model.set_weights(weights).expect("same shapes");
            run_forward(model, x, setup)
        };
        let plus = shifted(EPS);
        let minus = shifted(-EPS);
        *scalar(&mut grad, j) = central_difference(&plus, &minus, r);
    }
    model.set_weights(base).expect("restore");
    grad
}

/// What a full check found.
#[derive(Debug)]
struct GradReport {
    /// The analytic input gradient.
    input: ArrayD<f64>,
    /// `(path, max relative error)` of every weight checked.
    checked: Vec<(String, f64)>,
    /// Paths of the weights whose gradient was (rightly) not computed.
    not_computed: Vec<String>,
}

/// Checks the input gradient and every effectively trainable parameter's gradient
/// against central differences, and that nothing else got a gradient.
fn check_gradients(
    model: &mut Model<f64>,
    x: &ArrayD<f64>,
    r_seed: u64,
    setup: Setup,
) -> GradReport {
    let mut out_shape = vec![x.shape()[0]];
    out_shape.extend_from_slice(model.output_shape());
    let r = random_array(&out_shape, r_seed);

    // The objective is a pure function of (x, W): two evaluations agree bit for bit
    // (same dropout mask, BatchNorm statistics proposed but never committed).
    let first = objective(model, x, &r, setup);
    let second = objective(model, x, &r, setup);
    assert_eq!(
        first.to_bits(),
        second.to_bits(),
        "the objective is deterministic"
    );

    let analytic = analytic_gradients(model, x, &r, setup);
    // Part 0 is the input; then every effectively trainable parameter.
    let mut names = vec!["input".to_string()];
    let mut analytic_parts = vec![analytic.input.clone()];
    let mut numeric_parts = vec![numeric_input_gradient(model, x, &r, setup)];
    let mut report = GradReport {
        input: analytic.input.clone(),
        checked: Vec::new(),
        not_computed: Vec::new(),
    };
    for (k, w) in analytic.weights.iter().enumerate() {
        if w.kind == WeightKind::Param && w.effective {
            let grad = w
                .grad
                .as_ref()
                .unwrap_or_else(|| panic!("{}: trainable, but no gradient computed", w.path));
            names.push(w.path.clone());
            analytic_parts.push(grad.clone());
            numeric_parts.push(numeric_weight_gradient(model, k, x, &r, setup));
        } else {
            assert!(
                w.grad.is_none(),
                "{} ({:?}, effectively trainable: {}) got a gradient",
                w.path,
                w.kind,
                w.effective
            );
            report.not_computed.push(w.path.clone());
        }
    }
    let errors = relative_errors(&analytic_parts, &numeric_parts);
    for (((name, err), a), n) in names
        .iter()
        .zip(&errors)
        .zip(&analytic_parts)
        .zip(&numeric_parts)
    {
        assert!(
            *err <= TOLERANCE,
            "{name}: relative error {err:e}\nanalytic {a:?}\nnumeric {n:?}"
        );
    }
    report.checked = names.into_iter().zip(errors).skip(1).collect();
    report
}

/// A one-layer sequential model named `m`.
fn single(layer: impl Layer<f64> + 'static, input: &[usize], seed: u64) -> Model<f64> {
    Sequential::new("m")
        .add(layer)
        .build(input, Some(seed))
        .expect("build")
}

/// Replaces every weight with seeded random values: Dense kernels with
/// magnitudes in (0.3, 1) (a tiny kernel would make a following BatchNorm divide
/// by a tiny batch deviation, amplifying rounding noise far beyond the check's
/// resolution), gamma in (0.5, 1.5), moving variance in (0.1, 0.9), everything
/// else in (-1, 1).
fn randomise_weights(model: &mut Model<f64>, seed: u64) {
    let mut names = Vec::new();
    Layer::visit_weights(model, "", true, &mut |_, w, _| names.push(w.name));
    let weights = model
        .get_weights()
        .iter()
        .zip(names)
        .enumerate()
        .map(|(k, (w, name))| {
            let noise = random_array(w.shape(), seed.wrapping_add(k as u64));
            match name {
                "kernel" => noise.mapv(|v| v.signum() * (0.3 + 0.7 * v.abs())),
                "gamma" => noise.mapv(|v| 1.0 + 0.5 * v),
                "moving_variance" => noise.mapv(|v| 0.5 + 0.4 * v),
                _ => noise,
            }
        })
        .collect();
    model.set_weights(weights).expect("same shapes");
}

proptest! {
    #![proptest_config(common::config(256))]

    #[test]
    fn dense_input_kernel_and_bias_gradients_match(
        batch in 1usize..6,
        inputs in 1usize..6,
        units in 1usize..6,
        seed in any::<u64>(),
    ) {
        let mut model = single(Dense::new(units), &[inputs], seed);
        randomise_weights(&mut model, seed ^ 1);
        let x = random_array(&[batch, inputs], seed ^ 2);
        let report = check_gradients(&mut model, &x, seed ^ 3, Setup::train());
        prop_assert_eq!(report.checked.len(), 2);
    }

    #[test]
    fn relu_input_gradient_matches_away_from_the_kink(
        batch in 1usize..6,
        width in 1usize..8,
        seed in any::<u64>(),
    ) {
        let mut model = single(ReLU::new(), &[width], seed);
        let x = away_from_zero(&[batch, width], seed ^ 1);
        let report = check_gradients(&mut model, &x, seed ^ 2, Setup::train());
        // Exactly R where the input is positive, exactly 0 where it is negative.
        let r = random_array(&[batch, width], seed ^ 2);
        for ((&g, &xv), &rv) in report.input.iter().zip(x.iter()).zip(r.iter()) {
            prop_assert_eq!(g, if xv > 0.0 { rv } else { 0.0 });
        }
    }

    #[test]
    fn batch_norm_train_mode_gradients_use_batch_statistics(
        batch in 2usize..8,
        channels in 1usize..5,
        seed in any::<u64>(),
    ) {
        let mut model = single(BatchNormalization::new(), &[channels], seed);
        randomise_weights(&mut model, seed ^ 1);
        let before = model.get_weights();
        let x = random_array(&[batch, channels], seed ^ 2).mapv(|v| 3.0 * v + 0.5);
        // Away from the singular batch (variance -> 0), where the derivatives of
        // order 3 grow like (var + 1e-3)^(-3/2) and so does the central
        // difference's truncation error.
        let min_var = x.var_axis(ndarray::Axis(0), 0.0).fold(f64::INFINITY, |m, &v| m.min(v));
        prop_assume!(min_var > 0.05, "a channel with batch variance {}", min_var);
        let report = check_gradients(&mut model, &x, seed ^ 3, Setup::train());
        let mut checked: Vec<_> = report.checked.iter().map(|(p, _)| p.as_str()).collect();
        checked.sort_unstable();
        prop_assert_eq!(checked, vec!["m/batch_normalization/beta", "m/batch_normalization/gamma"]);
        // Batch statistics: shifting a channel's inputs changes nothing, so the
        // input gradient of every channel sums to 0 over the batch.
        for (c, column) in report.input.columns().into_iter().enumerate() {
            let scale = column.iter().map(|v| v.abs()).sum::<f64>().max(1.0);
            prop_assert!(column.sum().abs() <= 1e-12 * scale, "channel {}: {}", c, column.sum());
        }
        // Hundreds of train forwards proposed moving statistics; none was committed.
        let after = model.get_weights();
        prop_assert!(before.iter().zip(&after).all(|(a, b)| nncheck::tensor::bits_equal(a, b)));
    }

    #[test]
    fn batch_norm_inference_mode_gradients_use_moving_statistics(
        batch in 1usize..8,
        channels in 1usize..5,
        frozen in any::<bool>(),
        seed in any::<u64>(),
    ) {
        // Inference mode two ways: frozen in the Train phase (Keras: a frozen
        // BatchNorm runs in inference mode), or trainable in the Eval phase.
        let mut model = single(BatchNormalization::new(), &[channels], seed);
        randomise_weights(&mut model, seed ^ 1);
        let setup = if frozen {
            model.set_trainable_at("m/batch_normalization", false).expect("a layer at that path");
            Setup::train()
        } else {
            Setup { phase: Phase::Eval, dropout_seed: None }
        };
        let x = random_array(&[batch, channels], seed ^ 2);
        let report = check_gradients(&mut model, &x, seed ^ 3, setup);
        // In inference mode the layer is affine per channel: dx = R * gamma / sqrt(var + eps).
        let weights = model.get_weights();
        let (gamma, variance) = (&weights[0], &weights[3]);
        let r = random_array(&[batch, channels], seed ^ 3);
        for ((idx, &g), &rv) in report.input.indexed_iter().zip(r.iter()) {
            let c = idx[1];
            let expected = rv * gamma[[c]] / (variance[[c]] + 1e-3).sqrt();
            prop_assert!((g - expected).abs() <= 1e-12 * expected.abs().max(1.0));
        }
        prop_assert_eq!(report.checked.len(), if frozen { 0 } else { 2 });
        prop_assert_eq!(report.not_computed.len(), if frozen { 4 } else { 2 });
    }

    #[test]
    fn dropout_gradient_matches_with_the_mask_held_fixed(
        batch in 1usize..6,
        width in 1usize..10,
        rate in prop_oneof![Just(0.0), Just(1.0), 0.05f64..0.95],
        shared_across_features in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut dropout = Dropout::new(rate).expect("valid rate");
        if shared_across_features {
            dropout = dropout.with_noise_shape(vec![None, Some(1)]);
        }
        let mut model = single(dropout, &[width], seed);
        let x = away_from_zero(&[batch, width], seed ^ 1);
        let report = check_gradients(&mut model, &x, seed ^ 2, Setup::train_with_mask(seed ^ 4));
        // The gradient is the forward's mask times the scale: dx = R * y / x.
        let y = run_forward(&mut model, &x, Setup::train_with_mask(seed ^ 4));
        let r = random_array(&[batch, width], seed ^ 2);
        for (((&g, &yv), &xv), &rv) in report.input.iter().zip(&y).zip(&x).zip(&r) {
            let expected = rv * (yv / xv);
            prop_assert!((g - expected).abs() <= 1e-12 * expected.abs().max(1.0));
        }
        if shared_across_features {
            for row in y.rows() {
                let dropped = row.iter().filter(|&&v| v == 0.0).count();
                prop_assert!(dropped == 0 || dropped == width, "one mask cell per row");
            }
        }
    }

    #[test]
    fn loss_gradients_match(
        batch in 1usize..6,
        width in 1usize..5,
        which in 0usize..3,
        seed in any::<u64>(),
    ) {
        let loss = [
            Loss::MeanSquaredError,
            Loss::BinaryCrossentropy,
            Loss::BinaryCrossentropyFromLogits,
        ][which];
        let shape = [batch, width];
        let unit = |s| random_array(&shape, s).mapv(|v| 0.5 + 0.5 * v);
        let (pred, target) = match loss {
            Loss::MeanSquaredError => (random_array(&shape, seed), random_array(&shape, seed ^ 1)),
            // Probabilities strictly inside (1e-3, 1 - 1e-3), away from the clipping.
            Loss::BinaryCrossentropy => (unit(seed).mapv(|p| 1e-3 + (1.0 - 2e-3) * p), unit(seed ^ 1)),
            Loss::BinaryCrossentropyFromLogits => (random_array(&shape, seed).mapv(|z| 4.0 * z), unit(seed ^ 1)),
        };
        let (_, analytic) = loss.value_and_grad(&pred, &target).expect("same shapes");
        let mut numeric = ArrayD::zeros(pred.raw_dim());
        for i in 0..pred.len() {
            let value = |delta: f64| {
                let mut p = pred.clone();
                *scalar(&mut p, i) += delta;
                loss.value_and_grad(&p, &target).expect("same shapes").0
            };
            *scalar(&mut numeric, i) = (value(EPS) - value(-EPS)) / (2.0 * EPS);
        }
        let err = max_relative_error(&[analytic], &[numeric]);
        prop_assert!(err <= TOLERANCE, "{:?}: relative error {:e}", loss, err);
    }

    #[test]
    fn sequential_mlp_input_and_weight_gradients_match(
        batch in 2usize..6,
        inputs in 1usize..5,
        hidden in 1usize..7,
        outputs in 1usize..4,
        rate in 0.1f64..0.7,
        seed in any::<u64>(),
    ) {
        let mut model = Sequential::new("mlp")
            .add(Dense::new(hidden))
            .add(BatchNormalization::new())
            .add(ReLU::new())
            .add(Dropout::new(rate).expect("valid rate"))
            .add(Dense::new(outputs))
            .build(&[inputs], Some(seed))
            .expect("build");
        randomise_weights(&mut model, seed ^ 1);
        let x = random_array(&[batch, inputs], seed ^ 2);

        // Keep the ReLU away from its kink: a twin Dense → BN with the same weights
        // shows the ReLU's input, which must stay clear of 0 by far more than any
        // perturbation moves it.
        let mut twin = Sequential::new("twin")
            .add(Dense::new(hidden))
            .add(BatchNormalization::new())
            .build(&[inputs], Some(seed))
            .expect("build");
        twin.set_weights(model.get_weights()[..6].to_vec()).expect("Dense and BN weights");
        let pre_relu = Layer::forward(&mut twin, x.clone(), ForwardCtx::top(Phase::Train)).expect("forward");
        let margin = pre_relu.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
        prop_assume!(margin > 1e-3, "a ReLU input within {} of the kink", margin);

        let report = check_gradients(&mut model, &x, seed ^ 3, Setup::train_with_mask(seed ^ 4));
        // Two Dense layers (kernel, bias) and BN (gamma, beta): six parameters.
        prop_assert_eq!(report.checked.len(), 6);
        prop_assert_eq!(report.not_computed.len(), 2, "BN moving statistics");
    }

    #[test]
    fn functional_two_branches_input_and_weight_gradients_match(
        batch in 2usize..6,
        inputs in 1usize..5,
        width_a in 1usize..5,
        width_b in 1usize..5,
        seed in any::<u64>(),
    ) {
        let branch_a = Sequential::new("model_A")
            .add(Dense::new(width_a))
            .add(BatchNormalization::new())
            .add(Dropout::new(0.3).expect("valid rate"))
            .add(Dense::new(width_a))
            .build(&[inputs], Some(seed ^ 10))
            .expect("build");
        let mut g = Functional::new("model_AB", Some(seed));
        let input = g.input(&[inputs]).expect("input");
        let a = g.apply(branch_a, input).expect("branch A");
        let b = g.apply(Dense::new(width_b).named("dense_b"), input).expect("branch B");
        let b = g.apply(Dropout::new(0.5).expect("valid rate"), b).expect("branch B dropout");
        let joined = g.concat(&[a, b]).expect("concat");
        let head = g.apply(Dense::new(2).named("head"), joined).expect("head");
        let mut model = g.build(head).expect("build");
        randomise_weights(&mut model, seed ^ 1);

        let x = random_array(&[batch, inputs], seed ^ 2);
        let report = check_gradients(&mut model, &x, seed ^ 3, Setup::train_with_mask(seed ^ 4));
        let mut checked: Vec<_> = report.checked.iter().map(|(p, _)| p.as_str()).collect();
        checked.sort_unstable();
        prop_assert_eq!(checked, vec![
            "model_AB/dense_b/bias",
            "model_AB/dense_b/kernel",
            "model_AB/head/bias",
            "model_AB/head/kernel",
            "model_AB/model_A/batch_normalization/beta",
            "model_AB/model_A/batch_normalization/gamma",
            "model_AB/model_A/dense/bias",
            "model_AB/model_A/dense/kernel",
            "model_AB/model_A/dense_1/bias",
            "model_AB/model_A/dense_1/kernel",
        ]);
    }

    #[test]
    fn a_frozen_middle_layer_still_passes_the_gradient_to_the_first(
        batch in 2usize..6,
        inputs in 1usize..5,
        hidden in 1usize..6,
        middle_kind in 0usize..3,
        seed in any::<u64>(),
    ) {
        let first = Dense::new(hidden).named("first");
        let last = Dense::new(2).named("last");
        let builder = Sequential::new("m").add(first);
        let builder = match middle_kind {
            0 => builder.add(Dense::new(hidden).named("middle")),
            1 => builder.add(BatchNormalization::new().named("middle")),
            // A frozen nested model whose dropout stays active in Train (SPEC §1).
            _ => builder.add(
                Sequential::new("middle")
                    .add(Dense::new(hidden))
                    .add(Dropout::new(0.4).expect("valid rate"))
                    .build(&[hidden], Some(seed ^ 5))
                    .expect("build"),
            ),
        };
        let mut model = builder.add(last).build(&[inputs], Some(seed)).expect("build");
        randomise_weights(&mut model, seed ^ 1);
        model.set_trainable_at("m/middle", false).expect("a layer at that path");

        let x = random_array(&[batch, inputs], seed ^ 2);
        let report = check_gradients(&mut model, &x, seed ^ 3, Setup::train_with_mask(seed ^ 4));
        let mut checked: Vec<_> = report.checked.iter().map(|(p, _)| p.as_str()).collect();
        checked.sort_unstable();
        prop_assert_eq!(checked, vec!["m/first/bias", "m/first/kernel", "m/last/bias", "m/last/kernel"]);
        prop_assert!(!report.not_computed.is_empty());
        prop_assert!(report.not_computed.iter().all(|p| p.starts_with("m/middle")));
        // The first layer really gets a gradient through the frozen one: a
        // non-zero one unless the frozen dropout dropped every unit of the batch.
        let mut grad_norm = 0.0;
        Layer::visit_weights(&model, "", true, &mut |path, w, _| {
            if path == "m/first" && w.name == "kernel" {
                grad_norm = w.grad.as_ref().map_or(0.0, |g| g.iter().map(|v| v.abs()).sum());
            }
        });
        model.for_each_layer::<Dropout<f64>>(&mut |_, d| d.reset_stats());
        run_forward(&mut model, &x, Setup::train_with_mask(seed ^ 4));
        let all_dropped = model
            .dropout_stats()
            .iter()
            .any(|(_, s)| s.units_seen > 0 && s.units_dropped == s.units_seen);
        prop_assert_eq!(grad_norm > 0.0, !all_dropped);
    }
}

/// Without a reseed, successive train calls draw different masks: the reseed
/// before every forward is what holds the mask fixed.
#[test]
fn dropout_mask_changes_between_calls_unless_reseeded() {
    let mut model = single(Dropout::new(0.5).expect("valid rate"), &[64], 9);
    let x = away_from_zero(&[4, 64], 1);
    let train = Setup::train();
    let call0 = run_forward(&mut model, &x, train);
    let call1 = run_forward(&mut model, &x, train);
    assert_ne!(call0, call1, "call 1 draws a new mask");
    let fixed = Setup::train_with_mask(77);
    let a = run_forward(&mut model, &x, fixed);
    let b = run_forward(&mut model, &x, fixed);
    assert!(
        nncheck::tensor::bits_equal(&a, &b),
        "call 0 after a reseed repeats"
    );
    model.for_each_layer::<Dropout<f64>>(&mut |_, d| assert_eq!(d.calls(), 1));
}

/// The helper itself: relative above the floor, absolute `1e-8` below it, the
/// floor growing with the largest component of any part.
#[test]
fn max_relative_error_is_relative_above_the_floor() {
    let array = |v: Vec<f64>| ArrayD::from_shape_vec(vec![v.len()], v).expect("shape");
    let one = |a: Vec<f64>, n: Vec<f64>| max_relative_error(&[array(a)], &[array(n)]);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-8 * b.abs();
    assert!(close(
        one(vec![1.0, 0.0, -0.5], vec![1.0 + 1e-7, 0.0, -0.5]),
        1e-7 / (1.0 + 1e-7)
    ));
    // Below the floor: |a - n| / 1e-2.
    assert!(close(
        one(vec![1.0, 0.0, -0.5], vec![1.0, 1e-10, -0.5]),
        1e-8
    ));
    // The floor is set by the largest component of every part together.
    assert!(close(one(vec![1e-8], vec![0.0]), 1e-6));
    let errors = relative_errors(
        &[array(vec![100.0]), array(vec![1e-8])],
        &[array(vec![100.0]), array(vec![0.0])],
    );
    assert!(errors[0] == 0.0 && close(errors[1], 1e-8));
    // A wrong sign is an error of 2.
    assert!(close(one(vec![0.5], vec![-0.5]), 2.0));
}
