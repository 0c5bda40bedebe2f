//! The model a `.keras` file describes, read from its `config.json`: the tree
//! of layers (nested Sequential and Functional models included), each with its
//! class, its own and effective `trainable`, the `training` its call sites
//! record, the inputs a Functional node reads, and the `model.weights.h5`
//! group that holds its variables.
//!
//! Group names follow Keras's saving code: the snake_case class name, made
//! unique per container (`layers/dense`, `layers/dense_1`,
//! `layers/sequential/layers/dense`); the user's layer name is not in the path.

use super::error::{InspectError, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Whether a layer holds other layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Container {
    /// A plain layer.
    None,
    /// A `Sequential` model: its layers run in order.
    Sequential,
    /// A `Functional` model: its layers form a graph.
    Functional,
}

/// One call of a layer inside a Functional model (a Keras "inbound node").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSite {
    /// The layers whose outputs it reads, in argument order.
    pub inputs: Vec<String>,
    /// The `training` keyword the call recorded, if any.
    pub training: Option<bool>,
}

/// A layer of the saved model.
#[derive(Debug, Clone, Serialize)]
pub struct SavedLayer {
    /// Its path from the model: `model_A/dropout` (the model itself: its name).
    pub path: String,
    /// The layer's name.
    pub name: String,
    /// Its Keras class, e.g. `Dropout`.
    pub class: String,
    /// Its own `trainable` flag as saved.
    pub trainable: bool,
    /// Whether `fit` may change it: its own flag, unless the model as a whole
    /// is frozen. Keras 3 trains a variable by its own layer's flag (setting a
    /// model's `trainable` sets every layer inside, and a layer set back to
    /// trainable inside a frozen model trains); only the fitted model's own
    /// flag covers everything.
    pub effective_trainable: bool,
    /// Whether it holds other layers.
    pub container: Container,
    /// The group of `model.weights.h5` that holds its variables.
    pub h5_group: String,
    /// Its calls in the enclosing Functional model (empty in a Sequential).
    pub calls: Vec<CallSite>,
    /// The layer's own `config` object from `config.json`.
    #[serde(skip)]
    pub config: Value,
    /// The layers it holds, in the saved order (InputLayers left out).
    pub children: Vec<SavedLayer>,
    /// For a container: its input shapes without the batch axis, one per
    /// input (`None` where an axis is unknown).
    pub input_shapes: Vec<Vec<Option<usize>>>,
    /// For a Functional container: the layers its outputs come from.
    pub outputs: Vec<String>,
    /// For a Functional container: the names of its InputLayers, in order.
    pub inputs: Vec<String>,
}

impl SavedLayer {
    /// A number from the layer's config, e.g. Dropout's `rate`.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.config.get(key).and_then(Value::as_f64)
    }

    /// A string from the layer's config, e.g. Dense's `activation`.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }

    /// Every layer of the subtree, this one first, depth first.
    pub fn walk(&self) -> Vec<&SavedLayer> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.walk());
        }
        out
    }
}

/// The optimizer `compile()` saved with the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedOptimizer {
    /// Its Keras class, e.g. `AdamW`.
    pub class: String,
    /// Its learning rate, where a number.
    pub learning_rate: Option<f64>,
    /// Its weight decay, where set.
    pub weight_decay: Option<f64>,
    /// SGD's momentum, where set.
    pub momentum: Option<f64>,
    /// SGD's Nesterov flag.
    pub nesterov: bool,
}

/// The model a `.keras` file describes.
#[derive(Debug, Clone, Serialize)]
pub struct SavedModel {
    /// The file it was read from.
    pub file: PathBuf,
    /// The Keras version that saved it.
    pub keras_version: String,
    /// The model itself, the root of the tree.
    pub root: SavedLayer,
    /// The optimizer it was compiled with, if it was.
    pub optimizer: Option<SavedOptimizer>,
    /// The loss it was compiled with, where a name (`mse`).
    pub loss: Option<String>,
}

