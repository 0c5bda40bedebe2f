//! A state-machine test of freezing (SPEC §3) over random sequences of operations.
//!
//! The system under test is `model_AB`, built like `src/scenario.rs`: two nested
//! sequential models, `model_A` (Dense → BatchNormalization → ReLU → Dropout →
//! Dense) and `model_B` (Dense → Dropout → Dense), on a shared input, joined by a
//! concatenation under a Dense `head`; compiled with SGD (learning rate 0.01,
//! momentum 0.9, weight decay 0.01) or AdamW (learning rate 0.01). At SGD
//! learning rate 0.05 a one-sample-batch fit of this model diverges within a few
//! epochs, which would turn the run into a test of the non-finite path. A random sequence freezes and unfreezes A, B and the
//! head (by path, `set_trainable_at`), fits (one epoch, random batch size, seeded
//! shuffle), trains on a batch, predicts, evaluates and reseeds the dropout.
//!
//! The reference model knows only which parts are frozen and how many optimizer
//! updates each part's parameters have received. After every operation the test
//! proves:
//! - every weight under a frozen path, BatchNorm moving statistics included, is
//!   bit-identical to before; its optimizer slots and step count did not move
//!   either (whatever was accumulated before it was frozen);
//! - after a training operation, a trainable weight with a non-negligible
//!   gradient moved (at least the head's kernel when the head is trainable), a
//!   trainable BatchNorm's moving statistics moved, and every parameter's
//!   optimizer step count equals the reference's: unfreezing resumes a
//!   parameter's own count, freezing pauses it, no recompile in between;
//! - dropout stays active in frozen parts: every dropout layer saw every unit of
//!   every training step, and dropped some during a fit;
//! - an operation that does not train (freeze, unfreeze, predict, evaluate,
//!   reseed) changes no weight, no optimizer state and no prediction;
//! - `predict` is deterministic (two calls bit-identical), `evaluate` is the loss
//!   of `predict`'s output, and `trainable_weights` follows the flags.

use ndarray::{ArrayD, Axis};
use nncheck::check::snapshot::ModelSnapshot;
use nncheck::optim::{Adam, Sgd, SlotState};
use nncheck::scenario::synthetic_data;
use nncheck::tensor::bits_equal;
use nncheck::{
    BatchNormalization, Dense, Dropout, DropoutStats, FitConfig, Functional, Layer, Loss, Model,
    ReLU, Sequential, WeightKind,
};
use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

mod common;

/// Input features.
const FEATURES: usize = 4;
/// Hidden width of A and B (the units each dropout layer sees per sample).
const HIDDEN: usize = 6;
/// Samples in the data set.
const SAMPLES: usize = 24;
/// A gradient component at least this large must move its weight in a step
/// (far above the f32 rounding of `w - lr * g` for the weights here).
const MOVING_GRADIENT: f32 = 1e-4;

/// The three parts that are frozen and unfrozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    A,
    B,
    Head,
}

impl Part {
    const ALL: [Part; 3] = [Part::A, Part::B, Part::Head];

    fn path(self) -> &'static str {
        match self {
            Part::A => "model_AB/model_A",
            Part::B => "model_AB/model_B",
            Part::Head => "model_AB/head",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The part a weight (or layer) path lies under.
    fn of(path: &str) -> Part {
        Part::ALL
            .into_iter()
            .find(|p| path == p.path() || path.starts_with(&format!("{}/", p.path())))
            .unwrap_or_else(|| panic!("{path} lies under no part"))
    }
}

/// The optimizer `model_AB` is compiled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptimizerKind {
    /// `Sgd::new(0.01).momentum(0.9).weight_decay(0.01)`.
    SgdMomentumDecay,
    /// `Adam::adamw(1e-2)`.
    AdamW,
}

