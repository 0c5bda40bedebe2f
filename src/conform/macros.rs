//! One `#[test]` per row for a third party's subject: the batteries run once
//! per test binary over every case of a [`Sweep`], and each row of the
//! scoreboard becomes a test named after it, so `cargo test` lists what held
//! and what did not.
//!
//! Without an expectations file a row fails its test only on a failed
//! invariant; a convention other than SPEC's and a not-applicable row pass and
//! print what they found, since neither is a bug of the subject. With one
//! (`expect = "file.toml"`, see [`crate::check::run::expect`]) every record of
//! the row must have its expected verdict, so the tests become the project's
//! CI gate.

use crate::check::registry::{RecordSpec, Settings};
use crate::check::report::{CheckReport, Verdict};
use crate::check::run::battery::{self, Battery};
use crate::check::run::cases::{DropoutCase, TrainingCase};
use crate::check::run::expect::{glob, Expectations};
use crate::check::run::Sweep;
use crate::check::subjects::{DropoutSubject, ModelSpec, ModelSubject, NoiseSubject};
use std::path::PathBuf;

/// What a conformance macro was given: the sweep (its defaults, with the
/// macro's `rates`, `shapes`, `optimizers`, `seed`, `steps` and `model_rate`
/// over them), an expectations file, and the battery (`battery = ...`, the
/// standard one by default; a project adds checks of its own with
/// [`Battery::with`]).
#[derive(Debug, Clone)]
pub struct Options<B> {
    /// The cases the battery runs.
    pub sweep: Sweep,
    /// The expectations file, where one was given.
    pub expect: Option<PathBuf>,
    /// The checks.
    pub battery: B,
}

impl<B> Options<B> {
    /// The default sweep and `battery`, no expectations.
    pub fn new(battery: B) -> Self {
        Options {
            sweep: Sweep::default(),
            expect: None,
            battery,
        }
    }

    /// The options as given, checked: a sweep the checks cannot judge is a
    /// mistake in the test, reported as such.
    pub fn checked(self) -> Self {
        if let Err(e) = self.sweep.validate() {
            panic!("conformance options: {e}");
        }
        self
    }
}

