//! The structured verdict every check returns, and how callers print it.
//!
//! Tests assert on `pass`; the report of the main job, `nncheck verify` and
//! `nncheck conform` print the same records as text or JSON. One check, one
//! record, one place.
//!
//! A record is one of four [`Verdict`]s: an invariant that held or failed, a
//! check that could not run because the subject lacks a capability (not
//! applicable, never a silent pass), or a convention finding (how a subject
//! treats a case where frameworks legitimately differ, such as the sign of a
//! dropped negative), reported apart from correctness.

use super::error::Error;
use serde::Serialize;

/// Whether a record judges correctness or reports a convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// An invariant of SPEC: the subject meets it or it is wrong.
    Invariant,
    /// A convention where frameworks differ: `pass` says whether the subject
    /// follows SPEC's choice, and a different choice is not a failure.
    Convention,
}

/// The verdict of one record, as a scoreboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The invariant held.
    Pass,
    /// The invariant was violated, or the subject errored where a result was due.
    Fail,
    /// The check needs a capability the subject does not have; names it.
    NotApplicable(String),
    /// A convention finding; `true` when the subject follows SPEC's choice.
    Convention(bool),
}

impl Verdict {
    /// The verdict's word, the same in a line, a table, JSON and an
    /// expectations file: `PASS`, `FAIL`, `N/A`, `SPEC` (a convention that is
    /// SPEC's choice) or `CONV` (another convention).
    pub fn tag(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable(_) => "N/A",
            Verdict::Convention(true) => "SPEC",
            Verdict::Convention(false) => "CONV",
        }
    }

    /// Rank of a verdict, worst highest, for summing several records up in
    /// one (a scoreboard cell, an expectation): PASS, SPEC, N/A, CONV, FAIL.
    pub fn severity(&self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Convention(true) => 1,
            Verdict::NotApplicable(_) => 2,
            Verdict::Convention(false) => 3,
            Verdict::Fail => 4,
        }
    }

    /// The first of `records` with the worst verdict: where every record has
    /// the same verdict, the first speaks for all of them.
    pub fn worst<'a>(
        records: impl IntoIterator<Item = &'a CheckReport>,
    ) -> Option<&'a CheckReport> {
        records
            .into_iter()
            .min_by_key(|r| std::cmp::Reverse(r.verdict().severity()))
    }
}

