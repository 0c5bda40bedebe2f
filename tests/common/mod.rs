//! Shared proptest settings: fixed seeds in CI, scalable by environment.
//!
//! `PROPTEST_CASES` scales the search for deep runs; `PROPTEST_RNG_SEED` picks
//! another seed. Without them every run explores the same cases, so a green run
//! is reproducible; failures persist to the committed `*.proptest-regressions`.

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// The config of a property with `default_cases` cases unless overridden.
pub fn config(default_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x006e_6e63_6865_636b);
    }
    // Beside the test file: tests/<name>.proptest-regressions, committed.
    config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    config
}
