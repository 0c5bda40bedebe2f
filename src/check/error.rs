//! The error of the code under test, as the checks see it: nncheck's own core
//! refusing bad input, a subject lacking a capability, or another
//! implementation failing in its own words (an exception, a panic, an error of
//! its API). The core's [`crate::Error`] knows nothing of subjects; this type
//! wraps it for the checks.

use super::capability::Capability;

/// Result alias of the subject API and the checks.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a subject did not give a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// nncheck's own core refused the call (bad input), as SPEC §7 says it must.
    #[error(transparent)]
    Core(#[from] crate::Error),
    /// The subject cannot do what was asked (seeding, a mask, an optimizer): a
    /// check that needed it is not applicable, which is not a failure.
    #[error("the subject has no {capability}")]
    Unsupported {
        /// What it lacks.
        capability: Capability,
    },
    /// An error raised by another implementation, in its own words (a Python
    /// exception, a panic, an error of its API).
    #[error("{subject}: {message}")]
    Subject {
        /// The subject (framework or layer) that raised it.
        subject: String,
        /// Its message, as it gave it.
        message: String,
    },
}

/// The error a subject returns for a capability it lacks.
pub fn unsupported<T>(capability: Capability) -> Result<T> {
    Err(Error::Unsupported { capability })
}

/// Runs `f`, turning a panic into [`Error::Subject`] with the panic's message:
/// some frameworks refuse bad input by panicking, which is a finding, not a
/// crash of the harness.
pub fn catching<T>(subject: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into());
        Err(Error::Subject {
            subject: subject.into(),
            message: format!("panicked: {message}"),
        })
    })
}
