//! cargo-fuzz target `dropout`: a thin wrapper around `nncheck::fuzzing::dropout::run`,
//! whose module docs state the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nncheck::fuzzing::dropout::run(data));
