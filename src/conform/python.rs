//! The embedded Python that the Keras and PyTorch subjects run in (features
//! `keras` and `torch`): one CPython per process, through pyo3, with a
//! framework's pinned virtual environment on its path and the framework's
//! subject module (`src/conform/python/*_subjects.py`, compiled into the
//! binary) loaded from it.
//!
//! An [`Environment`] is one framework's: the folder `python/make-env.sh NAME`
//! makes (`.venv/NAME` at the repository root, or `$NNCHECK_VENV_DIR/NAME`),
//! the requirements file that pins it, and the module. Loading it checks what
//! a new user gets wrong first: the environment missing, made with another
//! Python than the one nncheck embeds, or holding other versions than the
//! pinned ones. Each failure is an error that names the script to run.
//!
//! At the boundary, arrays are NumPy arrays of `float32` (bool for masks)
//! built from and read back into `ndarray`; a Python exception raised by a
//! subject becomes [`Error::Subject`] with the exception's type and message, a
//! recorded failure or refusal, never a panic of the harness.

pub mod layer;
pub mod model;

use crate::check::{Error, Result};
use ndarray::ArrayD;
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyModule;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One framework's Python environment and subject module.
#[derive(Debug)]
pub struct Environment {
    /// The environment's name: `python/make-env.sh NAME` makes it.
    pub name: &'static str,
    /// The subject module's name and source.
    module: (&'static str, &'static str),
    /// The pinned requirements (`python/requirements-NAME.txt`).
    requirements: &'static str,
    /// The packages whose versions the module's `versions()` must report as
    /// pinned.
    checked: &'static [&'static str],
    /// The loaded module, or why it could not be loaded (kept: a second try
    /// in the same process would fail the same way).
    loaded: OnceLock<std::result::Result<Py<PyModule>, String>>,
}

/// Keras 3 on JAX, CPU only.
pub static KERAS: Environment = Environment {
    name: "keras",
    module: ("keras_subjects", include_str!("python/keras_subjects.py")),
    requirements: include_str!("../../python/requirements-keras.txt"),
    checked: &["keras", "jax", "jaxlib", "numpy"],
    loaded: OnceLock::new(),
};

/// PyTorch on the CPU.
pub static TORCH: Environment = Environment {
    name: "torch",
    module: ("torch_subjects", include_str!("python/torch_subjects.py")),
    requirements: include_str!("../../python/requirements-torch.txt"),
    checked: &["torch", "numpy"],
    loaded: OnceLock::new(),
};

impl Environment {
    /// Where the environment is: `$NNCHECK_VENV_DIR/NAME`, else `.venv/NAME`
    /// in the repository nncheck was built from.
    pub fn dir(&self) -> PathBuf {
        let root = std::env::var_os("NNCHECK_VENV_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv")));
        root.join(self.name)
    }

    /// The command that makes the environment.
    pub fn setup_command(&self) -> String {
        format!("python/make-env.sh {}", self.name)
    }

    /// The version `requirements-NAME.txt` pins `package` to.
    pub fn pinned(&self, package: &str) -> Option<&'static str> {
        self.requirements.lines().find_map(|line| {
            let (name, version) = line.trim().split_once("==")?;
            name.eq_ignore_ascii_case(package).then_some(version.trim())
        })
    }

    /// Whether the environment has been made (its completion stamp is there);
    /// a test that needs it says it skipped when not.
    pub fn is_made(&self) -> bool {
        self.dir().join(".nncheck-stamp").is_file()
    }

    /// The loaded subject module, loading it on first use.
    fn module(&self) -> std::result::Result<&Py<PyModule>, String> {
        self.loaded
            .get_or_init(|| self.load())
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Checks that the environment loads and holds the pinned versions; the
    /// error says what is wrong and which script fixes it.
    pub fn ready(&self) -> std::result::Result<(), String> {
        self.module().map(|_| ())
    }

    fn load(&self) -> std::result::Result<Py<PyModule>, String> {
        let dir = self.dir();
        let fix = format!("run {}", self.setup_command());
        if !self.is_made() {
            return Err(format!(
                "the {} Python environment {} is missing or incomplete: {fix}",
                self.name,
                dir.display()
            ));
        }
        let made_with = std::fs::read_to_string(dir.join("pyvenv.cfg"))
            .ok()
            .and_then(|cfg| {
                cfg.lines().find_map(|l| {
                    let (key, value) = l.split_once('=')?;
                    (key.trim() == "version" || key.trim() == "version_info")
                        .then(|| value.trim().to_string())
                })
            })
            .ok_or_else(|| format!("{}: no pyvenv.cfg with a version: {fix}", dir.display()))?;
        Python::attach(|py| {
            let embedded = py.version_info();
            let minor = format!("{}.{}.", embedded.major, embedded.minor);
            if !made_with.starts_with(&minor) {
                return Err(format!(
                    "{} was made with Python {made_with}, but nncheck embeds Python {}.{}: \
                     run {} with NNCHECK_PYTHON set to a Python {}.{}, or build nncheck \
                     with PYO3_PYTHON set to the environment's",
                    dir.display(),
                    embedded.major,
                    embedded.minor,
                    self.setup_command(),
                    embedded.major,
                    embedded.minor,
                ));
            }
            let site = dir
                .join("lib")
                .join(format!("python{}.{}", embedded.major, embedded.minor))
                .join("site-packages");
            self.activate(py, &site)
                .map_err(|e| format!("{}: {}: {fix}", site.display(), describe(py, &e)))?;
            let (name, source) = self.module;
            let code = CString::new(source).map_err(|e| e.to_string())?;
            let file = CString::new(format!("{name}.py")).map_err(|e| e.to_string())?;
            let module_name = CString::new(name).map_err(|e| e.to_string())?;
            let module = PyModule::from_code(py, &code, &file, &module_name).map_err(|e| {
                format!(
                    "importing {name} from {}: {}: {fix}",
                    dir.display(),
                    describe(py, &e)
                )
            })?;
            let versions = module
                .call_method0("versions")
                .and_then(|v| v.extract::<std::collections::HashMap<String, String>>())
                .map_err(|e| describe(py, &e))?;
            for package in self.checked {
                let (Some(pinned), found) = (self.pinned(package), versions.get(*package)) else {
                    continue;
                };
                // torch reports local builds as `2.15.0+cu130`: the pin is the public part.
                let found = found.map_or("not installed", String::as_str);
                if found.split('+').next() != Some(pinned) {
                    return Err(format!(
                        "{} has {package} {found}, but nncheck pins {pinned}: {fix}",
                        dir.display()
                    ));
                }
            }
            Ok(module.unbind())
        })
    }

    /// Puts the environment's site-packages first on `sys.path` (with what its
    /// `.pth` files add) and drops the base interpreter's own site-packages, as
    /// a virtual environment's interpreter would have it.
    fn activate(&self, py: Python<'_>, site: &std::path::Path) -> PyResult<()> {
        if !site.is_dir() {
            return Err(pyo3::exceptions::PyFileNotFoundError::new_err(
                "no such site-packages folder",
            ));
        }
        let code = c"
import site, sys
def activate(path):
    before = list(sys.path)
    site.addsitedir(path)
    added = [p for p in sys.path if p not in before]
    kept = [p for p in before if not p.rstrip('/').endswith(('site-packages', 'dist-packages'))]
    sys.path[:] = added + kept
";
        let activate = PyModule::from_code(py, code, c"nncheck_activate.py", c"nncheck_activate")?;
        activate.call_method1("activate", (site.to_string_lossy().into_owned(),))?;
        Ok(())
    }

    /// Runs `f` with the subject module, a Python exception becoming
    /// [`Error::Subject`] of `subject` with its type and message.
    pub fn call<T>(
        &self,
        subject: &str,
        f: impl FnOnce(Python<'_>, &Bound<'_, PyModule>) -> PyResult<T>,
    ) -> Result<T> {
        let module = self.module().map_err(|message| Error::Subject {
            subject: subject.into(),
            message,
        })?;
        Python::attach(|py| {
            f(py, module.bind(py)).map_err(|e| Error::Subject {
                subject: subject.into(),
                message: describe(py, &e),
            })
        })
    }
}

