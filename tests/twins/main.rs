//! The broken twins, in one place: implementations that are each wrong in
//! one way, used by every test that needs a broken subject.
//!
//! - Subjects (dropouts, noise layers, models) wired in through the public
//!   subject API exactly as a third party wires in its own, run through the
//!   conformance macros: each twin is a module of tests, one per (twin, row).
//!   `tests/twins/expected.toml` says which rows each twin must fail (or report
//!   otherwise) and why, and every other row must pass, so a passing
//!   `inert_on_one_row_batches::drop_rate_binomial` means that row caught that
//!   twin, and a failing one names what broke.
//! - The core's own layers and models broken in one way ([`layers`]), run
//!   through the checks that read the core's internals, a test per twin and
//!   check; and the scenario's unscaled dropout ([`unscaled`]).
//!
//! nncheck's own core runs through the same macros and must pass every row.
//! A twin its row accepted would make that row worthless for everyone who
//! runs the suite on their own layer.

#[path = "../common/masked_dropout.rs"]
mod masked_dropout;

mod dropouts;
mod layers;
mod models;
mod noise;
mod subjects;
#[allow(dead_code)]
mod unscaled;

use dropouts::{masked, Flaw, Twin};
use masked_dropout::{Flaw as MaskedFlaw, Scaling};
use models::{ModelFlaw, TwinModel};
use nncheck::check::{CheckReport, CoreDropout, CoreModel, CoreNoise, Verdict};
use noise::{NoiseFlaw, NoiseTwin};

// The correct core: every row passes, nothing to expect.
nncheck::dropout_conformance_tests!(
    core_dropout,
    CoreDropout,
    expect = "tests/twins/expected.toml"
);
nncheck::noise_conformance_tests!(core_noise, CoreNoise, expect = "tests/twins/expected.toml");
nncheck::model_conformance_tests!(core_model, CoreModel, expect = "tests/twins/expected.toml");

nncheck::dropout_conformance_tests!(
    no_rescale,
    Twin(Flaw::NoRescale),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    scale_by_inverse_p,
    Twin(Flaw::ScaleByInverseP),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    rate_off_by_a_hundredth,
    Twin(Flaw::RateOffByAHundredth),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    active_in_eval,
    Twin(Flaw::ActiveInEval),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    mask_reused_across_calls,
    Twin(Flaw::MaskReusedAcrossCalls),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    neighbours_share_a_draw,
    Twin(Flaw::NeighboursShareADraw),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    every_tenth_position_never_dropped,
    Twin(Flaw::EveryTenthPositionNeverDropped),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    backward_draws_its_own_mask,
    Twin(Flaw::BackwardDrawsItsOwnMask),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    counters_miss,
    Twin(Flaw::CountersMiss),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    reseed_ignored,
    Twin(Flaw::ReseedIgnored),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    build_seed_ignored,
    Twin(Flaw::BuildSeedIgnored),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    noise_shape_ignored,
    Twin(Flaw::NoiseShapeIgnored),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    dropped_times_zero,
    Twin(Flaw::DroppedTimesZero),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    dropped_nan_and_negative_zero_left_alone,
    Twin(Flaw::DroppedNanAndNegativeZeroLeftAlone),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    rate_one_keeps_units,
    Twin(Flaw::RateOneKeepsUnits),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    rate_one_gives_nan,
    Twin(Flaw::RateOneGivesNan),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    rate_one_refused,
    Twin(Flaw::RateOneRefused),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    invalid_rate_accepted,
    Twin(Flaw::InvalidRateAccepted),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    inert_on_one_row_batches,
    masked(
        "masked dropout inert on one-row batches",
        Scaling::Spec,
        MaskedFlaw::InertOnOneRowBatches
    ),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    mask_repeats_inside_a_call,
    masked(
        "masked dropout whose mask repeats inside a call",
        Scaling::Spec,
        MaskedFlaw::MaskRepeatsInsideACall
    ),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    two_ulps_off,
    masked(
        "masked dropout two ulps off",
        Scaling::TwoUlpsOff,
        MaskedFlaw::None
    ),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    mixed_recipes,
    masked(
        "masked dropout mixing recipes",
        Scaling::MixedRecipes,
        MaskedFlaw::None
    ),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    flushes_subnormals,
    masked(
        "masked dropout flushing kept subnormals",
        Scaling::Spec,
        MaskedFlaw::FlushesSubnormals
    ),
    expect = "tests/twins/expected.toml"
);
nncheck::noise_conformance_tests!(
    stddev_off_by_ten_percent,
    NoiseTwin(NoiseFlaw::StddevOffByTenPercent),
    expect = "tests/twins/expected.toml"
);
nncheck::noise_conformance_tests!(
    variance_rate,
    NoiseTwin(NoiseFlaw::VarianceRate),
    expect = "tests/twins/expected.toml"
);
nncheck::noise_conformance_tests!(
    noisy_in_eval,
    NoiseTwin(NoiseFlaw::NoisyInEval),
    expect = "tests/twins/expected.toml"
);
nncheck::noise_conformance_tests!(
    per_element_spatial,
    NoiseTwin(NoiseFlaw::PerElementSpatial),
    expect = "tests/twins/expected.toml"
);
nncheck::noise_conformance_tests!(
    alpha_without_affine,
    NoiseTwin(NoiseFlaw::AlphaWithoutAffine),
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    freeze_ignored,
    TwinModel(ModelFlaw::FreezeIgnored),
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    freeze_not_recursive,
    TwinModel(ModelFlaw::FreezeNotRecursive),
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    unfreeze_needs_recompile,
    TwinModel(ModelFlaw::UnfreezeNeedsRecompile),
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    frozen_head_stops_the_gradient,
    TwinModel(ModelFlaw::FrozenHeadStopsTheGradient),
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    steps_do_nothing,
    TwinModel(ModelFlaw::StepsDoNothing),
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    dropout_active_in_inference,
    TwinModel(ModelFlaw::DropoutActiveInInference),
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    dropout_asleep_in_frozen_fit,
    TwinModel(ModelFlaw::DropoutAsleepInFrozenFit),
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    shows_no_weights,
    TwinModel(ModelFlaw::ShowsNoWeights),
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    decay_leaks_into_frozen_weights,
    models::DecayLeak,
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    frozen_batch_norm_trains,
    models::FrozenBatchNormTrains,
    expect = "tests/twins/expected.toml"
);
nncheck::model_conformance_tests!(
    rebuilt_on_unfreeze,
    models::RebuiltOnUnfreeze,
    expect = "tests/twins/expected.toml"
);