/// One operation on the model.
#[derive(Debug, Clone)]
enum Transition {
    /// `set_trainable_at(part.path(), trainable)`.
    SetTrainable {
        part: Part,
        trainable: bool,
    },
    /// One shuffled epoch.
    Fit {
        batch_size: usize,
        seed: u64,
    },
    /// One step on samples `start..start + len`.
    TrainOnBatch {
        start: usize,
        len: usize,
    },
    Predict,
    Evaluate,
    /// `model.reseed(seed)`.
    ReseedDropout(u64),
}

impl Transition {
    /// The optimizer steps the operation takes.
    fn steps(&self) -> u64 {
        match self {
            Transition::Fit { batch_size, .. } => SAMPLES.div_ceil(*batch_size) as u64,
            Transition::TrainOnBatch { .. } => 1,
            _ => 0,
        }
    }
}

/// What the reference knows: the set-up, the flags and the update counts.
#[derive(Debug, Clone)]
struct Reference {
    optimizer: OptimizerKind,
    seed: u64,
    /// By [`Part::index`].
    frozen: [bool; 3],
    /// Optimizer updates each part's parameters received, by [`Part::index`].
    steps: [u64; 3],
}

/// The reference state machine.
struct FreezingModel;

impl ReferenceStateMachine for FreezingModel {
    type State = Reference;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Reference> {
        (
            prop_oneof![
                Just(OptimizerKind::SgdMomentumDecay),
                Just(OptimizerKind::AdamW)
            ],
            any::<u64>(),
            any::<[bool; 3]>(),
        )
            .prop_map(|(optimizer, seed, frozen)| Reference {
                optimizer,
                seed,
                frozen,
                steps: [0; 3],
            })
            .boxed()
    }

    fn transitions(_: &Reference) -> BoxedStrategy<Transition> {
        let part = prop_oneof![Just(Part::A), Just(Part::B), Just(Part::Head)];
        prop_oneof![
            3 => (part, any::<bool>())
                .prop_map(|(part, trainable)| Transition::SetTrainable { part, trainable }),
            2 => (1usize..=16, any::<u64>())
                .prop_map(|(batch_size, seed)| Transition::Fit { batch_size, seed }),
            2 => (0..SAMPLES, 1usize..=8).prop_map(|(start, len)| Transition::TrainOnBatch {
                start,
                len: len.min(SAMPLES - start),
            }),
            1 => Just(Transition::Predict),
            1 => Just(Transition::Evaluate),
            1 => any::<u64>().prop_map(Transition::ReseedDropout),
        ]
        .boxed()
    }

    fn apply(mut state: Reference, transition: &Transition) -> Reference {
        if let Transition::SetTrainable { part, trainable } = transition {
            state.frozen[part.index()] = !trainable;
        }
        for part in Part::ALL {
            if !state.frozen[part.index()] {
                state.steps[part.index()] += transition.steps();
            }
        }
        state
    }
}

/// The system under test: the model, its data and its last prediction.
struct System {
    model: Model<f32>,
    x: ArrayD<f32>,
    y: ArrayD<f32>,
    prediction: ArrayD<f32>,
}

fn build_model(seed: u64, optimizer: OptimizerKind) -> Model<f32> {
    let model_a = Sequential::new("model_A")
        .add(Dense::new(HIDDEN))
        .add(BatchNormalization::new())
        .add(ReLU::new())
        .add(Dropout::new(0.5).expect("valid rate"))
        .add(Dense::new(1))
        .build(&[FEATURES], Some(seed.wrapping_add(1)))
        .expect("build model_A");
    let model_b = Sequential::new("model_B")
        .add(Dense::new(HIDDEN))
        .add(Dropout::new(0.5).expect("valid rate"))
        .add(Dense::new(1))
        .build(&[FEATURES], Some(seed.wrapping_add(2)))
        .expect("build model_B");
    let mut g = Functional::new("model_AB", Some(seed.wrapping_add(3)));
    let input = g.input(&[FEATURES]).expect("input");
    let out_a = g.apply(model_a, input).expect("apply A");
    let out_b = g.apply(model_b, input).expect("apply B");
    let joined = g.concat(&[out_a, out_b]).expect("concat");
    let head = g
        .apply(Dense::new(1).named("head"), joined)
        .expect("apply head");
    let mut model = g.build(head).expect("build model_AB");
    match optimizer {
        OptimizerKind::SgdMomentumDecay => model.compile(
            Sgd::new(0.01).momentum(0.9).weight_decay(0.01),
            Loss::MeanSquaredError,
        ),
        OptimizerKind::AdamW => model.compile(Adam::adamw(1e-2), Loss::MeanSquaredError),
    }
    .expect("compile");
    model
}

