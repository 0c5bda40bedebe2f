//! The seeding rules of SPEC §2 and §2b, at the level of a built model.
//!
//! A model seed pins every initialiser and every noise layer in the model; the
//! layers seeded from one model seed draw distinct streams (one shared stream
//! would give every dropout layer the same mask); a layer pinned with
//! `with_seed` keeps its seed whatever the model's; a model without a seed
//! draws from OS entropy, so two such builds differ. Each rule is shown to
//! reject the implementation that breaks it, built here from the public API.

use ndarray::ArrayD;
use nncheck::{Dense, Dropout, GaussianNoise, Model, Phase, Sequential};

/// A model with two Dense layers of the same shape and three noise layers, from `seed`.
fn model(seed: Option<u64>) -> Model<f32> {
    Sequential::<f32>::new("m")
        .add(Dense::new(16))
        .add(Dropout::new(0.5).expect("valid rate"))
        .add(Dense::new(16))
        .add(Dropout::new(0.5).expect("valid rate"))
        .add(GaussianNoise::new(1.0).expect("valid stddev"))
        .build(&[16], seed)
        .expect("build")
}

/// The same model with every noise layer pinned to one seed and every Dense to
/// another: what a model seed handing one stream to all its layers would build.
fn one_stream_for_all_layers(seed: u64) -> Model<f32> {
    Sequential::<f32>::new("m")
        .add(Dense::new(16).with_seed(seed))
        .add(Dropout::new(0.5).expect("valid rate").with_seed(seed))
        .add(Dense::new(16).with_seed(seed))
        .add(Dropout::new(0.5).expect("valid rate").with_seed(seed))
        .add(
            GaussianNoise::new(1.0)
                .expect("valid stddev")
                .with_seed(seed),
        )
        .build(&[16], Some(seed))
        .expect("build")
}

/// The seed of every noise layer, in layer order.
fn noise_seeds(model: &mut Model<f32>) -> Vec<u64> {
    let mut seeds = Vec::new();
    model.for_each_layer::<Dropout<f32>>(&mut |_, d| seeds.push(d.seed()));
    model.for_each_layer::<GaussianNoise<f32>>(&mut |_, g| seeds.push(g.seed()));
    seeds
}

/// Every Dense kernel, in layer order.
fn kernels(model: &mut Model<f32>) -> Vec<ArrayD<f32>> {
    let mut kernels = Vec::new();
    model.for_each_layer::<Dense<f32>>(&mut |_, d| {
        kernels.push(d.kernel().expect("built").clone());
    });
    kernels
}

/// The output of each layer's first train call on ones, the mask made visible.
fn first_train_outputs(model: &mut Model<f32>) -> Vec<ArrayD<f32>> {
    let ones = ArrayD::ones(vec![64, 16]);
    let mut outputs = Vec::new();
    model.for_each_layer::<Dropout<f32>>(&mut |_, d| {
        outputs.push(
            nncheck::Layer::forward(
                d,
                ones.clone(),
                nncheck::phase::ForwardCtx::top(Phase::Train),
            )
            .expect("forward"),
        );
    });
    outputs
}

/// True when the layers of `model` draw pairwise distinct streams: distinct
/// noise seeds, distinct first masks of its two dropouts, distinct kernels.
fn streams_distinct(model: &mut Model<f32>) -> bool {
    let seeds = noise_seeds(model);
    let seeds_distinct = seeds
        .iter()
        .enumerate()
        .all(|(i, a)| seeds[i + 1..].iter().all(|b| a != b));
    let outputs = first_train_outputs(model);
    let kernels = kernels(model);
    // Two independent masks of 1024 units at rate 0.5 agree with probability
    // 2^-1024; two independent Glorot kernels of 256 entries never do.
    seeds_distinct && outputs[0] != outputs[1] && kernels[0] != kernels[1]
}

#[test]
fn layers_seeded_from_one_model_seed_draw_distinct_streams() {
    assert!(streams_distinct(&mut model(Some(7))));
    assert!(
        !streams_distinct(&mut one_stream_for_all_layers(7)),
        "one stream for every layer is rejected"
    );
}

#[test]
fn a_model_seed_pins_every_initialiser_and_noise_layer() {
    let (mut a, mut b) = (model(Some(7)), model(Some(7)));
    assert_eq!(noise_seeds(&mut a), noise_seeds(&mut b));
    assert_eq!(kernels(&mut a), kernels(&mut b));
    assert_eq!(first_train_outputs(&mut a), first_train_outputs(&mut b));
    // Another model seed gives other seeds: the seed is used, not ignored.
    let mut c = model(Some(8));
    assert_ne!(noise_seeds(&mut a), noise_seeds(&mut c));
    assert_ne!(kernels(&mut a), kernels(&mut c));
}

#[test]
fn a_layer_pinned_with_with_seed_keeps_its_seed_under_any_model_seed() {
    let pinned = |model_seed| {
        let mut m = Sequential::<f32>::new("m")
            .add(Dense::new(4).with_seed(11))
            .add(Dropout::new(0.5).expect("valid rate").with_seed(12))
            .build(&[3], Some(model_seed))
            .expect("build");
        (noise_seeds(&mut m), kernels(&mut m))
    };
    assert_eq!(pinned(1), pinned(2));
    assert_eq!(pinned(1).0, vec![12]);
}

#[test]
fn a_model_without_a_seed_draws_from_os_entropy() {
    let (mut a, mut b) = (model(None), model(None));
    // Two draws of 64-bit OS entropy coincide with probability 2^-64.
    assert_ne!(noise_seeds(&mut a), noise_seeds(&mut b));
    assert_ne!(kernels(&mut a), kernels(&mut b));
    assert!(streams_distinct(&mut a));
}
