//! The whole battery of checks on one generated configuration.
//!
//! `nncheck verify`, `nncheck conform` and the property tests all call these
//! functions, so every invariant is checked in exactly one way:
//! [`dropout_battery`] for SPEC §2 and [`training_battery`] for SPEC §3–§4 take a
//! subject (nncheck's own core, another framework through an adapter, or a
//! deliberately broken twin); [`noise_battery`] for the other train-only layers
//! of SPEC §2b and [`core_training_battery`] for what only the core's internals
//! show run on the core.

use super::alpha_dropout::{
    check_alpha_dropout_drop_rate, check_alpha_dropout_exact, check_alpha_dropout_moments,
};
use super::batch_norm::check_frozen_batchnorm_inference_mode;
use super::cases::{DropoutCase, TrainingCase};
use super::conventions::{
    catching, check_dropped_negative_sign, check_invalid_rates_refused, check_rate_one,
    check_special_values,
};
use super::determinism::check_predict_deterministic;
use super::dropout::{
    check_backward_uses_forward_mask, check_counters_match_output, check_eval_identity,
    check_long_range_independent, check_neighbours_independent, check_noise_shape_cells_shared,
    check_per_position_uniformity, check_successive_calls_independent, check_survivors_and_recipe,
    check_train_drop_rate, LONG_RANGE_UNITS,
};
use super::frozen::{
    check_freeze_is_recursive, check_frozen_optimizer_slots_unchanged,
    check_frozen_weights_unchanged, check_gradient_passes_frozen_layer,
    check_trainable_weights_changed,
};
use super::frozen_subject::{
    check_freeze_is_recursive as subject_freeze_is_recursive, check_frozen_base,
    check_frozen_batchnorm_inference_mode as subject_frozen_batchnorm_inference_mode,
    check_frozen_model_dropout_active_in_fit as subject_dropout_active_in_fit,
    check_gradient_passes_frozen_layer as subject_gradient_passes_frozen_layer,
    check_inference_deterministic, check_only_steps_change_weights, check_unfreeze_takes_effect,
};
use super::model_subject::{ModelSpec, ModelSubject};
use super::noise::{
    check_eval_identity_bits, check_gaussian_dropout, check_gaussian_noise, special_values_f32,
};
use super::noise_in_frozen_fit::check_noise_layer_in_frozen_fit;
use super::phase::{
    check_dropout_inactive_in_predict_evaluate, check_frozen_model_dropout_active_in_fit,
    check_pin_stays_in_subtree,
};
use super::report::CheckReport;
use super::seeding::{check_reseed_reproducible, check_seeded_masks_reproducible};
use super::snapshot::ModelSnapshot;
use super::spatial_dropout::{check_spatial_channel_drop_rate, check_spatial_channels_exact};
use super::subject::{BoxedDropout, Capability, DropoutSubject};
use super::LayerAsDropout;
use crate::error::Result;
use crate::fit::FitConfig;
use crate::layer::Layer;
use crate::layers::{
    AlphaDropout, BatchNormalization, DataFormat, Dense, Dropout, GaussianDropout, GaussianNoise,
    ReLU, SpatialDropout,
};
use crate::model::graph::Functional;
use crate::model::sequential::Sequential;
use crate::model::Model;
use crate::phase::Phase;
use ndarray::ArrayD;

pub use super::inputs::{nonzero_input, positive_input, special_input};

/// Builds a layer of `subject`, seeded where the subject can seed at build
/// (one that cannot answers [`Error::Unsupported`](crate::Error::Unsupported)
/// and is built unseeded); a panic becomes an error.
pub fn build_layer(subject: &dyn DropoutSubject, rate: f64, seed: u64) -> Result<BoxedDropout> {
    catching(&subject.name(), || match subject.build(rate, Some(seed)) {
        Err(crate::Error::Unsupported {
            capability: Capability::Seeding,
        }) => subject.build(rate, None),
        other => other,
    })
}