/// A Python exception as one line: `ValueError: rate must be ...`.
pub fn describe(py: Python<'_>, error: &PyErr) -> String {
    let kind = error
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let text = error.value(py).to_string();
    let first = text.lines().next().unwrap_or_default();
    if first.is_empty() {
        kind
    } else {
        format!("{kind}: {first}")
    }
}

/// An ndarray as a new NumPy `float32` array of the same shape and bits.
pub fn to_numpy<'py>(py: Python<'py>, x: &ArrayD<f32>) -> Bound<'py, PyArrayDyn<f32>> {
    x.as_standard_layout().into_owned().into_pyarray(py)
}

/// A NumPy `float32` array returned by a subject, copied into an ndarray.
pub fn from_numpy(value: &Bound<'_, PyAny>) -> PyResult<ArrayD<f32>> {
    let array: PyReadonlyArrayDyn<'_, f32> = value.extract()?;
    Ok(array.as_array().to_owned())
}

/// A NumPy bool array returned by a subject, copied into an ndarray.
pub fn bools_from_numpy(value: &Bound<'_, PyAny>) -> PyResult<ArrayD<bool>> {
    let array: PyReadonlyArrayDyn<'_, bool> = value.extract()?;
    Ok(array.as_array().to_owned())
}

/// Named weights `[(path, array)]` returned by a subject.
pub fn named_arrays(value: &Bound<'_, PyAny>) -> PyResult<Vec<(String, ArrayD<f32>)>> {
    value
        .try_iter()?
        .map(|item| {
            let item = item?;
            let name: String = item.get_item(0)?.extract()?;
            Ok((name, from_numpy(&item.get_item(1)?)?))
        })
        .collect()
}

/// The version of `package` the loaded environment reports, e.g. Keras's.
pub fn version_of(env: &Environment, package: &str) -> Option<String> {
    env.call("version", |_, m| {
        let versions = m.call_method0("versions")?;
        versions.get_item(package)?.extract::<String>()
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pins are read from the committed requirements files, not restated.
    #[test]
    fn pins_come_from_the_requirements_files() {
        assert!(KERAS.pinned("keras").is_some_and(|v| v.starts_with("3.")));
        assert!(KERAS.pinned("Keras").is_some());
        assert!(TORCH.pinned("torch").is_some_and(|v| v.starts_with("2.")));
        assert_eq!(KERAS.pinned("no-such-package"), None);
    }

    /// A missing environment is an error that names the script to run.
    #[test]
    fn a_missing_environment_names_the_script() {
        let missing = Environment {
            name: "no-such-environment",
            module: ("nothing", ""),
            requirements: "",
            checked: &[],
            loaded: OnceLock::new(),
        };
        let err = missing.call("x", |_, _| Ok(())).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("run python/make-env.sh no-such-environment"),
            "{text}"
        );
    }
}
