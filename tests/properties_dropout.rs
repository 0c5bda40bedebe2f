//! SPEC §2 over generated shapes, rates and seeds: the whole dropout battery
//! (`nncheck::check::battery::dropout_battery`) must pass on every case, plus the
//! properties that need the layer itself (noise-shape errors, rate validation).

mod common;

use ndarray::ArrayD;
use nncheck::check::battery::{dropout_battery, DropoutCase};
use nncheck::check::stats::DEFAULT_ALPHA;
use nncheck::{Dropout, Error, Phase};
use proptest::prelude::*;

fn shapes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        (1usize..=1_000_000).prop_map(|n| vec![n]),
        (1usize..=512, 1usize..=64).prop_map(|(a, b)| vec![a, b]),
        (1usize..=32, 1usize..=8, 1usize..=16).prop_map(|(a, b, c)| vec![a, b, c]),
    ]
}

proptest! {
    #![proptest_config(common::config(256))]

    #[test]
    fn dropout_battery_passes(rate in 0.001f64..0.999, shape in shapes(), seed in any::<u64>()) {
        let reports = dropout_battery(&DropoutCase { rate, shape, seed }, DEFAULT_ALPHA).unwrap();
        for r in &reports {
            prop_assert!(r.pass, "{}", r.line());
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

#[test]
fn a_rate_check_at_a_million_draws_resolves_about_three_thousandths() {
    // SPEC §6: for n = 10^6, p = 0.5 the region is about ±0.0031 on the rate.
    let (lo, hi) = nncheck::check::stats::binomial_region(1_000_000, 0.5, DEFAULT_ALPHA);
    let half_width = (hi - lo) as f64 / 2.0 / 1e6;
    assert!((0.0029..0.0033).contains(&half_width), "{half_width}");
    let bias = nncheck::check::stats::smallest_detectable_bias(1_000_000, 0.5, DEFAULT_ALPHA);
    assert!(bias < 0.0045, "{bias}");
}
