//! A state-machine test of freezing and training (SPEC §3–§5, §7) against a
//! reference model, over random sequences of operations.
//!
//! The system under test is `model_AB` in `f64`, built like `src/scenario`: two
//! nested sequential models, `model_A` (Dense, optionally BatchNormalization,
//! ReLU, Dropout, optionally a nested sequential `block` of Dense,
//! BatchNormalization and ReLU, Dense) and `model_B` (Dense, Dropout, Dense), on
//! a shared input, joined by a concatenation under a Dense `head`. A random
//! sequence builds it (a new architecture, seed and optimizer), freezes and
//! unfreezes the whole model or any layer or model inside by path, compiles
//! another optimizer (SGD plain, with momentum, Nesterov or decoupled weight
//! decay; Adam; AdamW), fits (in data order, or shuffled in one batch per
//! epoch), trains on a batch, runs a fit or a step whose loss is not finite
//! (a NaN or overflowing target, an infinite input), predicts, evaluates and
//! reseeds the dropout.
//!
//! The reference state is `tests/reference_model`, a second implementation in
//! plain `f64` loops that chooses the initial weights and the data and pushes
//! them into the system. After every operation the test compares:
//! - every layer's and model's own trainable flag, and every weight's effective
//!   one (nested models included), with the reference's;
//! - every weight, BatchNorm moving statistics included: bit for bit while the
//!   weight has never been updated (its value is the one pushed in); bit for bit
//!   with its value before the operation while it is frozen; otherwise within
//!   [`TOLERANCE`] of the reference;
//! - every optimizer slot (momentum, Adam moments) within [`TOLERANCE`], and
//!   every parameter's step count exactly;
//! - what the operation returned: fit history and step losses and predictions
//!   and evaluations within [`TOLERANCE`], and the epoch, step and kind of a
//!   rejected step exactly.
//!
//! The dropout rate is 0 in most runs, so the reference replays every step.
//! In runs at [`DROPOUT_RATE`] the reference cannot know the masks: a step
//! through active dropout makes what it changes unknown to the reference, and
//! only the flags, the step counts, the errors and the frozen (or never
//! trained) weights and slots are compared, bit for bit. In every run, dropout
//! in frozen parts stays active: every dropout layer sees every unit of every
//! applied step.
//!
//! Tolerance: both sides compute in `f64` by the same formulas and differ only
//! in summation order (matrix products, batch means and variances), a few
//! units in the last place per result; over the at most about a thousand steps
//! of a sequence at learning rate 0.01, no difference above 1e-12 (relative to
//! `1 + |value|`) showed in 16 000 cases. [`TOLERANCE`] 1e-9 leaves three orders
//! of margin and is far below what a formula change moves: a wrong constant,
//! sign or operand moves a value by at least about 1e-6 in a step. (Adam runs
//! at epsilon 1e-3 for this reason: see `reference_model::optimizer::ADAM_EPSILON`.)

mod common;
mod reference_model;

use ndarray::{ArrayD, Axis};
use nncheck::check::training::snapshot::ModelSnapshot;
use nncheck::optim::{Adam, Optimizer, Sgd, SlotState};
use nncheck::tensor::bits_equal;
use nncheck::{
    BatchNormalization, Dense, Dropout, Error, FitConfig, Layer, Loss, Model, ReLU, Sequential,
    WeightKind,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use reference_model::architecture::{model_ab, Architecture, FEATURES};
use reference_model::init::data_set;
use reference_model::matrix::Matrix;
use reference_model::network::WeightKind as ReferenceKind;
use reference_model::optimizer::{OptimizerKind, ADAM_EPSILON};
use reference_model::training::{FitFailure, Rejected};
use reference_model::ReferenceModel;

/// The dropout rate of the runs the reference cannot replay. Low enough that
/// SGD with momentum on one-sample batches does not diverge: at 0.5 a 2-unit
/// linear branch scaled by 2 diverges within an epoch, and a fit that stops on
/// a non-finite loss the reference cannot foresee would end the comparison.
const DROPOUT_RATE: f64 = 0.2;
/// Samples in the data set.
const SAMPLES: usize = 24;
/// How far a value the reference replays may be from the system's, relative to
/// `1 + |reference|` (see the module documentation for why).
const TOLERANCE: f64 = 1e-9;

/// How a non-finite step is provoked in one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poison {
    /// Its target is NaN: the loss is NaN.
    NanTarget,
    /// Its target is 1e200: the squared error overflows to infinity.
    OverflowingTarget,
    /// Its first feature is infinite: the prediction is not finite. Only where
    /// no dropout is active, since dropping every infinite unit would hide it.
    InfiniteInput,
}

