//! Expected verdicts, so nncheck can gate another project's CI: a small TOML
//! file lists, for a subject and a check, the verdict the project expects and
//! why (the shape of array-api-tests' xfails file and ONNX's backend-test
//! include/exclude lists).
//!
//! ```toml
//! [[expect]]
//! subject = "candle-nn 0.11"
//! check = "frozen_weights_unchanged"
//! verdict = "FAIL"
//! reason = "candle's BatchNorm updates its running statistics in every training forward"
//! ```
//!
//! `subject` and `check` are patterns (`*` any run of characters, `?` one);
//! an optional `case` pattern matches the record's subject label, which names
//! its case (`... Dropout(0.1) [1, 1000] seed 7`). The first entry that matches
//! a record decides it; the records an entry decides are summed up by their
//! worst verdict, as a scoreboard cell is, and that must be the entry's
//! verdict. Records no entry decides are summed up per subject and check, and
//! must be `PASS` (an invariant) or `SPEC` (a convention). A new failure (a
//! regression) and an unexpected pass (the subject changed: update the file)
//! are both mismatches, and an entry that decides no record is an error, never
//! a silent no-op.

use crate::check::report::{CheckReport, RecordKind, Verdict};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One entry of an expectations file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// A pattern of subject names, e.g. `candle-nn 0.11` or `burn 0.22*`.
    pub subject: String,
    /// A pattern of check names, e.g. `dropped_*`.
    pub check: String,
    /// A pattern of the record's subject label (which names the case); every
    /// case when absent.
    #[serde(default)]
    pub case: Option<String>,
    /// `PASS`, `FAIL`, `N/A`, `SPEC` or `CONV`.
    pub verdict: String,
    /// Why: what the subject does and, where it is a defect, where it is tracked.
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectationsFile {
    #[serde(default)]
    expect: Vec<Expectation>,
}

/// An expectations file that could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpectError {
    /// The file could not be read.
    #[error("expectations file {path}: cannot read it: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
    /// The file is not TOML of the expected form.
    #[error("expectations file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML reader said, with the line.
        message: String,
    },
    /// An entry's verdict is not one of the five words.
    #[error("expectations file {path}: entry {entry} has verdict `{verdict}`; expected one of PASS, FAIL, N/A, SPEC, CONV")]
    Verdict {
        /// The file.
        path: PathBuf,
        /// The entry, counted from 1.
        entry: usize,
        /// What it said.
        verdict: String,
    },
    /// An entry gives no reason.
    #[error("expectations file {path}: entry {entry} ({subject} / {check}) gives no reason")]
    NoReason {
        /// The file.
        path: PathBuf,
        /// The entry, counted from 1.
        entry: usize,
        /// Its subject pattern.
        subject: String,
        /// Its check pattern.
        check: String,
    },
}

/// The entries of one or more expectations files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectations {
    entries: Vec<(PathBuf, Expectation)>,
}

/// A record whose verdict is not the expected one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// The subject's name.
    pub subject: String,
    /// The check.
    pub check: String,
    /// The record's subject label, which names its case.
    pub label: String,
    /// The verdict expected.
    pub expected: String,
    /// The verdict found (the worst of the records the entry decides), with how
    /// many records have it.
    pub found: String,
    /// The record's observed figure.
    pub observed: String,
    /// Why that verdict was expected: the entry's reason, or the default's.
    pub because: String,
}

impl Mismatch {
    /// What kind of change this is: a new failure, a failure that went away, or
    /// another change of verdict.
    pub fn kind(&self) -> &'static str {
        if self.found.starts_with("FAIL") {
            "regression"
        } else if self.expected == "FAIL"
            && (self.found.starts_with("PASS") || self.found.starts_with("SPEC"))
        {
            "unexpected pass"
        } else {
            "changed"
        }
    }

    /// One line naming the record, what was expected and what was found.
    pub fn line(&self) -> String {
        format!(
            "{}: {} / {} ({}): expected {}, found {}: {} [expected because: {}]",
            self.kind(),
            self.subject,
            self.check,
            self.label,
            self.expected,
            self.found,
            self.observed,
            self.because
        )
    }
}