/// Reads the model from `config.json`'s parsed contents.
pub fn parse_model(file: &Path, keras_version: &str, config: &Value) -> Result<SavedModel> {
    let at = Location {
        file,
        json: "config.json".into(),
    };
    let model_trainable = config
        .get("config")
        .and_then(|c| c.get("trainable"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let root = parse_layer(&at, config, None, "", model_trainable, &mut Vec::new())?;
    if root.container == Container::None {
        return Err(at.malformed(format!(
            "the top level is a {}, not a Sequential or Functional model",
            root.class
        )));
    }
    let compile = config.get("compile_config");
    let optimizer = compile
        .and_then(|c| c.get("optimizer"))
        .filter(|o| o.is_object())
        .map(|o| {
            let c = o.get("config").cloned().unwrap_or(Value::Null);
            SavedOptimizer {
                class: o
                    .get("class_name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                learning_rate: c.get("learning_rate").and_then(Value::as_f64),
                weight_decay: c.get("weight_decay").and_then(Value::as_f64),
                momentum: c.get("momentum").and_then(Value::as_f64),
                nesterov: c.get("nesterov").and_then(Value::as_bool).unwrap_or(false),
            }
        });
    let loss = compile
        .and_then(|c| c.get("loss"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(SavedModel {
        file: file.to_path_buf(),
        keras_version: keras_version.to_string(),
        root,
        optimizer,
        loss,
    })
}

/// Where in `config.json` the parser is, for errors that say so.
struct Location<'a> {
    file: &'a Path,
    json: String,
}

impl Location<'_> {
    fn at(&self, key: &str) -> Location<'_> {
        Location {
            file: self.file,
            json: format!("{}.{key}", self.json),
        }
    }

    fn malformed(&self, reason: String) -> InspectError {
        InspectError::Malformed {
            file: self.file.to_path_buf(),
            member: self.json.clone(),
            reason,
        }
    }

    fn get<'v>(&self, v: &'v Value, key: &str) -> Result<&'v Value> {
        v.get(key)
            .ok_or_else(|| self.malformed(format!("no `{key}`")))
    }

    fn string<'v>(&self, v: &'v Value, key: &str) -> Result<&'v str> {
        self.get(v, key)?
            .as_str()
            .ok_or_else(|| self.at(key).malformed("expected a string".into()))
    }
}

/// Keras's `to_snake_case`: `BatchNormalization` → `batch_normalization`,
/// `ReLU` → `re_lu`, `SpatialDropout1D` → `spatial_dropout1d`.
pub fn snake_case(class: &str) -> String {
    let name: Vec<char> = class
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // `(.)([A-Z][a-z]+)` → `\1_\2`, left to right without overlaps.
    let mut first = String::new();
    let mut i = 0;
    while i < name.len() {
        first.push(name[i]);
        let starts_word = i + 1 < name.len()
            && name[i + 1].is_ascii_uppercase()
            && name.get(i + 2).is_some_and(|c| c.is_ascii_lowercase());
        if starts_word {
            first.push('_');
            // The matched word is copied whole, so it cannot start another match.
            let mut j = i + 1;
            first.push(name[j]);
            j += 1;
            while j < name.len() && name[j].is_ascii_lowercase() {
                first.push(name[j]);
                j += 1;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    // `([a-z])([A-Z])` → `\1_\2`, then lower case.
    let chars: Vec<char> = first.chars().collect();
    let mut out = String::new();
    for (k, &c) in chars.iter().enumerate() {
        out.push(c);
        if c.is_ascii_lowercase() && chars.get(k + 1).is_some_and(|n| n.is_ascii_uppercase()) {
            out.push('_');
        }
    }
    out.to_lowercase()
}

fn container_of(class: &str) -> Container {
    match class {
        "Sequential" => Container::Sequential,
        "Functional" | "Model" => Container::Functional,
        _ => Container::None,
    }
}

/// The batch shape of an InputLayer entry without its batch axis.
fn input_shape(at: &Location<'_>, entry: &Value) -> Result<Vec<Option<usize>>> {
    let config = at.get(entry, "config")?;
    let shape = config
        .get("batch_shape")
        .or_else(|| config.get("batch_input_shape"))
        .and_then(Value::as_array)
        .ok_or_else(|| at.malformed("an InputLayer without `batch_shape`".into()))?;
    Ok(shape
        .iter()
        .skip(1)
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect())
}

/// The layer names a call's arguments read (`keras_history[0]` of every
/// Keras tensor in them, nested lists included).
fn history_names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| history_names(i, out)),
        Value::Object(map)
            if map.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") =>
        {
            if let Some(name) = map
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .and_then(|h| h.get(0))
                .and_then(Value::as_str)
            {
                out.push(name.to_string());
            }
        }
        _ => {}
    }
}

fn parse_calls(at: &Location<'_>, entry: &Value) -> Result<Vec<CallSite>> {
    let Some(nodes) = entry.get("inbound_nodes") else {
        return Ok(Vec::new());
    };
    let nodes = nodes
        .as_array()
        .ok_or_else(|| at.at("inbound_nodes").malformed("expected a list".into()))?;
    Ok(nodes
        .iter()
        .map(|node| {
            let mut inputs = Vec::new();
            if let Some(args) = node.get("args") {
                history_names(args, &mut inputs);
            }
            let training = node
                .get("kwargs")
                .and_then(|k| k.get("training"))
                .and_then(Value::as_bool);
            CallSite { inputs, training }
        })
        .collect())
}

/// The `[name, node, tensor]` triples of `input_layers`/`output_layers`, which
/// Keras saves flat for one tensor and nested for several.
fn layer_refs(at: &Location<'_>, v: Option<&Value>) -> Result<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) if items.first().is_some_and(Value::is_string) => {
            Ok(vec![items[0].as_str().unwrap_or_default().to_string()])
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.get(0)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| at.malformed("expected [layer, node, tensor] triples".into()))
            })
            .collect(),
        Some(_) => Err(at.malformed("expected a list".into())),
    }
}

