//! Fuzz target `fit_sequence`: arbitrary sequences of operations on a small model.
//!
//! The bytes choose a small model (a frozen-able base `Dense → [BatchNorm] → ReLU →
//! Dropout` nested in a Sequential or a two-branch Functional model with a concat
//! and a Dense head), then a sequence of operations: freeze, unfreeze, set
//! `trainable` at any path, compile with SGD (momentum, Nesterov, weight decay),
//! Adam or AdamW (valid or invalid hyper-parameters), `fit` (data with NaN and
//! infinities, mismatched shapes, batch size and epochs including 0), `train_on_batch`,
//! `predict`, `evaluate`, a `Train` call and `set_weights`.
//!
//! Invariants served (SPEC §3, §7):
//! - a weight that is not effectively trainable when an operation starts (frozen
//!   parameters and the moving statistics of frozen BatchNorms), and its optimizer
//!   slots, are bit-identical after it;
//! - a call rejected for bad input (any error but a non-finite loss or step) leaves
//!   `get_weights()` and `optimizer_state()` bit-identical;
//! - a `train_on_batch` stopped by a non-finite loss or step applies nothing;
//! - `fit` is exactly the sequence of `train_on_batch` steps it stands for: a twin
//!   model built from the same seed replays each `fit` step by step (same shuffle,
//!   same batches), and after every operation both models agree bit for bit. So a
//!   `fit` stopped by a non-finite loss or step reports the epoch and step where
//!   the replay failed and keeps the weights and optimizer state of its last good
//!   step; and its history equals the batch-size-weighted mean of the replayed losses;
//! - `predict` and `evaluate` change nothing and return the declared shape.

use super::{any_f32, is_non_finite, small_f32, FuzzResult};
use arbitrary::Unstructured;
use ndarray::{ArrayD, Axis};
use nncheck::check::training::snapshot::ModelSnapshot;
use nncheck::error::{Error, Result};
use nncheck::fit::FitConfig;
use nncheck::layer::Layer;
use nncheck::layers::{BatchNormalization, Dense, Dropout, ReLU};
use nncheck::loss::Loss;
use nncheck::model::graph::Functional;
use nncheck::model::sequential::Sequential;
use nncheck::model::Model;
use nncheck::optim::{Adam, Sgd};
use nncheck::phase::Phase;
use nncheck::rng::chacha;
use nncheck::tensor::bits_equal;
use rand::seq::SliceRandom;

/// Runs the `fit_sequence` target on one input. Panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = body(&mut u);
}

/// The most operations in one run.
const MAX_OPS: usize = 12;

/// The small model both twins are built from.
#[derive(Debug, Clone)]
struct Spec {
    inputs: usize,
    hidden: usize,
    outputs: usize,
    batch_norm: bool,
    rate: f64,
    functional: bool,
    pin_base_eval: bool,
    seed: u64,
}

impl Spec {
    fn arbitrary(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        Ok(Spec {
            inputs: u.int_in_range(1..=4)?,
            hidden: u.int_in_range(1..=6)?,
            outputs: u.int_in_range(1..=2)?,
            batch_norm: u.arbitrary()?,
            rate: *u.choose(&[0.0, 0.25, 0.5, 1.0])?,
            functional: u.arbitrary()?,
            pin_base_eval: u.ratio(1u8, 4)?,
            seed: u.arbitrary()?,
        })
    }

    fn build(&self) -> Model<f32> {
        let mut base = Sequential::<f32>::new("base").add(Dense::new(self.hidden));
        if self.batch_norm {
            base = base.add(BatchNormalization::new());
        }
        let base = base
            .add(ReLU::new())
            .add(Dropout::new(self.rate).expect("valid rate"))
            .build(&[self.inputs], Some(self.seed))
            .expect("valid base");
        let seed = Some(self.seed.wrapping_add(1));
        if self.functional {
            let mut g = Functional::new("model", seed);
            let x = g.input(&[self.inputs]).expect("input");
            let a = if self.pin_base_eval {
                g.apply_pinned(base, x, Phase::Eval)
            } else {
                g.apply(base, x)
            }
            .expect("base");
            let b = g
                .apply(Dense::new(self.hidden).named("side"), x)
                .expect("side");
            let c = g.concat(&[a, b]).expect("concat");
            let y = g
                .apply(Dense::new(self.outputs).named("head"), c)
                .expect("head");
            g.build(y).expect("valid graph")
        } else {
            let s = Sequential::new("model");
            let s = if self.pin_base_eval {
                s.add_pinned(base, Phase::Eval)
            } else {
                s.add(base)
            };
            s.add(Dense::new(self.outputs).named("head"))
                .build(&[self.inputs], seed)
                .expect("valid model")
        }
    }
}

