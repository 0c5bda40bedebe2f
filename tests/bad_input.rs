//! Bad input (SPEC §7): every class of bad input goes through the public API and
//! comes back as its specific [`nncheck::Error`] variant, never as a panic, and a
//! rejected call changes nothing: the model's weights (BatchNorm moving statistics
//! included), its optimizer state and its dropout counters are bit-identical to
//! before the call, and training afterwards goes on exactly as in a twin model that
//! never saw the bad call.
//!
//! A non-finite loss or update during `fit` stops it with an error naming the epoch
//! and the step; the failing step is not applied, so the model equals a twin
//! trained only on the good steps before it.
//!
//! No test catches panics: a panic is a failure.

use ndarray::ArrayD;
use nncheck::check::training::snapshot::ModelSnapshot;
use nncheck::optim::{Adam, Optimizer, Sgd, SlotState};
use nncheck::phase::ForwardCtx;
use nncheck::rng::SeedSequence;
use nncheck::tensor::{bits_equal, checked_len};
use nncheck::{
    BatchNormalization, Dense, Dropout, DropoutStats, Error, FitConfig, Functional, Layer, Loss,
    Model, Phase, ReLU, Sequential, MAX_ELEMENTS,
};

/// Asserts that `$call` is rejected with an error matching the pattern (and guard);
/// the pattern is matched against `&Error`.
macro_rules! assert_rejected {
    ($call:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $call {
            Ok(_) => panic!("`{}` was accepted", stringify!($call)),
            Err(e) => assert!(
                matches!(&e, $pattern $(if $guard)?),
                "`{}` gave {e:?}",
                stringify!($call)
            ),
        }
    };
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A deterministic `[rows, cols]` batch with values in about [-1, 1].
fn data(rows: usize, cols: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(vec![rows, cols], |i| {
        (((i[0] * 7 + i[1] * 3) % 11) as f32 - 5.0) / 5.0
    })
}

/// Dense(4) → BatchNorm → ReLU → Dropout(0.25) → Dense(1) on 3 features: it has
/// parameters, internal state and a mask counter.
fn network(seed: u64) -> Model<f32> {
    Sequential::new("net")
        .add(Dense::new(4))
        .add(BatchNormalization::new())
        .add(ReLU::new())
        .add(Dropout::new(0.25).unwrap())
        .add(Dense::new(1))
        .build(&[3], Some(seed))
        .unwrap()
}

/// [`network`] compiled with Adam and trained for two steps, so that every kind
/// of state a bad call could disturb is non-trivial.
fn trained_network() -> Model<f32> {
    let mut model = network(11);
    model
        .compile(Adam::new(1e-2), Loss::MeanSquaredError)
        .unwrap();
    let (x, y) = (data(8, 3), data(8, 1));
    model.train_on_batch(&x, &y).unwrap();
    model.train_on_batch(&x, &y).unwrap();
    model
}

/// Everything a rejected call must leave as it was: weights, optimizer slots and
/// step counts, dropout counters.
fn snapshot(model: &Model<f32>) -> ModelSnapshot {
    ModelSnapshot::of(model)
}

/// Asserts `model` is bit-identical to `before`, naming what moved if not.
#[track_caller]
fn assert_unchanged(what: &str, model: &Model<f32>, before: &ModelSnapshot) {
    let diff = before.diff(&snapshot(model));
    assert!(diff.is_empty(), "{what}: {diff}");
}

/// Asserts two models are bit-identical (as [`assert_unchanged`]).
#[track_caller]
fn assert_twins(what: &str, model: &Model<f32>, twin: &Model<f32>) {
    assert_unchanged(what, model, &snapshot(twin));
}

fn config(epochs: usize, batch_size: usize) -> FitConfig {
    FitConfig {
        epochs,
        batch_size,
        shuffle: false,
        seed: Some(0),
    }
}

// ---------------------------------------------------------------------------
// Dropout rates
// ---------------------------------------------------------------------------

#[test]
fn dropout_rejects_nan_infinite_and_out_of_range_rates() {
    let bad = [
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.1,
        1.5,
        -f64::MIN_POSITIVE,
        1.0 + f64::EPSILON,
        f64::MAX,
    ];
    for rate in bad {
        // The error names the rejected value, bit for bit.
        let named = |r: &f64| r.to_bits() == rate.to_bits();
        assert_rejected!(Dropout::<f32>::new(rate), Error::InvalidRate { rate: r } if named(r));
        assert_rejected!(Dropout::<f64>::new(rate), Error::InvalidRate { rate: r } if named(r));
    }
    // The closed range's ends are accepted.
    for rate in [0.0, -0.0, 1.0] {
        assert!(Dropout::<f32>::new(rate).is_ok(), "rate {rate}");
    }
}

// ---------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------

#[test]
fn dense_input_width_mismatch_is_rejected_by_every_entry_point() {
    let mut model = trained_network();
    let before = snapshot(&model);
    let y = data(4, 1);
    for x in [
        data(4, 2),
        data(4, 4),
        ArrayD::zeros(vec![4]),
        ArrayD::zeros(vec![4, 3, 1]),
    ] {
        let names_x = |got: &Vec<usize>| got.as_slice() == x.shape();
        assert_rejected!(model.predict(&x), Error::ShapeMismatch { got, .. } if names_x(got));
        assert_rejected!(model.call(&x, Phase::Train), Error::ShapeMismatch { got, .. } if names_x(got));
        assert_rejected!(model.fit(&x, &y, &config(1, 2)), Error::ShapeMismatch { got, .. } if names_x(got));
        assert_rejected!(model.evaluate(&x, &y), Error::ShapeMismatch { got, .. } if names_x(got));
        assert_rejected!(model.train_on_batch(&x, &y), Error::ShapeMismatch { got, .. } if names_x(got));
        assert_rejected!(
            Layer::forward(&mut model, x.clone(), ForwardCtx::top(Phase::Train)),
            Error::ShapeMismatch { got, .. } if names_x(got)
        );
        assert_unchanged(&format!("x of shape {:?}", x.shape()), &model, &before);
    }

    // A target of the wrong width.
    let (x, y) = (data(4, 3), data(4, 2));
    assert_rejected!(model.fit(&x, &y, &config(1, 2)), Error::ShapeMismatch { got, .. } if *got == [4, 2]);
    assert_rejected!(model.train_on_batch(&x, &y), Error::ShapeMismatch { got, .. } if *got == [4, 2]);
    assert_rejected!(model.evaluate(&x, &y), Error::ShapeMismatch { got, .. } if *got == [4, 2]);
    assert_unchanged("target of width 2", &model, &before);

    // A bare Dense layer, outside any model.
    let mut dense = Dense::<f32>::new(2);
    dense.build(&[3], &mut SeedSequence::new(Some(0))).unwrap();
    assert_rejected!(
        dense.forward(data(2, 4), ForwardCtx::top(Phase::Eval)),
        Error::ShapeMismatch { got, .. } if *got == [2, 4]
    );
}

/// Two branches of a functional model, optionally with a rejected concatenation
/// in between: a rejected call must leave the builder as it was.
fn two_branches(with_rejected_concat: bool) -> Model<f32> {
    let mut g = Functional::<f32>::new("two_branches", Some(5));
    let x = g.input(&[4]).unwrap();
    let a = g.apply(Dense::new(2), x).unwrap();
    if with_rejected_concat {
        assert_rejected!(g.concat(&[]), Error::ShapeMismatch { .. });
    }
    let b = g.apply(Dense::new(3), x).unwrap();
    let both = g.concat(&[a, b]).unwrap();
    let y = g.apply(Dense::new(1), both).unwrap();
    g.build(y).unwrap()
}

#[test]
fn concatenation_of_incompatible_shapes_is_rejected() {
    // Per-sample scalars have no last axis to concatenate on. (With the layers the
    // core has, every node of a graph shares the input's leading axes, so this and
    // the empty list are the incompatible concatenations that can be written.)
    let mut g = Functional::<f32>::new("scalars", Some(1));
    let x = g.input(&[]).unwrap();
    let a = g.apply(ReLU::new(), x).unwrap();
    assert_rejected!(g.concat(&[x, a]), Error::ShapeMismatch { got, .. } if got.is_empty());
    assert_rejected!(g.concat(&[a, x]), Error::ShapeMismatch { got, .. } if got.is_empty());
    assert_rejected!(g.concat(&[]), Error::ShapeMismatch { .. });

    // The builder is unchanged by the rejected call: same model, same outputs.
    let mut model = two_branches(true);
    let mut twin = two_branches(false);
    assert_twins("after a rejected concat", &model, &twin);
    let x = data(5, 4);
    assert!(bits_equal(
        &model.predict(&x).unwrap(),
        &twin.predict(&x).unwrap()
    ));
}

#[test]
fn bad_noise_shape_is_rejected_by_a_dropout_layer() {
    let noise = vec![None, Some(3)];
    let mut dropout = Dropout::<f32>::new(0.5)
        .unwrap()
        .with_seed(3)
        .with_noise_shape(noise);
    let x = data(2, 4);
    for phase in [Phase::Train, Phase::Eval] {
        // The error names the noise shape as declared and the input's shape.
        let named = |n: &Vec<Option<usize>>, i: &Vec<Option<usize>>| {
            *n == [None, Some(3)] && *i == [Some(2), Some(4)]
        };
        assert_rejected!(
            dropout.apply(x.clone(), phase),
            Error::InvalidNoiseShape { noise_shape, input_shape } if named(noise_shape, input_shape)
        );
        assert_rejected!(
            dropout.apply_view(x.view(), phase),
            Error::InvalidNoiseShape { .. }
        );
        assert_rejected!(
            Layer::forward(&mut dropout, x.clone(), ForwardCtx::top(phase)),
            Error::InvalidNoiseShape { .. }
        );
    }
    assert_eq!(dropout.stats(), DropoutStats::default());
    assert_eq!(dropout.calls(), 0, "no mask was drawn");

    // A noise shape of the wrong rank is rejected when the model is built.
    let build = Sequential::<f32>::new("m")
        .add(Dense::new(4))
        .add(Dropout::new(0.5).unwrap().with_noise_shape(vec![None]))
        .build(&[3], Some(0));
    assert_rejected!(build, Error::InvalidNoiseShape { .. });
}

#[test]
fn a_noise_shape_that_fits_no_input_is_rejected_at_build() {
    // Every axis but the batch is known at build, so the model is never made.
    let build = Sequential::<f32>::new("m")
        .add(Dense::new(4))
        .add(
            Dropout::new(0.5)
                .unwrap()
                .with_noise_shape(vec![None, Some(3)]),
        )
        .add(Dense::new(1))
        .build(&[3], Some(0));
    assert_rejected!(build, Error::InvalidNoiseShape { .. });
}

/// A fixed batch-axis noise entry can only be checked when the layer runs, after
/// the dropout before it has drawn a mask: the failed call must rewind that
/// dropout's mask sequence and counters, so later masks equal a twin's.
#[test]
fn a_bad_batch_noise_entry_after_a_good_dropout_leaves_no_trace() {
    let build = || {
        let mut model = Sequential::<f32>::new("m")
            .add(Dense::new(4))
            .add(Dropout::new(0.5).unwrap())
            .add(
                Dropout::new(0.5)
                    .unwrap()
                    .with_noise_shape(vec![Some(7), None]),
            )
            .add(Dense::new(1))
            .build(&[3], Some(0))
            .unwrap();
        model
            .compile(Sgd::new(0.1), Loss::MeanSquaredError)
            .unwrap();
        model
    };
    let mut model = build();
    let before = snapshot(&model);
    let (x, y) = (data(4, 3), data(4, 1));
    assert_rejected!(
        model.fit(&x, &y, &config(1, 2)),
        Error::InvalidNoiseShape { .. }
    );
    assert_rejected!(model.predict(&x), Error::InvalidNoiseShape { .. });
    assert_rejected!(
        model.call(&x, Phase::Train),
        Error::InvalidNoiseShape { .. }
    );
    assert_rejected!(
        model.train_on_batch(&x, &y),
        Error::InvalidNoiseShape { .. }
    );
    assert_rejected!(model.evaluate(&x, &y), Error::InvalidNoiseShape { .. });
    assert_unchanged("bad noise shape behind a good dropout", &model, &before);
    assert_eq!(model.dropout_stats(), build().dropout_stats());
}

#[test]
fn x_and_y_batch_sizes_must_match() {
    let mut model = trained_network();
    let before = snapshot(&model);
    let (x, y) = (data(4, 3), data(3, 1));
    assert_rejected!(
        model.fit(&x, &y, &config(1, 2)),
        Error::BatchSizeMismatch {
            x_samples: 4,
            y_samples: 3
        }
    );
    assert_rejected!(
        model.train_on_batch(&x, &y),
        Error::BatchSizeMismatch {
            x_samples: 4,
            y_samples: 3
        }
    );
    assert_rejected!(
        model.evaluate(&x, &y),
        Error::BatchSizeMismatch {
            x_samples: 4,
            y_samples: 3
        }
    );
    assert_unchanged("batch size mismatch", &model, &before);
}

#[test]
fn empty_batches_are_rejected() {
    let mut model = trained_network();
    let before = snapshot(&model);
    let (x, y) = (data(0, 3), data(0, 1));
    let names_x = |shape: &Vec<usize>| *shape == [0, 3];
    assert_rejected!(model.predict(&x), Error::EmptyInput { shape, .. } if names_x(shape));
    assert_rejected!(model.call(&x, Phase::Train), Error::EmptyInput { shape, .. } if names_x(shape));
    assert_rejected!(model.fit(&x, &y, &config(1, 2)), Error::EmptyInput { shape, .. } if names_x(shape));
    assert_rejected!(model.evaluate(&x, &y), Error::EmptyInput { shape, .. } if names_x(shape));
    assert_rejected!(model.train_on_batch(&x, &y), Error::EmptyInput { shape, .. } if names_x(shape));
    assert_unchanged("empty batch", &model, &before);
}

/// A sample shape with an axis of 0 is refused when the model is built, by name:
/// every batch would be empty, and the other axes could be of any length. The
/// shape of a fuzz-found case (two enormous axes behind zero axes, then
/// concatenated) is among them.
#[test]
fn a_model_input_with_an_axis_of_zero_is_rejected_at_build() {
    let enormous = 2_301_232_756_958_429_184usize;
    for shape in [vec![0], vec![3, 0], vec![0, 0, enormous]] {
        let names = |got: &Vec<usize>| *got == shape;
        assert_rejected!(
            Sequential::<f32>::new("m").add(ReLU::new()).build(&shape, Some(0)),
            Error::EmptySample { shape: got, .. } if names(got)
        );
        let mut g = Functional::<f32>::new("g", Some(0));
        assert_rejected!(g.input(&shape), Error::EmptySample { shape: got, .. } if names(got));
    }
    let message = Functional::<f32>::new("g", Some(0))
        .input(&[0, 0, enormous])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("axis of length 0") && message.contains(&enormous.to_string()),
        "{message}"
    );
}

