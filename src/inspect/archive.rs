//! Reads the three members of a Keras 3 `.keras` archive: `metadata.json`
//! (which Keras saved the file), `config.json` (the model's structure) and
//! `model.weights.h5` (its variables). Nothing here interprets the model: the
//! config stays JSON and the weights stay float32 arrays keyed by their HDF5
//! path, for the code that matches one against the other.
//!
//! The input may be any bytes (a fuzz target feeds it such), so every failure
//! is an [`InspectError`] naming the member at fault, and nothing is allocated
//! on a size the file claims without the bytes being there.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{Cursor, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use hdf5_reader::group::Group;
use hdf5_reader::{dtype_element_size, Attribute, Datatype, Hdf5File, OpenOptions, VarLenKind};
use ndarray::ArrayD;
use serde_json::Value;
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::error::{InspectError, Result};

const METADATA: &str = "metadata.json";
const CONFIG: &str = "config.json";
const WEIGHTS: &str = "model.weights.h5";

/// Keras nests a group per layer and per sub-model (`layers/functional/
/// layers/sequential/layers/dense/vars` is 7 deep); far deeper is a damaged
/// or hostile file, and the walk recurses, so it must stop before the stack
/// does.
const MAX_GROUP_DEPTH: usize = 64;

/// A `.keras` file, read: its Keras version, model config and weights.
#[derive(Debug)]
pub struct KerasArchive {
    /// metadata.json's `keras_version`, e.g. `3.15.1`.
    pub keras_version: String,
    /// config.json, parsed.
    pub config: Value,
    /// model.weights.h5.
    pub weights: WeightsFile,
}

/// The contents of `model.weights.h5`: every float32 dataset by its full
/// path, and the `name` attribute of every `vars` group.
///
/// Datasets of other types (the optimizer's int32 `iterations`) are left out.
pub struct WeightsFile {
    datasets: BTreeMap<String, ArrayD<f32>>,
    /// Keyed by the path of the group that holds `vars`, so that
    /// `layers/dense` maps to the user's name for that layer.
    layer_names: BTreeMap<String, String>,
}

impl WeightsFile {
    /// The dataset at `path` (e.g. `layers/dense/vars/0`), if present.
    pub fn dataset(&self, path: &str) -> Option<&ArrayD<f32>> {
        self.datasets.get(path.trim_matches('/'))
    }

    /// The datasets `vars/0`, `vars/1`, ... under `group` (e.g.
    /// `layers/dense`; `""` for the model's own), each with its full path,
    /// in index order (numeric, so `vars/10` comes after `vars/9`).
    pub fn vars(&self, group: &str) -> Vec<(String, &ArrayD<f32>)> {
        let prefix = format!("{}/", vars_group_path(group));
        let mut indexed: Vec<(usize, &String, &ArrayD<f32>)> = self
            .datasets
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .filter_map(|(path, array)| {
                let index = &path[prefix.len()..];
                // `parse` alone would also take "+1"; Keras writes bare digits.
                if !index.bytes().all(|byte| byte.is_ascii_digit()) {
                    return None;
                }
                Some((index.parse().ok()?, path, array))
            })
            .collect();
        indexed.sort_by_key(|&(index, ..)| index);
        indexed
            .into_iter()
            .map(|(_, path, array)| (path.clone(), array))
            .collect()
    }

    /// The `name` attribute of `group/vars`: the name the user gave the
    /// layer (the group is named after its class, e.g. `layers/dense_1`).
    pub fn layer_name(&self, group: &str) -> Option<&str> {
        self.layer_names
            .get(group.trim_matches('/'))
            .map(String::as_str)
    }

    /// Every dataset path, sorted.
    pub fn paths(&self) -> Vec<&str> {
        self.datasets.keys().map(String::as_str).collect()
    }

    /// Reads the weights from the bytes of `model.weights.h5`.
    fn from_hdf5(bytes: Vec<u8>) -> std::result::Result<Self, WeightsFault> {
        // hdf5-reader 0.12.1 returned errors, never panicked, on half a
        // million damaged copies of the fixtures; this is for the inputs no
        // one tried. It does not help a build with `panic = "abort"`.
        catch_unwind(AssertUnwindSafe(|| Self::decode(bytes))).unwrap_or_else(|panic| {
            Err(WeightsFault::whole(format!(
                "the HDF5 decoder failed on it ({})",
                panic_message(panic.as_ref())
            )))
        })
    }

