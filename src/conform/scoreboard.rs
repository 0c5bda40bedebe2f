//! The scoreboard `nncheck conform` prints: one row per invariant or
//! convention, one column per subject, each cell the verdict with the observed
//! figure; led by the answer to the question the project exists for, measured
//! per framework.

use crate::check::report::{CheckReport, RecordKind, Verdict};
use crate::check::run::battery::Batteries;
use crate::check::run::verify::Case;
use crate::check::Settings;
use serde::Serialize;

use super::{Subjects, Sweep};

/// The check whose verdict answers the question.
pub const QUESTION_CHECK: &str = "frozen_model_dropout_active_in_fit";

/// nncheck's version, as every record carries it.
pub const NNCHECK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One record of a conformance run, with what it was run on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// The subject's name (the scoreboard's column).
    pub subject: String,
    /// The subject's crate version, where it states one.
    pub subject_version: Option<String>,
    /// The version of nncheck that judged it.
    pub nncheck_version: String,
    /// The seed of inputs, initialisers and masks.
    pub seed: u64,
    /// The dropout rate of the case.
    pub rate: f64,
    /// The case the record was judged on.
    pub case: Case,
    /// The verdict.
    pub report: CheckReport,
}

/// One subject's verdict on one row: the worst of its records for that check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// The verdict.
    pub verdict: Verdict,
    /// What was observed (the worst record's).
    pub observed: String,
    /// What was expected.
    pub bound: String,
    /// How many records the cell sums up.
    pub records: usize,
    /// How many of them have the cell's (worst) verdict.
    pub worst: usize,
}

impl Cell {
    /// The cell as the text table shows it: `PASS`, `FAIL`, `N/A`, `SPEC` (a
    /// convention that is SPEC's) or `CONV` (another convention), with the
    /// figure; where only some cases have that verdict, how many.
    pub fn text(&self) -> String {
        format!("{}: {}", self.tag(), self.observed)
    }

    /// The verdict's word, with how many records have it where not all do:
    /// `PASS`, `CONV (12 of 28 records)`.
    pub fn tag(&self) -> String {
        let tag = self.verdict.tag();
        if self.worst < self.records {
            format!("{tag} ({} of {} records)", self.worst, self.records)
        } else {
            tag.to_string()
        }
    }
}

/// One invariant or convention across the subjects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The check's name.
    pub check: String,
    /// Invariant or convention.
    pub kind: RecordKind,
    /// One cell per subject, in the scoreboard's column order; `None` where the
    /// subject does not run this row (a dropout check on a model subject).
    pub cells: Vec<Option<Cell>>,
}

/// Every subject's verdicts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scoreboard {
    /// The version of nncheck that ran.
    pub nncheck_version: String,
    /// What was run.
    pub sweep: Sweep,
    /// The columns: subject names, nncheck's first.
    pub subjects: Vec<String>,
    /// Adapters not compiled in, with the feature that adds each.
    pub not_compiled: Vec<(String, String)>,
    /// Adapters compiled in that could not run here, with why.
    pub unavailable: Vec<(String, String)>,
    /// Invariant rows first, then conventions, each in first-seen order.
    pub rows: Vec<Row>,
    /// Every record.
    pub records: Vec<Record>,
}

impl Scoreboard {
    /// Runs every subject through the batteries over every case of `sweep`.
    /// `progress` is told each subject's name before it runs.
    pub fn run(subjects: &Subjects, sweep: &Sweep, progress: impl FnMut(&str)) -> Self {
        Self::run_with(subjects, sweep, &Batteries::default(), progress)
    }