#[test]
fn zero_batch_size_and_zero_epochs_are_rejected() {
    let mut model = trained_network();
    let before = snapshot(&model);
    let (x, y) = (data(4, 3), data(4, 1));
    assert_rejected!(
        model.fit(&x, &y, &config(1, 0)),
        Error::Zero { name: "batch_size" }
    );
    assert_rejected!(
        model.fit(&x, &y, &config(0, 2)),
        Error::Zero { name: "epochs" }
    );
    assert_rejected!(model.fit(&x, &y, &config(0, 0)), Error::Zero { .. });
    assert_unchanged("zero batch size or epochs", &model, &before);
}

#[test]
fn element_count_overflow_is_rejected() {
    let capped = |cap: &usize| *cap == MAX_ELEMENTS;
    assert_rejected!(checked_len(&[usize::MAX, 2]), Error::TooLarge { cap, .. } if capped(cap));
    assert_rejected!(checked_len(&[1 << 40, 1 << 40]), Error::TooLarge { cap, .. } if capped(cap));
    assert_rejected!(checked_len(&[MAX_ELEMENTS + 1]), Error::TooLarge { cap, .. } if capped(cap));
    assert_eq!(checked_len(&[MAX_ELEMENTS]).unwrap(), MAX_ELEMENTS);

    assert_rejected!(
        Sequential::<f32>::new("m")
            .add(Dense::new(1))
            .build(&[1 << 40, 1 << 40], Some(0)),
        Error::TooLarge { .. }
    );
    // A 2^40-element kernel: rejected before anything is allocated.
    assert_rejected!(
        Sequential::<f32>::new("m")
            .add(Dense::new(1 << 20))
            .build(&[1 << 20], Some(0)),
        Error::TooLarge { .. }
    );
    let mut g = Functional::<f32>::new("g", Some(0));
    assert_rejected!(g.input(&[usize::MAX, 2]), Error::TooLarge { .. });
}

