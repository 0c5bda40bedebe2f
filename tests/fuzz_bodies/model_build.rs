//! Fuzz target `model_build`: arbitrary layer stacks and functional graphs.
//!
//! The bytes describe a model: a [`Sequential`] stack or a [`Functional`] graph
//! (input declarations, layer applications on any node, concatenations of any
//! nodes, node ids from a foreign builder, the output node), nested up to three
//! deep, with Dense widths (zero and enormous included), Dropout rates and noise
//! shapes, BatchNorm, ReLU, phase pins and trainable flags.
//!
//! Invariant served (SPEC §7): building gives either a typed error or a
//! model whose forward works on an input of its declared shape, in both phases,
//! and returns its declared output shape. The body carries a small shape oracle
//! (the documented build rules), so it also checks that a build fails exactly when
//! a rule is broken, and that the model declares the shapes the rules give. On a
//! built model it also checks that `predict` changes no weight, that a `Train`
//! call changes no weight that is not effectively trainable, and that
//! `trainable_weights` and `non_trainable_weights` partition `get_weights`.
//!
//! A model input shape with an axis of 0 is refused at build (SPEC §7), so every
//! forward here runs on a batch that holds elements. One documented allowance: a
//! dropout noise shape that fixes the batch axis accepts only that batch size.
//! To keep runs fast, a valid concatenation wider than [`MAX_FUZZ_ELEMENTS`]
//! elements per sample is not made (repeated concatenation grows geometrically).

use super::{len_within, small_f32, FuzzResult, MAX_FUZZ_ELEMENTS};
use arbitrary::Unstructured;
use ndarray::ArrayD;
use nncheck::check::training::snapshot::ModelSnapshot;
use nncheck::error::{Error, Result};
use nncheck::layer::{Layer, WeightKind};
use nncheck::layers::{BatchNormalization, Dense, Dropout, ReLU};
use nncheck::model::graph::{Functional, NodeId};
use nncheck::model::sequential::Sequential;
use nncheck::model::Model;
use nncheck::phase::Phase;
use nncheck::tensor::{bits_equal, checked_len, MAX_ELEMENTS};

/// Runs the `model_build` target on one input. Panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = body(&mut u);
}

/// The most layer-adding steps one (sub)model gets.
const MAX_STEPS: usize = 8;
/// The deepest nesting of models inside models.
const MAX_DEPTH: usize = 3;

/// What the oracle knows of a model it expects to build.
#[derive(Debug, Clone)]
struct Expected {
    input: Vec<usize>,
    output: Vec<usize>,
    /// Batch sizes pinned by dropout noise shapes (`Some(n)` on the batch axis,
    /// `n != 1`): a forward on another batch size must fail with the typed error.
    batch_pins: Vec<usize>,
}

/// A layer ready to be added, with what the oracle expects of it.
enum Piece {
    Dense(Box<Dense<f32>>, usize),
    Relu(ReLU<f32>),
    Dropout(Dropout<f32>, Vec<Option<usize>>),
    BatchNorm(Box<BatchNormalization<f32>>),
    /// A nested model and its expectation.
    Model(Box<Model<f32>>, Expected),
}

impl Piece {
    /// The documented build rule of this piece on `input`: the output shape and
    /// any batch pins, or `None` when building must fail.
    fn rule(&self, input: &[usize]) -> Option<(Vec<usize>, Vec<usize>)> {
        match self {
            Piece::Dense(_, units) => {
                let &[width] = input else { return None };
                (width > 0 && *units > 0 && checked_len(&[width, *units]).is_ok())
                    .then(|| (vec![*units], vec![]))
            }
            Piece::Relu(_) => Some((input.to_vec(), vec![])),
            Piece::Dropout(_, noise) => {
                if noise.is_empty() {
                    return Some((input.to_vec(), vec![]));
                }
                if noise.len() != input.len() + 1 {
                    return None;
                }
                let per_sample_ok = noise[1..]
                    .iter()
                    .zip(input)
                    .all(|(n, &s)| n.is_none_or(|n| n == s || n == 1));
                let pins = match noise[0] {
                    Some(n) if n != 1 => vec![n],
                    _ => vec![],
                };
                per_sample_ok.then(|| (input.to_vec(), pins))
            }
            Piece::BatchNorm(_) => {
                let &c = input.last()?;
                (c > 0 && c <= MAX_ELEMENTS).then(|| (input.to_vec(), vec![]))
            }
            Piece::Model(_, e) => {
                (e.input == input).then(|| (e.output.clone(), e.batch_pins.clone()))
            }
        }
    }
}

