//! cargo-fuzz target `batch_norm`: a thin wrapper around `nncheck::fuzzing::batch_norm::run`,
//! whose module docs state the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nncheck::fuzzing::batch_norm::run(data));
