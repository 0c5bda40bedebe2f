//! `nncheck inspect`: the question answered for a new user's own saved Keras 3
//! model. It reads the `.keras` file (a zip of `metadata.json`, `config.json`
//! and `model.weights.h5`), prints the model as a tree (each layer's class,
//! own and effective `trainable`, the phase it runs in during `fit`, and what
//! `fit` and `predict` do to it), and ends with the answer for that model:
//! which train-only layers are active during `fit`, which weights and
//! statistics can change. The audit ([`audit`]) then loads the model into
//! nncheck's core and proves it.
//!
//! Everything a damaged or unexpected file can hold is an [`InspectError`]
//! naming the file, the part and what was expected; nothing panics.

pub mod archive;
pub mod audit;
pub mod config;
pub mod describe;
pub mod error;

pub use error::{InspectError, Result};

use config::{Container, SavedLayer, SavedModel};
use describe::{Answer, LayerReport};
use serde::Serialize;
use std::path::Path;

/// One weight of the saved model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightReport {
    /// Its path: the layer's and the variable's name (`model_A/dense/kernel`).
    pub path: String,
    /// The layer's path.
    pub layer: String,
    /// The HDF5 dataset that holds it.
    pub h5_dataset: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// A moving statistic (BatchNormalization's mean and variance), not a parameter.
    pub statistic: bool,
    /// Whether `fit` can change it.
    pub changes_in_fit: bool,
}

/// What `nncheck inspect` finds in one file.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The model, as its config describes it.
    pub model: SavedModel,
    /// Every layer below the model, depth first.
    pub layers: Vec<LayerReport>,
    /// Every weight, in layer order.
    pub weights: Vec<WeightReport>,
    /// The answer to the question for this model.
    pub answer: Answer,
}

/// The variable names a layer of `class` saves, in `vars/0, vars/1, ...`
/// order, and whether each is a moving statistic; `None` for a class whose
/// variables nncheck does not name.
fn variable_names(layer: &SavedLayer) -> Option<Vec<(&'static str, bool)>> {
    let flag = |key: &str| {
        layer
            .config
            .get(key)
            .and_then(|v| v.as_bool())
            .unwrap_or(true)
    };
    match layer.class.as_str() {
        "Dense" => Some(if flag("use_bias") {
            vec![("kernel", false), ("bias", false)]
        } else {
            vec![("kernel", false)]
        }),
        "BatchNormalization" => {
            let mut names = Vec::new();
            if flag("scale") {
                names.push(("gamma", false));
            }
            if flag("center") {
                names.push(("beta", false));
            }
            names.extend([("moving_mean", true), ("moving_variance", true)]);
            Some(names)
        }
        // Not in the core, but common enough to name in the report.
        "LayerNormalization" => Some(
            [("gamma", flag("scale")), ("beta", flag("center"))]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(|(name, _)| (name, false))
                .collect(),
        ),
        _ => None,
    }
}

/// Every weight of the model, read from the archive and matched to its layer;
/// a weight the config needs that is missing, or of a shape the layer cannot
/// have, is an error naming the dataset.
fn weights_of(
    file: &Path,
    model: &SavedModel,
    weights: &archive::WeightsFile,
) -> Result<Vec<WeightReport>> {
    let mut out = Vec::new();
    for layer in model.root.walk() {
        if layer.container != Container::None {
            continue;
        }
        let stored = weights.vars(&layer.h5_group);
        let names = variable_names(layer);
        let error = |dataset: String, reason: String| InspectError::Weight {
            file: file.to_path_buf(),
            layer: layer.path.clone(),
            dataset,
            reason,
        };
        if let Some(names) = &names {
            // `vars/0, vars/1, ...` without a gap: a missing index would shift
            // every later variable into the wrong name.
            let first_gap = (0..names.len()).find(|&i| {
                stored.get(i).map(|(path, _)| path.as_str())
                    != Some(format!("{}/vars/{i}", layer.h5_group).as_str())
            });
            if let Some(gap) = first_gap {
                let missing = format!("{}/vars/{gap}", layer.h5_group);
                return Err(error(
                    missing,
                    format!(
                        "missing: {} saves {} variables ({}), the file has {}",
                        layer.class,
                        names.len(),
                        names.iter().map(|n| n.0).collect::<Vec<_>>().join(", "),
                        stored.len()
                    ),
                ));
            }
        }
        let units = layer.number("units").map(|u| u as usize);
        for (i, (dataset, value)) in stored.iter().enumerate() {
            let (name, statistic) = names
                .as_ref()
                .and_then(|n| n.get(i).copied())
                .map(|(n, s)| (n.to_string(), s))
                .unwrap_or_else(|| (i.to_string(), false));
            let shape = value.shape().to_vec();
            let expected: Option<String> = match (layer.class.as_str(), name.as_str(), units) {
                ("Dense", "kernel", Some(u)) if shape.len() != 2 || shape[1] != u => {
                    Some(format!("[inputs, {u}]"))
                }
                ("Dense", "bias", Some(u)) if shape != [u] => Some(format!("[{u}]")),
                ("BatchNormalization", _, _) if shape.len() != 1 => {
                    Some("one axis (the features)".into())
                }
                _ => None,
            };
            if let Some(expected) = expected {
                return Err(error(
                    dataset.clone(),
                    format!(
                        "{name} has shape {shape:?}, {} needs {expected}",
                        layer.class
                    ),
                ));
            }
            out.push(WeightReport {
                path: format!("{}/{name}", layer.path),
                layer: layer.path.clone(),
                h5_dataset: dataset.clone(),
                shape,
                statistic,
                changes_in_fit: layer.effective_trainable,
            });
        }
    }
    Ok(out)
}

