//! `nncheck verify` as a library: a seeded list of generated cases, run whole or
//! as one shard of it.
//!
//! Case `i` is the same whatever part of the list runs, because every case is
//! drawn from one generator in order before any of them runs; a shard runs a
//! contiguous block of the list. The shards `1/N` .. `N/N`, their records
//! concatenated in order, are therefore exactly the unsharded run, record for
//! record, which lets a large `--cases` run split across machines.
//!
//! ```
//! use nncheck::check::run::verify::{run, Shard};
//! let whole = run(7, 4, 1e-9, Shard::WHOLE, |_| {});
//! let mut joined = run(7, 4, 1e-9, "1/2".parse().unwrap(), |_| {});
//! joined.extend(run(7, 4, 1e-9, "2/2".parse().unwrap(), |_| {}));
//! assert_eq!(joined, whole);
//! ```

use super::battery::Batteries;
use super::cases::{DropoutCase, TrainingCase};
use crate::check::registry::Settings;
use crate::check::report::CheckReport;
use crate::check::subjects::{CoreDropout, CoreModel, CoreNoise};
use std::ops::Range;
use std::str::FromStr;

/// One generated configuration: even positions are dropout cases, odd ones training cases.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Case {
    /// A dropout layer checked against SPEC §2.
    Dropout(DropoutCase),
    /// A frozen base and a trainable head checked against SPEC §3–§5.
    Training(TrainingCase),
}

/// The first `count` cases of the sequence that `seed` generates.
///
/// A longer list starts with the shorter one: case `i` depends only on `seed`
/// and `i`.
pub fn cases(seed: u64, count: usize) -> Vec<Case> {
    let mut rng = crate::rng::chacha(seed);
    (0..count)
        .map(|i| {
            if i % 2 == 0 {
                Case::Dropout(DropoutCase::generate(&mut rng))
            } else {
                Case::Training(TrainingCase::generate(&mut rng))
            }
        })
        .collect()
}

/// Runs one case's batteries on nncheck's own core: a dropout case runs the
/// dropout battery, then the noise battery and the noise layers in frozen
/// models at its rate and seed; a training case runs the model battery, then
/// the checks of the core's internals.
pub fn run_case(case: &Case, alpha: f64) -> Vec<CheckReport> {
    run_case_with(&Batteries::default(), case, alpha)
}

/// [`run_case`] with `batteries` in place of the standard ones.
pub fn run_case_with(batteries: &Batteries, case: &Case, alpha: f64) -> Vec<CheckReport> {
    let settings = Settings { alpha };
    match case {
        Case::Dropout(c) => {
            let mut reports = batteries.dropout.run(&CoreDropout, c, &settings);
            reports.extend(batteries.noise.run(&CoreNoise, c, &settings));
            let label = format!("noise layers({}) seed {}", c.rate, c.seed);
            reports.extend(batteries.core_noise.run(c, &settings, &label));
            reports
        }
        Case::Training(c) => {
            let mut reports = batteries.model.run(&CoreModel, c, &settings);
            let label = crate::check::training::core::label(c);
            reports.extend(batteries.core_training.run(c, &settings, &label));
            reports
        }
    }
}

/// Runs the cases of `shard` out of the first `count` that `seed` generates, in
/// order, and returns every record. `progress` is called after each case with
/// its index.
pub fn run(
    seed: u64,
    count: usize,
    alpha: f64,
    shard: Shard,
    progress: impl FnMut(usize),
) -> Vec<CheckReport> {
    run_with(&Batteries::default(), seed, count, alpha, shard, progress)
}

/// [`run`] with `batteries` in place of the standard ones: how a check of a
/// project's own runs in `verify`.
pub fn run_with(
    batteries: &Batteries,
    seed: u64,
    count: usize,
    alpha: f64,
    shard: Shard,
    mut progress: impl FnMut(usize),
) -> Vec<CheckReport> {
    let all = cases(seed, count);
    let mut reports = Vec::new();
    for i in shard.range(count) {
        reports.extend(run_case_with(batteries, &all[i], alpha));
        progress(i);
    }
    reports
}

/// Shard `index` of `count` (1-based, written `k/N`): a contiguous block of the cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// The whole run, `1/1`.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Shard `index` of `count`; `1 <= index <= count` or an error saying which is off.
    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// The indices this shard runs out of `total` cases. Sizes differ by at most
    /// one, and the ranges of `1/N` .. `N/N` tile `0..total` in order.
    ///
    /// ```
    /// use nncheck::check::run::verify::Shard;
    /// assert_eq!(Shard::new(2, 3).unwrap().range(10), 3..6);
    /// assert_eq!(Shard::new(3, 3).unwrap().range(10), 6..10);
    /// ```
    pub fn range(&self, total: usize) -> Range<usize> {
        // u128: index * total cannot overflow for any usize total.
        let bound = |k: usize| (k as u128 * total as u128 / self.count as u128) as usize;
        bound(self.index - 1)..bound(self.index)
    }
}

/// A shard that is not `k/N` with `1 <= k <= N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not two whole numbers separated by `/`.
    #[error("shard `{0}` is not of the form k/N (for example 1/4)")]
    Syntax(String),
    /// The numbers are out of range.
    #[error("shard {index}/{count} is out of range: it needs 1 <= k <= N")]
    OutOfRange {
        /// The shard's number, k.
        index: usize,
        /// The number of shards, N.
        count: usize,
    },
}

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(syntax)?;
        let k = k.trim().parse().map_err(|_| syntax())?;
        let n = n.trim().parse().map_err(|_| syntax())?;
        Shard::new(k, n)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard prints as it is written on the command line, and reads back.
    #[test]
    fn a_shard_prints_as_k_slash_n_and_parses_back() {
        let shard = Shard::new(2, 24).unwrap();
        assert_eq!(shard.to_string(), "2/24");
        assert_eq!(shard.to_string().parse::<Shard>().unwrap(), shard);
    }

    /// The cases alternate: dropout at even indices, training at odd ones.
    #[test]
    fn cases_alternate_dropout_and_training() {
        let kinds: Vec<bool> = cases(11, 8)
            .iter()
            .map(|c| matches!(c, Case::Dropout(_)))
            .collect();
        assert_eq!(kinds, [true, false, true, false, true, false, true, false]);
    }
}