// ---------------------------------------------------------------------------
// Model set-up
// ---------------------------------------------------------------------------

#[test]
fn training_before_compile_is_rejected() {
    let mut model = network(11);
    let before = snapshot(&model);
    let (x, y) = (data(4, 3), data(4, 1));
    assert_rejected!(model.fit(&x, &y, &config(1, 2)), Error::NotCompiled { model } if model == "net");
    assert_rejected!(model.train_on_batch(&x, &y), Error::NotCompiled { model } if model == "net");
    assert_rejected!(model.evaluate(&x, &y), Error::NotCompiled { model } if model == "net");
    assert_unchanged("not compiled", &model, &before);
}

#[test]
fn set_weights_with_wrong_count_or_shape_changes_nothing() {
    let mut model = trained_network();
    let before = snapshot(&model);
    let weights = model.get_weights();
    let n = weights.len();

    let mut fewer = weights.clone();
    fewer.pop();
    assert_rejected!(
        model.set_weights(fewer),
        Error::WeightCount { expected, got, .. } if *expected == n && *got == n - 1
    );
    let mut more = weights.clone();
    more.push(ArrayD::zeros(vec![1]));
    assert_rejected!(
        model.set_weights(more),
        Error::WeightCount { expected, got, .. } if *expected == n && *got == n + 1
    );
    assert_rejected!(
        model.set_weights(Vec::new()),
        Error::WeightCount { got: 0, .. }
    );

    // Every array but the last is valid (and different): still nothing is written.
    let mut wrong_last = weights
        .iter()
        .map(|w| w.mapv(|v| v + 1.0))
        .collect::<Vec<_>>();
    wrong_last[n - 1] = ArrayD::zeros(vec![2]);
    assert_rejected!(model.set_weights(wrong_last), Error::ShapeMismatch { got, .. } if *got == [2]);
    // A transposed kernel has the right element count but the wrong shape.
    let mut transposed = weights.clone();
    transposed[0] = weights[0].t().to_owned();
    assert_rejected!(model.set_weights(transposed), Error::ShapeMismatch { .. });
    assert_unchanged("rejected set_weights", &model, &before);
}

