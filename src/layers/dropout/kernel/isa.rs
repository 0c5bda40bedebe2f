//! The instruction sets the kernel runs on, as values only detection creates.
//!
//! Each SIMD path of the kernel is reached through a token: [`Avx2`] or
//! [`Avx512`], a zero-sized type with a private field whose only constructor asks
//! the CPU at run time. Holding a token is the proof the unsafe code relies on, so
//! no flag can claim an instruction set the CPU lacks. A caller (a test, an audit)
//! may choose a smaller set than detected, e.g. [`Isa::Portable`]; every choice
//! gives the same output.

/// Proof that the CPU supports AVX2: only [`Avx2::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx2(());

impl Avx2 {
    /// `Some` when the CPU supports AVX2 (asked at run time; std caches the answer).
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Some(Avx2(()));
        }
        None
    }
}

/// Proof that the CPU supports everything the AVX-512 paths are compiled for
/// (AVX-512F, AVX-512BW and POPCNT) and AVX2: only [`Avx512::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx512(());

impl Avx512 {
    /// `Some` when the CPU supports AVX-512F, AVX-512BW, POPCNT and AVX2.
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("avx2")
        {
            return Some(Avx512(()));
        }
        None
    }

    /// The AVX2 token this one implies (AVX2 was checked at detection).
    pub fn avx2(self) -> Avx2 {
        Avx2(())
    }
}

/// The instruction set a [`DropoutKernel`](super::DropoutKernel) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// rand_chacha's keystream and the portable loops (SSE2 tie scan on x86-64).
    Portable,
    /// The AVX2 keystream, tie words and selects.
    Avx2(Avx2),
    /// The AVX-512 keystream and fused `f32` select, AVX2 for the rest.
    Avx512(Avx512),
}

impl Isa {
    /// The widest set this CPU supports.
    pub fn detect() -> Self {
        if let Some(avx512) = Avx512::detect() {
            Isa::Avx512(avx512)
        } else if let Some(avx2) = Avx2::detect() {
            Isa::Avx2(avx2)
        } else {
            Isa::Portable
        }
    }

    /// The AVX2 token when this set includes AVX2.
    pub fn avx2(self) -> Option<Avx2> {
        match self {
            Isa::Portable => None,
            Isa::Avx2(avx2) => Some(avx2),
            Isa::Avx512(avx512) => Some(avx512.avx2()),
        }
    }

    /// The AVX-512 token when this set includes AVX-512.
    pub fn avx512(self) -> Option<Avx512> {
        match self {
            Isa::Avx512(avx512) => Some(avx512),
            _ => None,
        }
    }
}

/// For tests that need an instruction set: the set when this CPU has it.
///
/// Otherwise `None` after printing `SKIPPED <test>: needs <features> (not on this
/// machine)` to stderr, or a panic when `NNCHECK_REQUIRE_ISA` (a comma-separated
/// list of `avx2`, `avx512`) names it, so a run that must cover it cannot pass
/// having run nothing. `NNCHECK_HIDE_ISA` (same list) makes a set this CPU has
/// count as absent, so the skip and the failure can be shown on any machine.
///
/// ```
/// use nncheck::layers::dropout::kernel::isa::required;
/// if let Some(isa) = required("avx2", "my_avx2_test") {
///     assert!(isa.avx2().is_some());
/// } // else: the test said it skipped, by name
/// ```
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
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    isa
}

/// What a test needing `name` does on a machine without it, given the value of
/// `NNCHECK_REQUIRE_ISA`: panics when the list names it, else returns the
/// `SKIPPED` line. An unknown name panics (a typo must not skip silently).
pub fn missing(name: &str, test: &str, require_env: &str) -> String {
    let features = match name {
        "avx2" => "avx2",
        "avx512" => "avx512f, avx512bw",
        _ => panic!("unknown instruction set {name:?} (known: avx2, avx512)"),
    };
    if require_env.split(',').any(|r| r.trim() == name) {
        panic!(
            "{test} needs {name} ({features}), which this machine lacks, and \
             NNCHECK_REQUIRE_ISA={require_env} requires it"
        );
    }
    format!("SKIPPED {test}: needs {features} (not on this machine)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_set_is_skipped_unless_required() {
        assert_eq!(
            missing("avx512", "t", ""),
            "SKIPPED t: needs avx512f, avx512bw (not on this machine)"
        );
        assert_eq!(
            missing("avx2", "t", "avx512"),
            "SKIPPED t: needs avx2 (not on this machine)"
        );
    }

    #[test]
    #[should_panic(expected = "t needs avx512 (avx512f, avx512bw), which this machine lacks")]
    fn a_missing_set_that_is_required_fails() {
        missing("avx512", "t", "avx2, avx512");
    }

    #[test]
    fn detection_is_consistent() {
        let isa = Isa::detect();
        assert_eq!(isa.avx512(), Avx512::detect());
        assert_eq!(isa.avx2(), Avx2::detect());
    }
}