/// One axis length: small, zero, or enormous.
fn dim(u: &mut Unstructured<'_>) -> arbitrary::Result<usize> {
    Ok(match u.int_in_range(0u8..=39)? {
        0 => 0,
        1 => MAX_ELEMENTS + 1,
        2 => 1 << 40,
        3 => usize::MAX,
        n => usize::from(n % 6) + 1,
    })
}

/// A per-sample shape: mostly rank 1, sometimes 0, 2 or 3.
fn shape(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<usize>> {
    let rank = match u.int_in_range(0u8..=9)? {
        0 => 0,
        1 | 2 => 2,
        3 => 3,
        _ => 1,
    };
    (0..rank).map(|_| dim(u)).collect()
}

/// A layer (or, below `MAX_DEPTH`, a nested model) for an input of `input`.
///
/// `input` biases nested models toward the right input shape; `None` returns
/// mean the bytes asked for a layer whose construction is itself an error
/// (a bad rate or hyper-parameter), checked here.
fn piece(
    u: &mut Unstructured<'_>,
    input: &[usize],
    depth: usize,
) -> arbitrary::Result<Option<Piece>> {
    let kind = u.int_in_range(0u8..=9)?;
    let trainable: bool = !u.ratio(1u8, 4)?;
    let mut p = match kind {
        0..=2 => {
            let units = dim(u)?;
            Piece::Dense(Box::new(Dense::new(units)), units)
        }
        3 => Piece::Relu(ReLU::new()),
        4 | 5 => {
            let rate = match u.int_in_range(0u8..=7)? {
                0 => f64::NAN,
                1 => 1.5,
                2 => -0.25,
                3 => 1.0,
                4 => 0.0,
                _ => 0.5,
            };
            let layer = match Dropout::new(rate) {
                Ok(l) => l,
                Err(Error::InvalidRate { .. }) => {
                    assert!(!(0.0..=1.0).contains(&rate));
                    return Ok(None);
                }
                Err(e) => panic!("Dropout::new({rate}): {e}"),
            };
            let noise: Vec<Option<usize>> = if u.arbitrary()? {
                let len = match u.int_in_range(0u8..=5)? {
                    0 => input.len(),
                    1 => input.len() + 2,
                    _ => input.len() + 1,
                };
                (0..len)
                    .map(|i| {
                        Ok(match u.int_in_range(0u8..=7)? {
                            0..=2 => None,
                            3 | 4 => Some(1),
                            5 => i.checked_sub(1).and_then(|j| input.get(j).copied()),
                            _ => Some(usize::from(u.int_in_range(0u8..=4)?)),
                        })
                    })
                    .collect::<arbitrary::Result<_>>()?
            } else {
                Vec::new()
            };
            let layer = if noise.is_empty() {
                layer
            } else {
                layer.with_noise_shape(noise.clone())
            };
            let layer = if u.arbitrary()? {
                layer.with_seed(u.arbitrary()?)
            } else {
                layer
            };
            Piece::Dropout(layer, noise)
        }
        6 | 7 => {
            let layer = if u.ratio(1u8, 4)? {
                let momentum = match u.int_in_range(0u8..=3)? {
                    0 => f64::NAN,
                    1 => 1.5,
                    _ => 0.9,
                };
                let epsilon = match u.int_in_range(0u8..=3)? {
                    0 => 0.0,
                    1 => f64::INFINITY,
                    _ => 1e-3,
                };
                match BatchNormalization::new().with_momentum_epsilon(momentum, epsilon) {
                    Ok(l) => l,
                    Err(Error::InvalidHyperParameter { .. }) => {
                        assert!(
                            momentum.is_nan()
                                || momentum > 1.0
                                || epsilon <= 0.0
                                || epsilon.is_infinite()
                        );
                        return Ok(None);
                    }
                    Err(e) => panic!("BatchNormalization hyper-parameters: {e}"),
                }
            } else {
                BatchNormalization::new()
            };
            Piece::BatchNorm(Box::new(layer))
        }
        _ => {
            if depth >= MAX_DEPTH {
                Piece::Relu(ReLU::new())
            } else {
                let sub_input = if u.ratio(7u8, 8)? {
                    input.to_vec()
                } else {
                    shape(u)?
                };
                match model(u, depth + 1, &sub_input)? {
                    Some((m, e)) => Piece::Model(Box::new(m), e),
                    None => return Ok(None),
                }
            }
        }
    };
    match &mut p {
        Piece::Dense(l, _) => l.set_trainable(trainable),
        Piece::Relu(l) => l.set_trainable(trainable),
        Piece::Dropout(l, _) => l.set_trainable(trainable),
        Piece::BatchNorm(l) => l.set_trainable(trainable),
        Piece::Model(m, _) => m.set_trainable(trainable),
    }
    Ok(Some(p))
}

fn pin(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<Phase>> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => Some(Phase::Train),
        1 => Some(Phase::Eval),
        _ => None,
    })
}

