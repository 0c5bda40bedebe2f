//! The reference optimizers: SGD (momentum, Nesterov, decoupled weight decay),
//! Adam and AdamW, one element at a time in `f64`, with Keras 3's formulas.
//!
//! Serves SPEC §3 and §5b: each parameter keeps its own slots and its own step
//! count, so Adam's bias correction counts the updates that parameter received,
//! and a frozen parameter's slots wait for it unchanged.

/// The optimizers the state machine compiles with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// SGD at learning rate 0.01.
    Sgd,
    /// SGD, learning rate 0.01, momentum 0.9.
    SgdMomentum,
    /// SGD, learning rate 0.01, Nesterov momentum 0.9.
    SgdNesterov,
    /// SGD, learning rate 0.01, momentum 0.9, weight decay 0.01.
    SgdMomentumDecay,
    /// Adam at learning rate 0.01, epsilon [`ADAM_EPSILON`].
    Adam,
    /// AdamW at learning rate 0.01, epsilon [`ADAM_EPSILON`], with Keras'
    /// default weight decay 0.004.
    AdamW,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 6] = [
        OptimizerKind::Sgd,
        OptimizerKind::SgdMomentum,
        OptimizerKind::SgdNesterov,
        OptimizerKind::SgdMomentumDecay,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ];

    pub fn hyper(self) -> Hyper {
        let sgd = Hyper {
            learning_rate: 0.01,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            adam: false,
        };
        let adam = Hyper { adam: true, ..sgd };
        match self {
            OptimizerKind::Sgd => sgd,
            OptimizerKind::SgdMomentum => Hyper {
                momentum: 0.9,
                ..sgd
            },
            OptimizerKind::SgdNesterov => Hyper {
                momentum: 0.9,
                nesterov: true,
                ..sgd
            },
            OptimizerKind::SgdMomentumDecay => Hyper {
                momentum: 0.9,
                weight_decay: 0.01,
                ..sgd
            },
            OptimizerKind::Adam => adam,
            OptimizerKind::AdamW => Hyper {
                weight_decay: 0.004,
                ..adam
            },
        }
    }
}

/// Keras' Adam moment decays.
pub const ADAM_BETA_1: f64 = 0.9;
pub const ADAM_BETA_2: f64 = 0.999;
/// Adam's epsilon in the state machine, not Keras' 1e-7: a Dense bias feeding a
/// BatchNormalization in batch statistics has a gradient that is mathematically
/// zero, which both sides compute as rounding noise of about 1e-16; Adam divides
/// it by `sqrt(v) + epsilon`, so at 1e-7 each side moves that bias by a different
/// 1e-11 per step, and the two drift apart beyond any tolerance that still
/// tells formulas apart. At 1e-3 the noise moves it by 1e-15. (The default
/// epsilon is held to Keras' values in `tests/keras_reference.rs`.)
pub const ADAM_EPSILON: f64 = 1e-3;

#[derive(Debug, Clone, Copy)]
pub struct Hyper {
    pub learning_rate: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub adam: bool,
}

/// One parameter's optimizer state.
#[derive(Debug, Clone)]
pub struct Slot {
    /// SGD with momentum: `[momentum]`; plain SGD: none; Adam: `[m, v]`.
    pub slots: Vec<Vec<f64>>,
    /// Updates this parameter received.
    pub steps: u64,
    /// False once a step the reference cannot replay changed it.
    pub known: bool,
}

/// The updated parameter and its new state, from its gradient.
pub fn update(hyper: &Hyper, w: &[f64], g: &[f64], slot: Option<&Slot>) -> (Vec<f64>, Slot) {
    let steps = slot.map_or(0, |s| s.steps) + 1;
    let known = slot.is_none_or(|s| s.known);
    let lr = hyper.learning_rate;
    // Decoupled weight decay comes first: w <- w - w * decay * lr.
    let decayed: Vec<f64> = w
        .iter()
        .map(|&w| {
            if hyper.weight_decay > 0.0 {
                w - w * hyper.weight_decay * lr
            } else {
                w
            }
        })
        .collect();
    if hyper.adam {
        let zeros = vec![0.0; w.len()];
        let (m, v) = slot.map_or((&zeros, &zeros), |s| (&s.slots[0], &s.slots[1]));
        let t = steps as f64;
        let alpha = lr * (1.0 - ADAM_BETA_2.powf(t)).sqrt() / (1.0 - ADAM_BETA_1.powf(t));
        let mut new_w = Vec::with_capacity(w.len());
        let mut new_m = Vec::with_capacity(w.len());
        let mut new_v = Vec::with_capacity(w.len());
        for i in 0..w.len() {
            let m = m[i] + (g[i] - m[i]) * (1.0 - ADAM_BETA_1);
            let v = v[i] + (g[i] * g[i] - v[i]) * (1.0 - ADAM_BETA_2);
            new_w.push(decayed[i] - alpha * m / (v.sqrt() + ADAM_EPSILON));
            new_m.push(m);
            new_v.push(v);
        }
        let slot = Slot {
            slots: vec![new_m, new_v],
            steps,
            known,
        };
        return (new_w, slot);
    }
    if hyper.momentum == 0.0 {
        let new_w = decayed.iter().zip(g).map(|(w, g)| w - g * lr).collect();
        let slot = Slot {
            slots: Vec::new(),
            steps,
            known,
        };
        return (new_w, slot);
    }
    let zeros = vec![0.0; w.len()];
    let velocity = slot.map_or(&zeros, |s| &s.slots[0]);
    let mut new_w = Vec::with_capacity(w.len());
    let mut new_velocity = Vec::with_capacity(w.len());
    for i in 0..w.len() {
        let m = velocity[i] * hyper.momentum - g[i] * lr;
        new_w.push(if hyper.nesterov {
            decayed[i] + (m * hyper.momentum - g[i] * lr)
        } else {
            decayed[i] + m
        });
        new_velocity.push(m);
    }
    let slot = Slot {
        slots: vec![new_velocity],
        steps,
        known,
    };
    (new_w, slot)
}