/// One operation on the model.
#[derive(Debug, Clone)]
enum Transition {
    /// A new model, data set and optimizer.
    Build {
        architecture: Architecture,
        seed: u64,
        optimizer: OptimizerKind,
    },
    /// `set_trainable_at(path, trainable)`, on any layer or model inside.
    SetTrainable {
        path: String,
        trainable: bool,
    },
    /// `freeze()` (false) or `unfreeze()` (true) of the whole model.
    SetModelTrainable(bool),
    /// `compile` with another optimizer: its state starts empty.
    Compile(OptimizerKind),
    /// `fit`; shuffled only with one batch per epoch.
    Fit {
        epochs: usize,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
    },
    /// One step on samples `start..start + len`.
    TrainOnBatch {
        start: usize,
        len: usize,
    },
    /// One epoch in data order with sample `sample` poisoned: the steps before
    /// its batch apply, its batch fails and `fit` stops there.
    NonFiniteFit {
        batch_size: usize,
        sample: usize,
        poison: Poison,
    },
    /// `train_on_batch` on samples `start..start + len`, the first poisoned.
    NonFiniteTrainOnBatch {
        start: usize,
        len: usize,
        poison: Poison,
    },
    Predict,
    Evaluate,
    /// `model.reseed(seed)`.
    Reseed(u64),
}

impl Transition {
    fn trains(&self) -> bool {
        matches!(
            self,
            Transition::Fit { .. }
                | Transition::TrainOnBatch { .. }
                | Transition::NonFiniteFit { .. }
                | Transition::NonFiniteTrainOnBatch { .. }
        )
    }
}

/// What the reference says an operation returns.
#[derive(Debug, Clone)]
enum Expected {
    Nothing,
    Fit(Result<Vec<f64>, FitFailure>),
    Step(Result<f64, Rejected>),
}

/// The reference state: the model, the set-up and the last operation's outcome.
#[derive(Debug, Clone)]
struct Reference {
    model: ReferenceModel,
    architecture: Architecture,
    /// Read only in a failing case's report, to rebuild the model and data.
    #[allow(dead_code)]
    seed: u64,
    x: Matrix,
    y: Matrix,
    expected: Expected,
    /// Whether the reference could replay the last operation (no active
    /// dropout, every value known before it), so its values are comparable.
    replayed: bool,
    /// Applied steps of the last operation and the samples they saw.
    steps: u64,
    samples: u64,
}

impl Reference {
    fn build(architecture: Architecture, seed: u64, optimizer: OptimizerKind) -> Self {
        let (x, y) = data_set(seed, SAMPLES, FEATURES);
        Reference {
            model: ReferenceModel::new(model_ab(&architecture, seed), optimizer),
            architecture,
            seed,
            x,
            y,
            expected: Expected::Nothing,
            replayed: true,
            steps: 0,
            samples: 0,
        }
    }
}

/// The data with sample `sample` poisoned.
fn poisoned(x: &Matrix, y: &Matrix, sample: usize, poison: Poison) -> (Matrix, Matrix) {
    let (mut x, mut y) = (x.clone(), y.clone());
    match poison {
        Poison::NanTarget => y.set(sample, 0, f64::NAN),
        Poison::OverflowingTarget => y.set(sample, 0, 1e200),
        Poison::InfiniteInput => x.set(sample, 0, f64::INFINITY),
    }
    (x, y)
}

fn architecture() -> impl Strategy<Value = Architecture> {
    (
        2usize..=6,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![3 => Just(0.0), 1 => Just(DROPOUT_RATE)],
    )
        .prop_map(
            |(hidden, batch_norm, nested_block, dropout_rate)| Architecture {
                hidden,
                batch_norm,
                nested_block,
                dropout_rate,
            },
        )
}

