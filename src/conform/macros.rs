//! One `#[test]` per row for a third party's subject: the batteries run once
//! per test binary over every case of a [`Sweep`], and each row of the
//! scoreboard becomes a test named after it, so `cargo test` lists what held
//! and what did not.
//!
//! Without an expectations file a row fails its test only on a failed
//! invariant; a convention other than SPEC's and a not-applicable row pass and
//! print what they found, since neither is a bug of the subject. With one
//! (`expect = "file.toml"`, see [`super::expect`]) every record of the row must
//! have its expected verdict, so the tests become the project's CI gate.

use super::expect::{Expectation, Expectations};
use super::Sweep;
use crate::check::battery::{dropout_battery, training_battery};
use crate::check::model_subject::ModelSubject;
use crate::check::report::{CheckReport, Verdict};
use crate::check::DropoutSubject;
use std::path::PathBuf;

/// What a conformance macro was given: the sweep (its defaults, with the
/// macro's `rates`, `shapes`, `optimizers`, `seed`, `steps` and `model_rate`
/// over them) and an expectations file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// The cases the batteries run.
    pub sweep: Sweep,
    /// The expectations file, where one was given.
    pub expect: Option<PathBuf>,
}

/// Every record of `subject`'s dropout over `sweep`'s (rate, shape) cases.
pub fn dropout_records(subject: &dyn DropoutSubject, sweep: &Sweep) -> Vec<CheckReport> {
    sweep
        .dropout_cases()
        .iter()
        .flat_map(|case| dropout_battery(subject, case, sweep.alpha))
        .collect()
}

/// Every record of `subject`'s model over `sweep`'s optimizers.
pub fn model_records(subject: &dyn ModelSubject, sweep: &Sweep) -> Vec<CheckReport> {
    sweep
        .training_cases()
        .iter()
        .flat_map(|case| training_battery(subject, case))
        .collect()
}

/// Reads the expectations file of `options`, panicking with the file's error
/// (a test that cannot read its expectations must not pass).
pub fn load_expectations(options: &Options) -> Option<Expectations> {
    options
        .expect
        .as_ref()
        .map(|path| Expectations::load(path).unwrap_or_else(|e| panic!("{e}")))
}

/// Rows that exist only in some runs: a rate 1 the subject refused has no
/// `rate_one_drops_everything`, a layer that could not be built has no
/// `scale_recipe`, a run of rank-1 shapes no `noise_shape_cells_shared`.
const OPTIONAL_ROWS: [&str; 4] = [
    "rate_one_drops_everything",
    "battery_ran",
    "noise_shape_cells_shared",
    "scale_recipe",
];

/// Every row the dropout macro lists, in its order.
pub const DROPOUT_ROWS: [&str; 19] = [
    "drop_rate_binomial",
    "survivors_scaled_exactly",
    "special_values_kept_scaled",
    "eval_is_identity",
    "backward_uses_forward_mask",
    "counters_match_output",
    "per_position_uniformity",
    "successive_calls_independent",
    "neighbours_independent",
    "long_range_independent",
    "reseeded_masks_reproducible",
    "seeded_masks_reproducible",
    "noise_shape_cells_shared",
    "rate_one_drops_everything",
    "scale_recipe",
    "dropped_special_values",
    "dropped_negative_sign",
    "rate_one",
    "invalid_rate_refused",
];

/// Every row the model macro lists, in its order.
pub const MODEL_ROWS: [&str; 10] = [
    "frozen_weights_unchanged",
    "trainable_weights_changed",
    "frozen_optimizer_slots_unchanged",
    "frozen_model_dropout_active_in_fit",
    "frozen_batchnorm_inference_mode",
    "freeze_is_recursive",
    "gradient_passes_frozen_layer",
    "unfreeze_takes_effect_without_recompile",
    "inference_deterministic",
    "only_steps_change_weights",
];

