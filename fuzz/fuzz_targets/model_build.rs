//! cargo-fuzz target `model_build`: a thin wrapper around `nncheck::fuzzing::model_build::run`,
//! whose module docs state the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nncheck::fuzzing::model_build::run(data));
