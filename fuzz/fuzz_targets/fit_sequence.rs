//! cargo-fuzz target `fit_sequence`: a thin wrapper around `nncheck::fuzzing::fit_sequence::run`,
//! whose module docs state the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nncheck::fuzzing::fit_sequence::run(data));
