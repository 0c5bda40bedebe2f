//! The whole battery of checks on one generated configuration.
//!
//! `nncheck verify` and the property tests both call these functions, so every
//! invariant is checked in exactly one way: [`dropout_battery`] for SPEC §2,
//! [`noise_battery`] for the other train-only layers of SPEC §2b, and
//! [`training_battery`] for SPEC §3–§5.

use super::alpha_dropout::{
    check_alpha_dropout_drop_rate, check_alpha_dropout_exact, check_alpha_dropout_moments,
};
use super::batch_norm::check_frozen_batchnorm_inference_mode;
use super::cases::{DropoutCase, TrainingCase};
use super::determinism::check_predict_deterministic;
use super::dropout::{
    check_backward_uses_forward_mask, check_eval_identity, check_neighbours_independent,
    check_noise_shape_cells_shared, check_per_position_uniformity,
    check_rate_one_all_positive_zero, check_successive_calls_independent, check_train_call_exact,
    check_train_drop_rate,
};
use super::frozen::{
    check_freeze_is_recursive, check_frozen_optimizer_slots_unchanged,
    check_frozen_weights_unchanged, check_gradient_passes_frozen_layer,
    check_trainable_weights_changed,
};
use super::noise::{
    check_eval_identity_bits, check_gaussian_dropout, check_gaussian_noise, special_values_f32,
};
use super::noise_in_frozen_fit::check_noise_layer_in_frozen_fit;
use super::phase::{
    check_dropout_inactive_in_predict_evaluate, check_frozen_model_dropout_active_in_fit,
    check_pin_stays_in_subtree,
};
use super::report::CheckReport;
use super::seeding::check_seeded_masks_reproducible;
use super::snapshot::ModelSnapshot;
use super::spatial_dropout::{check_spatial_channel_drop_rate, check_spatial_channels_exact};
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
use crate::rng::chacha;
use ndarray::ArrayD;
use rand::RngExt;

/// Nonzero finite values, so a `+0.0` output can only be a drop.
pub fn nonzero_input(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = chacha(seed);
    ArrayD::from_shape_simple_fn(shape.to_vec(), || {
        let v: f32 = rng.random_range(0.01f32..100.0);
        if rng.random_bool(0.5) {
            -v
        } else {
            v
        }
    })
}

/// Values that break careless implementations: NaN (with a payload), both
/// infinities, -0.0, subnormals, extremes.
pub fn special_input(shape: &[usize], seed: u64) -> ArrayD<f32> {
    const SPECIAL: [f32; 9] = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        1e-45,
        -1e-40,
        f32::MAX,
        f32::MIN,
        1.0,
    ];
    let mut rng = chacha(seed);
    let payload_nan = f32::from_bits(0x7fc0_1234);
    ArrayD::from_shape_simple_fn(shape.to_vec(), || match rng.random_range(0..10) {
        9 => payload_nan,
        i => SPECIAL[i],
    })
}

/// Every SPEC §2 check on one configuration.
pub fn dropout_battery(case: &DropoutCase, alpha: f64) -> Result<Vec<CheckReport>> {
    let subject = format!("Dropout({}) {:?} seed {}", case.rate, case.shape, case.seed);
    let layer = || Dropout::<f32>::new(case.rate).map(|d| d.with_seed(case.seed));
    let x = nonzero_input(&case.shape, case.seed ^ 1);
    let special = special_input(&case.shape, case.seed ^ 2);
    let n = x.len().max(1);
    // At least 10^5 draws for the rate check, at most 10^6 per check.
    let calls = 100_000usize.div_ceil(n);
    let mut reports = vec![
        check_train_drop_rate(&subject, &mut layer()?, &x, calls, alpha),
        check_train_call_exact(&subject, &mut layer()?, &x),
        check_train_call_exact(
            &format!("{subject} special values"),
            &mut layer()?,
            &special,
        ),
        check_eval_identity(
            &format!("{subject} special values"),
            &mut layer()?,
            &special,
        ),
        check_eval_identity(
            &format!("{subject} rate 0 train"),
            &mut RateZeroInTrain(Dropout::new(0.0)?),
            &special,
        ),
        check_backward_uses_forward_mask(
            &subject,
            &mut layer()?,
            &x,
            &nonzero_input(&case.shape, case.seed ^ 3),
        ),
    ];
    reports.push(check_rate_one_all_positive_zero(
        &subject,
        &mut Dropout::<f32>::new(1.0)?,
        &special,
    ));
    // Statistics over positions and calls, on a slice of at most 4096 positions.
    let positions = x.len().min(4096);
    let flat = nonzero_input(&[positions], case.seed ^ 4);
    reports.push(check_per_position_uniformity(
        &subject,
        &mut layer()?,
        &flat,
        200,
        alpha,
    ));
    let pairs_input = nonzero_input(&[100_000], case.seed ^ 5);
    reports.push(check_successive_calls_independent(
        &subject,
        &mut layer()?,
        &pairs_input,
        alpha,
    ));
    reports.push(check_neighbours_independent(
        &subject,
        &mut layer()?,
        &pairs_input,
        alpha,
    ));
    reports.push(check_seeded_masks_reproducible(
        &subject,
        &mut layer()?,
        &mut layer()?,
        &x,
        alpha,
    ));
    // Axis 1 shares one mask cell; batch rows stay independent draws. An axis 1
    // of length 1 shares nothing, so the check could not fail there.
    if case.shape.len() >= 2 && case.shape[1] > 1 {
        let mut noise = vec![None; case.shape.len()];
        noise[1] = Some(1);
        reports.push(check_noise_shape_cells_shared(
            &subject,
            &mut layer()?.with_noise_shape(noise),
            &x,
            1,
        ));
    }
    Ok(reports)
}

/// A dropout at rate 0 run in `Train`, seen as an eval-identity subject.
struct RateZeroInTrain(Dropout<f32>);

impl super::DropoutLike<f32> for RateZeroInTrain {
    fn rate(&self) -> f64 {
        0.0
    }
    fn run(&mut self, x: ArrayD<f32>, _: Phase) -> Result<ArrayD<f32>> {
        self.0.apply(x, Phase::Train)
    }
    fn run_backward(&mut self, dy: ArrayD<f32>) -> Result<ArrayD<f32>> {
        Ok(self.0.backward(dy, true)?.expect("requested"))
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

fn data(seed: u64, samples: usize) -> (ArrayD<f32>, ArrayD<f32>) {
    let x = nonzero_input(&[samples, 6], seed).mapv(|v| v / 100.0);
    let y = ArrayD::from_shape_fn(vec![samples, 1], |i| x[[i[0], 0]] - 0.5 * x[[i[0], 1]]);
    (x, y)
}

/// Every SPEC §3–§5 check on one configuration.
pub fn training_battery(case: &TrainingCase) -> Result<Vec<CheckReport>> {
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
    let (x, y) = data(case.seed, 64);
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