    /// [`Scoreboard::run`] with `batteries` in place of the standard ones: how
    /// a check of a project's own gets its row.
    pub fn run_with(
        subjects: &Subjects,
        sweep: &Sweep,
        batteries: &Batteries,
        mut progress: impl FnMut(&str),
    ) -> Self {
        let mut records = Vec::new();
        let record = |name: &str, version: &Option<String>, case: &Case, report| Record {
            subject: name.to_string(),
            subject_version: version.clone(),
            nncheck_version: NNCHECK_VERSION.into(),
            seed: sweep.seed,
            rate: match case {
                Case::Dropout(c) => c.rate,
                Case::Training(c) => c.rate,
            },
            case: case.clone(),
            report,
        };
        let settings = Settings { alpha: sweep.alpha };
        let mut add =
            |name: &str, version: &Option<String>, case: Case, reports: Vec<CheckReport>| {
                records.extend(reports.into_iter().map(|r| record(name, version, &case, r)));
            };
        for s in &subjects.dropout {
            let (name, version) = (s.name(), s.version());
            progress(&name);
            for case in sweep.dropout_cases() {
                let reports = batteries.dropout.run(s.as_ref(), &case, &settings);
                add(&name, &version, Case::Dropout(case), reports);
            }
        }
        for s in &subjects.noise {
            let (name, version) = (s.name(), s.version());
            progress(&format!("{name} noise layers"));
            for case in sweep.noise_cases() {
                let reports = batteries.noise.run(s.as_ref(), &case, &settings);
                add(&name, &version, Case::Dropout(case), reports);
            }
        }
        for s in &subjects.models {
            let (name, version) = (s.name(), s.version());
            progress(&name);
            for case in sweep.training_cases() {
                let reports = batteries.model.run(s.as_ref(), &case, &settings);
                add(&name, &version, Case::Training(case), reports);
            }
        }
        let not_compiled = super::missing_adapters()
            .into_iter()
            .map(|(name, feature)| (name.to_string(), feature.to_string()))
            .collect();
        let mut board = Self::from_records(sweep.clone(), records, not_compiled);
        board.unavailable = subjects.unavailable.clone();
        board
    }

    /// Arranges `records` into rows and columns.
    pub fn from_records(
        sweep: Sweep,
        records: Vec<Record>,
        not_compiled: Vec<(String, String)>,
    ) -> Self {
        let mut subjects: Vec<String> = Vec::new();
        let mut checks: Vec<(String, RecordKind)> = Vec::new();
        for r in &records {
            if !subjects.contains(&r.subject) {
                subjects.push(r.subject.clone());
            }
            if !checks.iter().any(|(c, _)| c == &r.report.check) {
                checks.push((r.report.check.clone(), r.report.kind));
            }
        }
        // Invariants first, conventions after, each group in first-seen order.
        checks.sort_by_key(|(_, kind)| *kind == RecordKind::Convention);
        let rows = checks
            .into_iter()
            .map(|(check, kind)| {
                let cells = subjects
                    .iter()
                    .map(|s| {
                        let mine: Vec<&CheckReport> = records
                            .iter()
                            .filter(|r| &r.subject == s && r.report.check == check)
                            .map(|r| &r.report)
                            .collect();
                        // The first record of the worst verdict: where every case passed,
                        // the first (main) case speaks for the row.
                        let worst = Verdict::worst(mine.iter().copied())?;
                        let verdict = worst.verdict();
                        Some(Cell {
                            worst: mine.iter().filter(|r| r.verdict() == verdict).count(),
                            verdict,
                            observed: worst.observed.clone(),
                            bound: worst.bound.clone(),
                            records: mine.len(),
                        })
                    })
                    .collect();
                Row { check, kind, cells }
            })
            .collect();
        Scoreboard {
            nncheck_version: NNCHECK_VERSION.into(),
            sweep,
            subjects,
            not_compiled,
            unavailable: Vec::new(),
            rows,
            records,
        }
    }

