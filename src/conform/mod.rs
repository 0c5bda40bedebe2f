//! Conformance: nncheck's invariants run against any implementation, with a
//! scoreboard of verdicts per subject.
//!
//! A subject is a dropout ([`DropoutSubject`]) or a trainable model
//! ([`ModelSubject`]); nncheck's own core is the first of each, and the
//! adapters for other frameworks, each behind a cargo feature, follow:
//! candle-nn 0.11 (feature `candle`), burn 0.22 on its ndarray backend
//! (feature `burn`), and through an embedded Python (module `python`) Keras 3 on
//! JAX (feature `keras`) and PyTorch (feature `torch`). `nncheck conform` runs every subject compiled in through
//! the same batteries as `nncheck verify` ([`crate::check::run::battery`]) and prints
//! one row per invariant, one column per subject.

pub mod macros;
pub mod scoreboard;

#[cfg(feature = "burn")]
pub mod burn;
#[cfg(feature = "candle")]
pub mod candle;
#[cfg(feature = "keras")]
pub mod keras;
#[cfg(feature = "python")]
pub mod python;
#[cfg(feature = "torch")]
pub mod torch;

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
    /// Subjects compiled in that cannot run here, with why and what to do
    /// (a Python environment not made yet).
    pub unavailable: Vec<(String, String)>,
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
            .field("unavailable", &self.unavailable)
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
        unavailable: Vec::new(),
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
    #[cfg(feature = "keras")]
    match python::KERAS.ready() {
        Ok(()) => {
            use keras::{keras_model, KerasVariant};
            subjects.dropout.push(Box::new(keras::KerasDropout));
            subjects.noise.push(Box::new(keras::KerasNoise));
            subjects
                .models
                .push(Box::new(keras_model(KerasVariant::TrainableFalse)));
            subjects
                .models
                .push(Box::new(keras_model(KerasVariant::TrainingFalse)));
        }
        Err(why) => subjects.unavailable.push((keras::name(), why)),
    }
    #[cfg(feature = "torch")]
    match python::TORCH.ready() {
        Ok(()) => {
            use torch::{torch_model, TorchVariant};
            subjects.dropout.push(Box::new(torch::TorchDropout));
            subjects.noise.push(Box::new(torch::TorchNoise));
            subjects
                .models
                .push(Box::new(torch_model(TorchVariant::RequiresGrad)));
            subjects
                .models
                .push(Box::new(torch_model(TorchVariant::RequiresGradEval)));
        }
        Err(why) => subjects.unavailable.push((torch::name(), why)),
    }
    subjects
}

/// Adapters the build left out, by feature, so a scoreboard can say which
/// frameworks it did not run and how to add them.
pub fn missing_adapters() -> Vec<(&'static str, &'static str)> {
    [
        (cfg!(feature = "candle"), ("candle-nn 0.11", "candle")),
        (cfg!(feature = "burn"), ("burn 0.22", "burn")),
        (cfg!(feature = "keras"), ("Keras 3", "keras")),
        (cfg!(feature = "torch"), ("PyTorch 2", "torch")),
    ]
    .into_iter()
    .filter(|(compiled, _)| !compiled)
    .map(|(_, adapter)| adapter)
    .collect()
}
