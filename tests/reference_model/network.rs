//! The reference network: a tree of Dense, BatchNormalization, ReLU and Dropout
//! layers inside sequential models, under a two-branch top model, with forward
//! and backward passes written out in `f64` loops.
//!
//! Serves SPEC §3–§5 as a second implementation: a layer is effectively
//! trainable only when it and every model around it are (§3); setting a model's
//! flag sets every layer inside (§3); BatchNormalization uses the batch
//! statistics only in `Train` and effectively trainable, and otherwise runs in
//! inference mode with its moving statistics (§1, §5). Dropout is the identity
//! here: the oracle compares values only where every dropout rate is 0.

use super::matrix::Matrix;
use std::collections::BTreeMap;

/// Keras' BatchNormalization defaults (SPEC §5).
pub const BATCH_NORM_MOMENTUM: f64 = 0.99;
pub const BATCH_NORM_EPSILON: f64 = 1e-3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Train,
    Eval,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightKind {
    /// Learned by the optimizer.
    Param,
    /// Updated by the layer (BatchNorm moving statistics).
    State,
}

/// One named array and what the reference knows about it.
#[derive(Clone)]
pub struct Weight {
    pub name: &'static str,
    pub kind: WeightKind,
    pub shape: Vec<usize>,
    pub value: Vec<f64>,
    /// False once a step the reference cannot replay (active dropout) changed it.
    pub known: bool,
    /// True until the first update: the value is the one pushed into the system
    /// under test, so the two agree bit for bit.
    pub pristine: bool,
}

impl std::fmt::Debug for Weight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?}", self.name, self.shape)
    }
}

impl Weight {
    pub fn new(name: &'static str, kind: WeightKind, shape: Vec<usize>, value: Vec<f64>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), value.len());
        Weight {
            name,
            kind,
            shape,
            value,
            known: true,
            pristine: true,
        }
    }
}

#[derive(Debug, Clone)]
pub enum LayerKind {
    /// `y = x kernel + bias`; kernel `[inputs, units]`.
    Dense {
        kernel: Weight,
        bias: Weight,
    },
    BatchNorm {
        gamma: Weight,
        beta: Weight,
        moving_mean: Weight,
        moving_variance: Weight,
        /// Moving statistics the last `Train` forward proposes; applied only
        /// when the whole step is good.
        pending: Option<(Vec<f64>, Vec<f64>)>,
    },
    Relu,
    Dropout {
        rate: f64,
    },
    Sequential {
        layers: Vec<Node>,
    },
    /// The functional top: `head(concat(a(x), b(x)))`.
    TwoBranch {
        a: Box<Node>,
        b: Box<Node>,
        head: Box<Node>,
    },
}

/// A layer or a model, with its own trainable flag.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub trainable: bool,
    pub kind: LayerKind,
}

/// What backward needs from a forward.
pub enum Tape {
    Dense {
        x: Matrix,
    },
    BatchNorm {
        x_hat: Matrix,
        inv_std: Vec<f64>,
        batch_stats: bool,
    },
    Relu {
        y: Matrix,
    },
    Identity,
    Sequential(Vec<Tape>),
    TwoBranch {
        a: Box<Tape>,
        b: Box<Tape>,
        head: Box<Tape>,
        width_a: usize,
    },
}

pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

impl Node {
    pub fn leaf(name: &str, kind: LayerKind) -> Self {
        Node {
            name: name.to_string(),
            trainable: true,
            kind,
        }
    }

    fn children(&self) -> Vec<&Node> {
        match &self.kind {
            LayerKind::Sequential { layers } => layers.iter().collect(),
            LayerKind::TwoBranch { a, b, head } => vec![a, b, head],
            _ => Vec::new(),
        }
    }

    fn children_mut(&mut self) -> Vec<&mut Node> {
        match &mut self.kind {
            LayerKind::Sequential { layers } => layers.iter_mut().collect(),
            LayerKind::TwoBranch { a, b, head } => vec![a, b, head],
            _ => Vec::new(),
        }
    }

    fn own_weights(&self) -> Vec<&Weight> {
        match &self.kind {
            LayerKind::Dense { kernel, bias } => vec![kernel, bias],
            LayerKind::BatchNorm {
                gamma,
                beta,
                moving_mean,
                moving_variance,
                ..
            } => vec![gamma, beta, moving_mean, moving_variance],
            _ => Vec::new(),
        }
    }

    fn own_weights_mut(&mut self) -> Vec<&mut Weight> {
        match &mut self.kind {
            LayerKind::Dense { kernel, bias } => vec![kernel, bias],
            LayerKind::BatchNorm {
                gamma,
                beta,
                moving_mean,
                moving_variance,
                ..
            } => vec![gamma, beta, moving_mean, moving_variance],
            _ => Vec::new(),
        }
    }

