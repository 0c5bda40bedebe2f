//! Whether a framework's Python environment is there for the adapter tests:
//! when it is not, a test says it skipped and which script makes it, unless
//! `NNCHECK_REQUIRE_PYTHON` names the environment (as `.ci/run` does), in
//! which case its absence is a failure.

use nncheck::check::{DropoutSubject, Error};
use nncheck::conform::python::Environment;

/// True when `env` loads; otherwise prints `SKIPPED test: why` and returns
/// false, or panics when the environment is required.
pub fn ready_or_skip(env: &Environment, test: &str) -> bool {
    match env.ready() {
        Ok(()) => true,
        Err(why) => {
            let required = std::env::var("NNCHECK_REQUIRE_PYTHON")
                .is_ok_and(|names| names.split(',').any(|n| n.trim() == env.name));
            assert!(
                !required,
                "NNCHECK_REQUIRE_PYTHON={} requires it: {why}",
                env.name
            );
            println!("SKIPPED {test}: {why}");
            false
        }
    }
}

/// A rate the framework refuses (1.5) raises in Python and arrives as the
/// subject's error, the exception's type first, never as a panic.
pub fn assert_refusal_is_the_subjects_error(subject: &dyn DropoutSubject) {
    match subject.build(1.5, Some(1)) {
        Err(Error::Subject {
            subject: who,
            message,
        }) => {
            assert_eq!(who, subject.name());
            assert!(message.starts_with("ValueError: "), "{message}");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("{} accepted rate 1.5", subject.name()),
    }
}
