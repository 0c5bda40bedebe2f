//! Adding a check is one file and one list entry: a new check, written here as
//! a project would write one of its own (a trivial "the output has the input's
//! shape" row), declared as a value and added to the dropout battery with
//! `Battery::with`, appears in `verify`, the scoreboard, the conformance
//! macros and the invariant table, with nothing else changed.

use nncheck::check::dropout::harness::with_layer;
use nncheck::check::inputs::positive_input;
use nncheck::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use nncheck::check::run::battery::{self, Batteries};
use nncheck::check::run::cases::DropoutCase;
use nncheck::check::run::verify::{run_with, Shard};
use nncheck::check::run::{table, Sweep};
use nncheck::check::{CheckReport, CoreDropout, DropoutSubject};
use nncheck::conform::{compiled_subjects, Scoreboard};
use nncheck::Phase;

/// The one file: the check and its declaration.
const OUTPUT_SHAPE: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "output_shape_equals_input_shape",
        "a train call's output has the input's shape",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: output_shape,
};

fn output_shape(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    _: &Settings,
) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&case.shape, case.seed);
    with_layer(
        subject,
        OUTPUT_SHAPE.id(),
        &label,
        case.rate,
        case.seed,
        |mut layer| {
            let same = layer
                .run(x.clone(), Phase::Train)
                .map(|y| y.shape() == x.shape());
            vec![CheckReport::exact(
                OUTPUT_SHAPE.id(),
                &label,
                format!("same shape: {same:?}"),
                "Ok(true)".into(),
                matches!(same, Ok(true)),
            )]
        },
    )
}

/// The one list entry.
fn batteries() -> Batteries {
    Batteries {
        dropout: battery::dropout().with(OUTPUT_SHAPE),
        ..Batteries::default()
    }
}

fn has_the_row(records: &[&CheckReport]) {
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r.check == "output_shape_equals_input_shape")
        .collect();
    assert!(!mine.is_empty(), "the new check made no record");
    assert!(mine.iter().all(|r| r.pass), "{}", mine[0].line());
}

#[test]
fn the_new_check_runs_in_verify() {
    let records = run_with(&batteries(), 3, 4, 1e-9, Shard::WHOLE, |_| {});
    has_the_row(&records.iter().collect::<Vec<_>>());
}

#[test]
fn the_new_check_has_a_row_on_the_scoreboard() {
    let sweep = Sweep {
        rates: vec![0.3],
        shapes: vec![vec![8, 16]],
        ..Sweep::default()
    };
    let mut subjects = compiled_subjects();
    subjects.dropout.truncate(1);
    subjects.noise.clear();
    subjects.models.clear();
    let board = Scoreboard::run_with(&subjects, &sweep, &batteries(), |_| {});
    assert!(board
        .rows
        .iter()
        .any(|r| r.check == "output_shape_equals_input_shape"));
    has_the_row(&board.records.iter().map(|r| &r.report).collect::<Vec<_>>());
}

#[test]
fn the_new_check_has_a_row_in_the_invariant_table() {
    let text = table::invariants_markdown(&batteries());
    assert!(text.contains(
        "| `output_shape_equals_input_shape` | invariant | exact | — | a train call's output has the input's shape |"
    ));
}

// In the macros: the battery option, and its test of the rows the standard
// list does not have (`other_rows`).
nncheck::dropout_conformance_tests!(
    with_the_new_check,
    CoreDropout,
    rates = [0.3],
    shapes = [[8, 16]],
    battery = { battery::dropout().with(OUTPUT_SHAPE) }
);

#[test]
fn the_new_check_runs_in_the_macros() {
    has_the_row(&with_the_new_check::reports().iter().collect::<Vec<_>>());
}