/// Every SPEC §2 check on one configuration of `subject`'s dropout.
///
/// Invariants are judged on strictly positive inputs (any zero is a drop), so a
/// sign convention never reads as a wrong rate; special values and the other
/// conventions are audited apart ([`super::conventions`]). A check that needs a
/// capability the subject lacks is reported not applicable. A panic of the
/// subject is caught and recorded as that check's failure.
///
/// ```
/// use nncheck::check::battery::dropout_battery;
/// use nncheck::check::cases::DropoutCase;
/// use nncheck::check::{all_pass, CoreDropout};
/// let case = DropoutCase { rate: 0.3, shape: vec![64, 4], seed: 5 };
/// assert!(all_pass(&dropout_battery(&CoreDropout, &case, 1e-9)));
/// ```
pub fn dropout_battery(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    alpha: f64,
) -> Vec<CheckReport> {
    let (rate, seed, shape) = (case.rate, case.seed, &case.shape[..]);
    let name = subject.name();
    let label = format!("{name} Dropout({rate}) {shape:?} seed {seed}");
    let x = positive_input(shape, seed ^ 1);
    let special = special_input(shape, seed ^ 2);
    let n = x.len().max(1);
    // At least 10^5 draws for the rate check, at most 10^6 per check.
    let calls = 100_000usize.div_ceil(n);
    let positions = x.len().min(4096);
    let flat = positive_input(&[positions], seed ^ 4);
    let pairs_input = positive_input(&[100_000], seed ^ 5);
    let long_range_input = positive_input(&[LONG_RANGE_UNITS], seed ^ 9);

    // Each check gets a fresh layer; a build error or a panic becomes its record.
    let mut reports = Vec::new();
    let with_layer =
        |check: &str, label: &str, rate: f64, f: &dyn Fn(BoxedDropout) -> Vec<CheckReport>| {
            guarded(&name, check, label, || build_layer(subject, rate, seed), f)
        };
    reports.extend(with_layer("drop_rate_binomial", &label, rate, &|mut l| {
        vec![check_train_drop_rate(&label, &mut l, &x, calls, alpha)]
    }));
    reports.extend(with_layer(
        "survivors_scaled_exactly",
        &label,
        rate,
        &|mut l| check_survivors_and_recipe(&label, &mut l, &x),
    ));
    reports.extend(with_layer(
        "special_values_kept_scaled",
        &label,
        rate,
        &|mut l| {
            check_special_values(
                &format!("{label} special values"),
                l.as_mut(),
                &[64, 64],
                seed ^ 2,
            )
        },
    ));
    reports.extend(with_layer("eval_is_identity", &label, rate, &|mut l| {
        vec![check_eval_identity(
            &format!("{label} special values"),
            &mut l,
            &special,
        )]
    }));
    let rate_zero = format!("{name} Dropout(0) {shape:?} train");
    reports.extend(with_layer("eval_is_identity", &rate_zero, 0.0, &|l| {
        vec![check_eval_identity(
            &rate_zero,
            &mut RunInTrain(l),
            &special,
        )]
    }));
    reports.extend(with_layer(
        "backward_uses_forward_mask",
        &label,
        rate,
        &|mut l| {
            vec![check_backward_uses_forward_mask(
                &label,
                &mut l,
                &x,
                &positive_input(shape, seed ^ 3),
            )]
        },
    ));
    reports.extend(with_layer(
        "dropped_negative_sign",
        &label,
        rate,
        &|mut l| vec![check_dropped_negative_sign(&label, l.as_mut(), seed ^ 6)],
    ));
    reports.extend(with_layer(
        "counters_match_output",
        &label,
        rate,
        &|mut l| vec![check_counters_match_output(&label, &mut l, &x)],
    ));
    reports.extend(check_rate_one(subject, shape, seed ^ 7));
    reports.push(check_invalid_rates_refused(subject, shape, seed ^ 8));
    // Statistics over positions and calls, on a slice of at most 4096 positions.
    reports.extend(with_layer(
        "per_position_uniformity",
        &label,
        rate,
        &|mut l| {
            vec![check_per_position_uniformity(
                &label, &mut l, &flat, 200, alpha,
            )]
        },
    ));
    reports.extend(with_layer(
        "successive_calls_independent",
        &label,
        rate,
        &|mut l| {
            vec![check_successive_calls_independent(
                &label,
                &mut l,
                &pairs_input,
                alpha,
            )]
        },
    ));
    reports.extend(with_layer(
        "long_range_independent",
        &label,
        rate,
        &|mut l| {
            vec![check_long_range_independent(
                &label,
                &mut l,
                &long_range_input,
                alpha,
            )]
        },
    ));
    reports.extend(with_layer(
        "neighbours_independent",
        &label,
        rate,
        &|mut l| {
            vec![check_neighbours_independent(
                &label,
                &mut l,
                &pairs_input,
                alpha,
            )]
        },
    ));
    reports.extend(with_layer(
        "reseeded_masks_reproducible",
        &label,
        rate,
        &|mut l| vec![check_reseed_reproducible(&label, &mut l, &x, seed, alpha)],
    ));
    // Two layers built with one seed draw one mask sequence, where the subject
    // seeds at build.
    reports.extend(guarded(
        &name,
        "seeded_masks_reproducible",
        &label,
        || {
            Ok((
                subject.build(rate, Some(seed))?,
                subject.build(rate, Some(seed))?,
            ))
        },
        |(mut first, mut twin)| {
            vec![check_seeded_masks_reproducible(
                &label, &mut first, &mut twin, &x, alpha,
            )]
        },
    ));
    // Axis 1 shares one mask cell; batch rows stay independent draws. An axis 1
    // of length 1 shares nothing, so the check could not fail there.
    if shape.len() >= 2 && shape[1] > 1 {
        let mut noise = vec![None; shape.len()];
        noise[1] = Some(1);
        reports.extend(guarded(
            &name,
            "noise_shape_cells_shared",
            &label,
            || subject.build_with_noise_shape(rate, Some(seed), &noise),
            |mut layer| vec![check_noise_shape_cells_shared(&label, &mut layer, &x, 1)],
        ));
    }
    reports
}