/// Two predictions are bit-identical; returns one.
fn deterministic_prediction(model: &mut Model<f32>, x: &ArrayD<f32>) -> ArrayD<f32> {
    let first = model.predict(x).expect("predict");
    let second = model.predict(x).expect("predict");
    assert!(bits_equal(&first, &second), "predict is deterministic");
    assert!(first.iter().all(|v| v.is_finite()), "finite prediction");
    first
}

/// Optimizer state by weight path.
type OptimizerState = Vec<(String, Option<SlotState<f32>>)>;

/// Entries of the optimizer state whose path lies under a part for which
/// `select` holds, and that differ between `before` and `after`.
fn changed_slots(
    before: &OptimizerState,
    after: &OptimizerState,
    select: impl Fn(Part) -> bool,
) -> Vec<String> {
    assert_eq!(before.len(), after.len(), "the same parameters");
    before
        .iter()
        .zip(after)
        .filter(|((path, a), (path_after, b))| {
            assert_eq!(path, path_after, "the same order");
            select(Part::of(path)) && !SlotState::bits_equal(a.as_ref(), b.as_ref())
        })
        .map(|((path, _), _)| path.clone())
        .collect()
}

/// Checks that hold after every operation: flags, step counts, determinism.
fn check_after_every_operation(system: &mut System, reference: &Reference) {
    // `trainable_weights` follows the flags: a part is frozen iff none of its
    // weights is listed.
    let trainable = system.model.trainable_weights();
    for part in Part::ALL {
        let listed = trainable.iter().any(|w| Part::of(&w.path) == part);
        assert_eq!(
            listed,
            !reference.frozen[part.index()],
            "{}: trainable_weights against the flag",
            part.path()
        );
    }
    // Every parameter received exactly the updates its part was trainable for.
    for (path, state) in system.model.optimizer_state() {
        let steps = state.map_or(0, |s| s.steps);
        assert_eq!(
            steps,
            reference.steps[Part::of(&path).index()],
            "{path}: optimizer steps"
        );
    }
    system.prediction = deterministic_prediction(&mut system.model, &system.x);
}

/// Every weight (parameters and state), optimizer record and dropout counter.
fn all_weights(model: &Model<f32>) -> ModelSnapshot<f32> {
    ModelSnapshot::of(model)
}

/// After a training operation: weights with a non-negligible gradient moved.
fn check_trainable_moved(model: &Model<f32>, before: &ModelSnapshot<f32>, reference: &Reference) {
    let mut head_kernel_moved = false;
    Layer::visit_weights(model, "", true, &mut |path, w, effective| {
        let full = format!("{path}/{}", w.name);
        let part = Part::of(path);
        if reference.frozen[part.index()] {
            return;
        }
        let old = &before
            .weights
            .iter()
            .find(|(p, _)| *p == full)
            .unwrap_or_else(|| panic!("{full} in the snapshot"))
            .1;
        let moved = !bits_equal(old, &w.value);
        match w.kind {
            WeightKind::Param => {
                assert!(effective, "{full}: its part is trainable");
                let big_gradient = w
                    .grad
                    .as_ref()
                    .is_some_and(|g| g.iter().any(|v| v.abs() >= MOVING_GRADIENT));
                assert!(
                    moved || !big_gradient,
                    "{full}: gradient {:?} but the weight did not move",
                    w.grad
                );
                if full == "model_AB/head/kernel" {
                    head_kernel_moved = moved;
                }
            }
            // A trainable BatchNorm moves its moving statistics in every train step.
            WeightKind::State => assert!(moved, "{full}: trainable BatchNorm statistics stayed"),
        }
    });
    if !reference.frozen[Part::Head.index()] {
        assert!(head_kernel_moved, "the trainable head's kernel moved");
    }
}

