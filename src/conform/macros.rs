//! One `#[test]` per row for a third party's subject: the batteries run once
//! per test binary, and each row of the scoreboard becomes a test named after
//! it, so `cargo test` lists what held and what did not.
//!
//! A row fails its test only on a failed invariant. A convention other than
//! SPEC's and a not-applicable row pass their test and print what they found,
//! since neither is a bug of the subject.

use crate::check::cases::{DropoutCase, OptimizerKind, TrainingCase};
use crate::check::report::{CheckReport, Verdict};

/// The dropout case the generated tests run: rate 0.6 on `[100, 1000]` (10^5
/// draws), seed 7.
pub fn default_dropout_case() -> DropoutCase {
    DropoutCase {
        rate: 0.6,
        shape: vec![100, 1000],
        seed: 7,
    }
}

/// The training case the generated tests run: plain SGD (every framework has
/// it), no weight decay, dropout rate 0.5, seed 7.
pub fn default_training_case() -> TrainingCase {
    TrainingCase {
        optimizer: OptimizerKind::Sgd,
        weight_decay: 0.0,
        epochs: 1,
        batch_size: 64,
        freeze_mid_training: false,
        rate: 0.5,
        seed: 7,
    }
}

/// The body of a generated test: panics with every failing record of `row`,
/// prints the others. A row with no record passes silently only for
/// `rate_one_drops_everything` and `battery_ran`, which exist only when
/// something went wrong.
pub fn assert_row(reports: &[CheckReport], row: &str) {
    let mine: Vec<&CheckReport> = reports.iter().filter(|r| r.check == row).collect();
    let failed: Vec<String> = mine
        .iter()
        .filter(|r| r.verdict() == Verdict::Fail)
        .map(|r| r.line())
        .collect();
    for r in &mine {
        println!("{}", r.line());
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
    let optional = matches!(
        row,
        "rate_one_drops_everything" | "battery_ran" | "noise_shape_cells_shared"
    );
    assert!(
        optional || !mine.is_empty(),
        "the battery produced no `{row}` record"
    );
}

/// Expands to a module of tests, one per dropout row, running
/// [`dropout_battery`](crate::check::battery::dropout_battery) once on
/// `$subject` (an expression of a type implementing
/// [`DropoutSubject`](crate::check::DropoutSubject)).
///
/// ```
/// use nncheck::check::CoreDropout;
/// nncheck::dropout_conformance_tests!(core_dropout, CoreDropout);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! dropout_conformance_tests {
    ($module:ident, $subject:expr) => {
        $crate::__conformance_module!(
            $module,
            $crate::check::battery::dropout_battery(
                &$subject,
                &$crate::conform::macros::default_dropout_case(),
                $crate::check::stats::DEFAULT_ALPHA,
            ),
            drop_rate_binomial,
            survivors_scaled_exactly,
            special_values_kept_scaled,
            eval_is_identity,
            backward_uses_forward_mask,
            counters_match_output,
            per_position_uniformity,
            successive_calls_independent,
            neighbours_independent,
            reseeded_masks_reproducible,
            seeded_masks_reproducible,
            noise_shape_cells_shared,
            rate_one_drops_everything,
            dropped_special_values,
            dropped_negative_sign,
            rate_one,
            invalid_rate_refused
        );
    };
}

/// Expands to a module of tests, one per trainable-model row, running
/// [`training_battery`](crate::check::battery::training_battery) once on
/// `$subject` (an expression of a type implementing
/// [`ModelSubject`](crate::check::model_subject::ModelSubject)).
///
/// ```
/// use nncheck::check::model_subject::CoreModel;
/// nncheck::model_conformance_tests!(core_model, CoreModel);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! model_conformance_tests {
    ($module:ident, $subject:expr) => {
        $crate::__conformance_module!(
            $module,
            $crate::check::battery::training_battery(
                &$subject,
                &$crate::conform::macros::default_training_case(),
            ),
            frozen_weights_unchanged,
            trainable_weights_changed,
            frozen_optimizer_slots_unchanged,
            frozen_model_dropout_active_in_fit,
            freeze_is_recursive,
            gradient_passes_frozen_layer,
            unfreeze_takes_effect_without_recompile,
            inference_deterministic
        );
    };
}

/// A module whose tests share one run of `$battery`, one test per row name; an
/// implementation detail of the two macros above.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_module {
    ($module:ident, $battery:expr, $($row:ident),* $(,)?) => {
        #[allow(missing_docs)]
        pub mod $module {
            #[allow(unused_imports)]
            use super::*;
            fn reports() -> &'static [$crate::check::CheckReport] {
                static REPORTS: ::std::sync::OnceLock<::std::vec::Vec<$crate::check::CheckReport>> =
                    ::std::sync::OnceLock::new();
                REPORTS.get_or_init(|| $battery)
            }
            $(
                #[test]
                pub fn $row() {
                    $crate::conform::macros::assert_row(reports(), stringify!($row));
                }
            )*
        }
    };
}
