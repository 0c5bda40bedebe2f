//! The audit of `nncheck inspect --audit`: the saved model loaded into
//! nncheck's core (its layers, weights and `trainable` flags), fitted, and
//! judged as the main report judges the frozen-model scenario (SPEC §1–§5):
//! every weight the model freezes is bit-identical after `fit`, every
//! train-only layer changed its input during `fit` (a Dropout at its rate, by
//! the exact binomial region), and every one is the identity in `predict`.
//!
//! The core runs what Keras 3's `fit` and `predict` run: every layer in the
//! call's phase, a call-site `training` overridden (Keras 3 lets the outer call's
//! `training` win), a frozen BatchNormalization in inference mode. A layer or
//! feature the core lacks stops the audit with [`InspectError::NotInCore`],
//! naming the layer's class and path; the static report does not depend on it.

use super::archive::WeightsFile;
use super::config::{Container, SavedLayer};
use super::describe::TRAIN_ONLY;
use super::error::{InspectError, Result};
use super::Inspection;
use crate::check::report::CheckReport;
use crate::check::stats::binomial_region;
use crate::check::subjects::observed::Observed;
use crate::layer::Layer;
use crate::layers::{
    AlphaDropout, BatchNormalization, DataFormat, Dense, Dropout, GaussianDropout, GaussianNoise,
    ReLU, SpatialDropout,
};
use crate::loss::Loss;
use crate::model::graph::{Functional, NodeId};
use crate::model::sequential::Sequential;
use crate::model::Model;
use crate::optim::{Adam, Sgd};
use crate::phase::Phase;
use crate::tensor::bits_equal;
use ndarray::ArrayD;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What one train-only layer did, call by call, as its observer saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerTally {
    /// Train-phase calls.
    pub train_calls: u64,
    /// Elements of those calls whose input was not zero.
    pub train_nonzero: u64,
    /// Of those, outputs `+0.0` or `-0.0` (dropped, for a dropout).
    pub train_zeroed: u64,
    /// Elements a train call changed (bit for bit).
    pub train_changed: u64,
    /// Elements a train call saw.
    pub train_elements: u64,
    /// Eval-phase calls.
    pub eval_calls: u64,
    /// Elements an eval call changed (bit for bit).
    pub eval_changed: u64,
}

type Tallies = Arc<Mutex<HashMap<String, LayerTally>>>;

/// The model loaded into the core, with an observer on each train-only layer.
#[derive(Debug)]
pub struct Loaded {
    /// The core model.
    pub model: Model<f32>,
    /// What each train-only layer did, by its Keras path.
    tallies: Tallies,
    /// What the loader chose where the file left a choice, said in the report.
    pub notes: Vec<String>,
}

fn not_in_core(file: &Path, layer: &SavedLayer, reason: impl Into<String>) -> InspectError {
    InspectError::NotInCore {
        file: file.to_path_buf(),
        path: layer.path.clone(),
        class: layer.class.clone(),
        reason: reason.into(),
    }
}

/// The core's error while building `layer`, as the audit reports it.
fn core_error(file: &Path, layer: &SavedLayer, e: crate::Error) -> InspectError {
    not_in_core(file, layer, format!("the core refused it: {e}"))
}

/// A fully known sample shape, or why not.
fn known_shape(file: &Path, layer: &SavedLayer, shape: &[Option<usize>]) -> Result<Vec<usize>> {
    shape
        .iter()
        .map(|d| d.ok_or_else(|| not_in_core(file, layer, "an input axis of unknown size")))
        .collect()
}

struct Loader<'a> {
    file: &'a Path,
    tallies: Tallies,
    seed: u64,
}

