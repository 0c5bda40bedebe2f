//! Rate 0 (stddev 0) in `Train`: the identity, and still a counted call.
//!
//! Serves SPEC §2 ("`Train`, rate = 0: same as `Eval`") and §2b ("Rate 0
//! (stddev 0) is the identity in `Train` too; the call is counted"): the output
//! is the input bit for bit (NaN payloads, -0.0, infinities, subnormals) and the
//! layer's counters record the call and its units. The statistical batteries
//! draw rates from (0, 1) and never reach this edge, so it is held here, and
//! the check is shown to reject a layer that adds noise at rate 0 or forgets to
//! count the call.

use ndarray::ArrayD;
use nncheck::check::noise::eval_identity::special_values_f32;
use nncheck::check::subjects::observed::Observed;
use nncheck::phase::ForwardCtx;
use nncheck::{
    AlphaDropout, DataFormat, Dropout, GaussianDropout, GaussianNoise, Layer, Phase, SpatialDropout,
};

/// Special values (NaN payloads, -0.0, infinities, subnormals) as a batch of
/// two 2x2 images of 16 channels, so every layer (SpatialDropout2D included)
/// takes it.
fn special_input() -> ArrayD<f32> {
    special_values_f32(8)
        .into_shape_with_order(vec![2, 2, 2, 16])
        .expect("128 values")
}

/// True when one `Train` call of `layer` returns its input bit for bit and
/// counts one call of every unit.
fn identity_and_counted(layer: &mut dyn Layer<f32>) -> bool {
    let x = special_input();
    let y = layer
        .forward(x.clone(), ForwardCtx::top(Phase::Train))
        .expect("forward");
    let stats = layer
        .stochastic()
        .expect("a noise layer has random state")
        .noise_stats();
    let same_bits = x
        .iter()
        .zip(y.iter())
        .all(|(a, b)| a.to_bits() == b.to_bits());
    same_bits
        && y.shape() == x.shape()
        && stats.train_calls == 1
        && stats.units_seen == x.len() as u64
}

fn built(mut layer: impl Layer<f32>) -> impl Layer<f32> {
    let mut seeds = nncheck::rng::SeedSequence::new(Some(3));
    layer.build(&[2, 2, 16], &mut seeds).expect("build");
    layer
}

#[test]
fn every_train_only_layer_at_rate_zero_is_the_identity_and_counts_the_call() {
    let layers: Vec<(&str, Box<dyn Layer<f32>>)> = vec![
        (
            "Dropout",
            Box::new(built(Dropout::new(0.0).expect("rate 0"))),
        ),
        (
            "GaussianNoise",
            Box::new(built(GaussianNoise::new(0.0).expect("stddev 0"))),
        ),
        (
            "GaussianDropout",
            Box::new(built(GaussianDropout::new(0.0).expect("rate 0"))),
        ),
        (
            "AlphaDropout",
            Box::new(built(AlphaDropout::new(0.0).expect("rate 0"))),
        ),
        (
            "SpatialDropout2D",
            Box::new(built(
                SpatialDropout::new_2d(0.0, DataFormat::ChannelsLast).expect("rate 0"),
            )),
        ),
    ];
    for (name, mut layer) in layers {
        assert!(identity_and_counted(layer.as_mut()), "{name} at rate 0");
    }
}

#[test]
fn a_layer_that_adds_noise_at_rate_zero_or_skips_the_count_is_rejected() {
    // The smallest noise changes some bits.
    let mut noisy = built(GaussianNoise::new(1e-6).expect("valid stddev"));
    assert!(!identity_and_counted(&mut noisy));
    // An identity that does not count the call: the twin returns its input
    // without calling the layer.
    let mut uncounted = Observed::with_forward(
        Box::new(built(GaussianNoise::<f32>::new(0.0).expect("stddev 0"))),
        Box::new(|_, x, _| Ok(x)),
    );
    assert!(!identity_and_counted(&mut uncounted));
}