#[test]
fn invalid_optimizer_hyper_parameters_are_rejected_at_compile() {
    fn adam(edit: fn(&mut Adam<f32>)) -> Box<dyn Optimizer<f32>> {
        let mut adam = Adam::new(1e-3);
        edit(&mut adam);
        Box::new(adam)
    }
    fn sgd(sgd: Sgd<f32>) -> Box<dyn Optimizer<f32>> {
        Box::new(sgd)
    }
    let bad = [
        ("SGD lr NaN", sgd(Sgd::new(f64::NAN))),
        ("SGD lr -1", sgd(Sgd::new(-1.0))),
        ("SGD lr inf", sgd(Sgd::new(f64::INFINITY))),
        ("SGD momentum -0.1", sgd(Sgd::new(0.1).momentum(-0.1))),
        ("SGD momentum 1.5", sgd(Sgd::new(0.1).momentum(1.5))),
        ("SGD momentum NaN", sgd(Sgd::new(0.1).momentum(f64::NAN))),
        ("SGD decay -1", sgd(Sgd::new(0.1).weight_decay(-1.0))),
        ("SGD decay NaN", sgd(Sgd::new(0.1).weight_decay(f64::NAN))),
        ("Adam lr NaN", adam(|a| a.learning_rate = f64::NAN)),
        (
            "Adam lr -inf",
            adam(|a| a.learning_rate = f64::NEG_INFINITY),
        ),
        ("Adam beta_1 1", adam(|a| a.beta_1 = 1.0)),
        ("Adam beta_2 -0.1", adam(|a| a.beta_2 = -0.1)),
        ("Adam beta_2 NaN", adam(|a| a.beta_2 = f64::NAN)),
        ("Adam epsilon 0", adam(|a| a.epsilon = 0.0)),
        ("Adam epsilon NaN", adam(|a| a.epsilon = f64::NAN)),
        ("AdamW decay inf", adam(|a| a.weight_decay = f64::INFINITY)),
    ];
    let mut model = trained_network();
    let mut twin = trained_network();
    let before = snapshot(&model);
    for (what, optimizer) in bad {
        assert_rejected!(optimizer.validate(), Error::InvalidHyperParameter { .. });
        assert_rejected!(
            model.compile(BoxedOptimizer(optimizer), Loss::MeanSquaredError),
            Error::InvalidHyperParameter { .. }
        );
        assert_unchanged(what, &model, &before);
    }
    // The model is still compiled with its Adam, moments and step counts intact.
    let (x, y) = (data(8, 3), data(8, 1));
    let loss = model.train_on_batch(&x, &y).unwrap();
    let twin_loss = twin.train_on_batch(&x, &y).unwrap();
    assert_eq!(loss.to_bits(), twin_loss.to_bits());
    assert_twins("training after rejected compiles", &model, &twin);
}

