//! The main job's report with a deliberately broken dropout (survivors left
//! unscaled) at every dropout position: it must print FAIL lines and exit 1.
//! `.ci/run` runs it to show that the report can fail.
//!
//! ```text
//! cargo run --release --example broken_dropout_report
//! ```

#[path = "../tests/twins/unscaled.rs"]
mod unscaled_dropout;

use nncheck::scenario::{render, run_with, ScenarioConfig};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cfg = ScenarioConfig::default();
    match run_with(&cfg, &unscaled_dropout::unscaled_dropout) {
        Ok(outcome) => {
            print!("{}", render(&cfg, &outcome));
            if outcome.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("broken_dropout_report: the scenario could not run: {e}");
            ExitCode::from(2)
        }
    }
}
