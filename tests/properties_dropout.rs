//! SPEC §2 and §2b over generated shapes, rates and seeds: the whole dropout
//! battery (`nncheck::check::run::battery::dropout_battery`) and the battery of the
//! other train-only layers (`noise_battery`) must pass on every case, drawn by
//! the generator `nncheck verify` uses (`DropoutCase::generate`), plus the
//! properties that need the layer itself (noise-shape errors, rate validation).

mod common;

use ndarray::ArrayD;
use nncheck::check::run::battery::{self, core_noise_battery, dropout_battery, noise_battery};
use nncheck::check::run::cases::DropoutCase;
use nncheck::check::run::strategy::CaseStrategy;
use nncheck::check::stats::DEFAULT_ALPHA;
use nncheck::check::CoreDropout;
use nncheck::check::{CheckReport, CoreNoise, RecordSpec};
use nncheck::{Dropout, Error, Phase};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestError, TestRunner};

/// Cases as `nncheck verify` draws them, shrinking toward small shapes and
/// round rates.
fn cases() -> CaseStrategy<DropoutCase> {
    nncheck::check::run::strategy::cases()
}

/// Every check of `battery` ran on the case: each record it declares (but
/// the optional ones) is among `reports`, and no other record is; an empty or
/// shortened battery would pass vacuously.
fn every_check_ran(records: &[RecordSpec], reports: &[CheckReport]) -> Result<(), TestCaseError> {
    for spec in records.iter().filter(|r| !r.optional) {
        prop_assert!(
            reports.iter().any(|r| r.check == spec.id),
            "no {} record",
            spec.id
        );
    }
    for r in reports {
        prop_assert!(
            records.iter().any(|s| s.id == r.check),
            "{} is no record of the battery",
            r.check
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::config(256))]

    #[test]
    fn dropout_battery_passes(case in cases()) {
        let reports = dropout_battery(&CoreDropout, &case, DEFAULT_ALPHA);
        every_check_ran(&battery::dropout().records(), &reports)?;
        for r in &reports {
            prop_assert!(r.pass, "{}", r.line());
            prop_assert!(r.alpha.is_none() || r.detectable.is_some(), "no power stated: {}", r.line());
        }
    }

    #[test]
    fn noise_battery_passes(case in cases()) {
        let mut reports = noise_battery(&CoreNoise, &case, DEFAULT_ALPHA);
        every_check_ran(&battery::noise().records(), &reports)?;
        let core = core_noise_battery(&case, DEFAULT_ALPHA);
        every_check_ran(&battery::core_noise().records(), &core)?;
        reports.extend(core);
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

/// A planted bug that shows on every shape (survivors left unscaled) is
/// reported at a small case: the failing case shrinks to at most 2 axes of at
/// most 8 elements, whatever large case first found it.
#[test]
fn a_planted_bug_is_reported_at_a_small_case() {
    use nncheck::check::dropout::survivors::check_train_call_exact;
    use nncheck::check::inputs::positive_input;
    use nncheck::check::DropoutLike;

    /// nncheck's dropout with its survivors left unscaled.
    struct Unscaled(Dropout<f32>);
    impl DropoutLike<f32> for Unscaled {
        fn rate(&self) -> f64 {
            self.0.rate()
        }
        fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> nncheck::check::Result<ArrayD<f32>> {
            let kept = self.0.apply(ArrayD::ones(x.raw_dim()), phase)?;
            Ok(x * kept.mapv(|k| if k == 0.0 { 0.0 } else { 1.0 }))
        }
    }
    let config = proptest::test_runner::Config {
        // A planted failure is not a regression to replay.
        failure_persistence: None,
        ..common::config(256)
    };
    let found = TestRunner::new(config).run(&cases(), |case| {
        let mut layer = Unscaled(Dropout::new(case.rate).unwrap().with_seed(case.seed));
        let x = positive_input(&case.shape, case.seed);
        let r = check_train_call_exact("planted", &mut layer, &x);
        prop_assert!(r.pass, "{}", r.line());
        Ok(())
    });
    match found {
        Err(TestError::Fail(_, minimal)) => assert!(
            minimal.shape.len() <= 2 && minimal.shape.iter().all(|&d| d <= 8),
            "the reported case is not small: {minimal:?}"
        ),
        other => panic!("the planted bug was not found: {other:?}"),
    }
}