    /// Keras: setting a model's flag sets every layer inside, recursively.
    pub fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
        for child in self.children_mut() {
            child.set_trainable(trainable);
        }
    }

    /// Sets the flag of the node at `path` (this node's path is its name under
    /// `prefix`); false when no node has that path.
    pub fn set_trainable_at(&mut self, prefix: &str, path: &str, trainable: bool) -> bool {
        let mine = join(prefix, &self.name);
        if mine == path {
            self.set_trainable(trainable);
            return true;
        }
        let mut found = false;
        for child in self.children_mut() {
            found |= child.set_trainable_at(&mine, path, trainable);
        }
        found
    }

    /// Every node: `(path, own flag, effective flag)`, parents first.
    pub fn layers(&self, prefix: &str, path_trainable: bool, out: &mut Vec<(String, bool, bool)>) {
        let mine = join(prefix, &self.name);
        let effective = path_trainable && self.trainable;
        out.push((mine.clone(), self.trainable, effective));
        for child in self.children() {
            child.layers(&mine, effective, out);
        }
    }

    /// Every weight with its full path and whether it is effectively trainable.
    pub fn weights<'a>(
        &'a self,
        prefix: &str,
        path_trainable: bool,
        out: &mut Vec<(String, &'a Weight, bool)>,
    ) {
        let mine = join(prefix, &self.name);
        let effective = path_trainable && self.trainable;
        for w in self.own_weights() {
            out.push((join(&mine, w.name), w, effective));
        }
        for child in self.children() {
            child.weights(&mine, effective, out);
        }
    }

    /// Calls `f` on every weight with its full path and effective flag.
    pub fn for_each_weight_mut(
        &mut self,
        prefix: &str,
        path_trainable: bool,
        f: &mut dyn FnMut(&str, &mut Weight, bool),
    ) {
        let mine = join(prefix, &self.name);
        let effective = path_trainable && self.trainable;
        for w in self.own_weights_mut() {
            f(&join(&mine, w.name), w, effective);
        }
        for child in self.children_mut() {
            child.for_each_weight_mut(&mine, effective, f);
        }
    }

    /// True when a dropout layer with a non-zero rate lies inside.
    pub fn has_active_dropout(&self) -> bool {
        matches!(self.kind, LayerKind::Dropout { rate } if rate > 0.0)
            || self.children().iter().any(|c| c.has_active_dropout())
    }

    /// Every BatchNorm's proposed statistics are finite.
    pub fn pending_finite(&self) -> bool {
        let mine = match &self.kind {
            LayerKind::BatchNorm {
                pending: Some((m, v)),
                ..
            } => m.iter().chain(v).all(|s| s.is_finite()),
            _ => true,
        };
        mine && self.children().iter().all(|c| c.pending_finite())
    }

    /// Applies (`commit`) or drops every BatchNorm's proposed statistics; `known`
    /// says whether the reference could replay the step that proposed them.
    pub fn settle_pending(&mut self, commit: bool, known: bool) {
        if let LayerKind::BatchNorm {
            pending,
            moving_mean,
            moving_variance,
            ..
        } = &mut self.kind
        {
            if let (Some((mean, variance)), true) = (pending.take(), commit) {
                for (w, value) in [(moving_mean, mean), (moving_variance, variance)] {
                    w.value = value;
                    w.known &= known;
                    w.pristine = false;
                }
            }
        }
        for child in self.children_mut() {
            child.settle_pending(commit, known);
        }
    }

    pub fn forward(&mut self, x: Matrix, phase: Phase, path_trainable: bool) -> (Matrix, Tape) {
        let effective = path_trainable && self.trainable;
        match &mut self.kind {
            LayerKind::Dense { kernel, bias } => {
                let units = bias.value.len();
                let inputs = x.cols;
                let y = Matrix::from_fn(x.rows, units, |r, u| {
                    let mut sum = bias.value[u];
                    for i in 0..inputs {
                        sum += x.at(r, i) * kernel.value[i * units + u];
                    }
                    sum
                });
                (y, Tape::Dense { x })
            }
            LayerKind::BatchNorm {
                gamma,
                beta,
                moving_mean,
                moving_variance,
                pending,
            } => {
                let channels = x.cols;
                let rows = x.rows as f64;
                let batch_stats = phase == Phase::Train && effective;
                let (mean, variance) = if batch_stats {
                    let mean: Vec<f64> = x.column_sums().iter().map(|s| s / rows).collect();
                    let variance: Vec<f64> = (0..channels)
                        .map(|c| {
                            (0..x.rows)
                                .map(|r| (x.at(r, c) - mean[c]).powi(2))
                                .sum::<f64>()
                                / rows
                        })
                        .collect();
                    let blend = |moving: &[f64], batch: &[f64]| -> Vec<f64> {
                        moving
                            .iter()
                            .zip(batch)
                            .map(|(m, b)| m * BATCH_NORM_MOMENTUM + b * (1.0 - BATCH_NORM_MOMENTUM))
                            .collect()
                    };
                    *pending = Some((
                        blend(&moving_mean.value, &mean),
                        blend(&moving_variance.value, &variance),
                    ));
                    (mean, variance)
                } else {
                    *pending = None;
                    (moving_mean.value.clone(), moving_variance.value.clone())
                };
                let inv_std: Vec<f64> = variance
                    .iter()
                    .map(|v| 1.0 / (v + BATCH_NORM_EPSILON).sqrt())
                    .collect();
                let x_hat =
                    Matrix::from_fn(x.rows, channels, |r, c| (x.at(r, c) - mean[c]) * inv_std[c]);
                let y = Matrix::from_fn(x.rows, channels, |r, c| {
                    x_hat.at(r, c) * gamma.value[c] + beta.value[c]
                });
                (
                    y,
                    Tape::BatchNorm {
                        x_hat,
                        inv_std,
                        batch_stats,
                    },
                )
            }
            LayerKind::Relu => {
                // NaN passes through, so a bad step reaches the loss.
                let y = Matrix::from_fn(x.rows, x.cols, |r, c| {
                    let v = x.at(r, c);
                    if v > 0.0 || v.is_nan() {
                        v
                    } else {
                        0.0
                    }
                });
                (y.clone(), Tape::Relu { y })
            }
            LayerKind::Dropout { .. } => (x, Tape::Identity),
            LayerKind::Sequential { layers } => {
                let mut tapes = Vec::new();
                let mut x = x;
                for layer in layers {
                    let (y, tape) = layer.forward(x, phase, effective);
                    tapes.push(tape);
                    x = y;
                }
                (x, Tape::Sequential(tapes))
            }
            LayerKind::TwoBranch { a, b, head } => {
                let (ya, tape_a) = a.forward(x.clone(), phase, effective);
                let (yb, tape_b) = b.forward(x, phase, effective);
                let width_a = ya.cols;
                let (y, tape_head) = head.forward(ya.beside(&yb), phase, effective);
                (
                    y,
                    Tape::TwoBranch {
                        a: Box::new(tape_a),
                        b: Box::new(tape_b),
                        head: Box::new(tape_head),
                        width_a,
                    },
                )
            }
        }
    }

    /// Back-propagates `dy`; records the gradient of every parameter (frozen or
    /// not: the reference is plain, the optimizer filters) by path; returns `dx`.
    pub fn backward(
        &self,
        prefix: &str,
        tape: &Tape,
        dy: Matrix,
        grads: &mut BTreeMap<String, Vec<f64>>,
    ) -> Matrix {
        let mine = join(prefix, &self.name);
        match (&self.kind, tape) {
            (LayerKind::Dense { kernel, bias }, Tape::Dense { x }) => {
                let units = bias.value.len();
                let inputs = x.cols;
                let mut d_kernel = vec![0.0; inputs * units];
                for i in 0..inputs {
                    for u in 0..units {
                        for r in 0..x.rows {
                            d_kernel[i * units + u] += x.at(r, i) * dy.at(r, u);
                        }
                    }
                }
                grads.insert(join(&mine, kernel.name), d_kernel);
                grads.insert(join(&mine, bias.name), dy.column_sums());
                Matrix::from_fn(x.rows, inputs, |r, i| {
                    (0..units)
                        .map(|u| dy.at(r, u) * kernel.value[i * units + u])
                        .sum()
                })
            }
            (
                LayerKind::BatchNorm { gamma, beta, .. },
                Tape::BatchNorm {
                    x_hat,
                    inv_std,
                    batch_stats,
                },
            ) => {
                let channels = x_hat.cols;
                let rows = x_hat.rows;
                let d_beta = dy.column_sums();
                let d_gamma: Vec<f64> = (0..channels)
                    .map(|c| (0..rows).map(|r| dy.at(r, c) * x_hat.at(r, c)).sum())
                    .collect();
                grads.insert(join(&mine, gamma.name), d_gamma.clone());
                grads.insert(join(&mine, beta.name), d_beta.clone());
                let n = rows as f64;
                Matrix::from_fn(rows, channels, |r, c| {
                    let scale = gamma.value[c] * inv_std[c];
                    if *batch_stats {
                        // The batch mean and variance depend on x.
                        (n * dy.at(r, c) - d_beta[c] - x_hat.at(r, c) * d_gamma[c]) * scale / n
                    } else {
                        dy.at(r, c) * scale
                    }
                })
            }
            (LayerKind::Relu, Tape::Relu { y }) => Matrix::from_fn(dy.rows, dy.cols, |r, c| {
                if y.at(r, c) > 0.0 {
                    dy.at(r, c)
                } else {
                    0.0
                }
            }),
            (LayerKind::Dropout { .. }, Tape::Identity) => dy,
            (LayerKind::Sequential { layers }, Tape::Sequential(tapes)) => {
                let mut dy = dy;
                for (layer, tape) in layers.iter().zip(tapes).rev() {
                    dy = layer.backward(&mine, tape, dy, grads);
                }
                dy
            }
            (
                LayerKind::TwoBranch { a, b, head },
                Tape::TwoBranch {
                    a: tape_a,
                    b: tape_b,
                    head: tape_head,
                    width_a,
                },
            ) => {
                let d_joined = head.backward(&mine, tape_head, dy, grads);
                let cols = d_joined.cols;
                let dx_a = a.backward(&mine, tape_a, d_joined.columns(0, *width_a), grads);
                let dx_b = b.backward(&mine, tape_b, d_joined.columns(*width_a, cols), grads);
                dx_a.plus(&dx_b)
            }
            _ => unreachable!("a tape from this node's own forward"),
        }
    }
}
