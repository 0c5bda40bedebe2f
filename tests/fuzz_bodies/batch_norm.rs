//! Fuzz target `batch_norm`: BatchNormalization on arbitrary inputs and phases,
//! frozen or not (SPEC §5 and the Keras exception of SPEC §1).
//!
//! The bytes choose momentum and epsilon (valid or not), a per-sample shape, the
//! layer's own trainable flag and its enclosing models' (the trainable path), and
//! a sequence of forward calls in either phase on values that include NaN and
//! infinities, with backward calls (right or wrong `dy` shape) and state commits.
//! It drives the layer directly through the [`Layer`] trait and, once, inside a
//! nested model through [`Model::call`].
//!
//! Invariants served, bit for bit, and never a panic:
//! - invalid hyper-parameters and shapes give typed errors;
//! - frozen (the layer or any enclosing model) or `Eval`: the moving statistics
//!   do not change, whatever follows (commit included);
//! - frozen in `Train` gives exactly the `Eval` output (inference mode);
//! - in inference mode each sample's output depends on that sample only;
//! - no forward changes a statistic before the commit, and a forward never
//!   changes gamma or beta; a frozen backward computes no weight gradient;
//! - a `Train` call on a model with a non-finite batch commits nothing non-finite.

use super::{len_within, FuzzResult, MAX_FUZZ_ELEMENTS};
use arbitrary::Unstructured;
use ndarray::{ArrayD, Axis, IxDyn};
use nncheck::error::Error;
use nncheck::layer::{Layer, WeightKind};
use nncheck::layers::BatchNormalization;
use nncheck::model::sequential::Sequential;
use nncheck::model::Model;
use nncheck::phase::{ForwardCtx, Phase};
use nncheck::rng::SeedSequence;
use nncheck::tensor::{bits_equal, checked_len, MAX_ELEMENTS};

/// Runs the `batch_norm` target on one input. Panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = body(&mut u);
}

/// gamma, beta, moving mean, moving variance, in that order.
fn weights(l: &dyn Layer<f32>) -> Vec<(WeightKind, ArrayD<f32>, Option<ArrayD<f32>>)> {
    let mut out = Vec::new();
    l.visit_weights("", true, &mut |_, w, _| {
        out.push((w.kind, w.value.clone(), w.grad.clone()))
    });
    out
}

fn states(l: &dyn Layer<f32>) -> Vec<ArrayD<f32>> {
    weights(l)
        .into_iter()
        .filter(|(k, _, _)| *k == WeightKind::State)
        .map(|(_, v, _)| v)
        .collect()
}

fn all_bits_equal(a: &[ArrayD<f32>], b: &[ArrayD<f32>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| bits_equal(x, y))
}

fn dim(u: &mut Unstructured<'_>) -> arbitrary::Result<usize> {
    Ok(match u.int_in_range(0u8..=23)? {
        0 => 0,
        1 => MAX_ELEMENTS + 1,
        2 => 1 << 40,
        n => usize::from(n % 5) + 1,
    })
}

fn values(
    u: &mut Unstructured<'_>,
    shape: &[usize],
    wild: bool,
) -> arbitrary::Result<Option<ArrayD<f32>>> {
    if shape.contains(&0) {
        let nonzero: Vec<usize> = shape.iter().copied().filter(|&d| d != 0).collect();
        return Ok(len_within(&nonzero, isize::MAX as usize).map(|_| ArrayD::zeros(IxDyn(shape))));
    }
    if len_within(shape, MAX_FUZZ_ELEMENTS).is_none() {
        return Ok(None);
    }
    super::array(u, shape, wild).map(Some)
}

