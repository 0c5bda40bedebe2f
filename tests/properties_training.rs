//! SPEC §3–§5 over generated optimizers, weight decays, epochs, batch sizes,
//! rates and seeds: the whole training battery
//! (`nncheck::check::battery::training_battery`) must pass on every case.

mod common;

use nncheck::check::battery::{training_battery, OptimizerKind, TrainingCase};
use proptest::prelude::*;

proptest! {
    #![proptest_config(common::config(40))]

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
