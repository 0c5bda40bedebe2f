//! SPEC §3–§5 over generated optimizers, weight decays, epochs, batch sizes,
//! rates and seeds: the whole training battery
//! (`nncheck::check::battery::training_battery`) must pass on every case.

mod common;

use nncheck::check::battery::{training_battery, OptimizerKind, TrainingCase};
use proptest::prelude::*;

proptest! {
    #![proptest_config(common::config(1000))]

    #[test]
    fn training_battery_passes(
        optimizer in proptest::sample::select(OptimizerKind::ALL.to_vec()),
        weight_decay in prop_oneof![Just(0.0), 0.0f64..0.2],
        epochs in 1usize..=3,
        batch_size in 1usize..=80,
        freeze_mid_training in any::<bool>(),
        rate in 0.05f64..0.95,
        seed in any::<u64>(),
    ) {
        let case = TrainingCase { optimizer, weight_decay, epochs, batch_size, freeze_mid_training, rate, seed };
        for r in &training_battery(&case).unwrap() {
            prop_assert!(r.pass, "{}", r.line());
        }
    }
}

/// The effective flag is the AND of the path: a layer marked trainable inside a
/// frozen model stays frozen, and it is not listed in `trainable_weights`.
#[test]
fn a_trainable_layer_inside_a_frozen_model_stays_frozen() {
    use nncheck::check::battery::base_model;
    use nncheck::check::frozen::{check_frozen_weights_unchanged, WeightSnapshot};
    use nncheck::{Dense, FitConfig, Layer, Loss, Sequential};

    let mut model = Sequential::new("model")
        .add(base_model(0.2, 1).unwrap())
        .add(Dense::new(1))
        .build(&[6], Some(2))
        .unwrap();
    model
        .compile(nncheck::optim::Adam::adamw(1e-2), Loss::MeanSquaredError)
        .unwrap();
    let (_, total) = model.count_params();
    model
        .set_trainable_at("model/base", false)
        .expect("a layer at that path");
    // The leaf's own flag says trainable; its container says frozen.
    model
        .set_trainable_at("model/base/dense", true)
        .expect("a layer at that path");
    assert!(model
        .trainable_weights()
        .iter()
        .all(|w| !w.path.starts_with("model/base")));
    let before = WeightSnapshot::of(&model, "model/base");
    let x = ndarray::ArrayD::from_shape_fn(vec![32, 6], |i| (i[0] * 6 + i[1]) as f32 / 100.0);
    let y = ndarray::ArrayD::from_shape_fn(vec![32, 1], |i| i[0] as f32 / 32.0);
    model
        .fit(
            &x,
            &y,
            &FitConfig {
                epochs: 2,
                batch_size: 8,
                shuffle: true,
                seed: Some(1),
            },
        )
        .unwrap();
    let report = check_frozen_weights_unchanged(
        "AND of the path",
        &before,
        &WeightSnapshot::of(&model, "model/base"),
    );
    assert!(report.pass, "{}", report.line());
    assert!(model.trainable());
    assert!(total > 0);
}