/// An optimizer configuration (hyper-parameters valid or not).
#[derive(Debug, Clone)]
enum OptSpec {
    Sgd {
        lr: f64,
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
    },
    Adam {
        lr: f64,
        beta_1: f64,
        weight_decay: f64,
    },
}

impl OptSpec {
    fn arbitrary(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        let lr = *u.choose(&[0.01, 0.1, 1.0, 0.0, 1e30, -0.1, f64::NAN, f64::INFINITY])?;
        let weight_decay = *u.choose(&[0.0, 0.0, 0.004, 0.1, -1.0, f64::NAN])?;
        Ok(if u.arbitrary()? {
            OptSpec::Sgd {
                lr,
                momentum: *u.choose(&[0.0, 0.5, 0.9, 1.0, 1.5, f64::NAN])?,
                nesterov: u.arbitrary()?,
                weight_decay,
            }
        } else {
            OptSpec::Adam {
                lr,
                beta_1: *u.choose(&[0.9, 0.9, 0.0, 0.999_999_99, 1.0])?,
                weight_decay,
            }
        })
    }

    fn compile(&self, m: &mut Model<f32>, loss: Loss) -> Result<()> {
        match *self {
            OptSpec::Sgd {
                lr,
                momentum,
                nesterov,
                weight_decay,
            } => m.compile(
                Sgd::new(lr)
                    .momentum(momentum)
                    .nesterov(nesterov)
                    .weight_decay(weight_decay),
                loss,
            ),
            OptSpec::Adam {
                lr,
                beta_1,
                weight_decay,
            } => {
                let mut adam = Adam::new(lr).weight_decay(weight_decay);
                adam.beta_1 = beta_1;
                m.compile(adam, loss)
            }
        }
    }
}

/// A pair `(x, y)`: usually the right shapes, sometimes not; values usually small,
/// sometimes anything (NaN, infinities, subnormals, extremes).
fn data(u: &mut Unstructured<'_>, spec: &Spec) -> arbitrary::Result<(ArrayD<f32>, ArrayD<f32>)> {
    let n = if u.ratio(1u8, 10)? {
        0
    } else {
        u.int_in_range(1usize..=8)?
    };
    let x_shape = match u.int_in_range(0u8..=15)? {
        0 => vec![n, spec.inputs + 1],
        1 => vec![n, spec.inputs, 1],
        2 => vec![n],
        _ => vec![n, spec.inputs],
    };
    let y_shape = match u.int_in_range(0u8..=15)? {
        0 => vec![n + 1, spec.outputs],
        1 => vec![n, spec.outputs + 1],
        _ => vec![n, spec.outputs],
    };
    let wild_x = u.ratio(1u8, 4)?;
    let wild_y = wild_x && u.arbitrary()?;
    Ok((
        super::array(u, &x_shape, wild_x)?,
        super::array(u, &y_shape, wild_y)?,
    ))
}

/// The part of `m` that is not effectively trainable: those weights and, for
/// parameters, their optimizer records.
fn frozen_set(m: &Model<f32>) -> ModelSnapshot {
    let mut frozen = std::collections::HashSet::new();
    m.visit_weights("", true, &mut |path, w, eff| {
        if !eff {
            frozen.insert(format!("{path}/{}", w.name));
        }
    });
    only(ModelSnapshot::of(m), &|p| frozen.contains(p))
}

/// `snapshot` without counters and without the entries whose path fails `keep`.
fn only(mut snapshot: ModelSnapshot, keep: &dyn Fn(&str) -> bool) -> ModelSnapshot {
    snapshot.weights.retain(|(p, _)| keep(p));
    snapshot.optimizer.retain(|(p, _)| keep(p));
    snapshot.counters.clear();
    snapshot
}

/// Checks that every weight of `before` kept its value and its optimizer slots.
/// (The operation checked must not replace the optimizer, as `compile` does.)
fn assert_frozen_unchanged(before: &ModelSnapshot, m: &Model<f32>, op: &str) {
    let listed = |p: &str| {
        before.weights.iter().any(|(q, _)| q == p) || before.optimizer.iter().any(|(q, _)| q == p)
    };
    let diff = before.diff(&only(ModelSnapshot::of(m), &listed));
    assert!(
        diff.is_empty(),
        "{op}: frozen weights or their slots moved: {diff}"
    );
}