/// Builds what a check needs with `build` and runs the check with `run`; an
/// error or a panic of the subject in either becomes the record of `check`.
fn guarded<T>(
    subject: &str,
    check: &str,
    label: &str,
    build: impl FnOnce() -> Result<T>,
    run: impl FnOnce(T) -> Vec<CheckReport>,
) -> Vec<CheckReport> {
    catching(subject, build)
        .and_then(|built| catching(subject, || Ok(run(built))))
        .unwrap_or_else(|e| vec![CheckReport::from_error(check, label, &e)])
}

/// A built layer whose every call runs in `Train`, seen as an eval-identity
/// subject (rate 0 in `Train` is the identity, SPEC §2).
struct RunInTrain(BoxedDropout);

impl super::DropoutLike<f32> for RunInTrain {
    fn rate(&self) -> f64 {
        self.0.rate()
    }
    fn run(&mut self, x: ArrayD<f32>, _: Phase) -> Result<ArrayD<f32>> {
        self.0.run(x, Phase::Train)
    }
}

/// Every SPEC §2b check of the other train-only layers, at the case's rate (as
/// GaussianNoise's standard deviation too) and seed: eval identity on special
/// values, the Gaussian laws (mean, variance, Kolmogorov–Smirnov on 2·10^4
/// draws), AlphaDropout's exact values, drop count and moments, SpatialDropout's
/// whole channels and channel drop count, and each layer active in a frozen
/// model's `fit` and the identity in its `predict`.
///
/// Sizes are fixed rather than taken from the case, so every case costs the same
/// few milliseconds and the statistical checks keep their stated power.
pub fn noise_battery(case: &DropoutCase, alpha: f64) -> Result<Vec<CheckReport>> {
    let (rate, seed) = (case.rate, case.seed);
    let special = special_values_f32(8)
        .into_shape_with_order(vec![2, 2, 2, 16])
        .expect("128 values");
    let noise = || -> Result<GaussianNoise<f32>> { Ok(GaussianNoise::new(rate)?.with_seed(seed)) };
    let gdrop =
        || -> Result<GaussianDropout<f32>> { Ok(GaussianDropout::new(rate)?.with_seed(seed ^ 1)) };
    let alpha_drop =
        || -> Result<AlphaDropout<f32>> { Ok(AlphaDropout::new(rate)?.with_seed(seed ^ 2)) };
    let spatial = |format| -> Result<SpatialDropout<f32>> {
        Ok(SpatialDropout::new_2d(rate, format)?.with_seed(seed ^ 3))
    };
    let wrap = |layer: Box<dyn Layer<f32>>| LayerAsDropout::new(layer, rate);
    let subject = |name: &str| format!("{name}({rate}) seed {seed}");

    let mut reports = Vec::new();
    for (name, layer) in [
        ("GaussianNoise", Box::new(noise()?) as Box<dyn Layer<f32>>),
        ("GaussianDropout", Box::new(gdrop()?)),
        ("AlphaDropout", Box::new(alpha_drop()?)),
        (
            "SpatialDropout2D",
            Box::new(spatial(DataFormat::ChannelsLast)?),
        ),
    ] {
        reports.push(check_eval_identity_bits(
            &subject(name),
            &mut wrap(layer),
            &special,
        ));
    }
    reports.extend(check_gaussian_noise(
        &subject("GaussianNoise"),
        &mut wrap(Box::new(noise()?)),
        rate,
        20,
        1,
        alpha,
    ));
    reports.extend(check_gaussian_dropout(
        &subject("GaussianDropout"),
        &mut wrap(Box::new(gdrop()?)),
        rate,
        20,
        1,
        alpha,
    ));
    let x = nonzero_input(&[64, 64], seed ^ 4);
    reports.push(check_alpha_dropout_exact(
        &subject("AlphaDropout"),
        &mut wrap(Box::new(alpha_drop()?)),
        rate,
        &x,
    ));
    reports.push(check_alpha_dropout_drop_rate(
        &subject("AlphaDropout"),
        &mut wrap(Box::new(alpha_drop()?)),
        rate,
        &[100, 1000],
        1,
        alpha,
    ));
    reports.extend(check_alpha_dropout_moments(
        &subject("AlphaDropout"),
        &mut wrap(Box::new(alpha_drop()?)),
        rate,
        100_000,
        seed ^ 5,
        alpha,
    ));
    for (format, shape, axis) in [
        (DataFormat::ChannelsLast, [8, 4, 4, 16], 3),
        (DataFormat::ChannelsFirst, [8, 16, 4, 4], 1),
    ] {
        let name = format!("SpatialDropout2D {format:?}");
        reports.push(check_spatial_channels_exact(
            &subject(&name),
            &mut wrap(Box::new(spatial(format)?)),
            rate,
            &shape,
            axis,
        ));
        reports.push(check_spatial_channel_drop_rate(
            &subject(&name),
            &mut wrap(Box::new(spatial(format)?)),
            rate,
            &shape,
            axis,
            100,
            alpha,
        ));
    }
    for (name, layer) in [
        ("GaussianNoise", Box::new(noise()?) as Box<dyn Layer<f32>>),
        ("GaussianDropout", Box::new(gdrop()?)),
        ("AlphaDropout", Box::new(alpha_drop()?)),
        (
            "SpatialDropout1D",
            Box::new(SpatialDropout::new_1d(rate)?.with_seed(seed ^ 6)),
        ),
    ] {
        reports.push(check_noise_layer_in_frozen_fit(
            &subject(name),
            layer,
            seed ^ 7,
        ));
    }
    Ok(reports)
}

