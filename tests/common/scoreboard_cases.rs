//! The scoreboard's cases, as the adapter tests pin them: the same cases
//! `nncheck conform` runs (`Sweep::scoreboard(42, 1e-9)`), so a verdict pinned
//! in a test is the one the scoreboard prints.

use nncheck::check::run::cases::{DropoutCase, TrainingCase};
use nncheck::check::{CheckReport, Verdict};
use nncheck::conform::Sweep;

/// The scoreboard's alpha.
pub const ALPHA: f64 = 1e-9;

/// The scoreboard's main dropout case at rate 0.5: `[1000, 1000]`, seed 42.
pub fn dropout_case() -> DropoutCase {
    Sweep::scoreboard(42, ALPHA)
        .dropout_cases()
        .into_iter()
        .find(|c| c.rate == 0.5)
        .expect("rate 0.5 is swept")
}

/// The scoreboard's AdamW case (weight decay 0.01, 20 steps).
pub fn training_case() -> TrainingCase {
    Sweep::scoreboard(42, ALPHA).training_cases()[1].clone()
}

/// Prints every record's line (seen with `-- --nocapture`).
pub fn print(reports: &[CheckReport]) {
    for r in reports {
        println!("{}", r.line());
    }
}

/// The records of `check`, at least one.
#[allow(dead_code)] // not every adapter test pins records by check
pub fn records<'a>(reports: &'a [CheckReport], check: &str) -> Vec<&'a CheckReport> {
    let found: Vec<&CheckReport> = reports.iter().filter(|r| r.check == check).collect();
    assert!(!found.is_empty(), "no {check} record");
    found
}

/// Every record of `check` has `verdict`.
#[allow(dead_code)]
pub fn assert_verdict(reports: &[CheckReport], check: &str, verdict: Verdict) {
    for r in records(reports, check) {
        assert_eq!(r.verdict(), verdict, "{}", r.line());
    }
}