/// Every record of `subject`'s dropout over the options' (rate, shape) cases.
pub fn dropout_records(
    subject: &(dyn DropoutSubject + 'static),
    options: &Options<Battery<dyn DropoutSubject, DropoutCase>>,
) -> Vec<CheckReport> {
    let settings = Settings {
        alpha: options.sweep.alpha,
    };
    options
        .sweep
        .dropout_cases()
        .iter()
        .flat_map(|case| options.battery.run(subject, case, &settings))
        .collect()
}

/// Every record of `subject`'s noise layers at the options' rates.
pub fn noise_records(
    subject: &(dyn NoiseSubject + 'static),
    options: &Options<Battery<dyn NoiseSubject, DropoutCase>>,
) -> Vec<CheckReport> {
    let settings = Settings {
        alpha: options.sweep.alpha,
    };
    options
        .sweep
        .noise_cases()
        .iter()
        .flat_map(|case| options.battery.run(subject, case, &settings))
        .collect()
}

/// Every record of `subject`'s model under the options' optimizers.
pub fn model_records(
    subject: &(dyn ModelSubject + 'static),
    options: &Options<Battery<dyn ModelSubject, ModelSpec>>,
) -> Vec<CheckReport> {
    let settings = Settings {
        alpha: options.sweep.alpha,
    };
    options
        .sweep
        .training_cases()
        .iter()
        .flat_map(|case: &TrainingCase| options.battery.run(subject, case, &settings))
        .collect()
}

/// Reads the expectations file of `options`, panicking with the file's error
/// (a test that cannot read its expectations must not pass).
pub fn load_expectations<B>(options: &Options<B>) -> Option<Expectations> {
    options
        .expect
        .as_ref()
        .map(|path| Expectations::load(path).unwrap_or_else(|e| panic!("{e}")))
}

/// Every record name the standard batteries know.
pub fn known_rows() -> Vec<&'static str> {
    [
        battery::dropout().records(),
        battery::noise().records(),
        battery::model().records(),
    ]
    .concat()
    .iter()
    .map(|r| r.id)
    .collect()
}

/// The body of a generated test: the records of `row`, among all `reports` of
/// `subject` (whose battery declares `records`).
///
/// Without expectations it panics with every failing record and prints the
/// others. With them, every group of this row's records must have its
/// expected verdict; the first row's test (`first`) also answers for the file:
/// an entry for this subject that matched no record of any row, or whose check
/// names no row of any battery, fails it.
pub fn assert_row(
    reports: &[CheckReport],
    row: &str,
    subject: &str,
    records: &[RecordSpec],
    expectations: Option<&Expectations>,
    first: bool,
) {
    let mine: Vec<&CheckReport> = reports.iter().filter(|r| r.check == row).collect();
    for r in &mine {
        println!("{}", r.line());
    }
    let optional = records.iter().any(|r| r.id == row && r.optional);
    if mine.is_empty() && !optional {
        // A secondary record of a check whose first record failed was not
        // produced: that failure is reported once, on its own row.
        let owner = records.iter().position(|r| r.id == row);
        let primary_failed = owner.is_some_and(|_| {
            reports
                .iter()
                .any(|r| r.verdict() == Verdict::Fail && records.iter().any(|s| s.id == r.check))
        });
        assert!(primary_failed, "the battery produced no `{row}` record");
    }
    let Some(expectations) = expectations else {
        let failed: Vec<String> = mine
            .iter()
            .filter(|r| r.verdict() == Verdict::Fail)
            .map(|r| r.line())
            .collect();
        assert!(failed.is_empty(), "\n{}", failed.join("\n"));
        return;
    };
    let judged = expectations.judge(
        reports.iter().map(|r| (subject, r)),
        Some(&|e| glob(&e.subject, subject)),
    );
    let mut problems: Vec<String> = judged
        .mismatches
        .iter()
        .filter(|m| m.check == row)
        .map(|m| m.line())
        .collect();
    if first {
        problems.extend(
            judged
                .unmatched
                .iter()
                .map(|u| format!("error: {u} decides no record")),
        );
        let known = known_rows();
        problems.extend(
            expectations
                .entries()
                .filter(|e| glob(&e.subject, subject))
                .filter(|e| !known.iter().any(|r| glob(&e.check, r)))
                .map(|e| format!("error: check `{}` names no row of any battery", e.check)),
        );
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Asserts every row of `reports` that is not one of `rows` (the rows the
/// macro made tests of): the records of checks a project added to the battery.
pub fn assert_other_rows(
    reports: &[CheckReport],
    rows: &[&str],
    subject: &str,
    records: &[RecordSpec],
    expectations: Option<&Expectations>,
) {
    let mut others: Vec<&str> = records
        .iter()
        .map(|r| r.id)
        .filter(|id| !rows.contains(id))
        .collect();
    others.dedup();
    for row in others {
        assert_row(reports, row, subject, records, expectations, false);
    }
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
    ($options:ident, battery, $battery:tt) => {
        // The value is one token tree, so an expression comes in braces.
        #[allow(unused_braces)]
        let battery = $battery;
        $options.battery = battery;
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
/// [0.1, 0.5]`, `shapes = [[1, 64], [100, 1000]]`, `seed = 42`, `battery = {
/// ... }` (a [`Battery`] with checks of the project's own, judged by one more
/// test, `other_rows`), and `expect = "path/to/expectations.toml"` (relative
/// to the crate's manifest; see [`crate::check::run::expect`]). A failure
/// names its case.
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
            $crate::check::run::battery::Battery<dyn $crate::check::DropoutSubject, $crate::check::run::cases::DropoutCase>,
            $crate::check::run::battery::dropout(),
            |options| $crate::conform::macros::dropout_records(&$subject, options),
            $crate::check::DropoutSubject::name(&$subject),
            [$($key = $value),*],
            drop_rate_binomial,
            survivors_scaled_exactly,
            scale_recipe_consistent,
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

/// Expands to a module of tests, one per row of the noise battery, running it
/// once on `$subject` (an expression of a type implementing
/// [`NoiseSubject`](crate::check::NoiseSubject)) at every rate of a [`Sweep`]
/// (the rate is GaussianNoise's standard deviation too). Options as for
/// [`dropout_conformance_tests!`](crate::dropout_conformance_tests).
///
/// ```
/// use nncheck::check::CoreNoise;
/// nncheck::noise_conformance_tests!(core_noise, CoreNoise, rates = [0.3]);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! noise_conformance_tests {
    ($module:ident, $subject:expr $(, $key:ident = $value:tt)* $(,)?) => {
        $crate::__conformance_module!(
            $module,
            $crate::check::run::battery::Battery<dyn $crate::check::NoiseSubject, $crate::check::run::cases::DropoutCase>,
            $crate::check::run::battery::noise(),
            |options| $crate::conform::macros::noise_records(&$subject, options),
            $crate::check::NoiseSubject::name(&$subject),
            [$($key = $value),*],
            eval_identity_bits,
            gaussian_noise_mean,
            gaussian_noise_variance,
            gaussian_noise_ks,
            gaussian_dropout_mean,
            gaussian_dropout_variance,
            gaussian_dropout_ks,
            alpha_dropout_values_exact,
            alpha_dropout_drop_rate,
            alpha_dropout_mean,
            alpha_dropout_variance,
            spatial_whole_channels,
            spatial_channel_drop_rate
        );
    };
}

/// Expands to a module of tests, one per trainable-model row, running the
/// model battery once on `$subject` (an expression of a type implementing
/// [`ModelSubject`](crate::check::ModelSubject)) under every optimizer of a
/// [`Sweep`] (by default SGD, and AdamW with weight decay 0.01, each over 20
/// steps).
///
/// Options, as for [`dropout_conformance_tests!`](crate::dropout_conformance_tests):
/// `optimizers = [OptimizerKind::Sgd, (OptimizerKind::AdamW, 0.01)]`, `steps =
/// 20`, `model_rate = 0.5`, `seed = 42`, `battery = { ... }`, `expect = "file.toml"`.
///
/// ```
/// use nncheck::check::CoreModel;
/// nncheck::model_conformance_tests!(core_model, CoreModel);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! model_conformance_tests {
    ($module:ident, $subject:expr $(, $key:ident = $value:tt)* $(,)?) => {
        $crate::__conformance_module!(
            $module,
            $crate::check::run::battery::Battery<dyn $crate::check::ModelSubject, $crate::check::ModelSpec>,
            $crate::check::run::battery::model(),
            |options| $crate::conform::macros::model_records(&$subject, options),
            $crate::check::ModelSubject::name(&$subject),
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
/// one test per row name and one for the rows of checks a project added; an
/// implementation detail of the macros above.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_module {
    ($module:ident, $battery_type:ty, $battery:expr, $records:expr, $name:expr, [$($key:ident = $value:tt),*], $first:ident $(, $row:ident)* $(,)?) => {
        #[allow(missing_docs)]
        pub mod $module {
            #[allow(unused_imports)]
            use super::*;
            /// The macro's options over the defaults.
            pub fn options() -> $crate::conform::macros::Options<$battery_type> {
                #[allow(unused_mut)]
                let mut options = $crate::conform::macros::Options::new($battery);
                $($crate::__conformance_option!(options, $key, $value);)*
                options.checked()
            }
            /// Every record of the battery over the options' sweep, run once.
            pub fn reports() -> &'static [$crate::check::CheckReport] {
                static REPORTS: ::std::sync::OnceLock<::std::vec::Vec<$crate::check::CheckReport>> =
                    ::std::sync::OnceLock::new();
                REPORTS.get_or_init(|| ($records)(&options()))
            }
            fn records() -> ::std::vec::Vec<$crate::check::RecordSpec> {
                options().battery.records()
            }
            fn expectations() -> ::std::option::Option<&'static $crate::conform::expect::Expectations> {
                static EXPECT: ::std::sync::OnceLock<::std::option::Option<$crate::conform::expect::Expectations>> =
                    ::std::sync::OnceLock::new();
                EXPECT
                    .get_or_init(|| $crate::conform::macros::load_expectations(&options()))
                    .as_ref()
            }
            const ROWS: &[&str] = &[stringify!($first) $(, stringify!($row))*];
            #[test]
            pub fn $first() {
                $crate::conform::macros::assert_row(
                    reports(),
                    stringify!($first),
                    &$name,
                    &records(),
                    expectations(),
                    true,
                );
            }
            $(
                #[test]
                pub fn $row() {
                    $crate::conform::macros::assert_row(
                        reports(),
                        stringify!($row),
                        &$name,
                        &records(),
                        expectations(),
                        false,
                    );
                }
            )*
            /// The rows of checks the options' battery adds to the standard ones.
            #[test]
            pub fn other_rows() {
                $crate::conform::macros::assert_other_rows(
                    reports(),
                    ROWS,
                    &$name,
                    &records(),
                    expectations(),
                );
            }
        }
    };
}