/// Debug text of an error, so errors holding NaN compare equal.
fn text<T: std::fmt::Debug>(r: &Result<T>) -> String {
    format!("{r:?}")
}

fn assert_twins(a: &Model<f32>, b: &Model<f32>, op: &str) {
    assert!(
        ModelSnapshot::of(a)
            .diff(&ModelSnapshot::of(b))
            .weights_and_slots_unchanged(),
        "{op}: the twin models diverged"
    );
}

fn body(u: &mut Unstructured<'_>) -> FuzzResult {
    let spec = Spec::arbitrary(u)?;
    let mut a = spec.build();
    let mut b = spec.build();
    assert_twins(&a, &b, "build");
    let paths = a.layer_paths();
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let before = ModelSnapshot::of(&a);
        let frozen = frozen_set(&a);
        let op = u.int_in_range(0u8..=12)?;
        let name = match op {
            0 => {
                let freeze = u.arbitrary()?;
                for m in [&mut a, &mut b] {
                    if freeze {
                        m.freeze();
                    } else {
                        m.unfreeze();
                    }
                }
                "freeze"
            }
            1 => {
                let path = &paths[u.choose_index(paths.len())?];
                let trainable = u.arbitrary()?;
                let found = a.set_trainable_at(path, trainable);
                assert!(found.is_ok(), "layer_paths() lists {path}: {found:?}");
                assert_eq!(b.set_trainable_at(path, trainable), found);
                // A path that names no layer is refused by name, changing nothing.
                let unknown = format!("{path}/no_such_layer");
                let before = a.weights();
                assert!(matches!(
                    a.set_trainable_at(&unknown, !trainable),
                    Err(Error::UnknownPath { .. })
                ));
                assert_eq!(a.weights(), before, "an unknown path changed a flag");
                "set_trainable_at"
            }
            2 => {
                let opt = OptSpec::arbitrary(u)?;
                let loss = super::loss(u)?;
                let ra = opt.compile(&mut a, loss);
                let rb = opt.compile(&mut b, loss);
                assert_eq!(text(&ra), text(&rb), "compile twins disagree");
                if ra.is_err() {
                    assert!(
                        before
                            .diff(&ModelSnapshot::of(&a))
                            .weights_and_slots_unchanged(),
                        "rejected compile changed the model"
                    );
                }
                "compile"
            }
            3..=5 => {
                let (x, y) = data(u, &spec)?;
                let config = FitConfig {
                    epochs: u.int_in_range(0..=3)?,
                    batch_size: u.int_in_range(0..=5)?,
                    shuffle: u.arbitrary()?,
                    seed: Some(u.arbitrary()?),
                };
                fit_and_replay(&mut a, &mut b, &x, &y, &config, &before);
                assert_frozen_unchanged(&frozen, &a, "fit");
                "fit"
            }
            6 | 7 => {
                let (x, y) = data(u, &spec)?;
                let ra = a.train_on_batch(&x, &y);
                let rb = b.train_on_batch(&x, &y);
                assert_eq!(text(&ra), text(&rb), "train_on_batch twins disagree");
                if ra.is_err() {
                    assert!(
                        before
                            .diff(&ModelSnapshot::of(&a))
                            .weights_and_slots_unchanged(),
                        "rejected train_on_batch changed the model: {ra:?}"
                    );
                }
                assert_frozen_unchanged(&frozen, &a, "train_on_batch");
                "train_on_batch"
            }
            8 => {
                let (x, _) = data(u, &spec)?;
                let (ra, rb) = (a.predict(&x), b.predict(&x));
                assert_eq!(text(&ra), text(&rb), "predict twins disagree");
                if let (Ok(pa), Ok(pb)) = (&ra, &rb) {
                    assert!(bits_equal(pa, pb), "predict twins disagree in bits");
                    assert_eq!(pa.shape(), [x.shape()[0], spec.outputs], "predict shape");
                }
                assert!(
                    before
                        .diff(&ModelSnapshot::of(&a))
                        .weights_and_slots_unchanged(),
                    "predict changed the model"
                );
                "predict"
            }
            9 => {
                let (x, y) = data(u, &spec)?;
                let (ra, rb) = (a.evaluate(&x, &y), b.evaluate(&x, &y));
                assert_eq!(text(&ra), text(&rb), "evaluate twins disagree");
                if let (Ok(la), Ok(lb)) = (&ra, &rb) {
                    assert_eq!(
                        la.to_bits(),
                        lb.to_bits(),
                        "evaluate twins disagree in bits"
                    );
                }
                assert!(
                    before
                        .diff(&ModelSnapshot::of(&a))
                        .weights_and_slots_unchanged(),
                    "evaluate changed the model"
                );
                "evaluate"
            }
            10 => {
                let (x, _) = data(u, &spec)?;
                let ra = a.call(&x, Phase::Train);
                let rb = b.call(&x, Phase::Train);
                assert_eq!(text(&ra), text(&rb), "Train call twins disagree");
                if ra.is_err() {
                    assert!(
                        before
                            .diff(&ModelSnapshot::of(&a))
                            .weights_and_slots_unchanged(),
                        "rejected call changed the model"
                    );
                }
                assert_frozen_unchanged(&frozen, &a, "call(Train)");
                "call"
            }
            _ => {
                let mut w = a.get_weights();
                match u.int_in_range(0u8..=3)? {
                    0 => {
                        w.pop();
                    }
                    1 => {
                        let first = w[0].clone();
                        let mut shape = first.shape().to_vec();
                        shape.push(1);
                        w[0] = first.into_shape_with_order(shape).expect("same length");
                    }
                    _ => {
                        for arr in &mut w {
                            for v in arr.iter_mut() {
                                if u.ratio(1u8, 8)? {
                                    *v = any_f32(u)?;
                                } else if u.ratio(1u8, 4)? {
                                    *v = small_f32(u)?;
                                }
                            }
                        }
                    }
                }
                let ra = a.set_weights(w.clone());
                let rb = b.set_weights(w);
                assert_eq!(text(&ra), text(&rb), "set_weights twins disagree");
                if ra.is_err() {
                    assert!(
                        before
                            .diff(&ModelSnapshot::of(&a))
                            .weights_and_slots_unchanged(),
                        "rejected set_weights changed the model"
                    );
                }
                "set_weights"
            }
        };
        assert_twins(&a, &b, name);
    }
    Ok(())
}

