//! Conformance: nncheck's invariants run against any implementation, with a
//! scoreboard of verdicts per subject.
//!
//! A subject is a dropout ([`DropoutSubject`]) or a trainable model
//! ([`ModelSubject`]); nncheck's own core is the first of each, and the
//! adapters for other frameworks, each behind a cargo feature, follow:
//! candle-nn 0.11 (feature `candle`) and burn 0.22 on its ndarray backend
//! (feature `burn`). `nncheck conform` runs every subject compiled in through
//! the same batteries as `nncheck verify` ([`crate::check::run::battery`]) and prints
//! one row per invariant, one column per subject.

pub mod macros;
pub mod scoreboard;

#[cfg(feature = "burn")]
pub mod burn;
#[cfg(feature = "candle")]
pub mod candle;

pub use crate::check::run::expect;
pub use crate::check::run::{OptimizerCase, Sweep};
pub use scoreboard::{Cell, Record, Row, Scoreboard};

use crate::check::subjects::{
    CoreDropout, CoreModel, CoreNoise, DropoutSubject, ModelSubject, NoiseSubject,
};

/// The subjects a scoreboard runs.
pub struct Subjects {
    /// Dropout implementations, nncheck's first.
    pub dropout: Vec<Box<dyn DropoutSubject>>,
    /// Implementations of the other train-only layers, nncheck's first.
    pub noise: Vec<Box<dyn NoiseSubject>>,
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
                "noise",
                &self.noise.iter().map(|s| s.name()).collect::<Vec<_>>(),
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
        noise: vec![Box::new(CoreNoise)],
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
