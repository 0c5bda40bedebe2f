//! The structured verdict every check returns, and how callers print it.
//!
//! Tests assert on `pass`; the report of the main job and `nncheck verify` print
//! the same records as text or JSON. One check, one record, one place.

use serde::Serialize;

/// The verdict of one check: what was checked, what was seen, what was allowed.
///
/// JSON schema (one object per check, as `nncheck verify --json` prints):
/// `{"check": str, "subject": str, "observed": str, "bound": str,
///   "alpha": number|null, "detectable": str|null, "pass": bool}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// The invariant, e.g. `frozen_weights_unchanged`.
    pub check: String,
    /// What it was checked on, e.g. `model_AB/model_A`.
    pub subject: String,
    /// The measured value.
    pub observed: String,
    /// The bound or expectation the value had to meet.
    pub bound: String,
    /// The false-alarm probability (statistical checks only).
    pub alpha: Option<f64>,
    /// The smallest bias the check detects at 99% power (statistical checks only).
    pub detectable: Option<String>,
    /// The verdict.
    pub pass: bool,
}

impl CheckReport {
    /// An exact (non-statistical) verdict.
    pub fn exact(check: &str, subject: &str, observed: String, bound: String, pass: bool) -> Self {
        CheckReport {
            check: check.into(),
            subject: subject.into(),
            observed,
            bound,
            alpha: None,
            detectable: None,
            pass,
        }
    }

    /// A failed verdict for a check that could not run because the code under
    /// test returned an error where a result was expected.
    pub fn errored(check: &str, subject: &str, error: impl std::fmt::Display) -> Self {
        Self::exact(
            check,
            subject,
            format!("error: {error}"),
            "a result".into(),
            false,
        )
    }

    /// One line for a terminal: `PASS check (subject): observed | bound`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} {:<34} {:<28} observed {} | expected {}",
            if self.pass { "PASS" } else { "FAIL" },
            self.check,
            self.subject,
            self.observed,
            self.bound
        );
        if let Some(alpha) = self.alpha {
            line.push_str(&format!(" | alpha {alpha:e}"));
        }
        if let Some(d) = &self.detectable {
            line.push_str(&format!(" | detects {d}"));
        }
        line
    }
}

/// True when every report passed.
pub fn all_pass(reports: &[CheckReport]) -> bool {
    reports.iter().all(|r| r.pass)
}