fn seq_add(s: Sequential<f32>, p: Piece, pin: Option<Phase>) -> Sequential<f32> {
    fn add<L: Layer<f32> + 'static>(
        s: Sequential<f32>,
        l: L,
        pin: Option<Phase>,
    ) -> Sequential<f32> {
        match pin {
            Some(phase) => s.add_pinned(l, phase),
            None => s.add(l),
        }
    }
    match p {
        Piece::Dense(l, _) => add(s, *l, pin),
        Piece::Relu(l) => add(s, l, pin),
        Piece::Dropout(l, _) => add(s, l, pin),
        Piece::BatchNorm(l) => add(s, *l, pin),
        Piece::Model(m, _) => add(s, *m, pin),
    }
}

fn graph_apply(
    g: &mut Functional<f32>,
    p: Piece,
    node: NodeId,
    pin: Option<Phase>,
) -> Result<NodeId> {
    fn apply<L: Layer<f32> + 'static>(
        g: &mut Functional<f32>,
        l: L,
        node: NodeId,
        pin: Option<Phase>,
    ) -> Result<NodeId> {
        match pin {
            Some(phase) => g.apply_pinned(l, node, phase),
            None => g.apply(l, node),
        }
    }
    match p {
        Piece::Dense(l, _) => apply(g, *l, node, pin),
        Piece::Relu(l) => apply(g, l, node, pin),
        Piece::Dropout(l, _) => apply(g, l, node, pin),
        Piece::BatchNorm(l) => apply(g, *l, node, pin),
        Piece::Model(m, _) => apply(g, *m, node, pin),
    }
}

/// Builds a (sub)model for samples of `input` and checks the build against the
/// oracle. Returns the model and its expectation when it was built.
fn model(
    u: &mut Unstructured<'_>,
    depth: usize,
    input: &[usize],
) -> arbitrary::Result<Option<(Model<f32>, Expected)>> {
    let seed = if u.arbitrary()? {
        Some(u.arbitrary()?)
    } else {
        None
    };
    let built = if u.arbitrary()? {
        sequential(u, depth, input, seed)?
    } else {
        functional(u, depth, input, seed)?
    };
    let Some((result, expected)) = built else {
        return Ok(None);
    };
    match (result, expected) {
        (Ok(m), Some(e)) => {
            assert_eq!(m.input_shape(), e.input.as_slice(), "declared input shape");
            assert_eq!(
                m.output_shape(),
                e.output.as_slice(),
                "declared output shape"
            );
            Ok(Some((m, e)))
        }
        (Err(_), None) => Ok(None),
        (Ok(m), None) => panic!(
            "model built although a build rule is broken: input {:?}, output {:?}",
            m.input_shape(),
            m.output_shape()
        ),
        (Err(err), Some(e)) => panic!("valid model rejected ({e:?}): {err}"),
    }
}

type Outcome = Option<(Result<Model<f32>>, Option<Expected>)>;

fn sequential(
    u: &mut Unstructured<'_>,
    depth: usize,
    input: &[usize],
    seed: Option<u64>,
) -> arbitrary::Result<Outcome> {
    let mut s = Sequential::<f32>::new(format!("seq{depth}"));
    // The oracle: the shape so far, or None once a rule is broken.
    let mut shape = sample_shape_ok(input).then(|| input.to_vec());
    let mut pins: Vec<usize> = Vec::new();
    let mut layers = 0;
    let steps = u.int_in_range(0..=MAX_STEPS)?;
    for _ in 0..steps {
        let current = shape.clone().unwrap_or_else(|| input.to_vec());
        let Some(p) = piece(u, &current, depth)? else {
            continue;
        };
        if let Some(sh) = &shape {
            match p.rule(sh) {
                Some((out, more)) => {
                    shape = Some(out);
                    pins.extend(more);
                }
                None => shape = None,
            }
        }
        let pin = pin(u)?;
        s = seq_add(s, p, pin);
        layers += 1;
    }
    let expected = (layers > 0)
        .then_some(())
        .and(shape)
        .map(|output| Expected {
            input: input.to_vec(),
            output,
            batch_pins: pins,
        });
    Ok(Some((s.build(input, seed), expected)))
}