/// Lets a boxed optimizer be passed to `compile`, which takes `impl Optimizer`.
struct BoxedOptimizer(Box<dyn Optimizer<f32>>);

impl Optimizer<f32> for BoxedOptimizer {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn validate(&self) -> nncheck::Result<()> {
        self.0.validate()
    }
    fn update_is_finite(&self, w: &nncheck::Weight<f32>) -> bool {
        self.0.update_is_finite(w)
    }
    fn apply(&mut self, w: &mut nncheck::Weight<f32>) {
        self.0.apply(w)
    }
    fn state(&self, id: nncheck::WeightId) -> Option<SlotState<f32>> {
        self.0.state(id)
    }
}

// ---------------------------------------------------------------------------
// Non-finite values during fit
// ---------------------------------------------------------------------------

/// Dense(4) → BatchNorm → ReLU → Dense(1), compiled with `optimizer` (no dropout,
/// so a failed step leaves no trace in a mask counter).
fn deterministic_network(optimizer: impl Optimizer<f32> + 'static) -> Model<f32> {
    let mut model = Sequential::new("net")
        .add(Dense::new(4))
        .add(BatchNormalization::new())
        .add(ReLU::new())
        .add(Dense::new(1))
        .build(&[3], Some(21))
        .unwrap();
    model.compile(optimizer, Loss::MeanSquaredError).unwrap();
    model
}