impl Loader<'_> {
    /// Wraps a train-only layer in an observer that tallies its calls.
    fn observed(&self, layer: &SavedLayer, inner: Box<dyn Layer<f32>>) -> Box<dyn Layer<f32>> {
        let tallies = Arc::clone(&self.tallies);
        let key = layer.path.clone();
        tallies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.clone(), LayerTally::default());
        Box::new(Observed::new(
            inner,
            Box::new(move |phase, x, y| {
                let mut all = tallies
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let t = all.entry(key.clone()).or_default();
                let changed = x
                    .iter()
                    .zip(y.iter())
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count() as u64;
                match phase {
                    Phase::Train => {
                        t.train_calls += 1;
                        t.train_elements += x.len() as u64;
                        t.train_changed += changed;
                        for (a, b) in x.iter().zip(y.iter()) {
                            if *a != 0.0 {
                                t.train_nonzero += 1;
                                t.train_zeroed += u64::from(*b == 0.0);
                            }
                        }
                    }
                    Phase::Eval => {
                        t.eval_calls += 1;
                        t.eval_changed += changed;
                    }
                }
            }),
        ))
    }

    /// The core layers for one plain Keras layer (a Dense with an activation is
    /// two: the Dense and the activation).
    fn plain(&self, layer: &SavedLayer) -> Result<Vec<Box<dyn Layer<f32>>>> {
        let file = self.file;
        let rate = || {
            layer
                .number("rate")
                .ok_or_else(|| not_in_core(file, layer, "no numeric `rate`"))
        };
        let core = |e| core_error(file, layer, e);
        let name = layer.name.clone();
        let one = |l: Box<dyn Layer<f32>>| Ok(vec![l]);
        match layer.class.as_str() {
            "Dense" => {
                let units = layer
                    .number("units")
                    .filter(|u| *u >= 1.0 && u.fract() == 0.0)
                    .ok_or_else(|| not_in_core(file, layer, "no positive integer `units`"))?;
                let mut out: Vec<Box<dyn Layer<f32>>> =
                    vec![Box::new(Dense::new(units as usize).named(name.clone()))];
                match layer.text("activation").unwrap_or("linear") {
                    "linear" => {}
                    "relu" => out.push(Box::new(ReLU::new().named(format!("{name}_relu")))),
                    other => {
                        return Err(not_in_core(
                            file,
                            layer,
                            format!("activation `{other}`: the core has linear and relu"),
                        ))
                    }
                }
                if layer.config.get("use_bias").and_then(|v| v.as_bool()) == Some(false) {
                    return Err(not_in_core(file, layer, "a Dense without bias"));
                }
                Ok(out)
            }
            "BatchNormalization" => {
                let axis = layer.config.get("axis").and_then(|v| v.as_i64());
                let flags = ["center", "scale"]
                    .iter()
                    .all(|k| layer.config.get(*k).and_then(|v| v.as_bool()) != Some(false));
                if axis != Some(-1) || !flags {
                    return Err(not_in_core(
                        file,
                        layer,
                        "the core normalises the last axis, with center and scale",
                    ));
                }
                let momentum = layer.number("momentum").unwrap_or(0.99);
                let epsilon = layer.number("epsilon").unwrap_or(1e-3);
                let bn = BatchNormalization::new()
                    .named(name)
                    .with_momentum_epsilon(momentum, epsilon)
                    .map_err(core)?;
                one(Box::new(bn))
            }
            "ReLU" => {
                let plain = layer.config.get("max_value").is_none_or(|v| v.is_null())
                    && layer.number("negative_slope").unwrap_or(0.0) == 0.0
                    && layer.number("threshold").unwrap_or(0.0) == 0.0;
                if !plain {
                    return Err(not_in_core(
                        file,
                        layer,
                        "a ReLU with max_value, negative_slope or threshold",
                    ));
                }
                one(Box::new(ReLU::new().named(name)))
            }
            "Activation" => match layer.text("activation") {
                Some("relu") => one(Box::new(ReLU::new().named(name))),
                Some("linear") => Ok(Vec::new()),
                other => Err(not_in_core(
                    file,
                    layer,
                    format!("activation {other:?}: the core has relu"),
                )),
            },
            "Dropout" => {
                let mut d = Dropout::new(rate()?).map_err(core)?.named(name);
                if let Some(shape) = layer.config.get("noise_shape").and_then(|v| v.as_array()) {
                    d = d.with_noise_shape(
                        shape
                            .iter()
                            .map(|v| v.as_u64().map(|v| v as usize))
                            .collect(),
                    );
                }
                one(self.observed(layer, Box::new(d)))
            }
            "GaussianNoise" => {
                let stddev = layer
                    .number("stddev")
                    .ok_or_else(|| not_in_core(file, layer, "no numeric `stddev`"))?;
                let g = GaussianNoise::new(stddev).map_err(core)?.named(name);
                one(self.observed(layer, Box::new(g)))
            }
            "GaussianDropout" => {
                let g = GaussianDropout::new(rate()?).map_err(core)?.named(name);
                one(self.observed(layer, Box::new(g)))
            }
            "AlphaDropout" => {
                let a = AlphaDropout::new(rate()?).map_err(core)?.named(name);
                one(self.observed(layer, Box::new(a)))
            }
            class @ ("SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D") => {
                let rank = usize::from(class.as_bytes()[14] - b'0');
                let format = match layer.text("data_format") {
                    Some("channels_first") => DataFormat::ChannelsFirst,
                    _ => DataFormat::ChannelsLast,
                };
                let s = SpatialDropout::new(rank, rate()?, format)
                    .map_err(core)?
                    .named(name);
                one(self.observed(layer, Box::new(s)))
            }
            other => Err(not_in_core(
                file,
                layer,
                format!("{other} is not a layer of nncheck's core"),
            )),
        }
    }

    /// The core model for a Sequential or Functional container.
    fn container(&self, layer: &SavedLayer) -> Result<Model<f32>> {
        if layer.input_shapes.len() != 1 {
            return Err(not_in_core(
                self.file,
                layer,
                format!(
                    "{} inputs: the core's models take one",
                    layer.input_shapes.len()
                ),
            ));
        }
        let shape = known_shape(self.file, layer, &layer.input_shapes[0])?;
        match layer.container {
            Container::Sequential => {
                let mut seq = Sequential::new(layer.name.clone());
                for child in &layer.children {
                    for l in self.layer(child)? {
                        seq = seq.add_boxed(l);
                    }
                }
                seq.build(&shape, Some(self.seed))
                    .map_err(|e| core_error(self.file, layer, e))
            }
            Container::Functional => self.functional(layer, &shape),
            Container::None => unreachable!("called on containers only"),
        }
    }

    fn functional(&self, layer: &SavedLayer, shape: &[usize]) -> Result<Model<f32>> {
        let file = self.file;
        let mut graph = Functional::new(layer.name.clone(), Some(self.seed));
        let core = |e| core_error(file, layer, e);
        let mut nodes: HashMap<String, NodeId> = HashMap::new();
        let input = graph.input(shape).map_err(core)?;
        for name in &layer.inputs {
            nodes.insert(name.clone(), input);
        }
        for child in &layer.children {
            let [call] = child.calls.as_slice() else {
                return Err(not_in_core(
                    file,
                    child,
                    format!(
                        "called {} times: the core calls each layer once",
                        child.calls.len()
                    ),
                ));
            };
            let inputs: Vec<NodeId> = call
                .inputs
                .iter()
                .map(|n| {
                    nodes
                        .get(n)
                        .copied()
                        .ok_or_else(|| InspectError::Malformed {
                            file: file.to_path_buf(),
                            member: format!("config.json: {}", child.path),
                            reason: format!("reads `{n}`, which no earlier layer produces"),
                        })
                })
                .collect::<Result<_>>()?;
            let out = if child.class == "Concatenate" {
                if child.config.get("axis").and_then(|v| v.as_i64()) != Some(-1) {
                    return Err(not_in_core(
                        file,
                        child,
                        "the core concatenates the last axis",
                    ));
                }
                graph
                    .concat(&inputs)
                    .map_err(|e| core_error(file, child, e))?
            } else {
                let [from] = inputs.as_slice() else {
                    return Err(not_in_core(
                        file,
                        child,
                        format!("{} inputs: the core's layers take one", inputs.len()),
                    ));
                };
                let mut at = *from;
                for l in self.layer(child)? {
                    at = graph
                        .apply_boxed(l, at)
                        .map_err(|e| core_error(file, child, e))?;
                }
                at
            };
            nodes.insert(child.name.clone(), out);
        }
        let [output] = layer.outputs.as_slice() else {
            return Err(not_in_core(
                file,
                layer,
                format!(
                    "{} outputs: the core's models have one",
                    layer.outputs.len()
                ),
            ));
        };
        let output = nodes
            .get(output)
            .copied()
            .ok_or_else(|| InspectError::Malformed {
                file: file.to_path_buf(),
                member: "config.json: output_layers".into(),
                reason: format!("`{output}` is not a layer of {}", layer.name),
            })?;
        graph.build(output).map_err(core)
    }

    fn layer(&self, layer: &SavedLayer) -> Result<Vec<Box<dyn Layer<f32>>>> {
        match layer.container {
            Container::None => self.plain(layer),
            _ => Ok(vec![Box::new(self.container(layer)?)]),
        }
    }
}

