//! `nncheck inspect` against the fixtures Keras itself saved
//! (`tests/data/keras_models/`, each with what Keras did with it): the report
//! says what Keras did (every layer's class and flags, every weight's dataset,
//! shape and whether one `fit` step moved it, every train-only layer active in
//! `fit` and the identity in `predict`), the model imported into the core
//! predicts what Keras predicted within float32 rounding, the audit passes, and
//! every kind of bad input is its typed error.

use ndarray::ArrayD;
use nncheck::inspect::audit::{self, read_npy};
use nncheck::inspect::{archive, inspect, InspectError, Inspection};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

const FIXTURES: [&str; 5] = [
    "question",
    "pinned_base",
    "nested",
    "train_only_layers",
    "unsupported_layer",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/keras_models")
        .join(format!("{name}.keras"))
}

fn expected(name: &str) -> Value {
    let path = fixture(name).with_extension("expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A nested list of numbers as an f32 array (JSON holds float32 values exactly).
fn array(v: &Value) -> ArrayD<f32> {
    fn shape(v: &Value, out: &mut Vec<usize>) {
        if let Value::Array(items) = v {
            out.push(items.len());
            if let Some(first) = items.first() {
                shape(first, out);
            }
        }
    }
    fn flat(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| flat(i, out)),
            other => out.push(other.as_f64().unwrap() as f32),
        }
    }
    let (mut dims, mut values) = (Vec::new(), Vec::new());
    shape(v, &mut dims);
    flat(v, &mut values);
    ArrayD::from_shape_vec(dims, values).unwrap()
}

