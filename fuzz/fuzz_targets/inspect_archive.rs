//! cargo-fuzz target `inspect_archive`: a thin wrapper around `fuzz_bodies::inspect_archive::run`,
//! whose module docs state the invariants it checks. The bodies are shared as
//! source with the main crate's corpus replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/fuzz_bodies/mod.rs"]
mod fuzz_bodies;

fuzz_target!(|data: &[u8]| fuzz_bodies::inspect_archive::run(data));
