//! The frozen-model scenario, shared by the main job, the tests and the doctest.
//!
//! model_A (Dense → BatchNormalization → ReLU → Dropout → Dense) and model_B
//! (Dense → Dropout → Dense) are trained briefly, frozen, and joined into
//! model_AB = Dense(concat(A(x), B(x))) on a shared input, which is fitted with
//! AdamW (weight decay is the classic way frozen weights get moved). Every
//! dropout position is wrapped in an audit of its calls. The outcome is a list of
//! [`CheckReport`]s, one per invariant, all computed from the run.
//!
//! [`run_with`] builds the dropout positions with a caller's factory, so the same
//! report can judge another dropout implementation, or a deliberately broken
//! one: that is how the tests show the report can fail.

mod audited;
mod text;

pub use text::render;

use crate::check::dropout::identity::{check_eval_identity, check_predict_dropout_identity};
use crate::check::dropout::rate::check_drop_rate;
use crate::check::dropout::survivors::check_train_call_exact;
use crate::check::noise::in_frozen_fit::check_noise_layer_in_frozen_fit;
use crate::check::stats::DEFAULT_ALPHA;
use crate::check::subjects::observed::Observed;
use crate::check::training::frozen::{
    check_frozen_weights_unchanged, check_trainable_weights_changed,
};
use crate::check::training::snapshot::ModelSnapshot;
use crate::check::CheckReport;
use crate::check::LayerAsDropout;
use crate::error::Result;
use crate::fit::{FitConfig, History};
use crate::layer::Layer;
use crate::layers::{
    AlphaDropout, BatchNormalization, Dense, Dropout, GaussianDropout, GaussianNoise, ReLU,
    SpatialDropout,
};
use crate::loss::Loss;
use crate::model::graph::Functional;
use crate::model::sequential::Sequential;
use crate::model::Model;
use crate::optim::Adam;
use crate::phase::{ForwardCtx, Phase};
use crate::rng::{chacha, SeedSequence};
use audited::{audited as audit_of, DropoutAudit, SharedAudit};
use ndarray::ArrayD;
use rand::RngExt;

/// The rate (and GaussianNoise's standard deviation) of the other train-only
/// layers in the report's last lines.
pub const NOISE_RATE: f64 = 0.2;

/// The knobs of the scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScenarioConfig {
    /// Seeds data, initialisers, masks and shuffles.
    pub seed: u64,
    /// The dropout rate of A and B.
    pub rate: f64,
    /// Epochs of fitting model_AB.
    pub epochs: usize,
    /// Epochs of the brief pre-training of A and B.
    pub pretrain_epochs: usize,
    /// Samples in the synthetic data set.
    pub samples: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Input features.
    pub features: usize,
    /// Hidden width of A and B.
    pub hidden: usize,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 42,
            rate: 0.5,
            epochs: 5,
            pretrain_epochs: 2,
            samples: 2048,
            batch_size: 32,
            features: 8,
            hidden: 64,
        }
    }
}

/// What the scenario measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScenarioOutcome {
    /// One verdict per invariant.
    pub reports: Vec<CheckReport>,
    /// The loss history of fitting model_AB.
    pub history: History,
    /// The toy: ones(1, 10) through Dropout(rate) in train.
    pub toy_train: Vec<f32>,
    /// The toy in eval.
    pub toy_eval: Vec<f32>,
    /// Units seen and dropped by A's and B's dropout during fitting model_AB.
    pub dropout_counts: Vec<(String, u64, u64)>,
}

impl ScenarioOutcome {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        crate::check::all_pass(&self.reports)
    }
}

/// Synthetic regression data: `y = sin(x · w) + 0.1 * x_0`, seeded.
pub fn synthetic_data(samples: usize, features: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut rng = chacha(seed);
    let x =
        ArrayD::from_shape_simple_fn(vec![samples, features], || rng.random_range(-1.0f32..1.0));
    let w: Vec<f32> = (0..features).map(|i| ((i as f32) * 0.7).cos()).collect();
    let y = ArrayD::from_shape_fn(vec![samples, 1], |i| {
        let row = i[0];
        let dot: f32 = (0..features).map(|j| x[[row, j]] * w[j]).sum();
        dot.sin() + 0.1 * x[[row, 0]]
    });
    (x, y)
}

/// Builds the layer at a dropout position from (rate, seed): the seed is `Some`
/// for the toy layer and `None` inside models, whose seed pins the layer when
/// it is built.
pub type DropoutFactory = dyn Fn(f64, Option<u64>) -> Result<Box<dyn Layer<f32>>>;