    /// Each model subject's answer to "is dropout active during training in a
    /// frozen model?", from its [`QUESTION_CHECK`] cell.
    pub fn answers(&self) -> Vec<(String, Option<Cell>)> {
        let row = self.rows.iter().find(|r| r.check == QUESTION_CHECK);
        self.subjects
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let cell = row.and_then(|r| r.cells[i].clone())?;
                Some((s.clone(), Some(cell)))
            })
            .collect()
    }

    /// True when no subject's invariant failed.
    pub fn no_failures(&self) -> bool {
        self.records
            .iter()
            .all(|r| r.report.verdict() != Verdict::Fail)
    }

    /// True when nncheck's own column passes every row: every invariant held and
    /// every convention is SPEC's.
    pub fn core_passes_everything(&self) -> bool {
        self.records
            .iter()
            .filter(|r| r.subject == "nncheck")
            .all(|r| r.report.pass)
    }

    /// The rows the README's comparison of frameworks shows, in its order.
    pub const README_ROWS: [&'static str; 14] = [
        QUESTION_CHECK,
        "frozen_weights_unchanged",
        "frozen_batchnorm_inference_mode",
        "only_steps_change_weights",
        "drop_rate_binomial",
        "survivors_scaled_exactly",
        "eval_is_identity",
        "backward_uses_forward_mask",
        "long_range_independent",
        "scale_recipe",
        "dropped_negative_sign",
        "dropped_special_values",
        "rate_one",
        "invalid_rate_refused",
    ];

    /// The README's measured comparison of frameworks as a Markdown table: one
    /// row per check of [`README_ROWS`](Self::README_ROWS), one column per
    /// subject, each cell the verdict over every case swept (and how many
    /// cases have it, where not all do); the figures are in the text and JSON
    /// forms. A test holds the README to these verdicts, so the table is
    /// regenerated, not edited.
    pub fn markdown(&self) -> String {
        let mut out = format!("| check | {} |\n", self.subjects.join(" | "));
        out.push_str(&format!("|---|{}\n", "---|".repeat(self.subjects.len())));
        for check in Self::README_ROWS {
            let Some(row) = self.rows.iter().find(|r| r.check == check) else {
                continue;
            };
            let cells: Vec<String> = row
                .cells
                .iter()
                .map(|c| match c {
                    Some(c) => c.tag(),
                    None => "—".into(),
                })
                .collect();
            out.push_str(&format!("| `{check}` | {} |\n", cells.join(" | ")));
        }
        out
    }

    /// The scoreboard as text: the question and its measured answers, then one
    /// block per row with a line per subject.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "Is dropout active during training in a frozen model? Measured per framework:\n",
        );
        for (subject, cell) in self.answers() {
            let answer = match cell.as_ref().map(|c| &c.verdict) {
                Some(Verdict::Pass) => "yes",
                Some(Verdict::Fail) => "NO",
                _ => "not measured",
            };
            let figure = cell.map(|c| c.observed).unwrap_or_default();
            out.push_str(&format!("  {subject:<32} {answer:<4} ({figure})\n"));
        }
        out.push_str(&format!(
            "\nDropout: rates {:?} on shapes {:?}, seed {}; models: {} with dropout rate {} over {} steps; alpha {:e}\n",
            self.sweep.rates,
            self.sweep.shapes,
            self.sweep.seed,
            self.sweep
                .optimizers
                .iter()
                .map(|o| format!("{} (weight decay {})", o.kind.name(), o.weight_decay))
                .collect::<Vec<_>>()
                .join(", "),
            self.sweep.model_rate,
            self.sweep.steps,
            self.sweep.alpha
        ));
        out.push_str("PASS / FAIL: invariant; N/A: the subject lacks what the check needs; SPEC / CONV: a convention that is SPEC's / another one\n");
        let mut heading = "";
        for row in &self.rows {
            let group = match row.kind {
                RecordKind::Invariant => "Invariants",
                RecordKind::Convention => "Conventions (reported apart from correctness)",
            };
            if group != heading {
                out.push_str(&format!("\n{group}\n"));
                heading = group;
            }
            out.push_str(&format!("  {}\n", row.check));
            for (subject, cell) in self.subjects.iter().zip(&row.cells) {
                if let Some(cell) = cell {
                    out.push_str(&format!("    {subject:<32} {}\n", cell.text()));
                }
            }
        }
        for (name, feature) in &self.not_compiled {
            out.push_str(&format!(
                "\nSKIPPED {name}: not compiled in (cargo run --release --features {feature} -- conform)\n"
            ));
        }
        for (name, why) in &self.unavailable {
            out.push_str(&format!("\nSKIPPED {name}: {why}\n"));
        }
        out
    }
}