    fn decode(bytes: Vec<u8>) -> std::result::Result<Self, WeightsFault> {
        let file_len = bytes.len();
        // Uncompressed data cannot exceed the file, so a larger read is a
        // damaged size field; the reader refuses it before allocating.
        let options = OpenOptions::default().with_max_read_bytes(file_len);
        let file = Hdf5File::from_vec_with_options(bytes, options)
            .map_err(|error| WeightsFault::whole(format!("not a readable HDF5 file: {error}")))?;
        let root = file
            .root_group()
            .map_err(|error| WeightsFault::whole(format!("no readable root group: {error}")))?;
        let mut walk = Walk {
            file_len: u64::try_from(file_len).unwrap_or(u64::MAX),
            visited: HashSet::new(),
            weights: WeightsFile {
                datasets: BTreeMap::new(),
                layer_names: BTreeMap::new(),
            },
        };
        walk.group(&root, "", 0)?;
        Ok(walk.weights)
    }
}

impl fmt::Debug for WeightsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The values would bury the structure a reader of a dump looks for.
        let shapes: BTreeMap<&str, &[usize]> = self
            .datasets
            .iter()
            .map(|(path, array)| (path.as_str(), array.shape()))
            .collect();
        f.debug_struct("WeightsFile")
            .field("dataset_shapes", &shapes)
            .field("layer_names", &self.layer_names)
            .finish()
    }
}