/// Dropout in every part, frozen or not, saw every unit of every training step.
fn check_dropout_active(
    before: &[(String, DropoutStats)],
    after: &[(String, DropoutStats)],
    steps: u64,
    samples: usize,
    is_fit: bool,
) {
    assert_eq!(before.len(), 2, "one dropout in A, one in B");
    for ((path, b), (_, a)) in before.iter().zip(after) {
        assert_eq!(a.train_calls - b.train_calls, steps, "{path}: train calls");
        assert_eq!(
            a.units_seen - b.units_seen,
            (samples * HIDDEN) as u64,
            "{path}: units seen"
        );
        if is_fit {
            // At rate 0.5, keeping all of SAMPLES * HIDDEN = 144 units has
            // probability 2^-144.
            assert!(a.units_dropped > b.units_dropped, "{path}: dropped some");
        }
    }
}

impl StateMachineTest for FreezingModel {
    type SystemUnderTest = System;
    type Reference = FreezingModel;

    fn init_test(reference: &Reference) -> System {
        let mut model = build_model(reference.seed, reference.optimizer);
        let paths = model.layer_paths();
        for part in Part::ALL {
            assert!(paths.iter().any(|p| p == part.path()), "{}", part.path());
            let trainable = !reference.frozen[part.index()];
            model
                .set_trainable_at(part.path(), trainable)
                .expect("a layer at that path");
        }
        let (x, y) = synthetic_data(SAMPLES, FEATURES, reference.seed);
        let mut system = System {
            prediction: ArrayD::zeros(vec![0]),
            model,
            x,
            y,
        };
        check_after_every_operation(&mut system, reference);
        system
    }