/// Fits 8 samples in batches of 4, where one value of the second batch is `bad`
/// (in x or in y): fit stops at epoch 0, step 1, and the model equals a twin
/// trained on the first batch alone. Both then train on clean data identically.
fn non_finite_in_the_second_batch(make: fn() -> Model<f32>, bad: f32, in_y: bool) {
    let what = format!("{bad} in {}", if in_y { "y" } else { "x" });
    let (mut x, mut y) = (data(8, 3), data(8, 1));
    if in_y {
        y[[6, 0]] = bad;
    } else {
        x[[5, 1]] = bad;
    }
    let mut model = make();
    let mut twin = make();
    assert_rejected!(
        model.fit(&x, &y, &config(2, 4)),
        Error::NonFiniteLoss { epoch: 0, step: 1, loss } if !loss.is_finite()
    );
    let first = ndarray::s![0..4, ..];
    let (x0, y0) = (
        x.slice(first).into_dyn().to_owned(),
        y.slice(first).into_dyn().to_owned(),
    );
    twin.train_on_batch(&x0, &y0).unwrap();
    assert_twins(&what, &model, &twin);

    // Nothing already trained is lost: training goes on as in the twin.
    let (clean_x, clean_y) = (data(8, 3), data(8, 1));
    let history = model.fit(&clean_x, &clean_y, &config(2, 4)).unwrap();
    let twin_history = twin.fit(&clean_x, &clean_y, &config(2, 4)).unwrap();
    assert_eq!(history, twin_history, "{what}");
    assert_twins(&format!("{what}, then clean training"), &model, &twin);
}

#[test]
fn non_finite_loss_in_fit_keeps_the_last_good_step_sgd_momentum() {
    let make = || deterministic_network(Sgd::new(0.05).momentum(0.9).nesterov(true));
    for (bad, in_y) in [
        (f32::NAN, false),
        (f32::INFINITY, false),
        (f32::NAN, true),
        (f32::NEG_INFINITY, true),
    ] {
        non_finite_in_the_second_batch(make, bad, in_y);
    }
}