/// Reads the archive at `path`.
pub fn read_archive(path: &Path) -> Result<KerasArchive> {
    let bytes = std::fs::read(path).map_err(|error| InspectError::Io {
        file: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    read_archive_bytes(&bytes, path)
}

/// Reads an archive from bytes; `path` only names it in errors (used by the
/// fuzz target).
pub fn read_archive_bytes(bytes: &[u8], path: &Path) -> Result<KerasArchive> {
    let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|error| InspectError::NotZip {
        file: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let mut archive = Archive {
        zip,
        len: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
    };
    // The version decides whether the rest can be understood, so it is
    // checked before the other members are read.
    let metadata = read_member(&mut archive, METADATA, path)?;
    let keras_version = keras_version(&metadata, path)?;
    if !keras_version.starts_with("3.") {
        return Err(InspectError::UnsupportedVersion {
            file: path.to_path_buf(),
            found: keras_version,
        });
    }
    let config = read_member(&mut archive, CONFIG, path)?;
    let config = serde_json::from_slice(&config)
        .map_err(|error| malformed(path, CONFIG, format!("not JSON: {error}")))?;
    let weights = read_member(&mut archive, WEIGHTS, path)?;
    let weights = WeightsFile::from_hdf5(weights).map_err(|fault| {
        let member = match fault.inside {
            Some(inside) => format!("{WEIGHTS}: {inside}"),
            None => WEIGHTS.to_string(),
        };
        malformed(path, member, fault.reason)
    })?;
    Ok(KerasArchive {
        keras_version,
        config,
        weights,
    })
}

/// The zip reader does not give back its input's length, which bounds what
/// a stored member can hold.
struct Archive<'bytes> {
    zip: ZipArchive<Cursor<&'bytes [u8]>>,
    len: u64,
}

fn read_member(archive: &mut Archive<'_>, member: &str, path: &Path) -> Result<Vec<u8>> {
    let archive_len = archive.len;
    let mut entry = match archive.zip.by_name(member) {
        Ok(entry) => entry,
        Err(ZipError::FileNotFound) => {
            return Err(InspectError::MissingMember {
                file: path.to_path_buf(),
                member: member.to_string(),
            })
        }
        Err(error) => {
            return Err(malformed(
                path,
                member,
                format!("cannot open it in the archive: {error}"),
            ))
        }
    };
    let compression = entry.compression();
    if compression != CompressionMethod::Stored {
        return Err(malformed(
            path,
            member,
            format!(
                "compressed ({compression}); Keras stores its members uncompressed, \
                 and only such archives are read"
            ),
        ));
    }
    // A stored member lies inside the archive, so a larger size is a damaged
    // header and must not size the buffer.
    let declared = entry.size();
    if declared > archive_len {
        return Err(malformed(
            path,
            member,
            format!(
                "the zip header gives it {declared} bytes, more than the whole archive \
                 ({archive_len} bytes)"
            ),
        ));
    }
    let mut contents = Vec::with_capacity(declared as usize);
    // One byte past the declared size: the zip reader checks the member's
    // CRC only when it reaches the member's end, and a member longer than
    // declared shows up in the length check below.
    entry
        .by_ref()
        .take(declared.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(|error| malformed(path, member, format!("cannot read it: {error}")))?;
    if contents.len() as u64 != declared {
        return Err(malformed(
            path,
            member,
            format!(
                "holds {} bytes where its zip header says {declared}",
                contents.len()
            ),
        ));
    }
    Ok(contents)
}

fn keras_version(metadata: &[u8], path: &Path) -> Result<String> {
    let metadata: Value = serde_json::from_slice(metadata)
        .map_err(|error| malformed(path, METADATA, format!("not JSON: {error}")))?;
    let Value::Object(fields) = metadata else {
        return Err(malformed(
            path,
            METADATA,
            format!("expected a JSON object, found {}", json_kind(&metadata)),
        ));
    };
    let member = format!("{METADATA}: keras_version");
    match fields.get("keras_version") {
        Some(Value::String(version)) => Ok(version.clone()),
        Some(other) => Err(malformed(
            path,
            member,
            format!("expected a version string, found {}", json_kind(other)),
        )),
        None => Err(malformed(
            path,
            member,
            "missing; Keras writes the version that saved the file there",
        )),
    }
}

/// Walks the HDF5 groups depth first, collecting float32 datasets and the
/// `name` attributes of `vars` groups.
struct Walk {
    file_len: u64,
    /// Object header addresses already read: HDF5 hard links may make a
    /// group its own descendant, and following that would never end.
    visited: HashSet<u64>,
    weights: WeightsFile,
}

impl Walk {
    fn group(
        &mut self,
        group: &Group,
        path: &str,
        depth: usize,
    ) -> std::result::Result<(), WeightsFault> {
        if depth > MAX_GROUP_DEPTH {
            return Err(WeightsFault::at(
                path,
                format!("groups nested more than {MAX_GROUP_DEPTH} deep"),
            ));
        }
        if !self.visited.insert(group.address()) {
            return Ok(());
        }
        if let Some(holder) = vars_holder(path) {
            if let Some(name) = self.name_attribute(group, path)? {
                self.weights.layer_names.insert(holder.to_string(), name);
            }
        }
        let (subgroups, datasets) = group
            .members()
            .map_err(|error| WeightsFault::at(path, format!("cannot list its members: {error}")))?;
        for dataset in &datasets {
            let dataset_path = join(path, dataset.name());
            if let Some(array) = self.float32_array(dataset, &dataset_path)? {
                self.weights.datasets.insert(dataset_path, array);
            }
        }
        for subgroup in &subgroups {
            self.group(subgroup, &join(path, subgroup.name()), depth + 1)?;
        }
        Ok(())
    }

    fn name_attribute(
        &self,
        group: &Group,
        path: &str,
    ) -> std::result::Result<Option<String>, WeightsFault> {
        let attributes = group.raw_attributes().map_err(|error| {
            WeightsFault::at(path, format!("cannot read its attributes: {error}"))
        })?;
        let Some(name) = attributes
            .into_iter()
            .find(|attribute| attribute.name() == "name")
        else {
            return Ok(None);
        };
        let fault = |reason: String| WeightsFault::at(format!("{path}@name"), reason);
        let (message, _) = name.into_parts();
        if !matches!(message.dataspace.num_elements(), Ok(1)) {
            return Err(fault(format!(
                "expected one string, found dims {:?}",
                message.dataspace.dims
            )));
        }
        match &message.datatype {
            // h5py writes a `str` as a reference into the global heap. The
            // decoder's `Attribute::read_string` falls back to the
            // reference's own bytes when the heap is damaged, passing
            // garbage off as a name; resolving it here makes that an error.
            Datatype::VarLen {
                base,
                kind: VarLenKind::String,
                ..
            } => {
                let element_size = dtype_element_size(base)
                    .map_err(|error| fault(format!("unreadable string type: {error}")))?;
                let mut bytes = group
                    .resolve_vlen_reference_bytes(&message.raw_data, element_size)
                    .map_err(|error| fault(format!("cannot resolve the string: {error}")))?;
                if let Some(end) = bytes.iter().position(|&byte| byte == 0) {
                    bytes.truncate(end);
                }
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|error| fault(format!("not UTF-8: {error}")))
            }
            Datatype::String { .. } => Attribute::from_message(message)
                .read_string()
                .map(Some)
                .map_err(|error| fault(format!("not a readable string: {error}"))),
            other => Err(fault(format!("expected a string, found {other:?}"))),
        }
    }

    /// The dataset's values if it holds float32, `None` for other types.
    fn float32_array(
        &self,
        dataset: &hdf5_reader::Dataset,
        path: &str,
    ) -> std::result::Result<Option<ArrayD<f32>>, WeightsFault> {
        if !matches!(dataset.dtype(), Datatype::FloatingPoint { size: 4, .. }) {
            return Ok(None);
        }
        let shape = dataset.shape();
        let bytes = shape
            .iter()
            .try_fold(4u64, |bytes, &dim| bytes.checked_mul(dim));
        if bytes.is_none_or(|bytes| bytes > self.file_len) {
            return Err(WeightsFault::at(
                path,
                format!(
                    "shape {shape:?} needs more float32 bytes than the whole file holds \
                     ({} bytes)",
                    self.file_len
                ),
            ));
        }
        dataset
            .read_array::<f32>()
            .map(Some)
            .map_err(|error| WeightsFault::at(path, format!("cannot read it: {error}")))
    }
}

/// Why `model.weights.h5` could not be read, and where in it.
struct WeightsFault {
    inside: Option<String>,
    reason: String,
}

impl WeightsFault {
    fn whole(reason: String) -> Self {
        WeightsFault {
            inside: None,
            reason,
        }
    }

    fn at(inside: impl Into<String>, reason: String) -> Self {
        let inside = inside.into();
        WeightsFault {
            // The root's path is empty, which would name nothing.
            inside: (!inside.is_empty()).then_some(inside),
            reason,
        }
    }
}

/// `layers/dense` → `layers/dense/vars`; the model's own variables are in a
/// top-level `vars`.
fn vars_group_path(group: &str) -> String {
    join(group.trim_matches('/'), "vars")
}

/// The group that holds the `vars` group at `path`, if `path` is one.
fn vars_holder(path: &str) -> Option<&str> {
    if path == "vars" {
        Some("")
    } else {
        path.strip_suffix("/vars")
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}/{child}")
    }
}

fn malformed(path: &Path, member: impl Into<String>, reason: impl Into<String>) -> InspectError {
    InspectError::Malformed {
        file: path.to_path_buf(),
        member: member.into(),
        reason: reason.into(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;
    use zip::write::SimpleFileOptions;
    use zip::ZipWriter;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keras_models/");

    fn fixture(name: &str) -> PathBuf {
        Path::new(FIXTURES).join(name)
    }

    fn fixture_names() -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
            .expect("the fixture folder")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                Some(name.strip_suffix(".keras")?.to_string())
            })
            .collect();
        names.sort();
        assert!(names.len() >= 5, "fixtures missing: {names:?}");
        names
    }

    fn expected(name: &str) -> Value {
        let text = std::fs::read_to_string(fixture(&format!("{name}.expected.json")))
            .expect("the expected.json beside the fixture");
        serde_json::from_str(&text).expect("expected.json is JSON")
    }

    fn question_bytes() -> Vec<u8> {
        std::fs::read(fixture("question.keras")).expect("question.keras")
    }

    /// The members of question.keras, to rebuild archives from with one
    /// member changed.
    fn question_members() -> Vec<(String, Vec<u8>)> {
        let bytes = question_bytes();
        let mut archive = ZipArchive::new(Cursor::new(bytes.as_slice())).unwrap();
        (0..archive.len())
            .map(|index| {
                let mut entry = archive.by_index(index).unwrap();
                let mut contents = Vec::new();
                entry.read_to_end(&mut contents).unwrap();
                (entry.name().unwrap().to_string(), contents)
            })
            .collect()
    }

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        for (name, contents) in members {
            writer.start_file(*name, options).unwrap();
            writer.write_all(contents).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    /// question.keras rebuilt with `member` replaced (`None`: left out).
    fn question_with(member: &str, replacement: Option<&[u8]>) -> Vec<u8> {
        let members = question_members();
        let kept: Vec<(&str, &[u8])> = members
            .iter()
            .filter_map(|(name, contents)| {
                if name != member {
                    Some((name.as_str(), contents.as_slice()))
                } else {
                    replacement.map(|replacement| (name.as_str(), replacement))
                }
            })
            .collect();
        zip_of(&kept)
    }

    fn read_test_bytes(bytes: &[u8]) -> Result<KerasArchive> {
        read_archive_bytes(bytes, Path::new("test.keras"))
    }

    /// splitmix64: reproducible damage without a dependency.
    struct Damage(u64);

    impl Damage {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound.max(1) as u64) as usize
        }

        /// A truncation or a few flipped bits, alternately.
        fn apply(&mut self, round: usize, bytes: &[u8]) -> Vec<u8> {
            let mut damaged = bytes.to_vec();
            if round.is_multiple_of(2) {
                damaged.truncate(self.below(bytes.len()));
            } else {
                for _ in 0..=self.below(8) {
                    let at = self.below(damaged.len());
                    damaged[at] ^= 1 << self.below(8);
                }
            }
            damaged
        }
    }

    #[test]
    fn every_expected_weight_is_read_with_its_shape() {
        for name in fixture_names() {
            let archive = read_archive(&fixture(&format!("{name}.keras")))
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            let expected = expected(&name);
            assert_eq!(archive.keras_version, expected["keras_version"], "{name}");
            assert!(archive.config.get("class_name").is_some(), "{name}");
            let weights = expected["weights"].as_array().unwrap();
            assert!(!weights.is_empty(), "{name}");
            for weight in weights {
                let dataset = weight["h5_dataset"].as_str().unwrap();
                let shape: Vec<usize> = serde_json::from_value(weight["shape"].clone()).unwrap();
                let array = archive
                    .weights
                    .dataset(dataset)
                    .unwrap_or_else(|| panic!("{name}: no {dataset}"));
                assert_eq!(array.shape(), shape.as_slice(), "{name}: {dataset}");
                assert!(archive.weights.paths().contains(&dataset), "{name}");
            }
        }
    }

    #[test]
    fn layer_names_are_the_users_names() {
        let question = read_archive(&fixture("question.keras")).unwrap();
        assert_eq!(
            question
                .weights
                .layer_name("layers/sequential/layers/dense"),
            Some("dense")
        );
        assert_eq!(question.weights.layer_name("layers/no_such_layer"), None);
        for name in fixture_names() {
            let archive = read_archive(&fixture(&format!("{name}.keras"))).unwrap();
            for layer in expected(&name)["layers"].as_array().unwrap() {
                let group = layer["h5_group"].as_str().unwrap();
                let path = layer["path"].as_str().unwrap();
                let layer_name = path.rsplit('/').next().unwrap();
                assert_eq!(
                    archive.weights.layer_name(group),
                    Some(layer_name),
                    "{name}: {group}"
                );
            }
        }
    }

    #[test]
    fn vars_come_in_numeric_order_and_int32_is_left_out() {
        let question = read_archive(&fixture("question.keras")).unwrap();
        let weights = &question.weights;
        // vars/0 is the optimizer's int32 `iterations`.
        assert!(weights
            .dataset("layers/sequential/optimizer/vars/0")
            .is_none());
        let indices: Vec<String> = weights
            .vars("layers/sequential/optimizer")
            .into_iter()
            .map(|(path, _)| path.rsplit('/').next().unwrap().to_string())
            .collect();
        let expected_indices: Vec<String> = (1..=13).map(|index| index.to_string()).collect();
        assert_eq!(indices, expected_indices);
        let dense = weights.vars("layers/dense");
        assert_eq!(dense.len(), 2);
        assert_eq!(dense[0].0, "layers/dense/vars/0");
        assert_eq!(dense[0].1.shape(), &[2, 1]);
        assert_eq!(dense[1].1.shape(), &[1]);
        assert!(weights.vars("layers/dropout").is_empty());
        let learning_rate = weights.dataset("optimizer/vars/1").unwrap();
        assert_eq!(learning_rate.shape(), &[] as &[usize]);
        let paths = weights.paths();
        assert!(paths.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(format!("{question:?}").contains("layers/dense/vars/0"));
    }

    #[test]
    fn a_rebuilt_archive_reads_as_the_original() {
        let members = question_members();
        let borrowed: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(name, contents)| (name.as_str(), contents.as_slice()))
            .collect();
        let rebuilt = read_test_bytes(&zip_of(&borrowed)).unwrap();
        let original = read_archive(&fixture("question.keras")).unwrap();
        assert_eq!(rebuilt.weights.paths(), original.weights.paths());
        assert_eq!(rebuilt.config, original.config);
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let error = read_archive(&fixture("no_such_model.keras")).unwrap_err();
        assert!(matches!(error, InspectError::Io { .. }), "{error}");
    }

    #[test]
    fn random_bytes_are_not_a_zip() {
        let mut damage = Damage(7);
        let bytes: Vec<u8> = (0..4096).map(|_| damage.next() as u8).collect();
        let error = read_test_bytes(&bytes).unwrap_err();
        assert!(matches!(error, InspectError::NotZip { .. }), "{error}");
        let error = read_test_bytes(&[]).unwrap_err();
        assert!(matches!(error, InspectError::NotZip { .. }), "{error}");
    }

    #[test]
    fn a_half_archive_is_not_a_zip_or_malformed() {
        let bytes = question_bytes();
        let error = read_test_bytes(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(
            matches!(
                error,
                InspectError::NotZip { .. } | InspectError::Malformed { .. }
            ),
            "{error}"
        );
    }

    #[test]
    fn an_archive_without_config_names_the_missing_member() {
        let error = read_test_bytes(&question_with(CONFIG, None)).unwrap_err();
        assert_eq!(
            error,
            InspectError::MissingMember {
                file: PathBuf::from("test.keras"),
                member: CONFIG.to_string(),
            }
        );
        let error = read_test_bytes(&question_with(WEIGHTS, None)).unwrap_err();
        assert!(
            matches!(&error, InspectError::MissingMember { member, .. } if member == WEIGHTS),
            "{error}"
        );
    }

    #[test]
    fn config_that_is_not_json_is_malformed() {
        let error = read_test_bytes(&question_with(CONFIG, Some(b"not json"))).unwrap_err();
        assert!(
            matches!(&error, InspectError::Malformed { member, .. } if member == CONFIG),
            "{error}"
        );
    }

    #[test]
    fn metadata_without_a_version_is_malformed() {
        let metadata = br#"{"date_saved": "1980-01-01@00:00:00"}"#;
        let error = read_test_bytes(&question_with(METADATA, Some(metadata))).unwrap_err();
        assert!(
            matches!(&error, InspectError::Malformed { member, .. }
                if member == "metadata.json: keras_version"),
            "{error}"
        );
        let error = read_test_bytes(&question_with(METADATA, Some(b"[3]"))).unwrap_err();
        assert!(
            matches!(&error, InspectError::Malformed { member, .. } if member == METADATA),
            "{error}"
        );
    }

    #[test]
    fn keras_2_is_an_unsupported_version() {
        let metadata = br#"{"keras_version": "2.15.0", "date_saved": "2024-01-01@00:00:00"}"#;
        let error = read_test_bytes(&question_with(METADATA, Some(metadata))).unwrap_err();
        assert!(
            matches!(&error, InspectError::UnsupportedVersion { found, .. } if found == "2.15.0"),
            "{error}"
        );
    }

    #[test]
    fn garbage_weights_are_malformed() {
        let error =
            read_test_bytes(&question_with(WEIGHTS, Some(b"garbage, not HDF5"))).unwrap_err();
        assert!(
            matches!(&error, InspectError::Malformed { member, .. } if member == WEIGHTS),
            "{error}"
        );
    }

    #[test]
    fn a_dataset_larger_than_the_file_is_refused_before_allocating() {
        let (_, weights) = question_members()
            .into_iter()
            .find(|(name, _)| name == WEIGHTS)
            .unwrap();
        // A version-1 dataspace message of rank 2 with max dims, then dims
        // and max dims as little-endian u64s: the [2, 1] head kernel (and two
        // optimizer slots of its shape). Both first dims become 2^40.
        let mut dataspace = vec![1u8, 2, 1, 0, 0, 0, 0, 0];
        dataspace.extend([2u64, 1, 2, 1].iter().flat_map(|dim| dim.to_le_bytes()));
        let at = weights
            .windows(dataspace.len())
            .position(|window| window == dataspace)
            .expect("the dataspace of a [2, 1] dataset");
        let mut damaged = weights.clone();
        for dim_at in [at + 8, at + 24] {
            damaged[dim_at..dim_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        }
        let error = read_test_bytes(&question_with(WEIGHTS, Some(&damaged))).unwrap_err();
        assert!(
            matches!(&error, InspectError::Malformed { member, reason, .. }
                if member.starts_with(WEIGHTS) && reason.contains("1099511627776")),
            "{error}"
        );
    }

    #[test]
    fn a_damaged_name_is_an_error_not_garbage() {
        let (_, weights) = question_members()
            .into_iter()
            .find(|(name, _)| name == WEIGHTS)
            .unwrap();
        // h5py keeps the `name` strings in one global heap collection.
        let at = weights
            .windows(4)
            .position(|window| window == b"GCOL")
            .expect("a global heap");
        let mut damaged = weights.clone();
        damaged[at] = b'X';
        let error = read_test_bytes(&question_with(WEIGHTS, Some(&damaged))).unwrap_err();
        assert!(
            matches!(&error, InspectError::Malformed { member, .. }
                if member.starts_with(WEIGHTS) && member.ends_with("/vars@name")),
            "{error}"
        );
    }

    #[test]
    fn a_changed_byte_in_a_member_fails_its_checksum() {
        let mut bytes = question_bytes();
        let version = b"\"keras_version\": \"3.15.1\"";
        let at = bytes
            .windows(version.len())
            .position(|window| window == version)
            .expect("metadata.json, stored");
        // Still valid JSON and still Keras 3: only the CRC can tell.
        bytes[at + version.len() - 2] = b'2';
        let error = read_test_bytes(&bytes).unwrap_err();
        assert!(
            matches!(&error, InspectError::Malformed { member, .. } if member == METADATA),
            "{error}"
        );
    }

    #[test]
    fn damaged_archives_never_panic() {
        let bytes = question_bytes();
        let mut damage = Damage(1);
        for round in 0..200 {
            let damaged = damage.apply(round, &bytes);
            match read_test_bytes(&damaged) {
                Ok(_)
                | Err(InspectError::NotZip { .. })
                | Err(InspectError::MissingMember { .. })
                | Err(InspectError::Malformed { .. })
                | Err(InspectError::UnsupportedVersion { .. }) => {}
                Err(other) => panic!("round {round}: unexpected {other}"),
            }
        }
    }

    /// Damage to the zip is mostly caught by its CRCs; rezipping damaged
    /// weights puts the damage in front of the HDF5 decoder.
    #[test]
    fn damaged_weights_never_panic() {
        let (_, weights) = question_members()
            .into_iter()
            .find(|(name, _)| name == WEIGHTS)
            .unwrap();
        let mut damage = Damage(2);
        for round in 0..200 {
            let damaged = damage.apply(round, &weights);
            match read_test_bytes(&question_with(WEIGHTS, Some(&damaged))) {
                Ok(_) => {}
                Err(InspectError::Malformed { member, .. }) if member.starts_with(WEIGHTS) => {}
                Err(other) => panic!("round {round}: unexpected {other}"),
            }
        }
    }
}