fn inspected(name: &str) -> Inspection {
    inspect(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every layer Keras lists is in the report with its class, own flag and
/// weights group; every weight with its dataset and shape, and `fit` can
/// change it exactly where one Keras `fit` step moved it.
#[test]
fn the_report_says_what_keras_saved_and_did() {
    for name in FIXTURES {
        let inspection = inspected(name);
        let keras = expected(name);
        for layer in keras["layers"].as_array().unwrap() {
            let path = layer["path"].as_str().unwrap();
            let mine = inspection
                .model
                .root
                .walk()
                .into_iter()
                .find(|l| l.path == path)
                .unwrap_or_else(|| panic!("{name}: no layer {path}"));
            assert_eq!(
                mine.class,
                layer["class"].as_str().unwrap(),
                "{name}: {path}"
            );
            // Absent from the config (SpatialDropout writes none): loaded as True.
            assert_eq!(
                mine.trainable,
                layer["config_trainable"].as_bool().unwrap_or(true),
                "{name}: {path}"
            );
            assert_eq!(
                mine.h5_group,
                layer["h5_group"].as_str().unwrap(),
                "{name}: {path}"
            );
        }
        for weight in keras["weights"].as_array().unwrap() {
            let path = weight["path"].as_str().unwrap();
            let mine = inspection
                .weights
                .iter()
                .find(|w| w.path == path)
                .unwrap_or_else(|| panic!("{name}: no weight {path}"));
            assert_eq!(
                mine.h5_dataset,
                weight["h5_dataset"].as_str().unwrap(),
                "{name}: {path}"
            );
            let shape: Vec<usize> = weight["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(mine.shape, shape, "{name}: {path}");
            assert_eq!(
                mine.changes_in_fit,
                weight["moved"].as_bool().unwrap(),
                "{name}: {path}: can fit change it, and did one Keras step move it"
            );
        }
        assert_eq!(
            inspection.weights.len(),
            keras["weights"].as_array().unwrap().len(),
            "{name}: the weights Keras lists, and no others"
        );
    }
}

/// Every train-only layer Keras ran in `fit` changed its input there and is in
/// the answer as active; in `predict` none changed anything, and the report
/// says identity.
#[test]
fn train_only_layers_are_active_in_fit_as_keras_ran_them() {
    for name in FIXTURES {
        let inspection = inspected(name);
        let keras = expected(name);
        for call in keras["call_phases"]["fit"].as_array().unwrap() {
            let path = call["path"].as_str().unwrap();
            if call["class"] == "BatchNormalization" {
                continue;
            }
            assert_eq!(call["training"], true, "{name}: {path}");
            assert_eq!(
                call["differs"], true,
                "{name}: {path} changed nothing in fit"
            );
            assert!(
                inspection
                    .answer
                    .active_in_fit
                    .iter()
                    .any(|a| a.starts_with(&format!("{path} ("))),
                "{name}: {path} not in the answer {:?}",
                inspection.answer.active_in_fit
            );
            let report = inspection.layers.iter().find(|l| l.path == path).unwrap();
            assert_eq!(report.fit_phase, "Train");
            assert_eq!(report.predict, "identity", "{name}: {path}");
        }
        for call in keras["call_phases"]["predict"].as_array().unwrap() {
            if call["class"] != "BatchNormalization" {
                let path = call["path"].as_str().unwrap();
                assert_eq!(
                    call["differs"], false,
                    "{name}: Keras changed {path} in predict"
                );
                let report = inspection.layers.iter().find(|l| l.path == path).unwrap();
                assert_eq!(report.predict, "identity", "{name}: {path}");
            }
        }
    }
}

/// A frozen BatchNormalization normalises with its moving statistics in Keras's
/// `fit`, and the report says inference mode; a trainable one uses the batch's.
#[test]
fn batch_norm_modes_are_keras_modes() {
    for name in FIXTURES {
        let inspection = inspected(name);
        let keras = expected(name);
        for call in keras["call_phases"]["fit"].as_array().unwrap() {
            if call["class"] != "BatchNormalization" {
                continue;
            }
            let path = call["path"].as_str().unwrap();
            let report = inspection.layers.iter().find(|l| l.path == path).unwrap();
            let batch = call["batch_statistics"].as_bool().unwrap();
            assert_eq!(
                report.fit.starts_with("inference mode"),
                !batch,
                "{name}: {path}: {}",
                report.fit
            );
        }
    }
}

/// The question's model: the report prints the tree and the answer, which
/// names both frozen dropouts as active and only the head as trainable.
#[test]
fn the_question_model_gets_its_answer() {
    let inspection = inspected("question");
    let text = inspection.render();
    println!("{text}");
    assert!(
        text.contains(
            "model_A/dropout (Dropout): trainable False, effective False; fit phase Train"
        ),
        "{text}"
    );
    assert!(
        text.contains("drops 50% of units, scales the rest by 2"),
        "{text}"
    );
    assert!(text.contains("inference mode: frozen BatchNorm"), "{text}");
    let a = &inspection.answer;
    assert_eq!(a.active_in_frozen_parts.len(), 2, "{a:?}");
    assert_eq!(a.trainable_weights, ["head/kernel", "head/bias"]);
    assert!(a.changing_statistics.is_empty());
    assert_eq!(a.frozen_batch_norms, ["model_A/batch_normalization"]);
}

/// `base(x, training=False)`: the report names the node that pins the base and
/// says that Keras 3's `fit` overrides it, as the file's own record of `fit`
/// shows (the base's dropout changed its input there).
#[test]
fn the_pinned_base_is_reported_with_its_node_and_keras_override() {
    let inspection = inspected("pinned_base");
    let base = inspection.layers.iter().find(|l| l.path == "base").unwrap();
    let pin = base
        .pin
        .as_deref()
        .expect("the base's call records training=False");
    assert!(
        pin.contains("training=False at node 0 of pinned_base"),
        "{pin}"
    );
    assert!(pin.contains("overrides it"), "{pin}");
    assert!(inspection
        .answer
        .active_in_frozen_parts
        .iter()
        .any(|a| a.starts_with("base/dropout (")));
}

/// The imported model predicts what Keras predicted on the same inputs. Both
/// compute in float32 with other summation orders (dot products of up to 16
/// terms, three layers deep), so outputs may differ by a few roundings of
/// their terms: the bound 1e-6 * (1 + |keras|) is about 8 float32 ulps of an
/// output near 1, a margin over the 5e-8 measured, far below any weight or
/// layer slip (which moves outputs by 1e-3 and more).
#[test]
fn imported_models_predict_what_keras_predicted() {
    for name in ["question", "pinned_base", "nested"] {
        let inspection = inspected(name);
        let weights = archive::read_archive(&fixture(name)).unwrap().weights;
        let mut loaded =
            audit::load(&inspection, &weights, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
        let keras = expected(name);
        let x = array(&keras["predict"]["x"][0]);
        let want = array(&keras["predict"]["y"][0]);
        let got = loaded.model.predict(&x).unwrap();
        assert_eq!(got.shape(), want.shape(), "{name}");
        let worst = got
            .iter()
            .zip(want.iter())
            .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
            .fold(0.0f32, f32::max);
        println!("{name}: worst relative difference {worst:e}");
        assert!(worst <= 1e-6, "{name}: {worst:e}\n{got:?}\n{want:?}");
    }
}

/// `--audit` passes on the question's model and on the pinned base: frozen
/// weights bit-identical, every dropout at its rate in `fit`, identity in `predict`.
#[test]
fn the_audit_passes_on_the_keras_models() {
    for name in ["question", "pinned_base", "nested"] {
        let inspection = inspected(name);
        let weights = archive::read_archive(&fixture(name)).unwrap().weights;
        let loaded = audit::load(&inspection, &weights, 7).unwrap();
        let mut xs = vec![256];
        xs.extend(loaded.model.input_shape());
        let mut ys = vec![256];
        ys.extend(loaded.model.output_shape());
        let (x, y) = (audit::generated(&xs, 1), audit::generated(&ys, 2));
        let report = audit::audit(&inspection, loaded, (&x, &y), 5, 1e-9).unwrap();
        println!("{}", report.render());
        assert!(report.passed(), "{name}");
        assert!(report
            .records
            .iter()
            .any(|r| r.check == "dropout_active_in_fit"));
    }
}

/// The audit can fail: a frozen weight that moves is reported by path. The twin
/// edits the loaded model between load and audit.
#[test]
fn the_audit_fails_a_model_whose_frozen_weights_train() {
    let inspection = inspected("question");
    let weights = archive::read_archive(&fixture("question")).unwrap().weights;
    let mut loaded = audit::load(&inspection, &weights, 7).unwrap();
    // Unfreeze what the file freezes: the audit still holds it to the file's flags.
    loaded.model.set_trainable_at("question", true).unwrap();
    let (x, y) = (audit::generated(&[64, 8], 1), audit::generated(&[64, 1], 2));
    let report = audit::audit(&inspection, loaded, (&x, &y), 5, 1e-9).unwrap();
    assert!(!report.passed());
    let frozen = report
        .records
        .iter()
        .find(|r| r.check == "frozen_weights_unchanged")
        .unwrap();
    assert!(
        !frozen.pass && frozen.observed.contains("model_A/dense/kernel"),
        "{}",
        frozen.line()
    );
}

/// A layer the core lacks stops the audit with its class and path; the static
/// report is still there. A model with several inputs says so.
#[test]
fn what_the_core_lacks_stops_only_the_audit() {
    for (name, path, class) in [
        ("unsupported_layer", "layer_norm", "LayerNormalization"),
        ("train_only_layers", "train_only_layers", "Functional"),
    ] {
        let inspection = inspected(name);
        assert!(!inspection.render().is_empty());
        let weights = archive::read_archive(&fixture(name)).unwrap().weights;
        match audit::load(&inspection, &weights, 1) {
            Err(InspectError::NotInCore {
                path: p, class: c, ..
            }) => {
                assert!(p.ends_with(path), "{name}: {p}");
                assert_eq!(c, class, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------- bad input

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nncheck-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The question's archive with `edit` applied to its members, written to a
/// scratch file.
fn edited(name: &str, edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> PathBuf {
    let mut source =
        zip::ZipArchive::new(std::fs::File::open(fixture("question")).unwrap()).unwrap();
    let path = scratch(name);
    let mut out = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..source.len() {
        let mut member = source.by_index(i).unwrap();
        let member_name = member.name().unwrap().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut member, &mut bytes).unwrap();
        if let Some(bytes) = edit(&member_name, bytes) {
            out.start_file(member_name, options).unwrap();
            out.write_all(&bytes).unwrap();
        }
    }
    out.finish().unwrap();
    path
}

fn config_edit(f: impl Fn(&mut Value)) -> impl Fn(&str, Vec<u8>) -> Option<Vec<u8>> {
    move |name, bytes| {
        if name != "config.json" {
            return Some(bytes);
        }
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        f(&mut v);
        Some(serde_json::to_vec(&v).unwrap())
    }
}

#[test]
fn not_a_zip_is_its_error() {
    let path = scratch("not_a_zip.keras");
    std::fs::write(&path, b"this is not a zip archive at all").unwrap();
    let err = inspect(&path).unwrap_err();
    assert!(matches!(err, InspectError::NotZip { .. }), "{err}");
    assert!(err.to_string().contains("not_a_zip.keras"), "{err}");
}

#[test]
fn a_truncated_archive_is_its_error() {
    let bytes = std::fs::read(fixture("question")).unwrap();
    let path = scratch("truncated.keras");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = inspect(&path).unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::NotZip { .. } | InspectError::Malformed { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_missing_config_is_its_error() {
    let path = edited("no_config.keras", |name, b| {
        (name != "config.json").then_some(b)
    });
    let err = inspect(&path).unwrap_err();
    assert!(
        matches!(&err, InspectError::MissingMember { member, .. } if member == "config.json"),
        "{err}"
    );
}

#[test]
fn a_malformed_config_is_its_error() {
    let path = edited("bad_json.keras", |name, b| {
        Some(if name == "config.json" {
            b"{not json".to_vec()
        } else {
            b
        })
    });
    let err = inspect(&path).unwrap_err();
    assert!(matches!(err, InspectError::Malformed { .. }), "{err}");
    // JSON, but a layer without its class.
    let path = edited(
        "no_class.keras",
        config_edit(|v| {
            v["config"]["layers"][1]
                .as_object_mut()
                .unwrap()
                .remove("class_name");
        }),
    );
    let err = inspect(&path).unwrap_err();
    assert!(
        err.to_string().contains("layers[1]: no `class_name`"),
        "{err}"
    );
}

#[test]
fn an_unsupported_keras_version_is_its_error() {
    let path = edited("keras2.keras", |name, b| {
        Some(if name == "metadata.json" {
            br#"{"keras_version": "2.15.0", "date_saved": "2024-01-01@00:00:00"}"#.to_vec()
        } else {
            b
        })
    });
    let err = inspect(&path).unwrap_err();
    assert!(
        matches!(&err, InspectError::UnsupportedVersion { found, .. } if found == "2.15.0"),
        "{err}"
    );
}

#[test]
fn a_missing_or_misshapen_weight_is_its_error() {
    // Dense `head` declared with 3 units: its kernel in the file has 1.
    let path = edited(
        "wrong_units.keras",
        config_edit(|v| {
            let layers = v["config"]["layers"].as_array_mut().unwrap();
            let head = layers.iter_mut().find(|l| l["name"] == "head").unwrap();
            head["config"]["units"] = 3.into();
        }),
    );
    let err = inspect(&path).unwrap_err();
    match &err {
        InspectError::Weight {
            dataset,
            layer,
            reason,
            ..
        } => {
            assert_eq!(
                (dataset.as_str(), layer.as_str()),
                ("layers/dense/vars/0", "head"),
                "{err}"
            );
            assert!(
                reason.contains("[2, 1]") && reason.contains("[inputs, 3]"),
                "{err}"
            );
        }
        other => panic!("{other}"),
    }
    // The weights of another model: the question's Dense layers are not there.
    let other = archive::read_archive(&fixture("unsupported_layer")).unwrap();
    drop(other);
    let unsupported = std::fs::read(fixture("unsupported_layer")).unwrap();
    let mut donor = zip::ZipArchive::new(std::io::Cursor::new(unsupported)).unwrap();
    let mut h5 = Vec::new();
    std::io::Read::read_to_end(&mut donor.by_name("model.weights.h5").unwrap(), &mut h5).unwrap();
    let path = edited("other_weights.keras", move |name, b| {
        Some(if name == "model.weights.h5" {
            h5.clone()
        } else {
            b
        })
    });
    let err = inspect(&path).unwrap_err();
    assert!(
        matches!(&err, InspectError::Weight { reason, .. } if reason.starts_with("missing")),
        "{err}"
    );
}

#[test]
fn an_npy_of_the_wrong_shape_is_its_error() {
    let path = scratch("x.npy");
    let x = ArrayD::<f32>::zeros(vec![4, 7]);
    ndarray_npy::write_npy(&path, &x).unwrap();
    let err = read_npy(&path, "x", &[8]).unwrap_err();
    assert!(
        matches!(&err, InspectError::Npy { reason, .. } if reason.contains("[4, 7]") && reason.contains("[batch, 8]")),
        "{err}"
    );
    let f64s = scratch("x64.npy");
    ndarray_npy::write_npy(&f64s, &ArrayD::<f64>::zeros(vec![4, 8])).unwrap();
    assert!(matches!(
        read_npy(&f64s, "x", &[8]),
        Err(InspectError::Npy { .. })
    ));
    ndarray_npy::write_npy(&path, &ArrayD::<f32>::zeros(vec![4, 8])).unwrap();
    assert_eq!(read_npy(&path, "x", &[8]).unwrap().shape(), &[4, 8]);
}