fn optimizer() -> impl Strategy<Value = OptimizerKind> {
    select(OptimizerKind::ALL.to_vec())
}

fn poison() -> impl Strategy<Value = Poison> {
    select(vec![
        Poison::NanTarget,
        Poison::OverflowingTarget,
        Poison::InfiniteInput,
    ])
}

/// The reference state machine.
struct FreezingModel;

impl ReferenceStateMachine for FreezingModel {
    type State = Reference;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Reference> {
        (architecture(), any::<u64>(), optimizer())
            .prop_map(|(architecture, seed, optimizer)| {
                Reference::build(architecture, seed, optimizer)
            })
            .boxed()
    }

    fn transitions(state: &Reference) -> BoxedStrategy<Transition> {
        let paths: Vec<String> = state.model.layers().into_iter().map(|l| l.0).collect();
        prop_oneof![
            1 => (architecture(), any::<u64>(), optimizer()).prop_map(
                |(architecture, seed, optimizer)| Transition::Build {
                    architecture,
                    seed,
                    optimizer
                }
            ),
            4 => (select(paths), any::<bool>())
                .prop_map(|(path, trainable)| Transition::SetTrainable { path, trainable }),
            1 => any::<bool>().prop_map(Transition::SetModelTrainable),
            1 => optimizer().prop_map(Transition::Compile),
            2 => (1usize..=2, 1usize..=16, any::<u64>()).prop_map(|(epochs, batch_size, seed)| {
                Transition::Fit {
                    epochs,
                    batch_size,
                    shuffle: false,
                    seed,
                }
            }),
            1 => (1usize..=2, any::<u64>()).prop_map(|(epochs, seed)| Transition::Fit {
                epochs,
                batch_size: SAMPLES,
                shuffle: true,
                seed,
            }),
            2 => (0..SAMPLES, 1usize..=8).prop_map(|(start, len)| Transition::TrainOnBatch {
                start,
                len: len.min(SAMPLES - start),
            }),
            1 => (1usize..=16, 0..SAMPLES, poison()).prop_map(|(batch_size, sample, poison)| {
                Transition::NonFiniteFit {
                    batch_size,
                    sample,
                    poison,
                }
            }),
            1 => (0..SAMPLES, 1usize..=8, poison()).prop_map(|(start, len, poison)| {
                Transition::NonFiniteTrainOnBatch {
                    start,
                    len: len.min(SAMPLES - start),
                    poison,
                }
            }),
            1 => Just(Transition::Predict),
            1 => Just(Transition::Evaluate),
            1 => any::<u64>().prop_map(Transition::Reseed),
        ]
        .boxed()
    }

    fn preconditions(state: &Reference, transition: &Transition) -> bool {
        let dropout_active = state.architecture.dropout_rate > 0.0;
        match transition {
            Transition::SetTrainable { path, .. } => {
                state.model.layers().iter().any(|(p, _, _)| p == path)
            }
            Transition::NonFiniteFit { poison, .. }
            | Transition::NonFiniteTrainOnBatch { poison, .. } => {
                !(dropout_active && *poison == Poison::InfiniteInput)
            }
            _ => true,
        }
    }

