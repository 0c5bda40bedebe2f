#!/usr/bin/env bash
# Bounded coverage-guided fuzzing, for .ci/run.
#
# The committed corpora and crash reproducers are always replayed by
# `cargo test --release` (tests/fuzz_corpus_replay.rs), so this script adds
# nothing on a machine without nightly. Where `cargo +nightly` works it installs
# cargo-fuzz if missing and runs every target for FUZZ_SECONDS (default 60) from
# the committed seed corpus, failing on any crash. New corpus entries go to a
# scratch directory, so the committed corpus is not modified.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=(dropout model_build fit_sequence batch_norm)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "== fuzz: no nightly toolchain; skipped (the corpora are replayed by cargo test)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd fuzz
cargo +nightly fuzz build
for t in "${targets[@]}"; do
    echo "== fuzz: $t for ${seconds}s"
    mkdir -p "$scratch/$t"
    # libFuzzer exits non-zero on a crash, a leak, a timeout or running out of
    # memory; set -e turns that into a CI failure. The crash input is saved
    # under fuzz/artifacts/$t/.
    cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
echo "== fuzz: no crash"
