//! Broken twins of the noise layers, each of which a check must reject, and the
//! real layers, which must pass every check: a check that no broken twin fails
//! proves nothing.

use ndarray::ArrayD;
use nncheck::check::alpha_dropout::{
    check_alpha_dropout_drop_rate, check_alpha_dropout_exact, check_alpha_dropout_moments,
};
use nncheck::check::noise::{
    check_eval_identity_bits, check_gaussian_dropout, check_gaussian_noise, special_values_f32,
};
use nncheck::check::spatial_dropout::{
    check_spatial_channel_drop_rate, check_spatial_channels_exact,
};
use nncheck::check::{CheckReport, DropoutLike, LayerAsDropout};
use nncheck::layers::dropout::{drop_threshold, reference_mask};
use nncheck::{
    AlphaDropout, DataFormat, Dropout, GaussianDropout, GaussianNoise, Layer, Phase, SpatialDropout,
};

const ALPHA: f64 = 1e-9;

fn wrap(layer: impl Layer<f32> + 'static, rate: f64) -> LayerAsDropout<f32> {
    LayerAsDropout::new(Box::new(layer), rate)
}

fn show(reports: &[CheckReport]) {
    for r in reports {
        println!("{}", r.line());
    }
}

/// A layer that runs its train behaviour whatever phase it is asked for.
struct NoisyInEval(LayerAsDropout<f32>);

impl DropoutLike<f32> for NoisyInEval {
    fn rate(&self) -> f64 {
        self.0.rate()
    }
    fn run(&mut self, x: ArrayD<f32>, _: Phase) -> nncheck::Result<ArrayD<f32>> {
        self.0.run(x, Phase::Train)
    }
    fn run_backward(&mut self, dy: ArrayD<f32>) -> nncheck::Result<ArrayD<f32>> {
        self.0.run_backward(dy)
    }
}

/// AlphaDropout without its affine correction: kept units stay `x`, dropped
/// units become `alpha_p`, on Dropout's very mask.
struct AlphaWithoutAffine {
    rate: f64,
    seed: u64,
    calls: u64,
}

impl DropoutLike<f32> for AlphaWithoutAffine {
    fn rate(&self) -> f64 {
        self.rate
    }
    fn run(&mut self, mut x: ArrayD<f32>, phase: Phase) -> nncheck::Result<ArrayD<f32>> {
        if phase == Phase::Eval {
            return Ok(x);
        }
        let alpha_p = (-1.673_263_242_354_377_2_f64 * 1.050_700_987_355_480_5) as f32;
        let mask = reference_mask(self.seed, self.calls, drop_threshold(self.rate), x.len());
        self.calls += 1;
        x.iter_mut().zip(mask).for_each(|(v, drop)| {
            if drop {
                *v = alpha_p;
            }
        });
        Ok(x)
    }
    fn run_backward(&mut self, dy: ArrayD<f32>) -> nncheck::Result<ArrayD<f32>> {
        Ok(dy)
    }
}

fn alpha_input() -> ArrayD<f32> {
    ArrayD::from_shape_fn(vec![64, 64], |i| (i[0] * 64 + i[1]) as f32 / 512.0 - 4.0)
}

/// The special values in a batch of rank 4, which every layer here accepts
/// (SpatialDropout2D needs samples of rank 3).
fn special_input() -> ArrayD<f32> {
    special_values_f32(8)
        .into_shape_with_order(vec![2, 2, 2, 16])
        .unwrap()
}

fn real_layers() -> Vec<(&'static str, LayerAsDropout<f32>)> {
    vec![
        (
            "gaussian_noise",
            wrap(GaussianNoise::new(0.5).unwrap().with_seed(1), 0.0),
        ),
        (
            "gaussian_dropout",
            wrap(GaussianDropout::new(0.3).unwrap().with_seed(2), 0.3),
        ),
        (
            "alpha_dropout",
            wrap(AlphaDropout::new(0.2).unwrap().with_seed(3), 0.2),
        ),
        (
            "spatial_dropout2d",
            wrap(
                SpatialDropout::new_2d(0.4, DataFormat::ChannelsLast)
                    .unwrap()
                    .with_seed(4),
                0.4,
            ),
        ),
    ]
}

