//! What can be wrong with a saved model or the data given with it: each error
//! names the file, the part of it, and what was expected, so a new user can
//! tell a damaged file from a model nncheck cannot audit.

use std::path::PathBuf;

/// Result alias of `nncheck inspect`.
pub type Result<T> = std::result::Result<T, InspectError>;

/// Why a `.keras` file (or an `.npy` given with it) could not be inspected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InspectError {
    /// The file could not be read at all.
    #[error("{file}: cannot read it: {reason}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not a zip archive (or its central directory is damaged,
    /// as in a truncated download).
    #[error(
        "{file}: not a readable zip archive ({reason}); a .keras file is a zip of \
         metadata.json, config.json and model.weights.h5"
    )]
    NotZip {
        /// The file.
        file: PathBuf,
        /// What the zip reader found.
        reason: String,
    },
    /// A member every `.keras` file has is not in the archive.
    #[error("{file}: the archive has no {member}")]
    MissingMember {
        /// The file.
        file: PathBuf,
        /// The missing member, e.g. `config.json`.
        member: String,
    },
    /// A member is there but cannot be parsed: truncated, not JSON, not
    /// HDF5, or JSON without a field it must have.
    #[error("{file}: {member}: {reason}")]
    Malformed {
        /// The file.
        file: PathBuf,
        /// The member, with a path inside it where known
        /// (`config.json: config.layers[2].class_name`).
        member: String,
        /// What was expected and what was found.
        reason: String,
    },
    /// The file was saved by a Keras version this reader does not know.
    #[error(
        "{file}: metadata.json says keras_version {found}; nncheck reads files saved by Keras 3"
    )]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version the file states.
        found: String,
    },
    /// A weight the model's config needs is missing from `model.weights.h5`,
    /// or has another shape than the layer needs.
    #[error("{file}: model.weights.h5: {dataset} ({layer}): {reason}")]
    Weight {
        /// The file.
        file: PathBuf,
        /// The layer's path in the model.
        layer: String,
        /// The HDF5 dataset, e.g. `layers/dense/vars/0`.
        dataset: String,
        /// Expected and found shapes, or "missing".
        reason: String,
    },
    /// An `.npy` file given for the audit could not be used.
    #[error("{file}: {reason}")]
    Npy {
        /// The `.npy` file.
        file: PathBuf,
        /// What was expected (dtype, shape) and what was found.
        reason: String,
    },
    /// The model holds a layer or feature nncheck's core lacks: the static
    /// report stands, the audit cannot run.
    #[error("{file}: {path} ({class}): {reason}")]
    NotInCore {
        /// The file.
        file: PathBuf,
        /// The layer's path in the model.
        path: String,
        /// Its Keras class.
        class: String,
        /// What the core lacks.
        reason: String,
    },
}