fn functional(
    u: &mut Unstructured<'_>,
    depth: usize,
    input: &[usize],
    seed: Option<u64>,
) -> arbitrary::Result<Outcome> {
    let mut g = Functional::<f32>::new(format!("graph{depth}"), seed);
    // Foreign node ids: indices 0..=9 from another builder.
    let mut foreign_builder = Functional::<f32>::new("foreign", Some(0));
    let mut foreign = vec![foreign_builder.input(&[1]).expect("fresh builder")];
    for _ in 0..9 {
        let last = *foreign.last().expect("non-empty");
        foreign.push(
            foreign_builder
                .apply(ReLU::new(), last)
                .expect("ReLU builds"),
        );
    }
    // The oracle's nodes: (shape, batch pins).
    let mut nodes: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    let mut ids: Vec<NodeId> = Vec::new();
    if !u.ratio(1u8, 16)? {
        let r = g.input(input);
        assert_eq!(r.is_ok(), sample_shape_ok(input), "input(): {r:?}");
        if let Ok(id) = r {
            nodes.push((input.to_vec(), vec![]));
            ids.push(id);
        }
    }
    let steps = u.int_in_range(0..=MAX_STEPS)?;
    for _ in 0..steps {
        // Pick a node: one of ours, or a foreign id (valid here iff in range).
        let pick = |u: &mut Unstructured<'_>| -> arbitrary::Result<(NodeId, Option<usize>)> {
            if ids.is_empty() || u.ratio(1u8, 10)? {
                let k = u.int_in_range(0..=9)?;
                Ok((foreign[k], (k < nodes.len()).then_some(k)))
            } else {
                let k = u.choose_index(ids.len())?;
                Ok((ids[k], Some(k)))
            }
        };
        match u.int_in_range(0u8..=9)? {
            0 => {
                let r = g.input(input);
                let want = nodes.is_empty() && sample_shape_ok(input);
                assert_eq!(r.is_ok(), want, "input() with {} nodes: {r:?}", nodes.len());
                if let Ok(id) = r {
                    nodes.push((input.to_vec(), vec![]));
                    ids.push(id);
                }
            }
            1 | 2 => {
                let count = u.int_in_range(0u8..=3)?;
                let mut chosen = Vec::new();
                let mut oracle: Option<Vec<usize>> = Some(Vec::new());
                for _ in 0..count {
                    let (id, k) = pick(u)?;
                    chosen.push(id);
                    oracle = oracle.zip(k).map(|(mut v, k)| {
                        v.push(k);
                        v
                    });
                }
                let expected = oracle.and_then(|ks| {
                    let shapes: Vec<Vec<usize>> = ks.iter().map(|&k| nodes[k].0.clone()).collect();
                    concat_rule(&shapes).map(|s| {
                        let pins = ks.iter().flat_map(|&k| nodes[k].1.clone()).collect();
                        (s, pins)
                    })
                });
                // Keep runs fast: repeated concatenations grow widths
                // geometrically, up to the element cap, so a valid one wider
                // than the fuzz bound is not made.
                let wide = |(s, _): &(Vec<usize>, Vec<usize>)| {
                    s.iter().product::<usize>() > MAX_FUZZ_ELEMENTS
                };
                if expected.as_ref().is_some_and(wide) {
                    continue;
                }
                let r = g.concat(&chosen);
                assert_eq!(r.is_ok(), expected.is_some(), "concat of {chosen:?}: {r:?}");
                if let (Ok(id), Some(node)) = (r, expected) {
                    nodes.push(node);
                    ids.push(id);
                }
            }
            _ => {
                let (id, k) = pick(u)?;
                let shape = k.map_or_else(|| input.to_vec(), |k| nodes[k].0.clone());
                let Some(p) = piece(u, &shape, depth)? else {
                    continue;
                };
                let expected = k.and_then(|k| {
                    p.rule(&nodes[k].0).map(|(s, more)| {
                        let mut pins = nodes[k].1.clone();
                        pins.extend(more);
                        (s, pins)
                    })
                });
                let pin = pin(u)?;
                let r = graph_apply(&mut g, p, id, pin);
                assert_eq!(r.is_ok(), expected.is_some(), "apply on {id:?}: {r:?}");
                if let (Ok(id), Some(node)) = (r, expected) {
                    nodes.push(node);
                    ids.push(id);
                }
            }
        }
    }
    // The output: usually the last node, sometimes any node or a foreign id.
    let (out, k) = if ids.is_empty() || u.ratio(1u8, 6)? {
        let k = u.int_in_range(0..=9)?;
        (foreign[k], (k < nodes.len()).then_some(k))
    } else if u.ratio(1u8, 4)? {
        let k = u.choose_index(ids.len())?;
        (ids[k], Some(k))
    } else {
        (*ids.last().expect("non-empty"), Some(ids.len() - 1))
    };
    // Every node of the graph runs in a forward, so every pin counts.
    let all_pins: Vec<usize> = nodes.iter().flat_map(|n| n.1.clone()).collect();
    let expected = k.filter(|&k| k > 0).map(|k| Expected {
        input: input.to_vec(),
        output: nodes[k].0.clone(),
        batch_pins: all_pins,
    });
    Ok(Some((g.build(out), expected)))
}