fn body(u: &mut Unstructured<'_>) -> FuzzResult {
    let mut layer = BatchNormalization::<f32>::new();
    if u.arbitrary()? {
        let momentum = *u.choose(&[0.0, 0.5, 0.99, 1.0, -0.1, 1.1, f64::NAN, f64::INFINITY])?;
        let epsilon = *u.choose(&[
            1e-3,
            1e-30,
            1.0,
            0.0,
            -1e-3,
            f64::NAN,
            f64::INFINITY,
            f64::MIN_POSITIVE,
        ])?;
        let valid = (0.0..=1.0).contains(&momentum) && epsilon > 0.0 && epsilon.is_finite();
        match layer.with_momentum_epsilon(momentum, epsilon) {
            Ok(l) => {
                assert!(valid, "momentum {momentum}, epsilon {epsilon} accepted");
                layer = l;
            }
            Err(Error::InvalidHyperParameter { .. }) => {
                assert!(!valid, "momentum {momentum}, epsilon {epsilon} rejected");
                return Ok(());
            }
            Err(e) => panic!("with_momentum_epsilon: unexpected {e}"),
        }
    }
    let rank = u.int_in_range(0usize..=3)?;
    let shape: Vec<usize> = (0..rank).map(|_| dim(u)).collect::<Result<_, _>>()?;
    let mut seeds = SeedSequence::new(Some(0));
    let built = layer.build(&shape, &mut seeds);
    let buildable = shape.last().is_some_and(|&c| c > 0 && c <= MAX_ELEMENTS);
    assert_eq!(built.is_ok(), buildable, "build on {shape:?}: {built:?}");
    if !buildable {
        return Ok(());
    }
    let channels = *shape.last().expect("rank >= 1");
    assert_eq!(built.expect("buildable"), shape);
    // Building again checks the shape only.
    let mut other = shape.clone();
    *other.last_mut().expect("rank >= 1") += 1;
    assert!(layer.build(&other, &mut seeds).is_err());
    assert!(layer.build(&shape, &mut seeds).is_ok());

    let own_trainable = !u.ratio(1u8, 3)?;
    let path_trainable = !u.ratio(1u8, 3)?;
    layer.set_trainable(own_trainable);
    let frozen = !(own_trainable && path_trainable);

    let calls = u.int_in_range(1u8..=4)?;
    for _ in 0..calls {
        let phase = if u.arbitrary()? {
            Phase::Train
        } else {
            Phase::Eval
        };
        let ctx = ForwardCtx {
            phase,
            path_trainable,
        };
        let batch = u.int_in_range(0usize..=4)?;
        let mut x_shape = vec![batch];
        x_shape.extend_from_slice(&shape);
        let wrong = u.ratio(1u8, 10)?;
        if wrong {
            match u.int_in_range(0u8..=2)? {
                0 => *x_shape.last_mut().expect("rank >= 2") += 1,
                1 => {
                    x_shape.pop();
                }
                _ => x_shape.push(channels),
            }
        }
        let wild = u.ratio(1u8, 3)?;
        let Some(x) = values(u, &x_shape, wild)? else {
            continue;
        };
        let valid = x.ndim() >= 2 && x.shape()[0] > 0 && x.shape().last() == Some(&channels);
        let before = weights(&layer);
        let stats_before = states(&layer);
        let y = layer.forward(x.clone(), ctx);
        let after = weights(&layer);
        for ((_, v0, _), (_, v1, _)) in before.iter().zip(&after) {
            assert!(bits_equal(v0, v1), "a forward changed a weight");
        }
        let y = match y {
            Ok(y) => {
                assert!(valid, "forward accepted {:?}", x.shape());
                y
            }
            Err(e) => {
                assert!(!valid, "forward rejected {:?}: {e}", x.shape());
                continue;
            }
        };
        assert_eq!(y.shape(), x.shape());
        let inference = frozen || phase == Phase::Eval;

        if inference {
            // The Eval output, and each sample alone, give the same bits.
            let eval = layer
                .forward(x.clone(), ForwardCtx::top(Phase::Eval))
                .expect("valid input");
            assert!(
                bits_equal(&y, &eval),
                "frozen Train output differs from Eval"
            );
            let k = u.choose_index(x.shape()[0])?;
            let one = x.index_axis(Axis(0), k).insert_axis(Axis(0)).to_owned();
            let single = layer.forward(one, ctx).expect("valid input");
            assert!(
                bits_equal(
                    &single.index_axis_move(Axis(0), 0),
                    &y.index_axis(Axis(0), k).to_owned()
                ),
                "inference output of a sample depends on the rest of the batch"
            );
            // Restore the cache of the call under test.
            layer.forward(x.clone(), ctx).expect("valid input");
        }

        if u.arbitrary()? {
            let dy_wrong = u.ratio(1u8, 8)?;
            let mut dy_shape = x.shape().to_vec();
            if dy_wrong {
                dy_shape[0] += 1;
            }
            if let Some(dy) = values(u, &dy_shape, wild)? {
                let grads_before: Vec<Option<ArrayD<f32>>> =
                    weights(&layer).into_iter().map(|(_, _, g)| g).collect();
                match layer.backward(dy, true) {
                    Ok(dx) => {
                        assert!(!dy_wrong, "backward accepted a wrong dy shape");
                        assert_eq!(dx.expect("requested").shape(), x.shape());
                    }
                    Err(e) => assert!(
                        dy_wrong && matches!(e, Error::ShapeMismatch { .. }),
                        "backward: {e}"
                    ),
                }
                if frozen {
                    let grads_after: Vec<Option<ArrayD<f32>>> =
                        weights(&layer).into_iter().map(|(_, _, g)| g).collect();
                    for (g0, g1) in grads_before.iter().zip(&grads_after) {
                        match (g0, g1) {
                            (None, None) => {}
                            (Some(a), Some(b)) => {
                                assert!(bits_equal(a, b), "frozen backward wrote a gradient")
                            }
                            _ => panic!("frozen backward wrote a gradient"),
                        }
                    }
                }
            }
        }
        assert!(
            all_bits_equal(&stats_before, &states(&layer)),
            "statistics moved before the commit"
        );
        if u.arbitrary()? && layer.pending_state_finite() {
            layer.commit_state();
        }
        if inference {
            assert!(
                all_bits_equal(&stats_before, &states(&layer)),
                "frozen or Eval BatchNorm moved its statistics"
            );
        }
    }

    // Inside a nested model: a frozen model (or Eval) moves nothing; a Train call
    // never commits non-finite statistics.
    let inner = Sequential::<f32>::new("inner")
        .add(BatchNormalization::new())
        .build(&shape, Some(1));
    // A sample shape with an axis of 0 is refused first (SPEC §7), then the cap.
    let inner = match (inner, shape.contains(&0), checked_len(&shape)) {
        (Ok(m), false, Ok(_)) => m,
        (Err(Error::EmptySample { .. }), true, _) => return Ok(()),
        (Err(Error::TooLarge { .. }), false, Err(_)) => return Ok(()),
        (r, _, _) => panic!("model on {shape:?}: {:?}", r.map(|_| ())),
    };
    let mut model: Model<f32> = Sequential::new("outer")
        .add(inner)
        .build(&shape, Some(2))
        .expect("buildable");
    let freeze = u.arbitrary()?;
    if freeze {
        model
            .set_trainable_at("outer/inner", false)
            .expect("a layer at that path");
    }
    let phase = if u.arbitrary()? {
        Phase::Train
    } else {
        Phase::Eval
    };
    let mut x_shape = vec![u.int_in_range(1usize..=3)?];
    x_shape.extend_from_slice(&shape);
    let wild = u.arbitrary()?;
    let Some(x) = values(u, &x_shape, wild)? else {
        return Ok(());
    };
    let before = model.get_weights();
    model.call(&x, phase).expect("valid input");
    let after = model.get_weights();
    if freeze || phase == Phase::Eval {
        assert!(
            all_bits_equal(&before, &after),
            "frozen or Eval model moved BatchNorm statistics"
        );
    }
    assert!(
        after.iter().all(|w| w.iter().all(|v| v.is_finite())),
        "a Train call committed non-finite statistics"
    );
    Ok(())
}