/// The body of a generated test: the records of `row`.
///
/// Without expectations it panics with every failing record and prints the
/// others. With them it panics with every record whose verdict is not the
/// expected one and every entry for this subject and row that matched no
/// record; `all_rows` lets the first row's test also refuse an entry for this
/// subject whose check names no row at all.
pub fn assert_row(
    reports: &[CheckReport],
    row: &str,
    subject: &str,
    expectations: Option<&Expectations>,
    all_rows: &[&str],
) {
    let mine: Vec<&CheckReport> = reports.iter().filter(|r| r.check == row).collect();
    for r in &mine {
        println!("{}", r.line());
    }
    assert!(
        OPTIONAL_ROWS.contains(&row) || !mine.is_empty(),
        "the battery produced no `{row}` record"
    );
    let Some(expectations) = expectations else {
        let failed: Vec<String> = mine
            .iter()
            .filter(|r| r.verdict() == Verdict::Fail)
            .map(|r| r.line())
            .collect();
        assert!(failed.is_empty(), "\n{}", failed.join("\n"));
        return;
    };
    // The first row's test also refuses an entry for this subject that names
    // no row of either macro: a typo would otherwise match nothing, silently.
    let first_row = all_rows.first() == Some(&row);
    let names_no_row = |e: &Expectation| {
        !DROPOUT_ROWS
            .iter()
            .chain(&MODEL_ROWS)
            .any(|r| super::expect::glob(&e.check, r))
    };
    let in_scope = |e: &Expectation| {
        super::expect::glob(&e.subject, subject)
            && (super::expect::glob(&e.check, row) || (first_row && names_no_row(e)))
    };
    let judged = expectations.judge(mine.iter().map(|r| (subject, *r)), Some(&in_scope));
    assert!(judged.met(), "\n{}", judged.lines().join("\n"));
}

/// Sets one option of a conformance macro; an implementation detail of the
/// macros below.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_option {
    ($options:ident, rates, [$($rate:expr),* $(,)?]) => {
        $options.sweep.rates = vec![$($rate as f64),*];
    };
    ($options:ident, shapes, [$([$($dim:expr),* $(,)?]),* $(,)?]) => {
        $options.sweep.shapes = vec![$(vec![$($dim as usize),*]),*];
    };
    ($options:ident, optimizers, [$($optimizer:expr),* $(,)?]) => {
        $options.sweep.optimizers = vec![$($crate::conform::OptimizerCase::from($optimizer)),*];
    };
    ($options:ident, seed, $seed:tt) => {
        $options.sweep.seed = $seed;
    };
    ($options:ident, steps, $steps:tt) => {
        $options.sweep.steps = $steps;
    };
    ($options:ident, model_rate, $rate:tt) => {
        $options.sweep.model_rate = $rate;
    };
    ($options:ident, expect, $file:tt) => {
        $options.expect = Some(::std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/",
            $file
        )));
    };
}

/// Expands to a module of tests, one per dropout row, running the dropout
/// battery once on `$subject` (an expression of a type implementing
/// [`DropoutSubject`](crate::check::DropoutSubject)) over every (rate, shape)
/// case of a [`Sweep`] (by default [`Sweep::default`]: seven rates, four shapes).
///
/// Options, each `name = value` after the subject, in any order: `rates =
/// [0.1, 0.5]`, `shapes = [[1, 64], [100, 1000]]`, `seed = 42`, and `expect =
/// "path/to/expectations.toml"` (relative to the crate's manifest; see
/// [`expect`](crate::conform::expect)). A failure names its case.
///
/// ```
/// use nncheck::check::CoreDropout;
/// nncheck::dropout_conformance_tests!(core_dropout, CoreDropout, rates = [0.3], shapes = [[4, 64]]);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! dropout_conformance_tests {
    ($module:ident, $subject:expr $(, $key:ident = $value:tt)* $(,)?) => {
        $crate::__conformance_module!(
            $module,
            |sweep: &$crate::conform::Sweep| $crate::conform::macros::dropout_records(&$subject, sweep),
            $crate::check::DropoutSubject::name(&$subject),
            [$($key = $value),*],
            drop_rate_binomial,
            survivors_scaled_exactly,
            special_values_kept_scaled,
            eval_is_identity,
            backward_uses_forward_mask,
            counters_match_output,
            per_position_uniformity,
            successive_calls_independent,
            neighbours_independent,
            long_range_independent,
            reseeded_masks_reproducible,
            seeded_masks_reproducible,
            noise_shape_cells_shared,
            rate_one_drops_everything,
            scale_recipe,
            dropped_special_values,
            dropped_negative_sign,
            rate_one,
            invalid_rate_refused
        );
    };
}

