//! The noise layers inside models: each builds in a Sequential, nests, freezes
//! and reseeds with no change to the model code, is active during `fit` of a
//! frozen model (its counters move) and is the identity in `predict`.

use ndarray::ArrayD;
use nncheck::optim::Sgd;
use nncheck::tensor::bits_equal;
use nncheck::{
    AlphaDropout, BatchNormalization, DataFormat, FitConfig, GaussianDropout, GaussianNoise, Layer,
    Loss, Phase, Sequential, SpatialDropout,
};

const BATCH: usize = 32;

fn input(sample: &[usize]) -> ArrayD<f32> {
    let shape: Vec<usize> = std::iter::once(BATCH)
        .chain(sample.iter().copied())
        .collect();
    let mut i = 0u32;
    ArrayD::from_shape_simple_fn(shape, || {
        i += 1;
        1.0 + (i % 17) as f32 / 16.0
    })
}

fn scenario<L: Layer<f32> + 'static>(make: impl Fn() -> L, sample: &[usize]) {
    let x = input(sample);
    let units_per_batch = x.len() as u64;

    // Alone in a frozen Sequential: noise in Train, the identity in predict.
    let mut solo = Sequential::new("solo")
        .add(make())
        .build(sample, Some(5))
        .unwrap();
    solo.freeze();
    let y = solo.call(&x, Phase::Train).unwrap();
    assert!(!bits_equal(&y, &x), "no noise in Train of a frozen model");
    assert!(bits_equal(&solo.predict(&x).unwrap(), &x));

    // Same model seed, same outputs; reseeding changes them.
    let build = |seed| {
        Sequential::new("m")
            .add(make())
            .build(sample, Some(seed))
            .unwrap()
    };
    let (mut a, mut b) = (build(7), build(7));
    let ya = a.call(&x, Phase::Train).unwrap();
    assert!(bits_equal(&ya, &b.call(&x, Phase::Train).unwrap()));
    let mut c = build(7);
    c.reseed(99);
    let yc = c.call(&x, Phase::Train).unwrap();
    assert!(!bits_equal(&ya, &yc), "reseed did not change the noise");
    a.reseed(99);
    assert!(bits_equal(&a.call(&x, Phase::Train).unwrap(), &yc));

    // Nested and frozen under a trainable head: active during fit.
    let mut base = Sequential::new("base")
        .add(make())
        .build(sample, Some(3))
        .unwrap();
    base.freeze();
    let mut model = Sequential::new("outer")
        .add(base)
        .add(BatchNormalization::new())
        .build(sample, Some(4))
        .unwrap();
    model
        .compile(Sgd::new(0.01), Loss::MeanSquaredError)
        .unwrap();
    let target = ArrayD::zeros(x.raw_dim());
    let epochs = 2;
    let config = FitConfig {
        epochs,
        batch_size: 8,
        shuffle: true,
        seed: Some(1),
    };
    model.fit(&x, &target, &config).unwrap();
    let stats = model.noise_stats();
    assert_eq!(stats.len(), 1, "{stats:?}");
    let (path, s) = &stats[0];
    assert!(path.starts_with("outer/base/"), "{path}");
    assert_eq!(s.train_calls, (epochs * BATCH / 8) as u64);
    assert_eq!(s.units_seen, epochs as u64 * units_per_batch);
    assert!(s.draws > 0);
    // Predict leaves every counter where it was.
    let _ = model.predict(&x).unwrap();
    assert_eq!(model.noise_stats()[0].1, *s);
}

#[test]
fn gaussian_noise_in_models() {
    scenario(|| GaussianNoise::new(0.3).unwrap(), &[6]);
}

#[test]
fn gaussian_dropout_in_models() {
    scenario(|| GaussianDropout::new(0.3).unwrap(), &[6]);
}

#[test]
fn alpha_dropout_in_models() {
    scenario(|| AlphaDropout::new(0.3).unwrap(), &[6]);
}

#[test]
fn spatial_dropout_in_models() {
    scenario(|| SpatialDropout::new_1d(0.5).unwrap(), &[5, 4]);
    scenario(
        || SpatialDropout::new_2d(0.5, DataFormat::ChannelsFirst).unwrap(),
        &[4, 3, 3],
    );
    scenario(
        || SpatialDropout::new_3d(0.5, DataFormat::ChannelsLast).unwrap(),
        &[2, 2, 2, 3],
    );
}

#[test]
fn dropping_layers_count_drops_during_fit_of_a_frozen_model() {
    let sample = [6];
    let x = input(&sample);
    for (mut base, name) in [
        (
            Sequential::new("base")
                .add(AlphaDropout::new(0.5).unwrap())
                .build(&sample, Some(2))
                .unwrap(),
            "alpha",
        ),
        (
            Sequential::new("base")
                .add(SpatialDropout::new(1, 0.5, DataFormat::ChannelsFirst).unwrap())
                .build(&[2, 3], Some(2))
                .unwrap(),
            "spatial",
        ),
    ] {
        let x = if name == "spatial" {
            x.clone().into_shape_with_order(vec![BATCH, 2, 3]).unwrap()
        } else {
            x.clone()
        };
        base.freeze();
        let sample: Vec<usize> = x.shape()[1..].to_vec();
        let mut model = Sequential::new("outer")
            .add(base)
            .add(BatchNormalization::new())
            .build(&sample, Some(1))
            .unwrap();
        model
            .compile(Sgd::new(0.01), Loss::MeanSquaredError)
            .unwrap();
        let config = FitConfig {
            epochs: 1,
            batch_size: 8,
            shuffle: false,
            seed: Some(1),
        };
        model.fit(&x, &ArrayD::zeros(x.raw_dim()), &config).unwrap();
        let s = model.noise_stats()[0].1;
        assert!(
            s.units_dropped > 0 && s.units_dropped < s.units_seen,
            "{name}: {s:?}"
        );
        assert!(s.draws_dropped > 0, "{name}: {s:?}");
    }
}
