//! The checks of SPEC §3–§5 that read nncheck's own internals (layer flags,
//! dropout counters inside a model, optimizer records across `fit` epochs,
//! phase pins, BatchNorm moving statistics), on a training case; they
//! complement the model-subject checks for the core, each declared as a
//! [`CoreTrainingCheck`] value, listed in [`CHECKS`](super::CORE_CHECKS).
//!
//! Most of them judge one scenario ([`frozen_fit`]): a frozen base under a
//! trainable head, fitted with the case's optimizer, epochs and batch size,
//! after an epoch with everything trainable where the case asks for one.

use super::batch_norm::check_frozen_batchnorm_inference_mode;
use super::determinism::check_predict_deterministic;
use super::frozen::{
    check_freeze_is_recursive, check_frozen_optimizer_slots_unchanged,
    check_frozen_weights_unchanged, check_gradient_passes_frozen_layer,
    check_trainable_weights_changed,
};
use super::harness::model_data;
use super::phase::{
    check_dropout_inactive_in_predict_evaluate, check_frozen_model_dropout_active_in_fit,
    check_pin_stays_in_subtree,
};
use super::snapshot::ModelSnapshot;
use crate::check::registry::{CoreTrainingCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::TrainingCase;
use crate::error::Result;
use crate::fit::FitConfig;
use crate::layers::{BatchNormalization, Dense, Dropout, ReLU};
use crate::model::graph::Functional;
use crate::model::sequential::Sequential;
use crate::model::Model;
use crate::phase::Phase;
use ndarray::ArrayD;

/// The base model the core checks freeze: Dense(16) → BatchNorm → ReLU →
/// Dropout(rate) → Dense(8) on 6 inputs.
pub fn base_model(rate: f64, seed: u64) -> Result<Model<f32>> {
    Sequential::new("base")
        .add(Dense::new(16))
        .add(BatchNormalization::new())
        .add(ReLU::new())
        .add(Dropout::new(rate)?)
        .add(Dense::new(8))
        .build(&[6], Some(seed))
}

/// How a core record names its case: `AdamW wd 0.01 epochs 2 batch 16`.
pub fn label(case: &TrainingCase) -> String {
    format!(
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
    )
}

fn fit_config(case: &TrainingCase) -> FitConfig {
    FitConfig {
        epochs: case.epochs,
        batch_size: case.batch_size,
        shuffle: true,
        seed: Some(case.seed),
    }
}

/// The frozen-fit scenario: the model (fitted, its base frozen), and its
/// snapshots before and after the fit.
pub struct FrozenFit {
    /// The model, after the fit.
    pub model: Model<f32>,
    /// Every weight, slot and counter before the fit, after the freeze.
    pub before: ModelSnapshot,
    /// The same after the fit.
    pub after: ModelSnapshot,
}

impl std::fmt::Debug for FrozenFit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrozenFit").finish_non_exhaustive()
    }
}

/// A frozen base under a trainable head, built and frozen as `case` says;
/// `fit` tells whether to fit it after the freeze.
fn frozen_model(case: &TrainingCase) -> Result<Model<f32>> {
    let (x, y) = model_data(case.seed, 64);
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
                ..fit_config(case)
            },
        )?;
    }
    model.set_trainable_at("model/base", false)?;
    Ok(model)
}

/// Builds the frozen model of `case` and fits it.
pub fn frozen_fit(case: &TrainingCase) -> Result<FrozenFit> {
    let (x, y) = model_data(case.seed, 64);
    let mut model = frozen_model(case)?;
    let before = ModelSnapshot::of(&model);
    model.fit(&x, &y, &fit_config(case))?;
    let after = ModelSnapshot::of(&model);
    Ok(FrozenFit {
        model,
        before,
        after,
    })
}

/// Runs `judge` on the frozen-fit scenario; an error becomes `check`'s record.
fn on_frozen_fit(
    case: &TrainingCase,
    check: &str,
    judge: impl FnOnce(&str, FrozenFit) -> Result<CheckReport>,
) -> Vec<CheckReport> {
    let subject = label(case);
    vec![frozen_fit(case)
        .and_then(|f| judge(&subject, f))
        .unwrap_or_else(|e| CheckReport::errored(check, &subject, e))]
}

/// Freezing a model sets every layer's effective flag.
pub const FLAGS: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "freeze_sets_every_flag",
        "freezing a model makes every layer inside it effectively frozen (the AND of the path)",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |_, case, _| {
        let subject = label(case);
        vec![frozen_model(case)
            .map(|m| check_freeze_is_recursive(&subject, &m, "model/base"))
            .unwrap_or_else(|e| CheckReport::errored("freeze_sets_every_flag", &subject, e))]
    },
};

/// The frozen base bit-identical after `fit`.
pub const FROZEN_WEIGHTS: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "frozen_weights_unchanged_in_fit",
        "a frozen base's weights and BatchNorm statistics are bit-identical after fit (SGD, momentum, Nesterov, Adam, AdamW, weight decay, frozen mid-training)",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |_, case, _| {
        on_frozen_fit(case, "frozen_weights_unchanged_in_fit", |s, f| {
            Ok(check_frozen_weights_unchanged(
                s,
                &f.before.subtree("model/base"),
                &f.after.subtree("model/base"),
            ))
        })
    },
};

/// The frozen base's optimizer records unchanged by `fit`.
pub const FROZEN_SLOTS: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "frozen_optimizer_slots_unchanged_in_fit",
        "a frozen base's optimizer slots and step counts are bit-identical after fit",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |_, case, _| {
        on_frozen_fit(case, "frozen_optimizer_slots_unchanged_in_fit", |s, f| {
            Ok(check_frozen_optimizer_slots_unchanged(
                s,
                &f.before.subtree("model/base"),
                &f.after.subtree("model/base"),
            ))
        })
    },
};