    fn apply(mut state: Reference, transition: &Transition) -> Reference {
        state.expected = Expected::Nothing;
        state.replayed = !state.model.network.has_active_dropout() && state.model.all_known();
        state.steps = 0;
        state.samples = 0;
        let per_epoch = |batch_size: usize| SAMPLES.div_ceil(batch_size) as u64;
        match transition {
            Transition::Build {
                architecture,
                seed,
                optimizer,
            } => return Reference::build(*architecture, *seed, *optimizer),
            Transition::SetTrainable { path, trainable } => {
                assert!(state.model.set_trainable_at(path, *trainable));
            }
            Transition::SetModelTrainable(trainable) => state.model.set_trainable(*trainable),
            Transition::Compile(optimizer) => state.model.compile(*optimizer),
            Transition::Fit {
                epochs, batch_size, ..
            } => {
                let outcome = state.model.fit(&state.x, &state.y, *epochs, *batch_size);
                (state.steps, state.samples) = match &outcome {
                    Ok(_) => (
                        *epochs as u64 * per_epoch(*batch_size),
                        (epochs * SAMPLES) as u64,
                    ),
                    Err(f) => unreachable!("clean data fails no step: {f:?}"),
                };
                state.expected = Expected::Fit(outcome);
            }
            Transition::NonFiniteFit {
                batch_size,
                sample,
                poison,
            } => {
                let (x, y) = poisoned(&state.x, &state.y, *sample, *poison);
                let outcome = state.model.fit(&x, &y, 1, *batch_size);
                if let Err(failure) = &outcome {
                    state.steps = failure.step as u64;
                    state.samples = (failure.step * batch_size) as u64;
                }
                state.expected = Expected::Fit(outcome);
            }
            Transition::TrainOnBatch { start, len } => {
                let rows: Vec<usize> = (*start..start + len).collect();
                let outcome = state
                    .model
                    .train_step(&state.x.select_rows(&rows), &state.y.select_rows(&rows));
                (state.steps, state.samples) = (1, *len as u64);
                state.expected = Expected::Step(outcome);
            }
            Transition::NonFiniteTrainOnBatch { start, len, poison } => {
                let (x, y) = poisoned(&state.x, &state.y, *start, *poison);
                let rows: Vec<usize> = (*start..start + len).collect();
                let outcome = state
                    .model
                    .train_step(&x.select_rows(&rows), &y.select_rows(&rows));
                state.expected = Expected::Step(outcome);
            }
            Transition::Predict | Transition::Evaluate | Transition::Reseed(_) => {}
        }
        state
    }
}

/// The system under test, its data and its last prediction.
struct System {
    model: Model<f64>,
    x: ArrayD<f64>,
    y: ArrayD<f64>,
    prediction: ArrayD<f64>,
}

fn array(m: &Matrix) -> ArrayD<f64> {
    ArrayD::from_shape_vec(vec![m.rows, m.cols], m.data.clone()).expect("rows x cols")
}

/// The optimizer of `kind`, as a user writes it.
fn optimizer_of(kind: OptimizerKind) -> Box<dyn Optimizer<f64>> {
    let lr = kind.hyper().learning_rate;
    match kind {
        OptimizerKind::Sgd => Box::new(Sgd::<f64>::new(lr)),
        OptimizerKind::SgdMomentum => Box::new(Sgd::<f64>::new(lr).momentum(0.9)),
        OptimizerKind::SgdNesterov => Box::new(Sgd::<f64>::new(lr).momentum(0.9).nesterov(true)),
        OptimizerKind::SgdMomentumDecay => {
            Box::new(Sgd::<f64>::new(lr).momentum(0.9).weight_decay(0.01))
        }
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            let mut adam = match kind {
                OptimizerKind::Adam => Adam::<f64>::new(lr),
                _ => Adam::<f64>::adamw(lr),
            };
            adam.epsilon = ADAM_EPSILON;
            Box::new(adam)
        }
    }
}

/// `model_AB` of `architecture`, with the reference's initial weights.
fn build_system(reference: &Reference) -> System {
    let architecture = &reference.architecture;
    let h = architecture.hidden;
    let dropout = || Dropout::new(architecture.dropout_rate).expect("valid rate");
    let mut a = Sequential::<f64>::new("model_A").add(Dense::new(h));
    if architecture.batch_norm {
        a = a.add(BatchNormalization::new());
    }
    a = a.add(ReLU::new()).add(dropout());
    if architecture.nested_block {
        let block = Sequential::<f64>::new("block")
            .add(Dense::new(h))
            .add(BatchNormalization::new())
            .add(ReLU::new())
            .build(&[h], Some(4))
            .expect("build block");
        a = a.add(block);
    }
    let model_a = a
        .add(Dense::new(1))
        .build(&[FEATURES], Some(1))
        .expect("build model_A");
    let model_b = Sequential::<f64>::new("model_B")
        .add(Dense::new(h))
        .add(dropout())
        .add(Dense::new(1))
        .build(&[FEATURES], Some(2))
        .expect("build model_B");
    let mut g = nncheck::Functional::<f64>::new("model_AB", Some(3));
    let input = g.input(&[FEATURES]).expect("input");
    let out_a = g.apply(model_a, input).expect("apply A");
    let out_b = g.apply(model_b, input).expect("apply B");
    let joined = g.concat(&[out_a, out_b]).expect("concat");
    let head = g
        .apply(Dense::new(1).named("head"), joined)
        .expect("apply head");
    let mut model = g.build(head).expect("build model_AB");
    for (path, weight, _) in reference.model.weights() {
        let value = ArrayD::from_shape_vec(weight.shape.clone(), weight.value.clone())
            .expect("the reference's shape");
        model
            .set_weight(&path, value)
            .expect("a weight at that path");
    }
    model
        .compile(
            optimizer_of(reference.model.optimizer),
            Loss::MeanSquaredError,
        )
        .expect("compile");
    let mut system = System {
        model,
        x: array(&reference.x),
        y: array(&reference.y),
        prediction: ArrayD::zeros(vec![0]),
    };
    system.prediction = deterministic_prediction(&mut system.model, &system.x);
    system
}

