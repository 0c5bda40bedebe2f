//! The broken twins: implementations that are each wrong in one way, wired in
//! through the public subject API exactly as a third party wires in its own,
//! and run through the conformance macros with their default sweep. Each twin
//! is a module of tests, one per (twin, row): `tests/twins/expected.toml` says
//! which rows each twin must fail (or report otherwise) and why, and every
//! other row must pass, so `inert_on_one_row_batches::drop_rate_binomial`
//! passing means that row caught that twin, and failing names what broke.
//!
//! A twin its row accepted would make that row worthless for everyone who
//! runs the suite on their own layer.

#[path = "../common/masked_dropout.rs"]
mod masked_dropout;
mod models;

use masked_dropout::{Flaw, MaskedSubject, Scaling};
use nncheck::check::{CheckReport, Verdict};

/// The dropouts: SPEC's own recipe and mask, broken in one way each.
const fn dropout(name: &'static str, scaling: Scaling, flaw: Flaw) -> MaskedSubject {
    MaskedSubject {
        name,
        scaling,
        flaw,
    }
}

nncheck::dropout_conformance_tests!(
    inert_on_one_row_batches,
    dropout(
        "inert on one-row batches",
        Scaling::Spec,
        Flaw::InertOnOneRowBatches
    ),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    mask_repeats_inside_a_call,
    dropout(
        "mask repeats inside a call",
        Scaling::Spec,
        Flaw::MaskRepeatsInsideACall
    ),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    two_ulps_off,
    dropout("two ulps off", Scaling::TwoUlpsOff, Flaw::None),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    mixed_recipes,
    dropout("mixed recipes", Scaling::MixedRecipes, Flaw::None),
    expect = "tests/twins/expected.toml"
);
nncheck::dropout_conformance_tests!(
    flushes_subnormals,
    dropout(
        "flushes kept subnormals",
        Scaling::Spec,
        Flaw::FlushesSubnormals
    ),
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