/// Expands to a module of tests, one per trainable-model row, running the
/// training battery once on `$subject` (an expression of a type implementing
/// [`ModelSubject`](crate::check::model_subject::ModelSubject)) under every
/// optimizer of a [`Sweep`] (by default SGD, and AdamW with weight decay 0.01,
/// each over 20 steps).
///
/// Options, as for [`dropout_conformance_tests!`](crate::dropout_conformance_tests):
/// `optimizers = [OptimizerKind::Sgd, (OptimizerKind::AdamW, 0.01)]`, `steps =
/// 20`, `model_rate = 0.5`, `seed = 42`, `expect = "file.toml"`.
///
/// ```
/// use nncheck::check::model_subject::CoreModel;
/// nncheck::model_conformance_tests!(core_model, CoreModel);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! model_conformance_tests {
    ($module:ident, $subject:expr $(, $key:ident = $value:tt)* $(,)?) => {
        $crate::__conformance_module!(
            $module,
            |sweep: &$crate::conform::Sweep| $crate::conform::macros::model_records(&$subject, sweep),
            $crate::check::model_subject::ModelSubject::name(&$subject),
            [$($key = $value),*],
            frozen_weights_unchanged,
            trainable_weights_changed,
            frozen_optimizer_slots_unchanged,
            frozen_model_dropout_active_in_fit,
            frozen_batchnorm_inference_mode,
            freeze_is_recursive,
            gradient_passes_frozen_layer,
            unfreeze_takes_effect_without_recompile,
            inference_deterministic,
            only_steps_change_weights
        );
    };
}

/// A module whose tests share one run of the battery over the options' sweep,
/// one test per row name; an implementation detail of the two macros above.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_module {
    ($module:ident, $records:expr, $name:expr, [$($key:ident = $value:tt),*], $($row:ident),* $(,)?) => {
        #[allow(missing_docs)]
        pub mod $module {
            #[allow(unused_imports)]
            use super::*;
            /// The macro's options over the defaults.
            pub fn options() -> $crate::conform::macros::Options {
                #[allow(unused_mut)]
                let mut options = $crate::conform::macros::Options::default();
                $($crate::__conformance_option!(options, $key, $value);)*
                options
            }
            /// Every record of the battery over the options' sweep, run once.
            pub fn reports() -> &'static [$crate::check::CheckReport] {
                static REPORTS: ::std::sync::OnceLock<::std::vec::Vec<$crate::check::CheckReport>> =
                    ::std::sync::OnceLock::new();
                REPORTS.get_or_init(|| {
                    let options = options();
                    ($records)(&options.sweep)
                })
            }
            fn expectations() -> ::std::option::Option<&'static $crate::conform::expect::Expectations> {
                static EXPECT: ::std::sync::OnceLock<::std::option::Option<$crate::conform::expect::Expectations>> =
                    ::std::sync::OnceLock::new();
                EXPECT
                    .get_or_init(|| $crate::conform::macros::load_expectations(&options()))
                    .as_ref()
            }
            const ROWS: &[&str] = &[$(stringify!($row)),*];
            $(
                #[test]
                pub fn $row() {
                    $crate::conform::macros::assert_row(
                        reports(),
                        stringify!($row),
                        &$name,
                        expectations(),
                        ROWS,
                    );
                }
            )*
        }
    };
}