#[test]
fn non_finite_loss_in_fit_keeps_the_last_good_step_adamw() {
    let make = || deterministic_network(Adam::adamw(1e-2));
    for (bad, in_y) in [(f32::NAN, false), (f32::INFINITY, false), (f32::NAN, true)] {
        non_finite_in_the_second_batch(make, bad, in_y);
    }
}

#[test]
fn non_finite_loss_at_the_first_step_keeps_the_initial_model() {
    let mut model = deterministic_network(Adam::new(1e-2));
    let before = snapshot(&model);
    let mut x = data(8, 3);
    x[[0, 0]] = f32::NAN;
    assert_rejected!(
        model.fit(&x, &data(8, 1), &config(1, 4)),
        Error::NonFiniteLoss { epoch: 0, step: 0, loss } if loss.is_nan()
    );
    assert_unchanged("NaN in the first batch", &model, &before);
    assert!(model.optimizer_state().iter().all(|(_, s)| s.is_none()));
    assert_rejected!(
        model.train_on_batch(&x, &data(8, 1)),
        Error::NonFiniteLoss {
            epoch: 0,
            step: 0,
            ..
        }
    );
    assert_unchanged("NaN in train_on_batch", &model, &before);
}

#[test]
fn non_finite_update_is_not_applied() {
    // A finite loss and finite gradients whose update overflows f32.
    let mut model = Sequential::<f32>::new("net")
        .add(Dense::new(1))
        .build(&[3], Some(0))
        .unwrap();
    model
        .compile(Sgd::new(1e38), Loss::MeanSquaredError)
        .unwrap();
    let before = snapshot(&model);
    let x = data(4, 3).mapv(|v| v * 100.0 + 300.0);
    let y = ArrayD::from_elem(vec![4, 1], 1000.0f32);
    assert_rejected!(
        model.fit(&x, &y, &config(3, 4)),
        Error::NonFiniteStep { epoch: 0, step: 0, what: "update", weight } if weight == "net/dense/kernel"
    );
    assert_unchanged("overflowing update", &model, &before);
}

/// A rejected step leaves its non-finite gradient in the layer's gradient buffer;
/// once the layer is frozen, that stale gradient belongs to no step and must not
/// block the training of the rest (SPEC §3: only effectively trainable weights
/// take part in a step; §7: nothing already trained is lost).
#[test]
fn a_frozen_layers_stale_non_finite_gradient_does_not_block_training() {
    let mut model = Sequential::<f32>::new("m")
        .add(Dense::new(2).named("first"))
        .add(Dense::new(1).named("second"))
        .build(&[3], Some(0))
        .unwrap();
    model
        .compile(Sgd::new(0.01), Loss::MeanSquaredError)
        .unwrap();
    // A zero first kernel keeps the prediction (the second layer's bias) finite
    // on any input, while the first kernel's gradient, x^T dy, sums two inputs
    // of 3e38 and overflows f32.
    model
        .set_weight("m/first/kernel", ArrayD::zeros(vec![3, 2]))
        .unwrap();
    model
        .set_weight("m/second/kernel", ArrayD::ones(vec![2, 1]))
        .unwrap();
    let huge = ArrayD::from_elem(vec![2, 3], 3e38f32);
    let y = ArrayD::from_elem(vec![2, 1], 1.0f32);
    assert_rejected!(
        model.train_on_batch(&huge, &y),
        Error::NonFiniteStep { what: "gradient", weight, .. } if weight == "m/first/kernel"
    );
    model.set_trainable_at("m/first", false).unwrap();
    let before = snapshot(&model);
    model
        .train_on_batch(&data(4, 3), &ArrayD::from_elem(vec![4, 1], 1.0f32))
        .expect("the frozen layer's stale gradient is not part of this step");
    let after = snapshot(&model);
    assert!(
        !bits_equal(&before.weights[3].1, &after.weights[3].1),
        "the second layer's bias trained"
    );
}