/// The factory of the main job: nncheck's own [`Dropout`].
pub fn nncheck_dropout(rate: f64, seed: Option<u64>) -> Result<Box<dyn Layer<f32>>> {
    let layer = Dropout::new(rate)?;
    Ok(Box::new(match seed {
        Some(seed) => layer.with_seed(seed),
        None => layer,
    }))
}

/// A model's dropout positions and the audit of each, by position.
type Audits = Vec<SharedAudit>;

fn audited(make: &DropoutFactory, rate: f64, audits: &mut Audits) -> Result<Observed<f32>> {
    let (layer, audit) = audit_of(make(rate, None)?, rate);
    audits.push(audit);
    Ok(layer)
}

fn model_a(cfg: &ScenarioConfig, make: &DropoutFactory, audits: &mut Audits) -> Result<Model<f32>> {
    Sequential::new("model_A")
        .add(Dense::new(cfg.hidden))
        .add(BatchNormalization::new())
        .add(ReLU::new())
        .add(audited(make, cfg.rate, audits)?)
        .add(Dense::new(1))
        .build(&[cfg.features], Some(cfg.seed.wrapping_add(1)))
}

fn model_b(cfg: &ScenarioConfig, make: &DropoutFactory, audits: &mut Audits) -> Result<Model<f32>> {
    Sequential::new("model_B")
        .add(Dense::new(cfg.hidden))
        .add(audited(make, cfg.rate, audits)?)
        .add(Dense::new(1))
        .build(&[cfg.features], Some(cfg.seed.wrapping_add(2)))
}

/// Runs the scenario and checks every invariant on it.
pub fn run(cfg: &ScenarioConfig) -> Result<ScenarioOutcome> {
    run_with(cfg, &nncheck_dropout)
}

