//! The scoreboard `nncheck conform` prints: one row per invariant or
//! convention, one column per subject, each cell the verdict with the observed
//! figure; led by the answer to the question the project exists for, measured
//! per framework.

use crate::check::battery::{dropout_battery, training_battery};
use crate::check::cases::{DropoutCase, OptimizerKind, TrainingCase};
use crate::check::report::{CheckReport, RecordKind, Verdict};
use serde::Serialize;

use super::Subjects;

/// The check whose verdict answers the question.
pub const QUESTION_CHECK: &str = "frozen_model_dropout_active_in_fit";

/// What a conformance run draws on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConformConfig {
    /// The dropout case every dropout subject runs.
    pub dropout: DropoutCase,
    /// The training case every model subject runs.
    pub training: TrainingCase,
    /// The false-alarm probability of each statistical check.
    pub alpha: f64,
}

impl ConformConfig {
    /// Rate 0.5 on a `[1000, 1000]` input (10^6 draws in the rate check), AdamW
    /// with weight decay 0.01 for the models (decay is the classic way frozen
    /// weights move), `seed` for everything.
    pub fn new(seed: u64, alpha: f64) -> Self {
        ConformConfig {
            dropout: DropoutCase {
                rate: 0.5,
                shape: vec![1000, 1000],
                seed,
            },
            training: TrainingCase {
                optimizer: OptimizerKind::AdamW,
                weight_decay: 0.01,
                epochs: 1,
                batch_size: 64,
                freeze_mid_training: false,
                rate: 0.5,
                seed,
            },
            alpha,
        }
    }
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
}

impl Cell {
    /// The cell as the text table shows it: `PASS`, `FAIL`, `N/A`, `SPEC` (a
    /// convention that is SPEC's) or `CONV` (another convention), with the figure.
    pub fn text(&self) -> String {
        let tag = match &self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable(_) => "N/A",
            Verdict::Convention(true) => "SPEC",
            Verdict::Convention(false) => "CONV",
        };
        format!("{tag}: {}", self.observed)
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
    /// What was run.
    pub config: ConformConfig,
    /// The columns: subject names, nncheck's first.
    pub subjects: Vec<String>,
    /// Adapters not compiled in, with the feature that adds each.
    pub not_compiled: Vec<(String, String)>,
    /// Invariant rows first, then conventions, each in first-seen order.
    pub rows: Vec<Row>,
    /// Every record, by subject.
    pub records: Vec<(String, CheckReport)>,
}

/// Rank of a verdict, worst highest: the cell shows the worst record.
fn severity(v: &Verdict) -> u8 {
    match v {
        Verdict::Pass => 0,
        Verdict::Convention(true) => 1,
        Verdict::NotApplicable(_) => 2,
        Verdict::Convention(false) => 3,
        Verdict::Fail => 4,
    }
}

impl Scoreboard {
    /// Runs every subject through the batteries. `progress` is told each
    /// subject's name before it runs.
    pub fn run(
        subjects: &Subjects,
        config: &ConformConfig,
        mut progress: impl FnMut(&str),
    ) -> Self {
        let mut records: Vec<(String, CheckReport)> = Vec::new();
        for s in &subjects.dropout {
            progress(&s.name());
            for r in dropout_battery(s.as_ref(), &config.dropout, config.alpha) {
                records.push((s.name(), r));
            }
        }
        for s in &subjects.models {
            progress(&s.name());
            for r in training_battery(s.as_ref(), &config.training) {
                records.push((s.name(), r));
            }
        }
        let not_compiled = super::missing_adapters()
            .into_iter()
            .map(|(name, feature)| (name.to_string(), feature.to_string()))
            .collect();
        Self::from_records(config.clone(), records, not_compiled)
    }

    /// Arranges `records` into rows and columns.
    pub fn from_records(
        config: ConformConfig,
        records: Vec<(String, CheckReport)>,
        not_compiled: Vec<(String, String)>,
    ) -> Self {
        let mut subjects: Vec<String> = Vec::new();
        let mut checks: Vec<(String, RecordKind)> = Vec::new();
        for (s, r) in &records {
            if !subjects.contains(s) {
                subjects.push(s.clone());
            }
            if !checks.iter().any(|(c, _)| c == &r.check) {
                checks.push((r.check.clone(), r.kind));
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
                            .filter(|(rs, r)| rs == s && r.check == check)
                            .map(|(_, r)| r)
                            .collect();
                        let worst = mine.iter().max_by_key(|r| severity(&r.verdict()))?;
                        Some(Cell {
                            verdict: worst.verdict(),
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
            config,
            subjects,
            not_compiled,
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
            .all(|(_, r)| r.verdict() != Verdict::Fail)
    }

    /// True when nncheck's own column passes every row: every invariant held and
    /// every convention is SPEC's.
    pub fn core_passes_everything(&self) -> bool {
        self.records
            .iter()
            .filter(|(s, _)| s == "nncheck")
            .all(|(_, r)| r.pass)
    }

    /// The rows the README's comparison of frameworks shows, in its order.
    pub const README_ROWS: [&'static str; 10] = [
        QUESTION_CHECK,
        "frozen_weights_unchanged",
        "drop_rate_binomial",
        "survivors_scaled_exactly",
        "eval_is_identity",
        "backward_uses_forward_mask",
        "dropped_negative_sign",
        "dropped_special_values",
        "rate_one",
        "invalid_rate_refused",
    ];

    /// The README's measured comparison of frameworks as a Markdown table: one
    /// row per check of [`README_ROWS`](Self::README_ROWS), one column per
    /// subject, each cell the verdict and the observed figure. `.ci/run` checks
    /// that the README holds these lines, so the table is regenerated, not
    /// edited.
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
                    Some(c) => c.text().replace('|', "/").replace('\n', " "),
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
            out.push_str(&format!("  {subject:<24} {answer:<4} ({figure})\n"));
        }
        out.push_str(&format!(
            "\nDropout: rate {} on {:?}, seed {}; models: {} with weight decay {}, dropout rate {}; alpha {:e}\n",
            self.config.dropout.rate,
            self.config.dropout.shape,
            self.config.dropout.seed,
            self.config.training.optimizer.name(),
            self.config.training.weight_decay,
            self.config.training.rate,
            self.config.alpha
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
                    out.push_str(&format!("    {subject:<24} {}\n", cell.text()));
                }
            }
        }
        for (name, feature) in &self.not_compiled {
            out.push_str(&format!(
                "\nSKIPPED {name}: not compiled in (cargo run --release --features {feature} -- conform)\n"
            ));
        }
        out
    }
}