/// Two predictions are bit-identical; returns one.
fn deterministic_prediction(model: &mut Model<f64>, x: &ArrayD<f64>) -> ArrayD<f64> {
    let first = model.predict(x).expect("predict");
    let second = model.predict(x).expect("predict");
    assert!(bits_equal(&first, &second), "predict is deterministic");
    first
}

fn close(system: f64, reference: f64) -> bool {
    (system - reference).abs() <= TOLERANCE * (1.0 + reference.abs())
}

fn assert_close(what: &str, system: &[f64], reference: &[f64]) {
    assert_eq!(system.len(), reference.len(), "{what}: length");
    for (i, (s, r)) in system.iter().zip(reference).enumerate() {
        assert!(
            close(*s, *r),
            "{what}[{i}]: system {s:e}, reference {r:e} (difference {:e})",
            (s - r).abs()
        );
    }
}

fn assert_bits(what: &str, system: &[f64], reference: &[f64]) {
    assert_eq!(system.len(), reference.len(), "{what}: length");
    for (i, (s, r)) in system.iter().zip(reference).enumerate() {
        assert_eq!(
            s.to_bits(),
            r.to_bits(),
            "{what}[{i}]: system {s:e}, reference {r:e}, bit for bit"
        );
    }
}

fn values(a: &ArrayD<f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

/// Flags, weights, optimizer state and prediction against the reference.
fn compare_with_reference(system: &System, reference: &Reference) {
    // Every layer's own flag, in the same tree order.
    let mut own = Vec::new();
    Layer::visit_layers(&system.model, "", &mut |path, layer| {
        own.push((path.to_string(), layer.trainable()));
    });
    let expected: Vec<(String, bool)> = reference
        .model
        .layers()
        .into_iter()
        .map(|(path, flag, _)| (path, flag))
        .collect();
    assert_eq!(own, expected, "own trainable flags");

    // Every weight's effective flag, kind and value.
    let weights = system.model.weights();
    let reference_weights = reference.model.weights();
    assert_eq!(weights.len(), reference_weights.len(), "weight count");
    for (info, (path, weight, effective)) in weights.iter().zip(&reference_weights) {
        assert_eq!(&info.path, path, "weight order");
        assert_eq!(info.shape, weight.shape, "{path}: shape");
        let kind = match weight.kind {
            ReferenceKind::Param => WeightKind::Param,
            ReferenceKind::State => WeightKind::State,
        };
        assert_eq!(info.kind, kind, "{path}: kind");
        assert_eq!(info.trainable, *effective, "{path}: effectively trainable");
        let value = values(&system.model.weight(path).expect("listed weight"));
        if weight.pristine {
            assert_bits(path, &value, &weight.value);
        } else if weight.known {
            assert_close(path, &value, &weight.value);
        }
    }

    // Every parameter's optimizer state.
    for (path, state) in system.model.optimizer_state() {
        let slot = reference.model.slots.get(&path);
        match (state, slot) {
            (None, None) => {}
            (Some(state), Some(slot)) => {
                assert_eq!(state.steps, slot.steps, "{path}: optimizer steps");
                assert_eq!(state.slots.len(), slot.slots.len(), "{path}: slot count");
                if slot.known {
                    for (k, (s, r)) in state.slots.iter().zip(&slot.slots).enumerate() {
                        assert_close(&format!("{path} slot {k}"), &values(s), r);
                    }
                }
            }
            (state, slot) => panic!("{path}: optimizer state {state:?}, reference {slot:?}"),
        }
    }
    let reference_params = reference_weights
        .iter()
        .filter(|(_, w, _)| w.kind == ReferenceKind::Param)
        .count();
    assert_eq!(
        system.model.optimizer_state().len(),
        reference_params,
        "one optimizer record per parameter"
    );

    // The prediction.
    if reference.model.all_known() {
        let expected = reference.model.clone().predict(&reference.x);
        assert_close("prediction", &values(&system.prediction), &expected.data);
    }
}

/// The system's error as the reference's verdict.
fn rejected(error: &Error) -> (usize, usize, Rejected) {
    match error {
        Error::NonFiniteLoss { epoch, step, .. } => (*epoch, *step, Rejected::Loss),
        Error::NonFiniteStep {
            epoch, step, what, ..
        } => {
            let why = match *what {
                "gradient" => Rejected::Gradient,
                "update" => Rejected::Update,
                "state" => Rejected::State,
                other => panic!("unknown rejection {other}"),
            };
            (*epoch, *step, why)
        }
        other => panic!("not a rejected step: {other}"),
    }
}

/// A result against the reference's: the same verdict, and close losses when
/// the reference replayed the operation.
fn check_outcome(
    system: Result<Vec<f64>, Error>,
    expected: Result<Vec<f64>, FitFailure>,
    replayed: bool,
) {
    match (system, expected) {
        (Ok(losses), Ok(reference)) => {
            assert_eq!(losses.len(), reference.len());
            if replayed {
                assert_close("loss", &losses, &reference);
            }
        }
        (Err(error), Err(failure)) => {
            assert_eq!(
                rejected(&error),
                (failure.epoch, failure.step, failure.why),
                "rejected step: {error}"
            );
        }
        (system, reference) => panic!("system {system:?}, reference {reference:?}"),
    }
}

fn fit_config(epochs: usize, batch_size: usize, shuffle: bool, seed: u64) -> FitConfig {
    FitConfig {
        epochs,
        batch_size,
        shuffle,
        seed: Some(seed),
    }
}

/// Runs the operation on the system and checks what it returned.
fn run(system: &mut System, reference: &Reference, transition: &Transition) {
    let expected = reference.expected.clone();
    let replayed = reference.replayed;
    let step = |system: &mut System, x: &ArrayD<f64>, y: &ArrayD<f64>, rows: Vec<usize>| {
        let outcome = system
            .model
            .train_on_batch(&x.select(Axis(0), &rows), &y.select(Axis(0), &rows));
        let Expected::Step(reference) = expected.clone() else {
            panic!("a step expected")
        };
        let reference = reference.map(|loss| vec![loss]).map_err(|why| FitFailure {
            epoch: 0,
            step: 0,
            why,
        });
        check_outcome(outcome.map(|loss| vec![loss]), reference, replayed);
    };
    let fit = |system: &mut System, x: &ArrayD<f64>, y: &ArrayD<f64>, config: FitConfig| {
        let outcome = system.model.fit(x, y, &config).map(|h| h.loss);
        let Expected::Fit(reference) = expected.clone() else {
            panic!("a fit expected")
        };
        check_outcome(outcome, reference, replayed);
    };
    let poisoned_arrays = |sample: usize, poison: Poison| {
        let (x, y) = poisoned(&reference.x, &reference.y, sample, poison);
        (array(&x), array(&y))
    };
    match transition {
        Transition::Build { .. } => *system = build_system(reference),
        Transition::SetTrainable { path, trainable } => system
            .model
            .set_trainable_at(path, *trainable)
            .expect("a layer at that path"),
        Transition::SetModelTrainable(true) => system.model.unfreeze(),
        Transition::SetModelTrainable(false) => system.model.freeze(),
        Transition::Compile(kind) => system
            .model
            .compile(optimizer_of(*kind), Loss::MeanSquaredError)
            .expect("compile"),
        Transition::Fit {
            epochs,
            batch_size,
            shuffle,
            seed,
        } => {
            let (x, y) = (system.x.clone(), system.y.clone());
            fit(
                system,
                &x,
                &y,
                fit_config(*epochs, *batch_size, *shuffle, *seed),
            );
        }
        Transition::NonFiniteFit {
            batch_size,
            sample,
            poison,
        } => {
            let (x, y) = poisoned_arrays(*sample, *poison);
            fit(system, &x, &y, fit_config(1, *batch_size, false, 0));
        }
        Transition::TrainOnBatch { start, len } => {
            let (x, y) = (system.x.clone(), system.y.clone());
            step(system, &x, &y, (*start..start + len).collect());
        }
        Transition::NonFiniteTrainOnBatch { start, len, poison } => {
            let (x, y) = poisoned_arrays(*start, *poison);
            step(system, &x, &y, (*start..start + len).collect());
        }
        Transition::Predict => {
            let prediction = system.model.predict(&system.x).expect("predict");
            assert!(
                bits_equal(&prediction, &system.prediction),
                "same weights, same prediction"
            );
        }
        Transition::Evaluate => {
            let loss = system
                .model
                .evaluate(&system.x, &system.y)
                .expect("evaluate");
            let (of_predict, _) = Loss::MeanSquaredError
                .value_and_grad(&system.prediction, &system.y)
                .expect("same shapes");
            assert_eq!(
                loss.to_bits(),
                of_predict.to_bits(),
                "evaluate is the loss of predict"
            );
            if reference.model.all_known() {
                let expected = reference.model.clone().evaluate(&reference.x, &reference.y);
                assert_close("evaluate", &[loss], &[expected]);
            }
        }
        Transition::Reseed(seed) => {
            system.model.reseed(*seed);
            let mut seeds = Vec::new();
            system.model.for_each_layer::<Dropout<f64>>(&mut |path, d| {
                assert_eq!(d.calls(), 0, "{path}: call count restarted");
                seeds.push(d.seed());
            });
            assert_ne!(seeds[0], seeds[1], "A and B draw independent masks");
        }
    }
}

/// After a training operation: frozen weights and slots bit-identical to before,
/// every dropout (frozen or not) active in every applied step.
fn check_training(
    before: &ModelSnapshot<f64>,
    after: &ModelSnapshot<f64>,
    reference: &Reference,
    is_fit: bool,
) {
    let frozen: Vec<String> = reference
        .model
        .weights()
        .into_iter()
        .filter(|(_, _, effective)| !effective)
        .map(|(path, _, _)| path)
        .collect();
    for ((path, old), (_, new)) in before.weights.iter().zip(&after.weights) {
        if frozen.contains(path) {
            assert!(bits_equal(old, new), "{path}: frozen, yet it moved");
        }
    }
    for ((path, old), (_, new)) in before.optimizer.iter().zip(&after.optimizer) {
        if frozen.contains(path) {
            assert!(
                SlotState::bits_equal(old.as_ref(), new.as_ref()),
                "{path}: frozen optimizer slots moved"
            );
        }
    }
    assert_eq!(before.counters.len(), 2, "one dropout in A, one in B");
    for ((path, b), (_, a)) in before.counters.iter().zip(&after.counters) {
        assert_eq!(
            a.train_calls - b.train_calls,
            reference.steps,
            "{path}: train calls"
        );
        assert_eq!(
            a.units_seen - b.units_seen,
            reference.samples * reference.architecture.hidden as u64,
            "{path}: units seen"
        );
        let units = reference.samples * reference.architecture.hidden as u64;
        if is_fit && reference.architecture.dropout_rate > 0.0 && units >= 200 {
            // Keeping all of at least 200 units at rate 0.2 has probability below 1e-19.
            assert!(a.units_dropped > b.units_dropped, "{path}: dropped some");
        }
    }
}

impl StateMachineTest for FreezingModel {
    type SystemUnderTest = System;
    type Reference = FreezingModel;

    fn init_test(reference: &Reference) -> System {
        let system = build_system(reference);
        compare_with_reference(&system, reference);
        system
    }

    fn apply(mut system: System, reference: &Reference, transition: Transition) -> System {
        let before = ModelSnapshot::of(&system.model);
        let prediction_before = system.prediction.clone();
        run(&mut system, reference, &transition);
        system.prediction = deterministic_prediction(&mut system.model, &system.x);
        let after = ModelSnapshot::of(&system.model);
        if transition.trains() {
            let is_fit = matches!(transition, Transition::Fit { .. });
            check_training(&before, &after, reference, is_fit);
        } else if !matches!(transition, Transition::Build { .. }) {
            // Nothing trained: no weight moved, no prediction changed, and only
            // a compile touched the optimizer state.
            let moved = before.diff(&after).weights;
            assert!(moved.is_empty(), "{transition:?} moved {moved:?}");
            assert!(
                bits_equal(&system.prediction, &prediction_before),
                "{transition:?} changed the prediction"
            );
            if !matches!(transition, Transition::Compile(_)) {
                assert!(
                    before
                        .optimizer
                        .iter()
                        .zip(&after.optimizer)
                        .all(|(a, b)| SlotState::bits_equal(a.1.as_ref(), b.1.as_ref())),
                    "{transition:?} moved optimizer state"
                );
            }
            if !matches!(transition, Transition::Reseed(_)) {
                assert_eq!(before.counters, after.counters, "no train call, no counts");
            }
        }
        compare_with_reference(&system, reference);
        system
    }
}

prop_state_machine! {
    #![proptest_config(common::config(1000))]

    /// Random sequences of building, freezing, compiling, training (good and
    /// non-finite steps) and inference on model_AB, against the reference.
    #[test]
    fn freezing_holds_over_random_operation_sequences(sequential 1..24 => FreezingModel);
}

/// One fixed sequence, so the scenario's own story runs every time: train all,
/// freeze A and B, train the head with AdamW, unfreeze A and train again.
#[test]
fn train_freeze_unfreeze_resumes_step_counts() {
    let architecture = Architecture {
        hidden: 6,
        batch_norm: true,
        nested_block: true,
        dropout_rate: 0.0,
    };
    let mut reference = Reference::build(architecture, 42, OptimizerKind::AdamW);
    let mut system = <FreezingModel as StateMachineTest>::init_test(&reference);
    let freeze = |path: &str, trainable| Transition::SetTrainable {
        path: path.into(),
        trainable,
    };
    let sequence = [
        Transition::Fit {
            epochs: 1,
            batch_size: 8,
            shuffle: false,
            seed: 1,
        },
        freeze("model_AB/model_A", false),
        freeze("model_AB/model_B", false),
        Transition::Fit {
            epochs: 1,
            batch_size: 5,
            shuffle: false,
            seed: 2,
        },
        Transition::TrainOnBatch { start: 3, len: 4 },
        Transition::Predict,
        Transition::Reseed(9),
        freeze("model_AB/model_A", true),
        freeze("model_AB/model_A/block/batch_normalization", false),
        Transition::Fit {
            epochs: 1,
            batch_size: 16,
            shuffle: false,
            seed: 3,
        },
        Transition::NonFiniteFit {
            batch_size: 8,
            sample: 17,
            poison: Poison::NanTarget,
        },
        Transition::Evaluate,
    ];
    for transition in sequence {
        reference = <FreezingModel as ReferenceStateMachine>::apply(reference, &transition);
        system = <FreezingModel as StateMachineTest>::apply(system, &reference, transition);
    }
    // A trained for 3 + 2 + 2 steps, B for 3, the head for 3 + 5 + 1 + 2 + 2.
    let steps = |path: &str| reference.model.slots[path].steps;
    assert_eq!(steps("model_AB/model_A/dense/kernel"), 7);
    assert_eq!(steps("model_AB/model_B/dense/kernel"), 3);
    assert_eq!(steps("model_AB/head/kernel"), 13);
    // The frozen BatchNorm inside the nested block stopped at A's first 3 steps.
    assert_eq!(steps("model_AB/model_A/block/batch_normalization/gamma"), 3);
}