/// Runs the scenario with the dropout layers that `make` builds, and checks
/// every invariant on what they did.
pub fn run_with(cfg: &ScenarioConfig, make: &DropoutFactory) -> Result<ScenarioOutcome> {
    let (x, y) = synthetic_data(cfg.samples, cfg.features, cfg.seed);
    let fit_cfg = |epochs, salt: u64| FitConfig {
        epochs,
        batch_size: cfg.batch_size,
        shuffle: true,
        seed: Some(cfg.seed ^ salt),
    };

    // 1. Train A and B briefly, each on its own.
    let mut audits = Audits::new();
    let mut a = model_a(cfg, make, &mut audits)?;
    a.compile(Adam::new(1e-3), Loss::MeanSquaredError)?;
    a.fit(&x, &y, &fit_cfg(cfg.pretrain_epochs, 0xA))?;
    let mut b = model_b(cfg, make, &mut audits)?;
    b.compile(Adam::new(1e-3), Loss::MeanSquaredError)?;
    b.fit(&x, &y, &fit_cfg(cfg.pretrain_epochs, 0xB))?;

    // 2. Freeze them and join them under a new trainable head.
    a.freeze();
    b.freeze();
    let mut g = Functional::new("model_AB", Some(cfg.seed.wrapping_add(3)));
    let input = g.input(&[cfg.features])?;
    let out_a = g.apply(a, input)?;
    let out_b = g.apply(b, input)?;
    let joined = g.concat(&[out_a, out_b])?;
    let head = g.apply(Dense::new(1).named("head"), joined)?;
    let mut ab = g.build(head)?;
    ab.compile(Adam::adamw(1e-2), Loss::MeanSquaredError)?;

    let frozen_a = ModelSnapshot::of_subtree(&ab, "model_AB/model_A");
    let frozen_b = ModelSnapshot::of_subtree(&ab, "model_AB/model_B");
    let head_before = ModelSnapshot::of_subtree(&ab, "model_AB/head");
    ab.for_each_stochastic(&mut |_, s| s.reset_noise_stats());
    // The audits start over for model_AB's fit; positions are in layer order,
    // as `dropout_stats` lists them.
    for audit in &audits {
        *audit.lock().expect("audit lock") = DropoutAudit::default();
    }
    let paths: Vec<String> = ab.dropout_stats().into_iter().map(|(p, _)| p).collect();
    // Pairing by position needs one listed noise layer per audited position: a
    // factory's layer that shows no random state (or several) would otherwise
    // drop or misname evidence, and the report would pass on less than it says.
    let positions = CheckReport::exact(
        "dropout_positions_audited",
        "model_AB",
        format!(
            "{} dropout positions audited, {} noise layers listed",
            audits.len(),
            paths.len()
        ),
        "one listed noise layer per audited position".into(),
        paths.len() == audits.len(),
    );
    let audits: Vec<(String, SharedAudit)> = paths.into_iter().zip(audits).collect();

    // 3. Fit the joined model: the frozen parts' dropout must be active here.
    let history = ab.fit(&x, &y, &fit_cfg(cfg.epochs, 0xAB))?;

    let mut reports = vec![
        positions,
        check_frozen_weights_unchanged(
            "model_A (incl. BN stats)",
            &frozen_a,
            &ModelSnapshot::of_subtree(&ab, "model_AB/model_A"),
        ),
        check_frozen_weights_unchanged(
            "model_B",
            &frozen_b,
            &ModelSnapshot::of_subtree(&ab, "model_AB/model_B"),
        ),
        check_trainable_weights_changed(
            "head",
            &head_before,
            &ModelSnapshot::of_subtree(&ab, "model_AB/head"),
        ),
    ];
    let mut dropout_counts = Vec::new();
    for (path, stats) in ab.dropout_stats() {
        dropout_counts.push((path.clone(), stats.units_seen, stats.units_dropped));
        reports.push(check_drop_rate(
            &path,
            stats.draws,
            stats.draws_dropped,
            cfg.rate,
            DEFAULT_ALPHA,
        ));
    }
    for (path, audit) in &audits {
        let audit = audit.lock().expect("observer lock").train;
        reports.push(audit.report(path, cfg.rate));
        reports.push(audit.recipes.convention(path, cfg.rate));
        // Inputs that are nonzero decide drop or keep unambiguously and are independent of the mask.
        reports.push(check_drop_rate(
            &format!("{path} (audited)"),
            audit.kept + audit.dropped,
            audit.dropped,
            cfg.rate,
            DEFAULT_ALPHA,
        ));
    }

    // 4. predict: every dropout is the identity.
    ab.predict(&x)?;
    for (path, audit) in &audits {
        let DropoutAudit {
            eval_seen: seen,
            eval_differing: differing,
            ..
        } = *audit.lock().expect("observer lock");
        reports.push(check_predict_dropout_identity(path, seen, differing));
    }

    // 5. The toy from the question: ones(1, 10) through Dropout(rate).
    let ones = ArrayD::<f32>::ones(vec![1, 10]);
    let toy_layer = || -> Result<Box<dyn Layer<f32>>> {
        let mut layer = make(cfg.rate, Some(cfg.seed))?;
        layer.build(&[10], &mut SeedSequence::new(Some(cfg.seed)))?;
        Ok(layer)
    };
    let mut toy = toy_layer()?;
    let toy_train = toy
        .forward(ones.clone(), ForwardCtx::top(Phase::Train))?
        .iter()
        .copied()
        .collect();
    let toy_eval = toy
        .forward(ones.clone(), ForwardCtx::top(Phase::Eval))?
        .iter()
        .copied()
        .collect();
    let mut toy = LayerAsDropout::new(toy_layer()?, cfg.rate);
    reports.push(check_train_call_exact(
        "toy ones(1,10) train",
        &mut toy,
        &ones,
    ));
    reports.push(check_eval_identity("toy ones(1,10) eval", &mut toy, &ones));

    // 6. The other train-only layers, each in a frozen base of its own: active in
    // fit, the identity in predict. At a fixed rate, since at rate 0 they are the
    // identity in both phases and there would be nothing to see.
    for (name, layer) in [
        (
            format!("GaussianNoise({NOISE_RATE})"),
            Box::new(GaussianNoise::new(NOISE_RATE)?) as Box<dyn Layer<f32>>,
        ),
        (
            format!("GaussianDropout({NOISE_RATE})"),
            Box::new(GaussianDropout::new(NOISE_RATE)?),
        ),
        (
            format!("AlphaDropout({NOISE_RATE})"),
            Box::new(AlphaDropout::new(NOISE_RATE)?),
        ),
        (
            format!("SpatialDropout1D({NOISE_RATE})"),
            Box::new(SpatialDropout::new_1d(NOISE_RATE)?),
        ),
    ] {
        reports.push(check_noise_layer_in_frozen_fit(&name, layer, cfg.seed));
    }

    Ok(ScenarioOutcome {
        reports,
        history,
        toy_train,
        toy_eval,
        dropout_counts,
    })
}