/// The base model the training battery freezes.
pub fn base_model(rate: f64, seed: u64) -> Result<Model<f32>> {
    Sequential::new("base")
        .add(Dense::new(16))
        .add(BatchNormalization::new())
        .add(ReLU::new())
        .add(Dropout::new(rate)?)
        .add(Dense::new(8))
        .build(&[6], Some(seed))
}

/// The model spec a training case asks every subject to build: the case's
/// rate, optimizer, weight decay and seed, a BatchNorm in the base, and the
/// optimizer's learning rate.
pub fn model_spec(case: &TrainingCase) -> ModelSpec {
    ModelSpec {
        rate: case.rate,
        batch_norm: true,
        optimizer: case.optimizer,
        learning_rate: case.optimizer.learning_rate(),
        weight_decay: case.weight_decay,
        seed: case.seed,
        steps: case.steps,
    }
}

/// Every frozen-model invariant of SPEC §3–§4 that a model subject can show
/// through [`TrainableModel`](super::model_subject::TrainableModel), on one
/// configuration. A panic of the subject is caught and recorded as a failure.
///
/// ```
/// use nncheck::check::battery::training_battery;
/// use nncheck::check::cases::TrainingCase;
/// use nncheck::check::{all_pass, model_subject::CoreModel};
/// let case = TrainingCase::generate(&mut nncheck::rng::chacha(3));
/// assert!(all_pass(&training_battery(&CoreModel, &case)));
/// ```
pub fn training_battery(subject: &dyn ModelSubject, case: &TrainingCase) -> Vec<CheckReport> {
    let spec = model_spec(case);
    let name = subject.name();
    let guarded = |check: &str, f: &dyn Fn() -> Vec<CheckReport>| {
        catching(&name, || Ok(f()))
            .unwrap_or_else(|e| vec![CheckReport::from_error(check, &name, &e)])
    };
    let mut reports = guarded("frozen_weights_unchanged", &|| {
        check_frozen_base(subject, &spec)
    });
    reports.extend(guarded("frozen_model_dropout_active_in_fit", &|| {
        vec![subject_dropout_active_in_fit(subject, &spec)]
    }));
    reports.extend(guarded("freeze_is_recursive", &|| {
        vec![subject_freeze_is_recursive(subject, &spec)]
    }));
    reports.extend(guarded("gradient_passes_frozen_layer", &|| {
        vec![subject_gradient_passes_frozen_layer(subject, &spec)]
    }));
    reports.extend(guarded("unfreeze_takes_effect_without_recompile", &|| {
        vec![check_unfreeze_takes_effect(subject, &spec)]
    }));
    reports.extend(guarded("inference_deterministic", &|| {
        vec![check_inference_deterministic(subject, &spec)]
    }));
    reports.extend(guarded("frozen_batchnorm_inference_mode", &|| {
        vec![subject_frozen_batchnorm_inference_mode(subject, &spec)]
    }));
    reports.extend(guarded("only_steps_change_weights", &|| {
        vec![check_only_steps_change_weights(subject, &spec)]
    }));
    reports
}