/// Loads the inspected model into the core: its layers, its weights from
/// `weights`, its `trainable` flags, compiled with its optimizer where the core
/// has it (else AdamW, said in [`Loaded::notes`]) and mean squared error.
pub fn load(inspection: &Inspection, weights: &WeightsFile, seed: u64) -> Result<Loaded> {
    let m = &inspection.model;
    let file = m.file.as_path();
    let loader = Loader {
        file,
        tallies: Arc::default(),
        seed,
    };
    let mut model = loader.container(&m.root)?;
    let root = &m.root.name;
    let core_path = |keras: &str| {
        if keras == root.as_str() {
            root.clone()
        } else {
            format!("{root}/{keras}")
        }
    };
    for w in &inspection.weights {
        let value =
            weights
                .dataset(&w.h5_dataset)
                .cloned()
                .ok_or_else(|| InspectError::Weight {
                    file: file.to_path_buf(),
                    layer: w.layer.clone(),
                    dataset: w.h5_dataset.clone(),
                    reason: "missing".into(),
                })?;
        model
            .set_weight(&core_path(&w.path), value)
            .map_err(|e| InspectError::Weight {
                file: file.to_path_buf(),
                layer: w.layer.clone(),
                dataset: w.h5_dataset.clone(),
                reason: e.to_string(),
            })?;
    }
    // Keras 3 trains a variable by its own layer's flag, and the fitted
    // model's flag covers all; the core ANDs the flags of enclosing models. So
    // every nested model is set to the model's flag (parents first, each call
    // recursive) and each plain layer to its own flag after its parent. A
    // Concatenate (or a linear Activation) is no layer in the core: nothing
    // there to freeze, and no weight either.
    let in_core = model.layer_paths();
    let model_trainable = m.root.trainable;
    for layer in m.root.walk() {
        let path = core_path(&layer.path);
        if layer.path != *root && !in_core.contains(&path) {
            continue;
        }
        let flag = match layer.container {
            Container::None => layer.effective_trainable,
            _ => model_trainable,
        };
        model
            .set_trainable_at(&path, flag)
            .map_err(|e| core_error(file, layer, e))?;
    }
    let mut notes = Vec::new();
    let loss = match m.loss.as_deref() {
        Some("mse" | "mean_squared_error" | "MeanSquaredError") => Loss::MeanSquaredError,
        other => {
            notes.push(format!(
                "loss {other:?} is not in the core: fitted with mean squared error"
            ));
            Loss::MeanSquaredError
        }
    };
    let compiled = match &m.optimizer {
        Some(o) if matches!(o.class.as_str(), "Adam" | "AdamW") => {
            let lr = o.learning_rate.unwrap_or(1e-3);
            model.compile(
                Adam::new(lr).weight_decay(o.weight_decay.unwrap_or(0.0)),
                loss,
            )
        }
        Some(o) if o.class == "SGD" => {
            let sgd = Sgd::new(o.learning_rate.unwrap_or(0.01))
                .momentum(o.momentum.unwrap_or(0.0))
                .nesterov(o.nesterov)
                .weight_decay(o.weight_decay.unwrap_or(0.0));
            model.compile(sgd, loss)
        }
        other => {
            notes.push(format!(
                "optimizer {} is not in the core: fitted with AdamW (learning rate 0.001, weight decay 0.004)",
                other.as_ref().map_or("none", |o| o.class.as_str())
            ));
            model.compile(Adam::new(1e-3).weight_decay(0.004), loss)
        }
    };
    compiled.map_err(|e| core_error(file, &m.root, e))?;
    Ok(Loaded {
        model,
        tallies: loader.tallies,
        notes,
    })
}