/// What a run's records say against the expectations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Judgement {
    /// Records whose verdict is not the expected one.
    pub mismatches: Vec<Mismatch>,
    /// Entries that decided no record, matching none or shadowed by an earlier
    /// entry (`file: entry N (subject / check)`).
    pub unmatched: Vec<String>,
    /// Records judged.
    pub records: usize,
}

impl Judgement {
    /// True when every record had its expected verdict and every entry matched.
    pub fn met(&self) -> bool {
        self.mismatches.is_empty() && self.unmatched.is_empty()
    }

    /// Every mismatch and unmatched entry, a line each.
    pub fn lines(&self) -> Vec<String> {
        self.mismatches
            .iter()
            .map(Mismatch::line)
            .chain(
                self.unmatched
                    .iter()
                    .map(|u| format!("error: {u} decides no record")),
            )
            .collect()
    }
}

const VERDICTS: [&str; 5] = ["PASS", "FAIL", "N/A", "SPEC", "CONV"];

impl Expectations {
    /// Reads one file.
    pub fn load(path: &Path) -> Result<Self, ExpectError> {
        let text = std::fs::read_to_string(path).map_err(|e| ExpectError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Reads several files, their entries in order.
    pub fn load_all(paths: &[PathBuf]) -> Result<Self, ExpectError> {
        let mut all = Expectations::default();
        for path in paths {
            all.entries.extend(Self::load(path)?.entries);
        }
        Ok(all)
    }

    /// Parses the text of a file; `path` names it in errors.
    ///
    /// ```
    /// use nncheck::check::run::expect::Expectations;
    /// let e = Expectations::parse(
    ///     "[[expect]]\nsubject = \"x\"\ncheck = \"rate_one\"\nverdict = \"conv\"\nreason = \"refuses rate 1\"\n",
    ///     "e.toml".as_ref(),
    /// ).unwrap();
    /// assert_eq!(e.len(), 1);
    /// assert!(Expectations::parse("[[expect]]\nsubject = 1", "e.toml".as_ref()).is_err());
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Self, ExpectError> {
        let file: ExpectationsFile = toml::from_str(text).map_err(|e| ExpectError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let mut entries = Vec::new();
        for (i, mut entry) in file.expect.into_iter().enumerate() {
            let verdict = entry.verdict.trim().to_uppercase();
            if !VERDICTS.contains(&verdict.as_str()) {
                return Err(ExpectError::Verdict {
                    path: path.to_path_buf(),
                    entry: i + 1,
                    verdict: entry.verdict,
                });
            }
            if entry.reason.trim().is_empty() {
                return Err(ExpectError::NoReason {
                    path: path.to_path_buf(),
                    entry: i + 1,
                    subject: entry.subject,
                    check: entry.check,
                });
            }
            entry.verdict = verdict;
            entries.push((path.to_path_buf(), entry));
        }
        Ok(Expectations { entries })
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Judges `records` (subject name, record) against the entries.
    ///
    /// Records are grouped by subject, check and the entry that decides them
    /// (the first that matches); a group's verdict is its worst record's (as a
    /// scoreboard cell's is), and must be the entry's, or PASS (an invariant)
    /// or SPEC (a convention) where no entry decides. Only entries for which
    /// `scope` is true (all where it is `None`) count as unmatched when no
    /// record matches them, so a test of one row does not answer for another's.
    pub fn judge<'a>(
        &self,
        records: impl IntoIterator<Item = (&'a str, &'a CheckReport)>,
        scope: Option<&dyn Fn(&Expectation) -> bool>,
    ) -> Judgement {
        let mut used = vec![false; self.entries.len()];
        let mut judgement = Judgement::default();
        // (subject, check, deciding entry) -> its records, in first-seen order.
        type Key<'k> = (&'k str, &'k str, Option<usize>);
        let mut groups: Vec<(Key<'a>, Vec<&'a CheckReport>)> = Vec::new();
        for (subject, record) in records {
            judgement.records += 1;
            let entry = self.entries.iter().position(|(_, e)| {
                glob(&e.subject, subject)
                    && glob(&e.check, &record.check)
                    && e.case.as_deref().is_none_or(|c| glob(c, &record.subject))
            });
            if let Some(i) = entry {
                used[i] = true;
            }
            let key = (subject, record.check.as_str(), entry);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(record),
                None => groups.push((key, vec![record])),
            }
        }
        for ((subject, check, entry), members) in groups {
            let worst = Verdict::worst(members.iter().copied()).expect("a group has a record");
            let found = worst.verdict();
            let (expected, because) = match entry {
                Some(i) => {
                    let e = &self.entries[i].1;
                    (e.verdict.clone(), e.reason.clone())
                }
                None => default_expectation(worst),
            };
            if found.tag() != expected {
                let of = members.iter().filter(|r| r.verdict() == found).count();
                judgement.mismatches.push(Mismatch {
                    subject: subject.to_string(),
                    check: check.to_string(),
                    label: worst.subject.clone(),
                    expected,
                    found: format!("{} ({of} of {} records)", found.tag(), members.len()),
                    observed: worst.observed.clone(),
                    because,
                });
            }
        }
        for (i, (path, e)) in self.entries.iter().enumerate() {
            if !used[i] && scope.is_none_or(|in_scope| in_scope(e)) {
                judgement.unmatched.push(format!(
                    "{}: entry {} ({} / {}{})",
                    path.display(),
                    self.entries[..=i].iter().filter(|(p, _)| p == path).count(),
                    e.subject,
                    e.check,
                    e.case
                        .as_deref()
                        .map(|c| format!(" / case {c}"))
                        .unwrap_or_default()
                ));
            }
        }
        judgement
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> impl Iterator<Item = &Expectation> {
        self.entries.iter().map(|(_, e)| e)
    }
}

/// What a record is held to when no entry names it: every invariant passes,
/// every convention is SPEC's.
fn default_expectation(record: &CheckReport) -> (String, String) {
    let verdict = match record.kind {
        RecordKind::Invariant => Verdict::Pass,
        RecordKind::Convention => Verdict::Convention(true),
    };
    (
        verdict.tag().to_string(),
        "no entry names it, so it must pass (an invariant) or follow SPEC (a convention)".into(),
    )
}

/// True when `text` matches `pattern`: `*` any run of characters, `?` one.
///
/// ```
/// use nncheck::check::run::expect::glob;
/// assert!(glob("burn 0.22*", "burn 0.22 freeze()"));
/// assert!(glob("dropped_?egative_sign", "dropped_negative_sign"));
/// assert!(!glob("rate_one", "rate_one_drops_everything"));
/// ```
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // The classic two-pointer match, backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(check: &str, pass: bool, kind: RecordKind) -> CheckReport {
        let mut r = CheckReport::exact(
            check,
            "s Dropout(0.1) [1, 8] seed 7",
            "o".into(),
            "b".into(),
            pass,
        );
        r.kind = kind;
        r
    }

    fn expectations(text: &str) -> Expectations {
        Expectations::parse(text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn an_unnamed_record_must_pass_or_follow_spec() {
        let none = Expectations::default();
        let held = record("a", true, RecordKind::Invariant);
        let spec = record("b", true, RecordKind::Convention);
        let conv = record("c", false, RecordKind::Convention);
        let judged = none.judge([("s", &held), ("s", &spec), ("s", &conv)], None);
        assert_eq!(judged.mismatches.len(), 1);
        assert_eq!(judged.mismatches[0].check, "c");
        assert_eq!(judged.mismatches[0].kind(), "changed");
    }

    #[test]
    fn an_expected_failure_that_passes_and_a_new_failure_are_both_mismatches() {
        let e = expectations(
            "[[expect]]\nsubject = \"s\"\ncheck = \"a\"\nverdict = \"FAIL\"\nreason = \"known\"\n",
        );
        let now_passes = record("a", true, RecordKind::Invariant);
        let new_failure = record("b", false, RecordKind::Invariant);
        let judged = e.judge([("s", &now_passes), ("s", &new_failure)], None);
        let kinds: Vec<&str> = judged.mismatches.iter().map(Mismatch::kind).collect();
        assert_eq!(kinds, ["unexpected pass", "regression"]);
        assert!(judged.mismatches[0]
            .line()
            .contains("expected because: known"));
        assert!(!judged.met());
    }

    #[test]
    fn an_expected_failure_found_not_applicable_is_a_change_not_a_pass() {
        let e = expectations(
            "[[expect]]\nsubject = \"s\"\ncheck = \"a\"\nverdict = \"FAIL\"\nreason = \"known\"\n",
        );
        let missing = CheckReport::not_applicable("a", "s", "mask access");
        let judged = e.judge([("s", &missing)], None);
        assert_eq!(judged.mismatches[0].kind(), "changed");
    }

    #[test]
    fn an_entry_that_matches_no_record_is_an_error() {
        let e = expectations(
            "[[expect]]\nsubject = \"nobody\"\ncheck = \"*\"\nverdict = \"FAIL\"\nreason = \"r\"\n",
        );
        let held = record("a", true, RecordKind::Invariant);
        let judged = e.judge([("s", &held)], None);
        assert!(judged.mismatches.is_empty() && !judged.met());
        assert_eq!(judged.unmatched, ["t.toml: entry 1 (nobody / *)"]);
        // Out of scope (another row's entry, in a per-row test), it is not counted.
        let judged = e.judge([("s", &held)], Some(&|_: &Expectation| false));
        assert!(judged.met());
    }

    #[test]
    fn a_case_pattern_narrows_an_entry_to_some_cases() {
        let e = expectations(
            "[[expect]]\nsubject = \"s\"\ncheck = \"a\"\ncase = \"*[1, *\"\nverdict = \"FAIL\"\nreason = \"r\"\n",
        );
        let one_row = record("a", false, RecordKind::Invariant);
        let mut other = record("a", true, RecordKind::Invariant);
        other.subject = "s Dropout(0.1) [100, 8] seed 7".into();
        assert!(e.judge([("s", &one_row), ("s", &other)], None).met());
    }

    #[test]
    fn bad_files_are_typed_errors_naming_the_file() {
        let bad_verdict = Expectations::parse(
            "[[expect]]\nsubject = \"s\"\ncheck = \"a\"\nverdict = \"maybe\"\nreason = \"r\"\n",
            Path::new("v.toml"),
        );
        assert!(matches!(
            bad_verdict,
            Err(ExpectError::Verdict { entry: 1, .. })
        ));
        let no_reason = Expectations::parse(
            "[[expect]]\nsubject = \"s\"\ncheck = \"a\"\nverdict = \"PASS\"\nreason = \" \"\n",
            Path::new("r.toml"),
        );
        assert!(matches!(no_reason, Err(ExpectError::NoReason { .. })));
        let unknown = Expectations::parse("[[expect]]\nsubjet = \"s\"\n", Path::new("u.toml"));
        let message = unknown.unwrap_err().to_string();
        assert!(
            message.starts_with("expectations file u.toml:"),
            "{message}"
        );
        let missing = Expectations::load(Path::new("/nonexistent/e.toml")).unwrap_err();
        assert!(matches!(missing, ExpectError::Read { .. }));
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abbbc"));
        assert!(glob("*sign", "dropped_negative_sign"));
        assert!(!glob("a*c", "abd"));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
        // A literal star in the text is matched by a star in the pattern.
        assert!(glob("*b", "*ab") && glob("x*", "x*"));
    }
}