    fn apply(mut system: System, reference: &Reference, transition: Transition) -> System {
        let weights_before = all_weights(&system.model);
        let (slots_before, stats_before) = (&weights_before.optimizer, &weights_before.counters);
        let prediction_before = system.prediction.clone();

        let trains = transition.steps() > 0;
        match &transition {
            Transition::SetTrainable { part, trainable } => {
                system
                    .model
                    .set_trainable_at(part.path(), *trainable)
                    .expect("a layer at that path");
            }
            Transition::Fit { batch_size, seed } => {
                let config = FitConfig {
                    epochs: 1,
                    batch_size: *batch_size,
                    shuffle: true,
                    seed: Some(*seed),
                };
                let history = system
                    .model
                    .fit(&system.x, &system.y, &config)
                    .expect("fit");
                assert!(history.loss.len() == 1 && history.loss[0].is_finite());
            }
            Transition::TrainOnBatch { start, len } => {
                let rows: Vec<usize> = (*start..start + len).collect();
                let xb = system.x.select(Axis(0), &rows);
                let yb = system.y.select(Axis(0), &rows);
                let loss = system
                    .model
                    .train_on_batch(&xb, &yb)
                    .expect("train_on_batch");
                assert!(loss.is_finite());
            }
            Transition::Predict => {
                let prediction = system.model.predict(&system.x).expect("predict");
                assert!(
                    bits_equal(&prediction, &prediction_before),
                    "same weights, same prediction"
                );
            }
            Transition::Evaluate => {
                let loss = system
                    .model
                    .evaluate(&system.x, &system.y)
                    .expect("evaluate");
                let (expected, _) = Loss::MeanSquaredError
                    .value_and_grad(&prediction_before, &system.y)
                    .expect("same shapes");
                assert_eq!(
                    loss.to_bits(),
                    expected.to_bits(),
                    "evaluate is the loss of predict"
                );
            }
            Transition::ReseedDropout(seed) => {
                system.model.reseed(*seed);
                let mut seeds = Vec::new();
                system.model.for_each_layer::<Dropout<f32>>(&mut |path, d| {
                    assert_eq!(d.calls(), 0, "{path}: call count restarted");
                    seeds.push(d.seed());
                });
                assert_ne!(seeds[0], seeds[1], "A and B draw independent masks");
            }
        }

        let weights_after = all_weights(&system.model);
        let (slots_after, stats_after) = (&weights_after.optimizer, &weights_after.counters);
        if trains {
            // Frozen parts: weights (BatchNorm statistics included) and slots unchanged.
            for part in Part::ALL
                .into_iter()
                .filter(|p| reference.frozen[p.index()])
            {
                let before = weights_before.clone().subtree(part.path());
                let after = weights_after.clone().subtree(part.path());
                assert!(before.scalars() > 0);
                let moved = before.diff(&after).weights;
                assert!(
                    moved.is_empty(),
                    "{}: frozen weights changed in {transition:?}: {moved:?}",
                    part.path()
                );
            }
            let changed = changed_slots(slots_before, slots_after, |p| reference.frozen[p.index()]);
            assert!(
                changed.is_empty(),
                "frozen optimizer slots moved: {changed:?}"
            );
            check_trainable_moved(&system.model, &weights_before, reference);
            let samples = match transition {
                Transition::TrainOnBatch { len, .. } => len,
                _ => SAMPLES,
            };
            let is_fit = matches!(transition, Transition::Fit { .. });
            check_dropout_active(
                stats_before,
                stats_after,
                transition.steps(),
                samples,
                is_fit,
            );
        } else {
            // Nothing trained: nothing moved, anywhere.
            let moved = weights_before.diff(&weights_after).weights;
            assert!(
                moved.is_empty(),
                "weights changed in {transition:?}: {moved:?}"
            );
            let changed = changed_slots(slots_before, slots_after, |_| true);
            assert!(
                changed.is_empty(),
                "optimizer slots moved in {transition:?}: {changed:?}"
            );
            if !matches!(transition, Transition::ReseedDropout(_)) {
                assert_eq!(
                    stats_before, stats_after,
                    "no train call, no dropout counts"
                );
            }
        }

        check_after_every_operation(&mut system, reference);
        if !trains {
            assert!(
                bits_equal(&system.prediction, &prediction_before),
                "{transition:?} changed the prediction"
            );
        }
        system
    }
}

prop_state_machine! {
    #![proptest_config(common::config(1000))]

    /// Random sequences of freezing, training and inference on model_AB.
    #[test]
    fn freezing_holds_over_random_operation_sequences(sequential 1..24 => FreezingModel);
}

/// One fixed sequence, so the scenario's own story runs every time: train all,
/// freeze A and B, train the head with AdamW, unfreeze A and train again.
#[test]
fn train_freeze_unfreeze_resumes_step_counts() {
    let mut reference = Reference {
        optimizer: OptimizerKind::AdamW,
        seed: 42,
        frozen: [false; 3],
        steps: [0; 3],
    };
    let mut system = <FreezingModel as StateMachineTest>::init_test(&reference);
    let sequence = [
        Transition::Fit {
            batch_size: 8,
            seed: 1,
        },
        Transition::SetTrainable {
            part: Part::A,
            trainable: false,
        },
        Transition::SetTrainable {
            part: Part::B,
            trainable: false,
        },
        Transition::Fit {
            batch_size: 5,
            seed: 2,
        },
        Transition::TrainOnBatch { start: 3, len: 4 },
        Transition::Predict,
        Transition::ReseedDropout(9),
        Transition::SetTrainable {
            part: Part::A,
            trainable: true,
        },
        Transition::Fit {
            batch_size: 16,
            seed: 3,
        },
        Transition::Evaluate,
    ];
    for transition in sequence {
        reference = <FreezingModel as ReferenceStateMachine>::apply(reference, &transition);
        system = <FreezingModel as StateMachineTest>::apply(system, &reference, transition);
    }
    // A trained for 3 + 2 steps, B for 3, the head for 3 + 5 + 1 + 2.
    assert_eq!(reference.steps, [5, 3, 11]);
}
