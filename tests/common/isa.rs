//! Tests that need an instruction set say so when the machine lacks it.
//!
//! [`required`] gives the kernel's [`Isa`] for `avx2` or `avx512` when this CPU has
//! it. When it does not, the test prints `SKIPPED <test>: needs <features> (not on
//! this machine)` to stderr and returns, unless the environment variable
//! `NNCHECK_REQUIRE_ISA` (a comma-separated list of `avx2`, `avx512`) names that
//! set: then it panics, naming it, so a run that must cover it cannot pass having
//! run nothing.
//!
//! `NNCHECK_HIDE_ISA` (same list) makes the tests treat a set this CPU has as
//! absent, so the skip and the failure can be shown on any machine:
//! `NNCHECK_HIDE_ISA=avx512 NNCHECK_REQUIRE_ISA=avx512 cargo test --release
//! --test dropout_kernel` must fail, naming avx512.

use nncheck::layers::dropout::kernel::{Avx2, Avx512, Isa};
use std::io::Write;

/// The features behind each name, as the messages state them.
fn features(name: &str) -> &'static str {
    match name {
        "avx2" => "avx2",
        "avx512" => "avx512f, avx512bw",
        _ => panic!("unknown instruction set {name:?} (known: avx2, avx512)"),
    }
}

/// The instruction set `name` (`avx2` or `avx512`) when this CPU has it; else
/// `None` after saying so, or a panic when `NNCHECK_REQUIRE_ISA` requires it.
pub fn required(name: &str, test: &str) -> Option<Isa> {
    let hidden = std::env::var("NNCHECK_HIDE_ISA").unwrap_or_default();
    let isa = match name {
        _ if hidden.split(',').any(|h| h.trim() == name) => None,
        "avx2" => Avx2::detect().map(Isa::Avx2),
        "avx512" => Avx512::detect().map(Isa::Avx512),
        _ => None,
    };
    if isa.is_none() {
        let env = std::env::var("NNCHECK_REQUIRE_ISA").unwrap_or_default();
        let line = missing(name, test, &env);
        // Straight to stderr, past the test harness's capture, so a passing run
        // still shows what it skipped.
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    isa
}

/// What a test needing `name` does on a machine without it, given the value of
/// `NNCHECK_REQUIRE_ISA`: panics when the list names it, else returns the
/// `SKIPPED` line.
pub fn missing(name: &str, test: &str, require_env: &str) -> String {
    let features = features(name);
    if require_env.split(',').any(|r| r.trim() == name) {
        panic!(
            "{test} needs {name} ({features}), which this machine lacks, and \
             NNCHECK_REQUIRE_ISA={require_env} requires it"
        );
    }
    format!("SKIPPED {test}: needs {features} (not on this machine)")
}