/// Standard-normal samples of `shape`, from a stream seeded by `seed`.
pub fn generated(shape: &[usize], seed: u64) -> ArrayD<f32> {
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = crate::rng::chacha(seed);
    ArrayD::from_shape_simple_fn(shape.to_vec(), || {
        <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng) as f32
    })
}

/// The audit's verdicts, one record per invariant and layer.
#[derive(Debug, Clone)]
pub struct AuditReport {
    /// Where the data came from and what the loader chose.
    pub notes: Vec<String>,
    /// The records.
    pub records: Vec<CheckReport>,
}

impl AuditReport {
    /// True when every record passed.
    pub fn passed(&self) -> bool {
        self.records.iter().all(|r| r.pass)
    }

    /// The report as text, one line per record.
    pub fn render(&self) -> String {
        let mut out = String::from("Audit: the model loaded into nncheck's core and fitted\n");
        for n in &self.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        for r in &self.records {
            out.push_str(&r.line());
            out.push('\n');
        }
        out.push_str(if self.passed() {
            "audit passed\n"
        } else {
            "audit FAILED\n"
        });
        out
    }
}

/// Fits the loaded model for `steps` steps on `(x, y)` and judges it: frozen
/// weights bit-identical, each train-only layer active in `fit` (a Dropout at
/// its rate, within the exact binomial region at `alpha`), each the identity in
/// `predict`.
pub fn audit(
    inspection: &Inspection,
    mut loaded: Loaded,
    (x, y): (&ArrayD<f32>, &ArrayD<f32>),
    steps: usize,
    alpha: f64,
) -> Result<AuditReport> {
    let file = inspection.model.file.clone();
    let root = inspection.model.root.name.clone();
    let subject = root.as_str();
    let model = &mut loaded.model;
    let run_error = |e: crate::Error| InspectError::NotInCore {
        file: file.clone(),
        path: root.clone(),
        class: inspection.model.root.class.clone(),
        reason: format!("the core could not run it: {e}"),
    };
    let frozen: Vec<&super::WeightReport> = inspection
        .weights
        .iter()
        .filter(|w| !w.changes_in_fit)
        .collect();
    let path_of = |w: &super::WeightReport| format!("{root}/{}", w.path);
    let before: Vec<ArrayD<f32>> = frozen
        .iter()
        .map(|w| model.weight(&path_of(w)))
        .collect::<std::result::Result<_, _>>()
        .map_err(run_error)?;
    for _ in 0..steps {
        model.train_on_batch(x, y).map_err(run_error)?;
    }
    let after: Vec<ArrayD<f32>> = frozen
        .iter()
        .map(|w| model.weight(&path_of(w)))
        .collect::<std::result::Result<_, _>>()
        .map_err(run_error)?;
    let moved: Vec<String> = frozen
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| !bits_equal(b, a))
        .map(|(w, _)| w.path.clone())
        .collect();
    let mut records = vec![CheckReport::exact(
        "frozen_weights_unchanged",
        subject,
        format!(
            "{} of {} frozen weights changed in {steps} fit steps{}",
            moved.len(),
            frozen.len(),
            if moved.is_empty() {
                String::new()
            } else {
                format!(": {}", moved.join(", "))
            }
        ),
        "0 changed, bit for bit".into(),
        moved.is_empty(),
    )];
    let fit_tallies = loaded
        .tallies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    model.predict(x).map_err(run_error)?;
    let all = loaded
        .tallies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for layer in inspection.model.root.walk() {
        if !TRAIN_ONLY.contains(&layer.class.as_str()) {
            continue;
        }
        let label = format!("{subject}: {} ({})", layer.path, layer.class);
        let t = fit_tallies.get(&layer.path).cloned().unwrap_or_default();
        let param = match layer.class.as_str() {
            "GaussianNoise" => layer.number("stddev"),
            _ => layer.number("rate"),
        }
        .unwrap_or(f64::NAN);
        // A shared noise shape draws one cell for many elements: their drops
        // are not independent, so the binomial region does not apply.
        let shared_cells = layer
            .config
            .get("noise_shape")
            .is_some_and(|v| !v.is_null());
        records.push(if layer.class == "Dropout" && !shared_cells {
            let (lo, hi) = binomial_region(t.train_nonzero, param, alpha);
            CheckReport::exact(
                "dropout_active_in_fit",
                &label,
                format!(
                    "{} of {} nonzero inputs dropped in {} fit calls",
                    t.train_zeroed, t.train_nonzero, t.train_calls
                ),
                format!("in [{lo}, {hi}], the exact binomial region for rate {param} at alpha {alpha:e}"),
                t.train_calls > 0 && t.train_nonzero > 0 && (lo..=hi).contains(&t.train_zeroed),
            )
        } else if param == 0.0 {
            // Rate or standard deviation 0: the layer is the identity in fit too.
            CheckReport::exact(
                "noise_active_in_fit",
                &label,
                format!(
                    "{} of {} elements changed in {} fit calls",
                    t.train_changed, t.train_elements, t.train_calls
                ),
                "0 changed (its parameter is 0)".into(),
                t.train_calls > 0 && t.train_changed == 0,
            )
        } else {
            CheckReport::exact(
                "noise_active_in_fit",
                &label,
                format!(
                    "{} of {} elements changed in {} fit calls",
                    t.train_changed, t.train_elements, t.train_calls
                ),
                "> 0 changed".into(),
                t.train_changed > 0,
            )
        });
        let e = all.get(&layer.path).cloned().unwrap_or_default();
        records.push(CheckReport::exact(
            "identity_in_predict",
            &label,
            format!(
                "{} elements changed in {} predict calls",
                e.eval_changed, e.eval_calls
            ),
            "0 changed, bit for bit, in at least one call".into(),
            e.eval_calls > 0 && e.eval_changed == 0,
        ));
    }
    Ok(AuditReport {
        notes: loaded.notes,
        records,
    })
}

/// Reads a float32 `.npy` file for the audit; `what` names it in errors
/// (`x`, `y`), and `sample` is the shape one sample must have.
pub fn read_npy(path: &Path, what: &str, sample: &[usize]) -> Result<ArrayD<f32>> {
    let bad = |reason: String| InspectError::Npy {
        file: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open it: {e}")))?;
    let array: ArrayD<f32> = ndarray_npy::ReadNpyExt::read_npy(file)
        .map_err(|e| bad(format!("not a float32 .npy array: {e}")))?;
    let shape = array.shape();
    if shape.len() != sample.len() + 1 || shape[1..] != *sample || shape[0] == 0 {
        return Err(bad(format!(
            "{what} has shape {shape:?}; the model needs [batch, {}] with batch >= 1",
            sample
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(array)
}
