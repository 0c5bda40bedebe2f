#!/usr/bin/env bash
# Bounded coverage-guided fuzzing, for .ci/run.
#
# The committed corpora and crash reproducers are always replayed by
# `cargo test --release` (tests/fuzz_corpus_replay.rs). This script adds live
# coverage-guided fuzzing: it builds the fuzzers with the ClusterFuzzLite build
# script (so every CI run shows that build works) and runs every target for
# FUZZ_SECONDS (default 60) from the committed seed corpus, failing on any
# crash with the reproducer's path. New corpus entries go to a scratch
# directory, so the committed corpus is not modified.
#
# cargo-fuzz needs unstable compiler flags (-Zsanitizer=address); the build
# script uses a nightly toolchain when there is one and otherwise the stable
# compiler with RUSTC_BOOTSTRAP=1, for the fuzz crate only. NNCHECK_FUZZ=0
# skips this script.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=(dropout model_build fit_sequence batch_norm inspect_archive)

if [ "${NNCHECK_FUZZ:-1}" = "0" ]; then
    echo "== fuzz: NNCHECK_FUZZ=0; skipped (the corpora are replayed by cargo test)"
    exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
echo "== fuzz: building with .clusterfuzzlite/build.sh"
NNCHECK_SRC=. OUT="$scratch/out" bash .clusterfuzzlite/build.sh
for t in "${targets[@]}"; do
    [ -x "$scratch/out/$t" ] || { echo "fuzz: the build made no $t fuzzer"; exit 1; }
done
for t in "${targets[@]}"; do
    echo "== fuzz: $t for ${seconds}s"
    mkdir -p "$scratch/$t" "fuzz/artifacts/$t"
    # libFuzzer exits non-zero on a crash, a leak, a timeout or running out of
    # memory; the input that did it is written under fuzz/artifacts/$t/.
    if ! "$scratch/out/$t" "$scratch/$t" "fuzz/corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1; then
        echo "fuzz: target $t failed. Reproducer(s):"
        ls -1 "fuzz/artifacts/$t/"* 2>/dev/null | sed 's/^/  /' || echo "  (none written)"
        echo "Replay with: cargo fuzz run $t <reproducer> (in fuzz/); once fixed, commit it"
        echo "under fuzz/regressions/$t/ so that cargo test replays it."
        exit 1
    fi
done
echo "== fuzz: no crash"
