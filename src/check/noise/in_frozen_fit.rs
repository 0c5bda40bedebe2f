//! The question of the project, asked of any train-only layer: inside a frozen
//! model, is it active during `fit`, and the identity in `predict`? (SPEC §1,
//! §2b: `trainable` decides what may change, the phase decides how a layer
//! behaves.)
//!
//! [`check_noise_layer_in_frozen_fit`] puts the layer under test in a frozen base
//! (a BatchNormalization, then the layer) beneath a trainable BatchNormalization
//! head, fits the whole model and predicts with it, and judges what the layer
//! itself did: an [`Observed`] wrapper counts, per call, the outputs whose bits
//! differ from the inputs. Samples have shape `[4, 8]` (steps, channels), which every
//! noise layer accepts, SpatialDropout1D included.

use super::harness::noise_label;
use crate::check::registry::{CoreNoiseCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::observed::Observed;
use crate::error::Result;
use crate::fit::FitConfig;
use crate::layer::Layer;
use crate::layers::BatchNormalization;
use crate::layers::{AlphaDropout, GaussianDropout, GaussianNoise, SpatialDropout};
use crate::loss::Loss;
use crate::model::sequential::Sequential;
use crate::optim::Adam;
use crate::phase::Phase;
use crate::rng::chacha;
use ndarray::ArrayD;
use rand::RngExt;
use std::sync::{Arc, Mutex};

/// Each noise layer, in a frozen base of a core model, active during `fit` and
/// the identity in `predict`: GaussianNoise, GaussianDropout, AlphaDropout and
/// SpatialDropout1D at the case's rate.
pub const CHECK: CoreNoiseCheck = CoreNoiseCheck {
    records: &[RecordSpec::invariant(
        "noise_layer_active_in_frozen_fit",
        "a noise layer inside a frozen base draws noise in every fit call and changes no bit in predict",
    )],
    needs: &[],
    judged: Judged::Exact,
    run,
};

fn run(_: &(), case: &DropoutCase, _: &Settings) -> Vec<CheckReport> {
    let (rate, seed) = (case.rate, case.seed);
    type Named = (&'static str, Box<dyn Layer<f32>>);
    let layers = || -> Result<Vec<Named>> {
        Ok(vec![
            (
                "GaussianNoise",
                Box::new(GaussianNoise::new(rate)?.with_seed(seed)),
            ),
            (
                "GaussianDropout",
                Box::new(GaussianDropout::new(rate)?.with_seed(seed ^ 1)),
            ),
            (
                "AlphaDropout",
                Box::new(AlphaDropout::new(rate)?.with_seed(seed ^ 2)),
            ),
            (
                "SpatialDropout1D",
                Box::new(SpatialDropout::new_1d(rate)?.with_seed(seed ^ 6)),
            ),
        ])
    };
    match layers() {
        Ok(layers) => layers
            .into_iter()
            .map(|(name, layer)| {
                check_noise_layer_in_frozen_fit(&noise_label(name, case), layer, seed ^ 7)
            })
            .collect(),
        Err(e) => vec![CheckReport::errored(
            CHECK.id(),
            &noise_label("noise layers", case),
            e,
        )],
    }
}

/// Per-phase tallies of how many outputs differed from their inputs in bits.
#[derive(Debug, Clone, Copy, Default)]
struct Changes {
    train_seen: u64,
    train_changed: u64,
    eval_seen: u64,
    eval_changed: u64,
}

/// Fits a model whose frozen base holds `layer` and predicts with it; passes when
/// the layer drew noise during `fit` (train calls counted by its random state,
/// and outputs that differ from their inputs) and changed no bit in `predict`.
///
/// `subject` names the layer in the report; `seed` fixes data, model and shuffle.
///
/// ```
/// use nncheck::check::noise::in_frozen_fit::check_noise_layer_in_frozen_fit;
/// use nncheck::GaussianNoise;
/// let r = check_noise_layer_in_frozen_fit("GaussianNoise(0.3)", Box::new(GaussianNoise::new(0.3).unwrap()), 1);
/// assert!(r.pass, "{}", r.line());
/// ```
pub fn check_noise_layer_in_frozen_fit(
    subject: &str,
    layer: Box<dyn Layer<f32>>,
    seed: u64,
) -> CheckReport {
    const CHECK: &str = "noise_layer_active_in_frozen_fit";
    let changes = Arc::new(Mutex::new(Changes::default()));
    let tally = Arc::clone(&changes);
    let counted = Observed::new(
        layer,
        Box::new(move |phase, x: &ArrayD<f32>, y: &ArrayD<f32>| {
            let changed = x
                .iter()
                .zip(y.iter())
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count() as u64;
            let mut c = tally.lock().expect("changes lock");
            match phase {
                Phase::Train => {
                    c.train_seen += x.len() as u64;
                    c.train_changed += changed;
                }
                Phase::Eval => {
                    c.eval_seen += x.len() as u64;
                    c.eval_changed += changed;
                }
            }
        }),
    );
    let run = || -> Result<(u64, u64)> {
        let mut base = Sequential::<f32>::new("frozen_base")
            .add(BatchNormalization::new())
            .add(counted)
            .build(&[4, 8], Some(seed))?;
        base.freeze();
        let mut model = Sequential::<f32>::new("model")
            .add(base)
            .add(BatchNormalization::new().named("head"))
            .build(&[4, 8], Some(seed ^ 1))?;
        model.compile(Adam::new(1e-2), Loss::MeanSquaredError)?;
        let mut rng = chacha(seed ^ 2);
        let x = ArrayD::from_shape_simple_fn(vec![64, 4, 8], || rng.random_range(0.5f32..2.0));
        let y = x.mapv(|v| 0.5 * v);
        let calls = |m: &crate::model::Model<f32>| -> u64 {
            m.noise_stats().iter().map(|(_, s)| s.train_calls).sum()
        };
        let before_fit = calls(&model);
        model.fit(
            &x,
            &y,
            &FitConfig {
                epochs: 2,
                batch_size: 16,
                shuffle: true,
                seed: Some(seed ^ 3),
            },
        )?;
        let after_fit = calls(&model);
        model.predict(&x)?;
        let fit_calls = after_fit - before_fit;
        let predict_calls = calls(&model) - after_fit;
        Ok((fit_calls, predict_calls))
    };
    let (fit_calls, predict_calls) = match run() {
        Ok(counts) => counts,
        Err(e) => return CheckReport::errored(CHECK, subject, e),
    };
    let c = *changes.lock().expect("changes lock");
    // Train calls of the layer happen only in fit here, so the train tallies are fit's.
    CheckReport::exact(
        CHECK,
        subject,
        format!(
            "fit: {fit_calls} noise calls, {} of {} outputs changed; predict: {predict_calls} noise calls, {} of {} outputs changed",
            c.train_changed, c.train_seen, c.eval_changed, c.eval_seen
        ),
        "fit: calls > 0 and changed > 0; predict: 0 calls and 0 changed".into(),
        fit_calls > 0
            && c.train_changed > 0
            && predict_calls == 0
            && c.eval_seen > 0
            && c.eval_changed == 0,
    )
}