#[test]
fn every_real_noise_layer_passes_every_check() {
    let special = special_input();
    let mut reports = Vec::new();
    for (name, mut layer) in real_layers() {
        reports.push(check_eval_identity_bits(name, &mut layer, &special));
    }
    let mut gn = wrap(GaussianNoise::new(0.5).unwrap().with_seed(11), 0.0);
    reports.extend(check_gaussian_noise(
        "gaussian_noise(0.5)",
        &mut gn,
        0.5,
        250,
        4,
        ALPHA,
    ));
    let mut gd = wrap(GaussianDropout::new(0.3).unwrap().with_seed(12), 0.3);
    reports.extend(check_gaussian_dropout(
        "gaussian_dropout(0.3)",
        &mut gd,
        0.3,
        250,
        4,
        ALPHA,
    ));
    let mut ad = wrap(AlphaDropout::new(0.2).unwrap().with_seed(13), 0.2);
    reports.push(check_alpha_dropout_exact(
        "alpha_dropout(0.2)",
        &mut ad,
        0.2,
        &alpha_input(),
    ));
    reports.push(check_alpha_dropout_drop_rate(
        "alpha_dropout(0.2)",
        &mut ad,
        0.2,
        &[1000, 1000],
        1,
        ALPHA,
    ));
    reports.extend(check_alpha_dropout_moments(
        "alpha_dropout(0.2)",
        &mut ad,
        0.2,
        1_000_000,
        5,
        ALPHA,
    ));
    for (format, shape, axis) in [
        (DataFormat::ChannelsLast, [8, 4, 4, 16], 3),
        (DataFormat::ChannelsFirst, [8, 16, 4, 4], 1),
    ] {
        let subject = format!("spatial_dropout2d(0.4, {format:?})");
        let mut sd = wrap(
            SpatialDropout::new_2d(0.4, format).unwrap().with_seed(14),
            0.4,
        );
        reports.push(check_spatial_channels_exact(
            &subject, &mut sd, 0.4, &shape, axis,
        ));
        reports.push(check_spatial_channel_drop_rate(
            &subject, &mut sd, 0.4, &shape, axis, 2000, ALPHA,
        ));
    }
    show(&reports);
    assert!(
        reports.iter().all(|r| r.pass),
        "a real layer failed a check"
    );
}

#[test]
fn gaussian_noise_with_stddev_off_by_ten_percent_is_rejected() {
    let mut twin = wrap(GaussianNoise::new(0.55).unwrap().with_seed(21), 0.0);
    let reports = check_gaussian_noise(
        "gaussian_noise(0.55) claimed 0.5",
        &mut twin,
        0.5,
        250,
        4,
        ALPHA,
    );
    show(&reports);
    let variance = reports
        .iter()
        .find(|r| r.check == "gaussian_noise_variance")
        .unwrap();
    assert!(!variance.pass);
}

#[test]
fn gaussian_dropout_with_variance_rate_is_rejected() {
    // Variance `rate` instead of `rate / (1 - rate)`: the twin's own rate r' has
    // r' / (1 - r') = rate.
    let rate = 0.3;
    let mut twin = wrap(
        GaussianDropout::new(rate / (1.0 + rate))
            .unwrap()
            .with_seed(22),
        rate,
    );
    let reports = check_gaussian_dropout(
        "gaussian_dropout variance = rate",
        &mut twin,
        rate,
        250,
        4,
        ALPHA,
    );
    show(&reports);
    let variance = reports
        .iter()
        .find(|r| r.check == "gaussian_dropout_variance")
        .unwrap();
    assert!(!variance.pass);
}

#[test]
fn noise_in_eval_is_rejected_for_every_layer() {
    let special = special_input();
    for (name, layer) in real_layers() {
        let r = check_eval_identity_bits(name, &mut NoisyInEval(layer), &special);
        println!("{}", r.line());
        assert!(!r.pass, "{name}: noise in eval passed");
    }
}

#[test]
fn spatial_dropout_with_a_per_element_mask_is_rejected() {
    let mut twin = Dropout::<f32>::new(0.4).unwrap().with_seed(23);
    let r =
        check_spatial_channels_exact("dropout claimed spatial", &mut twin, 0.4, &[8, 4, 4, 16], 3);
    println!("{}", r.line());
    assert!(!r.pass);
}

#[test]
fn alpha_dropout_without_the_affine_correction_is_rejected() {
    let mut twin = AlphaWithoutAffine {
        rate: 0.2,
        seed: 24,
        calls: 0,
    };
    let exact = check_alpha_dropout_exact("alpha without affine", &mut twin, 0.2, &alpha_input());
    let moments =
        check_alpha_dropout_moments("alpha without affine", &mut twin, 0.2, 1_000_000, 5, ALPHA);
    show(std::slice::from_ref(&exact));
    show(&moments);
    assert!(!exact.pass);
    assert!(moments.iter().any(|r| !r.pass));
}

/// How a twin gets the phase wrong inside a model.
#[derive(Clone, Copy)]
enum PhaseFault {
    /// Switches its noise off when an enclosing model is frozen (burn's `freeze()`).
    SleepsWhenFrozen,
    /// Draws noise in `Eval` too.
    NoisyInPredict,
}

/// A real noise layer whose forward sees a wrong phase.
fn phase_twin(inner: Box<dyn Layer<f32>>, fault: PhaseFault) -> Box<dyn Layer<f32>> {
    Box::new(nncheck::check::observed::Observed::with_forward(
        inner,
        Box::new(move |layer, x, ctx| {
            let phase = match fault {
                PhaseFault::SleepsWhenFrozen if !ctx.path_trainable => Phase::Eval,
                PhaseFault::NoisyInPredict => Phase::Train,
                _ => ctx.phase,
            };
            layer.forward(x, nncheck::phase::ForwardCtx { phase, ..ctx })
        }),
    ))
}