/// The documented rule for a model's input shape: no axis of 0, and a sample
/// within the element cap.
fn sample_shape_ok(input: &[usize]) -> bool {
    !input.contains(&0) && checked_len(input).is_ok()
}

/// The documented concatenation rule: at least one input, equal ranks of at
/// least one, equal leading axes, a width sum and element count within limits.
fn concat_rule(shapes: &[Vec<usize>]) -> Option<Vec<usize>> {
    let first = shapes.first()?;
    let (&_, lead) = first.split_last()?;
    let mut width = 0usize;
    for s in shapes {
        let (&w, l) = s.split_last()?;
        if l != lead {
            return None;
        }
        width = width.checked_add(w)?;
    }
    let mut out = lead.to_vec();
    out.push(width);
    checked_len(&out).ok().map(|_| out)
}

fn body(u: &mut Unstructured<'_>) -> FuzzResult {
    let input = shape(u)?;
    let Some((mut m, e)) = model(u, 0, &input)? else {
        return Ok(());
    };
    if u.arbitrary()? {
        m.freeze();
    }
    // Trainable partition.
    let total = m.get_weights().len();
    assert_eq!(
        m.trainable_weights().len() + m.non_trainable_weights().len(),
        total,
        "trainable and non-trainable weights do not partition the weights"
    );

    // A forward on an input of the declared shape, in both phases.
    let batch = u.int_in_range(1usize..=3)?;
    let mut x_shape = vec![batch];
    x_shape.extend_from_slice(&e.input);
    let Some(x) = input_array(u, &x_shape)? else {
        return Ok(());
    };
    let pins_fit = e.batch_pins.iter().all(|&n| n == batch);
    let mut expected_out = vec![batch];
    expected_out.extend_from_slice(&e.output);

    let before = ModelSnapshot::of(&m);
    let y = m.predict(&x);
    // Counters aside: a node pinned to Train drops units in predict too.
    let diff = before.diff(&ModelSnapshot::of(&m));
    assert!(
        diff.weights_and_slots_unchanged(),
        "predict changed the model: {diff}"
    );
    check_forward(y, pins_fit, &expected_out, "predict");

    let frozen = frozen_values(&m);
    let y = m.call(&x, Phase::Train);
    assert!(
        frozen
            .iter()
            .zip(frozen_values(&m))
            .all(|(a, b)| bits_equal(a, &b)),
        "a Train call changed a parameter or the state of a frozen layer"
    );
    check_forward(y, pins_fit, &expected_out, "call(Train)");
    Ok(())
}

/// The values a `Train` call must leave alone, in visit order: every parameter
/// (a forward applies no update) and the state of every layer that is not
/// effectively trainable (a frozen BatchNorm runs in inference mode).
fn frozen_values(m: &Model<f32>) -> Vec<ArrayD<f32>> {
    let mut out = Vec::new();
    m.visit_weights("", true, &mut |_, w, eff| {
        if !eff || w.kind == WeightKind::Param {
            out.push(w.value.clone());
        }
    });
    out
}

/// Checks one forward's outcome. The only accepted error is the typed one for a
/// batch size that a batch-pinned noise shape does not allow.
fn check_forward(y: Result<ArrayD<f32>>, pins_fit: bool, expected: &[usize], what: &str) {
    match y {
        Ok(y) => {
            assert!(
                pins_fit,
                "{what}: a batch-pinned noise shape accepted another batch"
            );
            assert_eq!(y.shape(), expected, "{what}: output shape");
        }
        Err(Error::InvalidNoiseShape { .. }) if !pins_fit => {}
        Err(e) => panic!("{what} on a built model failed: {e}"),
    }
}

/// An input batch of `shape`, or `None` when it would hold more than
/// [`MAX_FUZZ_ELEMENTS`] elements.
fn input_array(
    u: &mut Unstructured<'_>,
    shape: &[usize],
) -> arbitrary::Result<Option<ArrayD<f32>>> {
    let Some(n) = len_within(shape, MAX_FUZZ_ELEMENTS) else {
        return Ok(None);
    };
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(small_f32(u)?);
    }
    Ok(Some(
        ArrayD::from_shape_vec(shape.to_vec(), v).expect("product"),
    ))
}
