//! SPEC §2 and §2b over generated shapes, rates and seeds: the whole dropout
//! battery (`nncheck::check::battery::dropout_battery`) and the battery of the
//! other train-only layers (`noise_battery`) must pass on every case, drawn by
//! the generator `nncheck verify` uses (`DropoutCase::generate`), plus the
//! properties that need the layer itself (noise-shape errors, rate validation).

mod common;

use ndarray::ArrayD;
use nncheck::check::battery::{dropout_battery, noise_battery};
use nncheck::check::cases::DropoutCase;
use nncheck::check::stats::DEFAULT_ALPHA;
use nncheck::check::CoreDropout;
use nncheck::{Dropout, Error, Phase};
use proptest::prelude::*;

/// Cases as `nncheck verify` draws them; proptest shrinks the seed that drew one.
fn cases() -> impl Strategy<Value = DropoutCase> {
    any::<u64>().prop_map(|s| DropoutCase::generate(&mut nncheck::rng::chacha(s)))
}

/// The records of the dropout battery, in order (the noise-shape check follows
/// when axis 1 has more than one position).
const DROPOUT_CHECKS: [&str; 19] = [
    "drop_rate_binomial",
    "survivors_scaled_exactly",
    "scale_recipe",
    "special_values_kept_scaled",
    "dropped_special_values",
    "eval_is_identity",
    "eval_is_identity",
    "backward_uses_forward_mask",
    "dropped_negative_sign",
    "counters_match_output",
    "rate_one_drops_everything",
    "rate_one",
    "invalid_rate_refused",
    "per_position_uniformity",
    "successive_calls_independent",
    "long_range_independent",
    "neighbours_independent",
    "reseeded_masks_reproducible",
    "seeded_masks_reproducible",
];

/// The records of the battery of the other train-only layers, in order.
const NOISE_CHECKS: [&str; 22] = [
    "eval_identity_bits",
    "eval_identity_bits",
    "eval_identity_bits",
    "eval_identity_bits",
    "gaussian_noise_mean",
    "gaussian_noise_variance",
    "gaussian_noise_ks",
    "gaussian_dropout_mean",
    "gaussian_dropout_variance",
    "gaussian_dropout_ks",
    "alpha_dropout_values_exact",
    "alpha_dropout_drop_rate",
    "alpha_dropout_mean",
    "alpha_dropout_variance",
    "spatial_whole_channels",
    "spatial_channel_drop_rate",
    "spatial_whole_channels",
    "spatial_channel_drop_rate",
    "noise_layer_active_in_frozen_fit",
    "noise_layer_active_in_frozen_fit",
    "noise_layer_active_in_frozen_fit",
    "noise_layer_active_in_frozen_fit",
];

proptest! {
    #![proptest_config(common::config(256))]

    #[test]
    fn dropout_battery_passes(case in cases()) {
        let reports = dropout_battery(&CoreDropout, &case, DEFAULT_ALPHA);
        // Every check ran: an empty or shortened battery would pass vacuously.
        let mut expected = DROPOUT_CHECKS.to_vec();
        if case.shape.len() >= 2 && case.shape[1] > 1 {
            expected.push("noise_shape_cells_shared");
        }
        let ran: Vec<&str> = reports.iter().map(|r| r.check.as_str()).collect();
        prop_assert_eq!(ran, expected);
        for r in &reports {
            prop_assert!(r.pass, "{}", r.line());
            prop_assert!(r.alpha.is_none() || r.detectable.is_some(), "no power stated: {}", r.line());
        }
    }

    #[test]
    fn noise_battery_passes(case in cases()) {
        let reports = noise_battery(&case, DEFAULT_ALPHA).unwrap();
        let ran: Vec<&str> = reports.iter().map(|r| r.check.as_str()).collect();
        prop_assert_eq!(ran, NOISE_CHECKS);
        for r in &reports {
            prop_assert!(r.pass, "{}", r.line());
            prop_assert!(r.alpha.is_none() || r.detectable.is_some(), "no power stated: {}", r.line());
        }
    }

    #[test]
    fn rates_outside_the_unit_interval_are_typed_errors(bits in any::<u64>()) {
        let rate = f64::from_bits(bits);
        let result = Dropout::<f32>::new(rate);
        if (0.0..=1.0).contains(&rate) {
            prop_assert!(result.is_ok());
        } else {
            let rejected = matches!(result, Err(Error::InvalidRate { .. }));
            prop_assert!(rejected, "rate {} accepted", rate);
        }
    }

    #[test]
    fn a_noise_shape_entry_that_fits_nothing_is_a_typed_error(width in 2usize..16, bad in 2usize..16) {
        prop_assume!(bad != width);
        let mut layer = Dropout::<f32>::new(0.5).unwrap().with_noise_shape(vec![None, Some(bad)]);
        let result = layer.apply(ArrayD::ones(vec![3, width]), Phase::Train);
        let rejected = matches!(result, Err(Error::InvalidNoiseShape { .. }));
        prop_assert!(rejected, "{:?}", result);
    }
}