/// A real noise layer that keeps no count of its calls: it shows the model no
/// random state (SPEC §2b: a noise layer counts its `Train` calls).
struct Uncounted(Box<dyn Layer<f32>>);

impl Layer<f32> for Uncounted {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn set_name(&mut self, name: String) {
        self.0.set_name(name);
    }
    fn build(
        &mut self,
        shape: &[usize],
        seeds: &mut nncheck::rng::SeedSequence,
    ) -> nncheck::Result<Vec<usize>> {
        self.0.build(shape, seeds)
    }
    fn forward(
        &mut self,
        x: ArrayD<f32>,
        ctx: nncheck::phase::ForwardCtx,
    ) -> nncheck::Result<ArrayD<f32>> {
        self.0.forward(x, ctx)
    }
    fn backward(&mut self, dy: ArrayD<f32>, need: bool) -> nncheck::Result<Option<ArrayD<f32>>> {
        self.0.backward(dy, need)
    }
    fn trainable(&self) -> bool {
        self.0.trainable()
    }
    fn set_trainable(&mut self, trainable: bool) {
        self.0.set_trainable(trainable);
    }
    fn visit_weights(&self, p: &str, t: bool, f: &mut nncheck::layer::WeightVisitor<'_, f32>) {
        self.0.visit_weights(p, t, f);
    }
    fn visit_weights_mut(
        &mut self,
        p: &str,
        t: bool,
        f: &mut nncheck::layer::WeightVisitorMut<'_, f32>,
    ) {
        self.0.visit_weights_mut(p, t, f);
    }
    fn visit_layers(&self, p: &str, f: &mut nncheck::layer::LayerVisitor<'_, f32>) {
        f(&nncheck::layer::join_path(p, self.name()), self);
    }
    fn visit_layers_mut(&mut self, p: &str, f: &mut nncheck::layer::LayerVisitorMut<'_, f32>) {
        let path = nncheck::layer::join_path(p, self.name());
        f(&path, self);
    }
}

fn noise_layers() -> Vec<(&'static str, Box<dyn Layer<f32>>)> {
    vec![
        ("GaussianNoise", Box::new(GaussianNoise::new(0.2).unwrap())),
        (
            "GaussianDropout",
            Box::new(GaussianDropout::new(0.2).unwrap()),
        ),
        ("AlphaDropout", Box::new(AlphaDropout::new(0.2).unwrap())),
        (
            "SpatialDropout1D",
            Box::new(SpatialDropout::new_1d(0.2).unwrap()),
        ),
    ]
}

/// Every real layer is active in a frozen model's fit and the identity in its
/// predict; a twin that sleeps when frozen, or draws noise in predict, is rejected.
#[test]
fn noise_in_a_frozen_fit_is_judged_from_what_the_layer_did() {
    use nncheck::check::noise_in_frozen_fit::check_noise_layer_in_frozen_fit;
    for (name, layer) in noise_layers() {
        let r = check_noise_layer_in_frozen_fit(name, layer, 3);
        println!("{}", r.line());
        assert!(r.pass, "{}", r.line());
    }
    for fault in [PhaseFault::SleepsWhenFrozen, PhaseFault::NoisyInPredict] {
        for (name, inner) in noise_layers() {
            let twin = phase_twin(inner, fault);
            let r = check_noise_layer_in_frozen_fit(name, twin, 3);
            println!("{}", r.line());
            assert!(!r.pass, "{name}: a twin passed: {}", r.line());
        }
    }
    // Noisy where it should be, but its calls go uncounted.
    for (name, inner) in noise_layers() {
        let r = check_noise_layer_in_frozen_fit(name, Box::new(Uncounted(inner)), 3);
        assert!(
            !r.pass && r.observed.starts_with("fit: 0 noise calls"),
            "{}",
            r.line()
        );
    }
}

/// Noise drawn and thrown away: every call is counted, but the layer hands its
/// input on unchanged, so it is not active; the check must see the outputs, not
/// only the calls.
#[test]
fn noise_drawn_but_discarded_in_a_frozen_fit_is_rejected() {
    use nncheck::check::noise_in_frozen_fit::check_noise_layer_in_frozen_fit;
    for (name, inner) in noise_layers() {
        let twin = nncheck::check::observed::Observed::with_forward(
            inner,
            Box::new(|layer, x: ArrayD<f32>, ctx| {
                layer.forward(x.clone(), ctx)?;
                Ok(x)
            }),
        );
        let r = check_noise_layer_in_frozen_fit(name, Box::new(twin), 3);
        assert!(
            !r.pass && r.observed.split(';').next().unwrap().contains(", 0 of "),
            "{name}: a twin passed: {}",
            r.line()
        );
    }
}