/// Runs `fit` on `a`, and the same steps one `train_on_batch` at a time on `b`.
fn fit_and_replay(
    a: &mut Model<f32>,
    b: &mut Model<f32>,
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
    config: &FitConfig,
    before: &ModelSnapshot,
) {
    let result = a.fit(x, y, config);
    match &result {
        Err(e) if !is_non_finite(e) => {
            assert!(
                before
                    .diff(&ModelSnapshot::of(a))
                    .weights_and_slots_unchanged(),
                "fit rejected for bad input changed the model: {e}"
            );
            return;
        }
        _ => {}
    }
    // The replay: fit's documented order (shuffle per epoch with ChaCha of the
    // seed, then consecutive chunks of batch_size), one train_on_batch per step.
    let samples = x.shape()[0];
    let mut order: Vec<usize> = (0..samples).collect();
    let mut rng = chacha(config.seed.expect("the body always seeds fit"));
    let mut losses = Vec::new();
    let mut failure: Option<(usize, usize, Error)> = None;
    'epochs: for epoch in 0..config.epochs {
        if config.shuffle {
            order.shuffle(&mut rng);
        }
        let mut total = 0.0;
        for (step, batch) in order.chunks(config.batch_size).enumerate() {
            let xb = x.select(Axis(0), batch);
            let yb = y.select(Axis(0), batch);
            let good = ModelSnapshot::of(b);
            match b.train_on_batch(&xb, &yb) {
                Ok(loss) => total += loss * batch.len() as f64,
                Err(e) => {
                    assert!(is_non_finite(&e), "replayed step rejected: {e}");
                    assert!(
                        good.diff(&ModelSnapshot::of(b))
                            .weights_and_slots_unchanged(),
                        "a step stopped by {e} was applied"
                    );
                    failure = Some((epoch, step, e));
                    break 'epochs;
                }
            }
        }
        losses.push(total / samples as f64);
    }
    match (result, failure) {
        (Ok(history), None) => {
            assert_eq!(history.loss.len(), config.epochs);
            for (h, l) in history.loss.iter().zip(&losses) {
                assert_eq!(h.to_bits(), l.to_bits(), "history {h} != replayed {l}");
            }
        }
        (Err(e), Some((epoch, step, replayed))) => {
            let expected = match replayed {
                Error::NonFiniteLoss { loss, .. } => Error::NonFiniteLoss { epoch, step, loss },
                Error::NonFiniteStep { what, weight, .. } => Error::NonFiniteStep {
                    epoch,
                    step,
                    what,
                    weight,
                },
                other => other,
            };
            assert_eq!(
                format!("{e:?}"),
                format!("{expected:?}"),
                "fit stopped elsewhere"
            );
        }
        (r, f) => panic!("fit gave {r:?} but its replay gave {f:?}"),
    }
}