/// A rate of 0.001 on a rank-3 input of 64 units, once found by the property
/// test when its rates reached below the generator's; kept as a named case.
#[test]
fn the_battery_passes_at_rate_one_thousandth_on_a_small_rank_3_input() {
    let case = DropoutCase {
        rate: 0.001,
        shape: vec![4, 2, 8],
        seed: 3392746432060426406,
    };
    for r in &dropout_battery(&CoreDropout, &case, DEFAULT_ALPHA) {
        assert!(r.pass, "{}", r.line());
    }
}

#[test]
fn a_rate_check_at_a_million_draws_resolves_about_three_thousandths() {
    // SPEC §6: for n = 10^6, p = 0.5 the region is about ±0.0031 on the rate.
    let (lo, hi) = nncheck::check::stats::binomial_region(1_000_000, 0.5, DEFAULT_ALPHA);
    let half_width = (hi - lo) as f64 / 2.0 / 1e6;
    assert!((0.0029..0.0033).contains(&half_width), "{half_width}");
    let bias = nncheck::check::stats::smallest_detectable_bias(1_000_000, 0.5, DEFAULT_ALPHA);
    assert!(bias < 0.0045, "{bias}");
}

/// An observer sees every forward call, train and eval, with the layer's own
/// input, output and scale, until it is removed.
#[test]
fn a_dropout_observer_sees_each_call_until_removed() {
    use nncheck::phase::ForwardCtx;
    use nncheck::Layer;
    use std::sync::{Arc, Mutex};
    type Seen = (Phase, Vec<f32>, Vec<f32>, f32);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = Arc::clone(&seen);
    let mut layer = Dropout::<f32>::new(0.5).unwrap().with_seed(3);
    layer.set_observer(Some(Box::new(move |call| {
        log.lock().unwrap().push((
            call.phase,
            call.input.iter().copied().collect(),
            call.output.iter().copied().collect(),
            call.scale,
        ));
    })));
    let x = ArrayD::from_shape_fn(vec![4, 8], |i| 1.0 + (i[0] * 8 + i[1]) as f32);
    let train = layer
        .forward(x.clone(), ForwardCtx::top(Phase::Train))
        .unwrap();
    layer
        .forward(x.clone(), ForwardCtx::top(Phase::Eval))
        .unwrap();
    {
        let seen = seen.lock().unwrap();
        let phases: Vec<Phase> = seen.iter().map(|s| s.0).collect();
        assert_eq!(phases, [Phase::Train, Phase::Eval]);
        let input: Vec<f32> = x.iter().copied().collect();
        assert!(seen.iter().all(|s| s.1 == input && s.3 == 2.0));
        assert_eq!(seen[0].2, train.iter().copied().collect::<Vec<_>>());
        assert_eq!(seen[1].2, input);
    }
    layer.set_observer(None);
    layer.forward(x, ForwardCtx::top(Phase::Train)).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
}
