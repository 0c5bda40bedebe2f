//! Conformance: nncheck's invariants run against any implementation, with a
//! scoreboard of verdicts per subject.
//!
//! A subject is a dropout ([`DropoutSubject`]) or a trainable model
//! ([`ModelSubject`]); nncheck's own core is the first of each, and the
//! adapters for other frameworks, each behind a cargo feature, follow:
//! candle-nn 0.11 (feature `candle`) and burn 0.22 on its ndarray backend
//! (feature `burn`). `nncheck conform` runs every subject compiled in through
//! the same batteries as `nncheck verify` ([`crate::check::battery`]) and prints
//! one row per invariant, one column per subject.

pub mod expect;
pub mod macros;
pub mod scoreboard;
pub mod sweep;

#[cfg(feature = "burn")]
pub mod burn;
#[cfg(feature = "candle")]
pub mod candle;

pub use scoreboard::{Cell, Record, Row, Scoreboard};
pub use sweep::{OptimizerCase, Sweep};

use crate::check::model_subject::{CoreModel, ModelSubject};
use crate::check::subject::{CoreDropout, DropoutSubject};

/// The subjects a scoreboard runs.
pub struct Subjects {
    /// Dropout implementations, nncheck's first.
    pub dropout: Vec<Box<dyn DropoutSubject>>,
    /// Trainable-model implementations, nncheck's first.
    pub models: Vec<Box<dyn ModelSubject>>,
}

impl std::fmt::Debug for Subjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subjects")
            .field(
                "dropout",
                &self.dropout.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field(
                "models",
                &self.models.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// nncheck's core and every adapter compiled in.
pub fn compiled_subjects() -> Subjects {
    #[allow(unused_mut)]
    let mut subjects = Subjects {
        dropout: vec![Box::new(CoreDropout)],
        models: vec![Box::new(CoreModel)],
    };
    #[cfg(feature = "candle")]
    {
        subjects.dropout.push(Box::new(candle::CandleDropout));
        subjects.models.push(Box::new(candle::CandleModel));
    }
    #[cfg(feature = "burn")]
    {
        subjects.dropout.push(Box::new(burn::BurnDropout));
        subjects
            .models
            .push(Box::new(burn::BurnModel::new(burn::Freezing::Freeze)));
        subjects
            .models
            .push(Box::new(burn::BurnModel::new(burn::Freezing::NoGrad)));
    }
    subjects
}

/// Adapters the build left out, by feature, so a scoreboard can say which
/// frameworks it did not run and how to add them.
pub fn missing_adapters() -> Vec<(&'static str, &'static str)> {
    [
        (cfg!(feature = "candle"), ("candle-nn 0.11", "candle")),
        (cfg!(feature = "burn"), ("burn 0.22", "burn")),
    ]
    .into_iter()
    .filter(|(compiled, _)| !compiled)
    .map(|(_, adapter)| adapter)
    .collect()
}
