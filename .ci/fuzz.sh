#!/usr/bin/env bash
# Bounded coverage-guided fuzzing, for .ci/run.
#
# The committed corpora and crash reproducers are always replayed by
# `cargo test --release` (tests/fuzz_corpus_replay.rs). This script adds live
# coverage-guided fuzzing: it installs cargo-fuzz if missing and runs every
# target for FUZZ_SECONDS (default 60) from the committed seed corpus, failing
# on any crash. New corpus entries go to a scratch directory, so the committed
# corpus is not modified.
#
# cargo-fuzz needs unstable compiler flags (-Zsanitizer=address). With a
# nightly toolchain it uses it. Without one (a machine with only the stable
# toolchain cannot fetch another) it says so and builds the fuzz crate with the
# stable compiler and RUSTC_BOOTSTRAP=1, which unlocks those flags for this
# build only; the main crate never sees it. NNCHECK_FUZZ=0 skips the script.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=(dropout model_build fit_sequence batch_norm)

if [ "${NNCHECK_FUZZ:-1}" = "0" ]; then
    echo "== fuzz: NNCHECK_FUZZ=0; skipped (the corpora are replayed by cargo test)"
    exit 0
fi
if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
    echo "== fuzz: nightly toolchain: $(cargo +nightly --version)"
else
    toolchain=()
    export RUSTC_BOOTSTRAP=1
    echo "== fuzz: no nightly toolchain; fuzzing with stable $(cargo --version | cut -d' ' -f2) and RUSTC_BOOTSTRAP=1"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd fuzz
cargo "${toolchain[@]}" fuzz build
for t in "${targets[@]}"; do
    echo "== fuzz: $t for ${seconds}s"
    mkdir -p "$scratch/$t"
    # libFuzzer exits non-zero on a crash, a leak, a timeout or running out of
    # memory; set -e turns that into a CI failure. The crash input is saved
    # under fuzz/artifacts/$t/.
    cargo "${toolchain[@]}" fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
echo "== fuzz: no crash"