/// Inspects the `.keras` file at `path`.
pub fn inspect(path: &Path) -> Result<Inspection> {
    inspect_archive(archive::read_archive(path)?, path)
}

/// Inspects a `.keras` file held in memory; `path` only names it in errors.
pub fn inspect_bytes(bytes: &[u8], path: &Path) -> Result<Inspection> {
    inspect_archive(archive::read_archive_bytes(bytes, path)?, path)
}

fn inspect_archive(archive: archive::KerasArchive, path: &Path) -> Result<Inspection> {
    let model = config::parse_model(path, &archive.keras_version, &archive.config)?;
    let weights = weights_of(path, &model, &archive.weights)?;
    let layers = describe::layer_reports(&model);
    let summary: Vec<(String, String, bool, bool)> = weights
        .iter()
        .map(|w| {
            (
                w.path.clone(),
                w.layer.clone(),
                w.changes_in_fit,
                w.statistic,
            )
        })
        .collect();
    let answer = describe::answer(&model, &summary);
    Ok(Inspection {
        model,
        layers,
        weights,
        answer,
    })
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "True"
    } else {
        "False"
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

impl Inspection {
    /// The report as text: the model, its layers as a tree, and the answer.
    pub fn render(&self) -> String {
        let m = &self.model;
        let mut out = format!(
            "{}: {} model `{}`, saved by Keras {}\n",
            m.file.display(),
            m.root.class,
            m.root.name,
            m.keras_version
        );
        match &m.optimizer {
            Some(o) => out.push_str(&format!(
                "compiled with {} (learning rate {}, weight decay {}), loss {}\n",
                o.class,
                o.learning_rate.map_or("?".into(), |v| format!("{v:.6}")),
                o.weight_decay.map_or("none".into(), |v| v.to_string()),
                m.loss.as_deref().unwrap_or("?")
            )),
            None => out.push_str("not compiled\n"),
        }
        out.push_str(
            "\nKeras 3's fit calls every layer with training=True, predict with training=False.\n\n",
        );
        for l in &self.layers {
            let indent = "  ".repeat(l.depth - 1);
            out.push_str(&format!(
                "{indent}{} ({}): trainable {}, effective {}; fit phase {}\n",
                l.path,
                l.class,
                yes_no(l.trainable),
                yes_no(l.effective_trainable),
                l.fit_phase
            ));
            if let Some(pin) = &l.pin {
                out.push_str(&format!("{indent}    pin:     {pin}\n"));
            }
            out.push_str(&format!("{indent}    fit:     {}\n", l.fit));
            out.push_str(&format!("{indent}    predict: {}\n", l.predict));
        }
        let a = &self.answer;
        out.push_str("\nThe answer for this model:\n");
        out.push_str(&format!(
            "  active during fit: {} train-only layer(s), {} of them inside a frozen part: {}\n",
            a.active_in_fit.len(),
            a.active_in_frozen_parts.len(),
            list_or_none(&a.active_in_fit)
        ));
        out.push_str(&format!(
            "  weights fit can change: {}\n",
            list_or_none(&a.trainable_weights)
        ));
        out.push_str(&format!(
            "  statistics fit can change: {}\n",
            list_or_none(&a.changing_statistics)
        ));
        if !a.frozen_batch_norms.is_empty() {
            out.push_str(&format!(
                "  frozen BatchNormalization in inference mode during fit: {}\n",
                a.frozen_batch_norms.join(", ")
            ));
        }
        out.push_str("  in predict every train-only layer is the identity\n");
        out
    }
}
