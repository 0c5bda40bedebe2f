//! The checks of SPEC §2 on any [`DropoutSubject`](crate::check::DropoutSubject):
//! one file per check (or family of checks on one call), each declaring itself
//! as a [`DropoutCheck`] value beside its function, and [`CHECKS`], the list the
//! dropout battery runs, in the order its records come.
//!
//! Boundary: these checks see a subject only through the subject API, so they
//! judge another framework exactly as they judge nncheck's own layer; the
//! expected values are computed here from the claimed rate, never read from the
//! layer.

pub mod backward;
pub mod conventions;
pub mod counters;
pub mod harness;
pub mod identity;
pub mod independence;
pub mod noise_shape;
pub mod rate;
pub mod recipe_consistency;
pub mod scale_recipe;
pub mod seeding;
pub mod survivors;

use crate::check::registry::DropoutCheck;

/// Every dropout check, in the order the battery runs them.
pub const CHECKS: &[DropoutCheck] = &[
    rate::CHECK,
    survivors::CHECK,
    recipe_consistency::CHECK,
    conventions::SPECIAL_VALUES,
    identity::CHECK,
    backward::CHECK,
    conventions::NEGATIVE_SIGN,
    counters::CHECK,
    conventions::RATE_ONE,
    conventions::INVALID_RATES,
    independence::UNIFORMITY,
    independence::SUCCESSIVE,
    independence::LONG_RANGE,
    independence::NEIGHBOURS,
    seeding::RESEEDED,
    seeding::SEEDED,
    noise_shape::CHECK,
];