/// Parses one layer entry (`{"class_name", "config", ...}`) under `parent`.
fn parse_layer(
    at: &Location<'_>,
    entry: &Value,
    parent: Option<(&str, &str)>,
    group: &str,
    model_trainable: bool,
    depth_guard: &mut Vec<()>,
) -> Result<SavedLayer> {
    // A hostile file can nest models without end; real ones nest a few levels.
    if depth_guard.len() > 64 {
        return Err(at.malformed("models nested more than 64 deep".into()));
    }
    let class = at.string(entry, "class_name")?.to_string();
    let config = at.get(entry, "config")?;
    if !config.is_object() {
        return Err(at.at("config").malformed("expected an object".into()));
    }
    let name = at.at("config").string(config, "name")?.to_string();
    let trainable = match config.get("trainable") {
        None => true,
        Some(v) => v.as_bool().ok_or_else(|| {
            at.at("config.trainable")
                .malformed("expected true or false".into())
        })?,
    };
    let path = match parent {
        Some((p, _)) if !p.is_empty() => format!("{p}/{name}"),
        _ => name.clone(),
    };
    let effective_trainable = model_trainable && trainable;
    let container = container_of(&class);
    let mut layer = SavedLayer {
        path: if parent.is_none() {
            name.clone()
        } else {
            path.clone()
        },
        name: name.clone(),
        class,
        trainable,
        effective_trainable,
        container,
        h5_group: group.to_string(),
        calls: parse_calls(at, entry)?,
        config: config.clone(),
        children: Vec::new(),
        input_shapes: Vec::new(),
        outputs: Vec::new(),
        inputs: Vec::new(),
    };
    if container == Container::None {
        return Ok(layer);
    }
    let layers_at = at.at("config.layers");
    let entries = at
        .at("config")
        .get(config, "layers")?
        .as_array()
        .ok_or_else(|| layers_at.malformed("expected a list".into()))?;
    // The path the children's paths start from: the root's children have
    // plain names (`model_A`), a nested model's are prefixed with it.
    let child_prefix = if parent.is_none() { "" } else { path.as_str() };
    let mut used: Vec<String> = Vec::new();
    depth_guard.push(());
    for (i, child) in entries.iter().enumerate() {
        let child_at = Location {
            file: at.file,
            json: format!("{}[{i}]", layers_at.json),
        };
        let class = child_at.string(child, "class_name")?;
        // Unique per container, in saved order, as Keras's saving code names groups.
        let base = snake_case(class);
        let mut unique = base.clone();
        let mut n = 0;
        while used.contains(&unique) {
            n += 1;
            unique = format!("{base}_{n}");
        }
        used.push(unique.clone());
        if class == "InputLayer" {
            layer.input_shapes.push(input_shape(&child_at, child)?);
            if let Some(n) = child
                .get("config")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
            {
                layer.inputs.push(n.to_string());
            }
            continue;
        }
        let child_group = if group.is_empty() {
            format!("layers/{unique}")
        } else {
            format!("{group}/layers/{unique}")
        };
        layer.children.push(parse_layer(
            &child_at,
            child,
            Some((child_prefix, &layer.name)),
            &child_group,
            model_trainable,
            depth_guard,
        )?);
    }
    depth_guard.pop();
    if layer.input_shapes.is_empty() {
        // A Sequential saved without an InputLayer states its shape here.
        let shape = config
            .get("build_input_shape")
            .or_else(|| entry.get("build_config").and_then(|b| b.get("input_shape")))
            .and_then(Value::as_array);
        if let Some(shape) = shape {
            layer.input_shapes.push(
                shape
                    .iter()
                    .skip(1)
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect(),
            );
        }
    }
    if container == Container::Functional {
        layer.outputs = layer_refs(&at.at("config.output_layers"), config.get("output_layers"))?;
        let inputs = layer_refs(&at.at("config.input_layers"), config.get("input_layers"))?;
        if !inputs.is_empty() {
            layer.inputs = inputs;
        }
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_become_keras_group_names() {
        for (class, snake) in [
            ("Dense", "dense"),
            ("BatchNormalization", "batch_normalization"),
            ("ReLU", "re_lu"),
            ("SpatialDropout1D", "spatial_dropout1d"),
            ("GaussianNoise", "gaussian_noise"),
            ("AlphaDropout", "alpha_dropout"),
            ("LayerNormalization", "layer_normalization"),
            ("Sequential", "sequential"),
            ("InputLayer", "input_layer"),
            ("Concatenate", "concatenate"),
        ] {
            assert_eq!(snake_case(class), snake, "{class}");
        }
    }

    #[test]
    fn a_config_without_class_names_its_place() {
        let bad = serde_json::json!({"class_name": "Sequential", "config": {"name": "m", "layers": [{"config": {}}]}});
        let err = parse_model(Path::new("m.keras"), "3.15.1", &bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("config.json.config.layers[0]: no `class_name`"),
            "{err}"
        );
    }
}
