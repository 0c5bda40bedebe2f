//! What Keras 3 will do to each layer of a saved model in `fit` and in
//! `predict`, in one plain sentence each, and the answer to the question for
//! that model: which train-only layers are active during `fit`, which weights
//! and statistics can change (SPEC §1: `trainable` decides what may change, the
//! phase decides how a layer behaves; a frozen BatchNormalization runs in
//! inference mode).
//!
//! Keras 3's `fit` calls the model with `training=True` and `predict` with
//! `training=False`, and that argument overrides the `training` a call site
//! recorded (`base(x, training=False)`): every layer runs in `Train` during
//! `fit` and in `Eval` during `predict`, pinned or not. A pin is reported with
//! the node that records it and that override.

use super::config::{Container, SavedLayer, SavedModel};
use serde::Serialize;

/// The train-only layers: active in `fit`, the identity in `predict`.
pub const TRAIN_ONLY: [&str; 7] = [
    "Dropout",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
];

/// One layer as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    /// Its path from the model (`model_A/dropout`).
    pub path: String,
    /// Its Keras class.
    pub class: String,
    /// How deep in the tree it is (the model's own layers are 1).
    pub depth: usize,
    /// Its own `trainable` flag.
    pub trainable: bool,
    /// Whether `fit` may change it: its own flag, unless the fitted model
    /// itself is frozen (Keras 3 does not AND the flags of nested models).
    pub effective_trainable: bool,
    /// The phase it runs in during `fit`: `Train` under Keras 3.
    pub fit_phase: String,
    /// A `training` recorded at its call site, with the node and what Keras
    /// does with it; `None` where no call records one.
    pub pin: Option<String>,
    /// What `fit` does to it.
    pub fit: String,
    /// What `predict` does to it.
    pub predict: String,
}

/// The answer to the question for one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// Train-only layers active during `fit`, with their class and rate.
    pub active_in_fit: Vec<String>,
    /// Of those, the ones inside a frozen part.
    pub active_in_frozen_parts: Vec<String>,
    /// Weights `fit` can change.
    pub trainable_weights: Vec<String>,
    /// Statistics `fit` can change (a trainable BatchNormalization's).
    pub changing_statistics: Vec<String>,
    /// Frozen BatchNormalizations, which run in inference mode in `fit`.
    pub frozen_batch_norms: Vec<String>,
}

fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}%", p.round())
    } else {
        format!("{p}%")
    }
}

fn scale(rate: f64) -> String {
    let s = 1.0 / (1.0 - rate);
    if (s - s.round()).abs() < 1e-9 {
        format!("{}", s.round())
    } else {
        format!("{s:.4}")
    }
}

/// One sentence each for what `fit` and `predict` do to `layer`.
pub fn sentences(layer: &SavedLayer) -> (String, String) {
    let rate = layer.number("rate").unwrap_or(f64::NAN);
    let identity = "identity".to_string();
    match layer.class.as_str() {
        "Dropout" => (
            format!("drops {} of units, scales the rest by {}", percent(rate), scale(rate)),
            identity,
        ),
        "SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D" => (
            format!(
                "drops {} of channels whole, scales the rest by {}",
                percent(rate),
                scale(rate)
            ),
            identity,
        ),
        "GaussianNoise" => (
            format!(
                "adds Gaussian noise of standard deviation {}",
                layer.number("stddev").unwrap_or(f64::NAN)
            ),
            identity,
        ),
        "GaussianDropout" => (
            format!(
                "multiplies by Gaussian noise of mean 1 and variance {:.4}",
                rate / (1.0 - rate)
            ),
            identity,
        ),
        "AlphaDropout" => (
            format!(
                "sets {} of units to SELU's saturation, then rescales to keep mean and variance",
                percent(rate)
            ),
            identity,
        ),
        "BatchNormalization" if layer.effective_trainable => (
            "normalises with the batch's statistics and updates its moving statistics".into(),
            "normalises with its moving statistics".into(),
        ),
        "BatchNormalization" => (
            "inference mode: frozen BatchNorm, normalises with its moving statistics, updates nothing"
                .into(),
            "normalises with its moving statistics".into(),
        ),
        "Dense" => {
            let activation = layer.text("activation").unwrap_or("linear");
            let map = if activation == "linear" {
                "affine map".to_string()
            } else {
                format!("affine map, then {activation}")
            };
            if layer.effective_trainable {
                (format!("{map}; its kernel and bias train"), map)
            } else {
                (format!("{map}; frozen: kernel and bias fixed"), map)
            }
        }
        "ReLU" | "Activation" | "Concatenate" | "InputLayer" | "Flatten" | "Reshape" => {
            let what = match layer.class.as_str() {
                "Concatenate" => "joins its inputs on the last axis".to_string(),
                "Activation" => format!("{} activation", layer.text("activation").unwrap_or("?")),
                "ReLU" => "relu".into(),
                _ => "reshapes".into(),
            };
            (format!("{what}; the same in both phases"), what)
        }
        _ if layer.container != Container::None => {
            let state = if layer.trainable {
                "its layers as described below"
            } else {
                "saved frozen; Keras 3 trains each layer inside by that layer's own flag"
            };
            (state.into(), "its layers in inference".into())
        }
        other => (
            format!("{other}: not known to nncheck, behaviour in fit not described"),
            format!("{other}: not known to nncheck"),
        ),
    }
}