/// The SPEC §3–§5 checks that read nncheck's internals (layer flags, dropout
/// counters inside a model, optimizer records across `fit` epochs, phase pins,
/// BatchNorm moving statistics), on one configuration; they complement
/// [`training_battery`] for the core.
pub fn core_training_battery(case: &TrainingCase) -> Result<Vec<CheckReport>> {
    let subject = format!(
        "{:?} wd {} epochs {} batch {}{}",
        case.optimizer,
        case.weight_decay,
        case.epochs,
        case.batch_size,
        if case.freeze_mid_training {
            " frozen mid-training"
        } else {
            ""
        }
    );
    let (x, y) = super::frozen_subject::model_data(case.seed, 64);
    let fit = FitConfig {
        epochs: case.epochs,
        batch_size: case.batch_size,
        shuffle: true,
        seed: Some(case.seed),
    };
    let mut reports = Vec::new();

    // A frozen base under a trainable head.
    let base = base_model(case.rate, case.seed)?;
    let mut model = Sequential::new("model")
        .add(base)
        .add(Dense::new(1).named("head"))
        .build(&[6], Some(case.seed))?;
    case.optimizer.compile(&mut model, case.weight_decay)?;
    if case.freeze_mid_training {
        model.fit(
            &x,
            &y,
            &FitConfig {
                epochs: 1,
                ..fit.clone()
            },
        )?;
    }
    model.set_trainable_at("model/base", false)?;
    reports.push(check_freeze_is_recursive(&subject, &model, "model/base"));
    let before_fit = ModelSnapshot::of(&model);
    model.fit(&x, &y, &fit)?;
    let after_fit = ModelSnapshot::of(&model);
    let (base_before, base_after) = (
        before_fit.clone().subtree("model/base"),
        after_fit.clone().subtree("model/base"),
    );
    reports.push(check_frozen_weights_unchanged(
        &subject,
        &base_before,
        &base_after,
    ));
    reports.push(check_frozen_optimizer_slots_unchanged(
        &subject,
        &base_before,
        &base_after,
    ));
    reports.push(check_trainable_weights_changed(
        &format!("{subject} head"),
        &before_fit.subtree("model/head"),
        &after_fit.clone().subtree("model/head"),
    ));
    reports.push(check_frozen_model_dropout_active_in_fit(
        &subject,
        &base_before,
        &base_after,
    ));
    model.predict(&x)?;
    model.evaluate(&x, &y)?;
    reports.push(check_dropout_inactive_in_predict_evaluate(
        &subject,
        &base_after,
        &ModelSnapshot::of_subtree(&model, "model/base"),
    ));
    reports.push(check_frozen_batchnorm_inference_mode(
        &subject,
        &mut base_model(0.0, case.seed)?,
        &x,
    ));
    reports.push(check_predict_deterministic(&subject, &mut model, &x));
    reports.push(gradient_passes_frozen_layer(case, &subject, &x, &y, &fit)?);
    reports.push(pin_stays_in_its_subtree(case, &subject, &x, &y, &fit)?);
    Ok(reports)
}