/// Messages name the bad value and what was expected; the README quotes these three
/// verbatim, so this test keeps it true.
#[test]
fn messages_name_the_bad_value_and_what_was_expected() {
    let rate = Dropout::<f32>::new(f64::NAN).unwrap_err().to_string();
    assert_eq!(rate, "dropout rate must be a number in [0, 1], got NaN");

    let noise = Sequential::<f32>::new("m")
        .add(Dense::new(4))
        .add(
            Dropout::new(0.5)
                .unwrap()
                .with_noise_shape(vec![None, Some(3)]),
        )
        .build(&[3], Some(0))
        .unwrap_err()
        .to_string();
    assert_eq!(
        noise,
        "noise shape [None, 3] does not fit input shape [batch, 4]: it needs one entry per \
         axis, each `None`, 1 or the input's size on that axis"
    );

    let mut model = deterministic_network(Sgd::new(0.05));
    let mut x = data(8, 3);
    x[[6, 0]] = f32::NAN;
    let loss = model
        .fit(&x, &data(8, 1), &config(1, 4))
        .unwrap_err()
        .to_string();
    assert_eq!(
        loss,
        "non-finite loss NaN at epoch 0, step 1: the step was not applied and the model \
         keeps the weights of its last good step"
    );
}

/// The other train-only layers refuse bad hyper-parameters with a typed error
/// naming the value, never a panic (SPEC §2b, §7).
#[test]
fn noise_layers_reject_bad_hyper_parameters() {
    use nncheck::{AlphaDropout, DataFormat, GaussianDropout, GaussianNoise, SpatialDropout};
    for bad in [-0.1, f64::NAN, f64::INFINITY] {
        assert_rejected!(
            GaussianNoise::<f32>::new(bad),
            Error::InvalidHyperParameter { .. }
        );
    }
    for bad in [-0.1, 1.0, 1.5, f64::NAN] {
        assert_rejected!(
            GaussianDropout::<f32>::new(bad),
            Error::InvalidHyperParameter { .. }
        );
        assert_rejected!(
            AlphaDropout::<f32>::new(bad),
            Error::InvalidHyperParameter { .. }
        );
    }
    assert_rejected!(
        SpatialDropout::<f32>::new(2, 1.5, DataFormat::ChannelsLast),
        Error::InvalidRate { .. }
    );
    assert_rejected!(
        SpatialDropout::<f32>::new(4, 0.5, DataFormat::ChannelsLast),
        Error::InvalidHyperParameter { .. }
    );
}

/// A call that fails after a Gaussian or AlphaDropout layer has drawn its noise
/// leaves no trace: the layer's stream and counters are put back, so the next
/// good call draws exactly what a twin that never saw the failure draws.
#[test]
fn a_failed_call_puts_the_noise_layers_streams_back() {
    use nncheck::{AlphaDropout, GaussianDropout, GaussianNoise};
    let build = |which: usize| {
        let noise: Box<dyn Layer<f32>> = match which {
            0 => Box::new(GaussianNoise::new(0.3).unwrap()),
            1 => Box::new(GaussianDropout::new(0.3).unwrap()),
            _ => Box::new(AlphaDropout::new(0.3).unwrap()),
        };
        // A model takes a concrete layer; an observer that does nothing makes
        // the boxed one concrete without changing anything it does.
        let wrapped =
            nncheck::check::subjects::observed::Observed::new(noise, Box::new(|_, _, _| {}));
        Sequential::<f32>::new("m")
            .add(Dense::new(4))
            .add(wrapped)
            .add(
                Dropout::new(0.5)
                    .unwrap()
                    .with_noise_shape(vec![Some(7), None]),
            )
            .build(&[3], Some(0))
            .unwrap()
    };
    for which in 0..3 {
        let mut model = build(which);
        let mut twin = build(which);
        let before = model.noise_stats();
        // A batch of 4 does not fit the pinned batch of 7: the dropout behind
        // the noise layer refuses it, after the noise layer has drawn.
        assert_rejected!(
            model.call(&data(4, 3), Phase::Train),
            Error::InvalidNoiseShape { .. }
        );
        assert_eq!(model.noise_stats(), before, "layer {which}: counters moved");
        let good = data(7, 3);
        let y = model.call(&good, Phase::Train).unwrap();
        let y_twin = twin.call(&good, Phase::Train).unwrap();
        assert!(
            bits_equal(&y, &y_twin),
            "layer {which}: the failed call moved the noise stream"
        );
    }
}