/// The verdict of one check: what was checked, what was seen, what was allowed.
///
/// JSON schema (one object per check, as `nncheck verify --json` prints):
/// `{"check": str, "subject": str, "verdict": "PASS"|"FAIL"|"N/A"|"SPEC"|"CONV",
///   "observed": str, "bound": str, "alpha": number|null, "detectable": str|null,
///   "pass": bool, "kind": "invariant"|"convention", "not_applicable": str|null}`.
#[derive(Debug, Clone, PartialEq)]
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
    /// The verdict: the invariant held, or the convention is SPEC's. A record
    /// that could not run ([`not_applicable`](Self::not_applicable)) has `false`,
    /// so a caller that asks for every record to pass never passes on nothing.
    pub pass: bool,
    /// An invariant or a convention finding.
    pub kind: RecordKind,
    /// The missing capability, when the check could not run on this subject.
    pub not_applicable: Option<String>,
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
            kind: RecordKind::Invariant,
            not_applicable: None,
        }
    }

    /// A convention finding: `follows_spec` when the subject made SPEC's choice.
    pub fn convention(
        check: &str,
        subject: &str,
        observed: String,
        spec_choice: String,
        follows_spec: bool,
    ) -> Self {
        CheckReport {
            kind: RecordKind::Convention,
            ..Self::exact(check, subject, observed, spec_choice, follows_spec)
        }
    }

    /// A check that could not run because the subject lacks `capability`.
    pub fn not_applicable(check: &str, subject: &str, capability: &str) -> Self {
        CheckReport {
            not_applicable: Some(capability.into()),
            ..Self::exact(
                check,
                subject,
                format!("the subject has no {capability}"),
                format!("a subject with {capability}"),
                false,
            )
        }
    }

    /// A record with no verdict of its own because another record of the same
    /// call has one (`reason` says which): shown as not applicable, so one
    /// failure is reported once.
    pub fn not_judged(check: &str, subject: &str, reason: &str) -> Self {
        CheckReport {
            not_applicable: Some(reason.into()),
            ..Self::exact(
                check,
                subject,
                format!("not judged: {reason}"),
                "a verdict of its own".into(),
                false,
            )
        }
    }

    /// The record for a check whose subject returned `error`: not applicable when
    /// the error says a capability is missing, failed otherwise.
    pub fn from_error(check: &str, subject: &str, error: &Error) -> Self {
        match error {
            Error::Unsupported { capability } => {
                Self::not_applicable(check, subject, &capability.to_string())
            }
            other => Self::errored(check, subject, other),
        }
    }

    /// This record's verdict.
    pub fn verdict(&self) -> Verdict {
        match (&self.not_applicable, self.kind) {
            (Some(capability), _) => Verdict::NotApplicable(capability.clone()),
            (None, RecordKind::Convention) => Verdict::Convention(self.pass),
            (None, RecordKind::Invariant) if self.pass => Verdict::Pass,
            (None, RecordKind::Invariant) => Verdict::Fail,
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
            "{:<4} {:<34} {:<28} observed {} | expected {}",
            self.verdict().tag(),
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

impl Serialize for CheckReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut record = serializer.serialize_struct("CheckReport", 10)?;
        record.serialize_field("check", &self.check)?;
        record.serialize_field("subject", &self.subject)?;
        record.serialize_field("verdict", self.verdict().tag())?;
        record.serialize_field("observed", &self.observed)?;
        record.serialize_field("bound", &self.bound)?;
        record.serialize_field("alpha", &self.alpha)?;
        record.serialize_field("detectable", &self.detectable)?;
        record.serialize_field("pass", &self.pass)?;
        record.serialize_field("kind", &self.kind)?;
        record.serialize_field("not_applicable", &self.not_applicable)?;
        record.end()
    }
}

/// True when every report passed: every invariant held, every convention is
/// SPEC's, and nothing was left not applicable. The bar for nncheck's own core.
pub fn all_pass(reports: &[CheckReport]) -> bool {
    reports.iter().all(|r| r.pass)
}

/// True when no invariant failed: conventions may differ from SPEC's and checks
/// may be not applicable. The bar for another implementation, whose conventions
/// and capabilities are its own.
pub fn no_failures(reports: &[CheckReport]) -> bool {
    reports.iter().all(|r| r.verdict() != Verdict::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outside bar: a differing convention or a missing capability is no
    /// failure; a failed invariant is, and so is an error.
    #[test]
    fn no_failures_is_false_exactly_when_an_invariant_failed() {
        let held = CheckReport::exact("c", "s", "o".into(), "b".into(), true);
        let broke = CheckReport::exact("c", "s", "o".into(), "b".into(), false);
        let other_convention = CheckReport::convention("c", "s", "o".into(), "b".into(), false);
        let missing = CheckReport::not_applicable("c", "s", "mask");
        let errored = CheckReport::errored("c", "s", "boom");
        let lenient = [held.clone(), other_convention, missing];
        assert!(no_failures(&lenient) && !all_pass(&lenient));
        assert!(!no_failures(&[held.clone(), broke]));
        assert!(!no_failures(&[held, errored]));
    }

    /// A convention that is SPEC's and one that is not carry different words
    /// in a line and in JSON.
    #[test]
    fn spec_and_conv_are_different_words_everywhere() {
        let spec = CheckReport::convention("c", "s", "o".into(), "b".into(), true);
        let other = CheckReport::convention("c", "s", "o".into(), "b".into(), false);
        assert!(spec.line().starts_with("SPEC ") && other.line().starts_with("CONV "));
        let json = |r: &CheckReport| serde_json::to_value(r).unwrap()["verdict"].clone();
        assert_eq!((json(&spec), json(&other)), ("SPEC".into(), "CONV".into()));
        let missing = CheckReport::not_applicable("c", "s", "mask");
        assert!(missing.line().starts_with("N/A  "));
    }
}