/// The report of every layer below the model, depth first.
pub fn layer_reports(model: &SavedModel) -> Vec<LayerReport> {
    let mut out = Vec::new();
    fn visit(parent: &SavedLayer, depth: usize, out: &mut Vec<LayerReport>) {
        for layer in &parent.children {
            let pin = layer.calls.iter().enumerate().find_map(|(i, call)| {
                // Keras records `training` on every call of a train-only layer,
                // pinned or not; a recorded `True` there, or any value on a
                // model's call, was written by the user.
                let recorded = call.training?;
                let written = layer.container != Container::None
                    || !TRAIN_ONLY.contains(&layer.class.as_str())
                    || recorded;
                written.then(|| {
                    format!(
                        "called with training={} at node {i} of {}; Keras 3's fit and predict \
                             pass their own training, which overrides it",
                        if recorded { "True" } else { "False" },
                        parent.name
                    )
                })
            });
            let (fit, predict) = sentences(layer);
            out.push(LayerReport {
                path: layer.path.clone(),
                class: layer.class.clone(),
                depth,
                trainable: layer.trainable,
                effective_trainable: layer.effective_trainable,
                fit_phase: "Train".into(),
                pin,
                fit,
                predict,
            });
            visit(layer, depth + 1, out);
        }
    }
    visit(&model.root, 1, &mut out);
    out
}

/// The answer for `model`, given the weights it holds (`(path, layer path,
/// changes in fit, is a statistic)`).
pub fn answer(model: &SavedModel, weights: &[(String, String, bool, bool)]) -> Answer {
    let layers = model.root.walk();
    let named = |l: &SavedLayer| {
        let param = match l.class.as_str() {
            "GaussianNoise" => format!("stddev {}", l.number("stddev").unwrap_or(f64::NAN)),
            _ => format!("rate {}", l.number("rate").unwrap_or(f64::NAN)),
        };
        format!("{} ({} {param})", l.path, l.class)
    };
    let train_only: Vec<&&SavedLayer> = layers
        .iter()
        .filter(|l| TRAIN_ONLY.contains(&l.class.as_str()))
        .collect();
    Answer {
        active_in_fit: train_only.iter().map(|l| named(l)).collect(),
        active_in_frozen_parts: train_only
            .iter()
            .filter(|l| !l.effective_trainable)
            .map(|l| named(l))
            .collect(),
        trainable_weights: weights
            .iter()
            .filter(|w| w.2 && !w.3)
            .map(|w| w.0.clone())
            .collect(),
        changing_statistics: weights
            .iter()
            .filter(|w| w.2 && w.3)
            .map(|w| w.0.clone())
            .collect(),
        frozen_batch_norms: layers
            .iter()
            .filter(|l| l.class == "BatchNormalization" && !l.effective_trainable)
            .map(|l| l.path.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_a_person_says_them() {
        assert_eq!(percent(0.5), "50%");
        assert_eq!(scale(0.5), "2");
        assert_eq!(percent(0.3), "30%");
        assert_eq!(scale(0.3), "1.4286");
    }
}