/// The head moved in `fit`.
pub const TRAINABLE_MOVED: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "trainable_weights_changed_in_fit",
        "the trainable head moves in fit",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |_, case, _| {
        on_frozen_fit(case, "trainable_weights_changed_in_fit", |s, f| {
            Ok(check_trainable_weights_changed(
                &format!("{s} head"),
                &f.before.subtree("model/head"),
                &f.after.subtree("model/head"),
            ))
        })
    },
};

/// The frozen base's dropout counted drops during `fit`.
pub const DROPOUT_COUNTED: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "frozen_model_dropout_counted_in_fit",
        "the dropout inside a frozen base counts train calls and drops during fit",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |_, case, _| {
        on_frozen_fit(case, "frozen_model_dropout_counted_in_fit", |s, f| {
            Ok(check_frozen_model_dropout_active_in_fit(
                s,
                &f.before.subtree("model/base"),
                &f.after.subtree("model/base"),
            ))
        })
    },
};

/// Neither `predict` nor `evaluate` calls the dropout in train mode.
pub const INACTIVE_IN_PREDICT: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "dropout_inactive_in_predict_evaluate",
        "predict and evaluate leave the dropout's train-call counters where fit left them",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |_, case, _| {
        on_frozen_fit(case, "dropout_inactive_in_predict_evaluate", |s, mut f| {
            let (x, y) = model_data(case.seed, 64);
            f.model.predict(&x)?;
            f.model.evaluate(&x, &y)?;
            Ok(check_dropout_inactive_in_predict_evaluate(
                s,
                &f.after.subtree("model/base"),
                &ModelSnapshot::of_subtree(&f.model, "model/base"),
            ))
        })
    },
};

/// A frozen BatchNorm's train-phase call is its inference call.
pub const BATCHNORM: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "frozen_batchnorm_train_call_is_inference",
        "a frozen BatchNorm's Train-phase output equals predict's bit for bit, and its statistics stay",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |_, case, _| {
        let subject = label(case);
        let (x, _) = model_data(case.seed, 64);
        vec![base_model(0.0, case.seed)
            .map(|mut m| check_frozen_batchnorm_inference_mode(&subject, &mut m, &x))
            .unwrap_or_else(|e| {
                CheckReport::errored("frozen_batchnorm_train_call_is_inference", &subject, e)
            })]
    },
};

/// `predict` twice gives the same bits and moves nothing.
pub const PREDICT_DETERMINISTIC: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "predict_deterministic",
        "predict twice gives the same bits and moves no weight",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: |_, case, _| {
        on_frozen_fit(case, "predict_deterministic", |s, mut f| {
            let (x, _) = model_data(case.seed, 64);
            Ok(check_predict_deterministic(s, &mut f.model, &x))
        })
    },
};

/// A trainable layer before a frozen one still learns.
pub const GRADIENT_PASSES: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "gradient_passes_frozen_layer_in_fit",
        "a trainable layer before a frozen one still learns in fit",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: run_gradient_passes,
};

/// A pinned phase stays in its subtree.
pub const PIN_IN_SUBTREE: CoreTrainingCheck = CoreTrainingCheck {
    records: &[RecordSpec::invariant(
        "pin_stays_in_subtree",
        "a base pinned to Eval does not silence a sibling's dropout",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: run_pin,
};

fn run_gradient_passes(_: &(), case: &TrainingCase, _: &Settings) -> Vec<CheckReport> {
    let subject = label(case);
    let (x, y) = model_data(case.seed, 64);
    let fit = fit_config(case);
    let run = || -> Result<CheckReport> {
        let mut model = Sequential::new("chain")
            .add(Dense::new(8).named("first"))
            .add(Dense::new(8).named("middle"))
            .add(Dense::new(1).named("last"))
            .build(&[6], Some(case.seed))?;
        model.set_trainable_at("chain/middle", false)?;
        case.optimizer.compile(&mut model, case.weight_decay)?;
        let mut train = |m: &mut Model<f32>| m.fit(&x, &y, &fit).map(|_| ());
        Ok(check_gradient_passes_frozen_layer(
            &subject,
            &mut model,
            &mut train,
            "chain/first",
            "chain/middle",
        ))
    };
    vec![run().unwrap_or_else(|e| {
        CheckReport::errored("gradient_passes_frozen_layer_in_fit", &subject, e)
    })]
}

fn run_pin(_: &(), case: &TrainingCase, _: &Settings) -> Vec<CheckReport> {
    let subject = label(case);
    let (x, y): (ArrayD<f32>, ArrayD<f32>) = model_data(case.seed, 64);
    let fit = fit_config(case);
    let run = || -> Result<CheckReport> {
        let mut g = Functional::new("pinned", Some(case.seed));
        let input = g.input(&[6])?;
        let base = g.apply_pinned(base_model(case.rate, case.seed)?, input, Phase::Eval)?;
        let sibling = g.apply(Dropout::new(case.rate)?.named("sibling_dropout"), input)?;
        let joined = g.concat(&[base, sibling])?;
        let out = g.apply(Dense::new(1), joined)?;
        let mut model = g.build(out)?;
        case.optimizer.compile(&mut model, case.weight_decay)?;
        let mut train = |m: &mut Model<f32>| m.fit(&x, &y, &fit).map(|_| ());
        Ok(check_pin_stays_in_subtree(
            &subject,
            &mut model,
            &mut train,
            "pinned/base",
            "pinned/sibling_dropout",
        ))
    };
    vec![run().unwrap_or_else(|e| CheckReport::errored("pin_stays_in_subtree", &subject, e))]
}
