//! The shapes of model the state machine builds, and the reference network of
//! each, with its initial weights.
//!
//! Serves the state-machine oracle: `model_AB` is two nested sequential models on
//! one input, joined under a Dense head (as `src/scenario`), optionally with a
//! sequential `block` nested one level deeper inside `model_A`, so freezing by
//! path and the effective-trainable rule are exercised at three depths.

use super::init::{glorot_kernel, SplitMix};
use super::network::{LayerKind, Node, Weight, WeightKind};

/// Input features.
pub const FEATURES: usize = 4;

/// What a `Build` chooses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Architecture {
    /// Width of the hidden Dense layers (the units each dropout sees per sample).
    pub hidden: usize,
    /// A BatchNormalization after `model_A`'s first Dense.
    pub batch_norm: bool,
    /// A nested `block` (Dense, BatchNormalization, ReLU) inside `model_A`.
    pub nested_block: bool,
    /// The rate of both dropout layers (0: the reference replays every step).
    pub dropout_rate: f64,
}

fn dense(rng: &mut SplitMix, name: &str, inputs: usize, units: usize) -> Node {
    Node::leaf(
        name,
        LayerKind::Dense {
            kernel: Weight::new(
                "kernel",
                WeightKind::Param,
                vec![inputs, units],
                glorot_kernel(rng, inputs, units),
            ),
            bias: Weight::new("bias", WeightKind::Param, vec![units], vec![0.0; units]),
        },
    )
}

/// Keras' initial values: gamma 1, beta 0, moving mean 0, moving variance 1.
fn batch_norm(name: &str, channels: usize) -> Node {
    let filled = |name, kind, value| Weight::new(name, kind, vec![channels], vec![value; channels]);
    Node::leaf(
        name,
        LayerKind::BatchNorm {
            gamma: filled("gamma", WeightKind::Param, 1.0),
            beta: filled("beta", WeightKind::Param, 0.0),
            moving_mean: filled("moving_mean", WeightKind::State, 0.0),
            moving_variance: filled("moving_variance", WeightKind::State, 1.0),
            pending: None,
        },
    )
}

fn sequential(name: &str, layers: Vec<Node>) -> Node {
    Node::leaf(name, LayerKind::Sequential { layers })
}

/// The reference `model_AB` for `architecture`, its weights drawn from `seed`.
/// Layer names are the ones the system's builders give (`dense`, `dense_1`, ...).
pub fn model_ab(architecture: &Architecture, seed: u64) -> Node {
    let mut rng = SplitMix::new(seed);
    let h = architecture.hidden;
    let dropout = || {
        Node::leaf(
            "dropout",
            LayerKind::Dropout {
                rate: architecture.dropout_rate,
            },
        )
    };
    let mut a = vec![dense(&mut rng, "dense", FEATURES, h)];
    if architecture.batch_norm {
        a.push(batch_norm("batch_normalization", h));
    }
    a.push(Node::leaf("relu", LayerKind::Relu));
    a.push(dropout());
    if architecture.nested_block {
        a.push(sequential(
            "block",
            vec![
                dense(&mut rng, "dense", h, h),
                batch_norm("batch_normalization", h),
                Node::leaf("relu", LayerKind::Relu),
            ],
        ));
    }
    a.push(dense(&mut rng, "dense_1", h, 1));
    let b = vec![
        dense(&mut rng, "dense", FEATURES, h),
        dropout(),
        dense(&mut rng, "dense_1", h, 1),
    ];
    Node::leaf(
        "model_AB",
        LayerKind::TwoBranch {
            a: Box::new(sequential("model_A", a)),
            b: Box::new(sequential("model_B", b)),
            head: Box::new(dense(&mut rng, "head", 2, 1)),
        },
    )
}
