//! Replays every committed fuzz input through the fuzz target bodies, on stable.
//!
//! `fuzz/corpus/<target>/` holds a small minimized seed corpus per target and
//! `fuzz/regressions/<target>/` a reproducer of every crash the fuzzer found.
//! Each file goes through `fuzz_bodies::<target>::run`, the same body the
//! cargo-fuzz targets call, which panics only when an invariant breaks; so this
//! test is the fuzzing regression gate of `cargo test`, nightly or not.
//!
//! The published package does not carry `fuzz/` (cargo leaves out a folder with
//! a manifest of its own); there the replay says it skipped, by name.

mod fuzz_bodies;

use std::io::Write;
use std::path::{Path, PathBuf};

/// A fuzz target body.
type Body = fn(&[u8]);

/// The target bodies, by the directory name their inputs live under.
const TARGETS: &[(&str, Body)] = &[
    ("dropout", fuzz_bodies::dropout::run),
    ("model_build", fuzz_bodies::model_build::run),
    ("fit_sequence", fuzz_bodies::fit_sequence::run),
    ("batch_norm", fuzz_bodies::batch_norm::run),
    ("inspect_archive", fuzz_bodies::inspect_archive::run),
];

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The fuzz crate's folder, or `None` (with a line naming the skipped test)
/// where it is absent, as in the published package.
fn fuzz_dir(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    if dir.join("Cargo.toml").is_file() {
        Some(dir)
    } else {
        // Straight to stderr, past the harness's capture, so a passing run shows it.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: no fuzz/ folder here (the published package leaves it out)"
        );
        None
    }
}

/// Replays `fuzz/<kind>/<target>/*` and returns how many files ran per target.
fn replay(fuzz: &Path, kind: &str) -> Vec<(&'static str, usize)> {
    let root = fuzz.join(kind);
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries {
            let name = e.expect("readable directory entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{kind}/{name} is not a known target"
            );
        }
    }
    TARGETS
        .iter()
        .map(|&(target, run)| {
            let files = files_under(&root.join(target));
            for file in &files {
                let data = std::fs::read(file).expect("readable corpus file");
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(
                    outcome.is_ok(),
                    "{} breaks an invariant of target `{target}`",
                    file.display()
                );
            }
            (target, files.len())
        })
        .collect()
}

#[test]
fn every_seed_corpus_file_passes() {
    let Some(fuzz) = fuzz_dir("every_seed_corpus_file_passes") else {
        return;
    };
    let counts = replay(&fuzz, "corpus");
    for (target, n) in counts {
        assert!(n > 0, "fuzz/corpus/{target} is empty: commit a seed corpus");
    }
}

#[test]
fn every_crash_reproducer_passes() {
    let Some(fuzz) = fuzz_dir("every_crash_reproducer_passes") else {
        return;
    };
    replay(&fuzz, "regressions");
}

#[test]
fn empty_and_tiny_inputs_pass() {
    for (_, run) in TARGETS {
        run(&[]);
        for b in 0..=255u8 {
            run(&[b]);
            run(&[b; 64]);
        }
    }
}