/// The failing records of `check`, at least one.
fn failures<'a>(reports: &'a [CheckReport], check: &str) -> Vec<&'a CheckReport> {
    let failed: Vec<&CheckReport> = reports
        .iter()
        .filter(|r| r.check == check && r.verdict() == Verdict::Fail)
        .collect();
    assert!(!failed.is_empty(), "no failing {check} record");
    failed
}

/// Survivors two ulps above SPEC's value fit no recipe, and the record says by
/// how much, with an example element and each recipe's value.
#[test]
fn survivors_two_ulps_off_are_reported_with_the_distance() {
    for r in failures(two_ulps_off::reports(), "survivors_scaled_exactly") {
        assert!(
            r.observed
                .contains("fit no listed recipe, the farthest 2 ulps from the nearest: x = "),
            "{}",
            r.line()
        );
        assert!(r.observed.contains("; recipes give "), "{}", r.line());
    }
}

/// Two recipes within one call fail where they part, naming the mix.
#[test]
fn mixed_recipes_are_reported_as_a_mix() {
    let failed = failures(mixed_recipes::reports(), "survivors_scaled_exactly");
    for r in &failed {
        assert!(
            r.observed.contains("a mix of recipes: none fits all"),
            "{}",
            r.line()
        );
    }
    // Where every recipe gives the same bits there is nothing to mix.
    assert!(failed.iter().all(|r| !r.subject.contains("Dropout(0.5)")));
}

/// The inert twin fails exactly its one-row cases.
#[test]
fn the_inert_twin_fails_only_on_one_row_batches() {
    for r in failures(inert_on_one_row_batches::reports(), "drop_rate_binomial") {
        assert!(r.subject.contains("[1, 1000]"), "{}", r.line());
    }
}

/// A repeated keystream shows at its period's lag.
#[test]
fn a_repeating_mask_is_caught_at_its_period() {
    for r in failures(
        mask_repeats_inside_a_call::reports(),
        "long_range_independent",
    ) {
        assert!(r.observed.contains("farthest: lag 2^16"), "{}", r.line());
    }
}

/// A leak of weight decay into frozen weights shows with AdamW's decay, not
/// with SGD, which has none: the sweep's optimizers are what catch it.
#[test]
fn the_decay_leak_shows_under_adamw_only() {
    for r in failures(
        decay_leaks_into_frozen_weights::reports(),
        "frozen_weights_unchanged",
    ) {
        assert!(r.subject.contains("AdamW wd 0.01"), "{}", r.line());
    }
}

/// The twin that leaves a dropped NaN and a dropped `-0.0` as they were cannot
/// be seen in its output (`NaN * 0` and `NaN * scale` are both NaN), so the
/// audit reads the mask through the subject's backward pass; it names what the
/// drops became.
#[test]
fn dropped_nan_and_negative_zero_left_alone_are_named() {
    let reports = dropped_nan_and_negative_zero_left_alone::reports();
    let record = reports
        .iter()
        .find(|r| r.check == "dropped_special_values")
        .expect("the special-value audit ran");
    assert!(record.observed.contains("NaN -> NaN"), "{}", record.line());
    assert!(
        record.observed.contains("-0.0 -> -0.0"),
        "{}",
        record.line()
    );
    assert!(record.observed.contains("backward"), "{}", record.line());
    // Its rates and survivors are right: only the convention row tells.
    for check in ["drop_rate_binomial", "survivors_scaled_exactly"] {
        assert!(reports
            .iter()
            .filter(|r| r.check == check)
            .all(|r| r.verdict() == Verdict::Pass));
    }
}

#[test]
fn every_wrong_drop_of_a_special_value_is_counted() {
    let reports = dropped_times_zero::reports();
    let record = reports
        .iter()
        .find(|r| r.check == "dropped_special_values")
        .expect("the special-value audit ran");
    // `x * 0` turns a dropped finite negative into -0.0 and an infinity into NaN.
    assert!(
        record.observed.contains("finite -> -0.0 x"),
        "{}",
        record.line()
    );
    assert!(
        record.observed.contains("+inf -> NaN x"),
        "{}",
        record.line()
    );
    let listed = record.observed.trim_start_matches("dropped: ");
    let listed = listed.split(" (").next().unwrap_or_default();
    for entry in listed.split(", ") {
        let count = entry
            .rsplit(" x")
            .next()
            .and_then(|n| n.parse::<usize>().ok());
        assert!(
            count.is_some_and(|n| n > 0),
            "`{entry}` in {}",
            record.line()
        );
    }
}