/// A trainable layer before a frozen one still learns.
fn gradient_passes_frozen_layer(
    case: &TrainingCase,
    subject: &str,
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
    fit: &FitConfig,
) -> Result<CheckReport> {
    let mut model = Sequential::new("chain")
        .add(Dense::new(8).named("first"))
        .add(Dense::new(8).named("middle"))
        .add(Dense::new(1).named("last"))
        .build(&[6], Some(case.seed))?;
    model.set_trainable_at("chain/middle", false)?;
    case.optimizer.compile(&mut model, case.weight_decay)?;
    let mut train = |m: &mut Model<f32>| m.fit(x, y, fit).map(|_| ());
    Ok(check_gradient_passes_frozen_layer(
        subject,
        &mut model,
        &mut train,
        "chain/first",
        "chain/middle",
    ))
}

/// A base pinned to `Eval` does not silence a sibling's dropout.
fn pin_stays_in_its_subtree(
    case: &TrainingCase,
    subject: &str,
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
    fit: &FitConfig,
) -> Result<CheckReport> {
    let mut g = Functional::new("pinned", Some(case.seed));
    let input = g.input(&[6])?;
    let base = g.apply_pinned(base_model(case.rate, case.seed)?, input, Phase::Eval)?;
    let sibling = g.apply(Dropout::new(case.rate)?.named("sibling_dropout"), input)?;
    let joined = g.concat(&[base, sibling])?;
    let out = g.apply(Dense::new(1), joined)?;
    let mut model = g.build(out)?;
    case.optimizer.compile(&mut model, case.weight_decay)?;
    let mut train = |m: &mut Model<f32>| m.fit(x, y, fit).map(|_| ());
    Ok(check_pin_stays_in_subtree(
        subject,
        &mut model,
        &mut train,
        "pinned/base",
        "pinned/sibling_dropout",
    ))
}
