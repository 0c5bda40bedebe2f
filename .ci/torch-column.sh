#!/usr/bin/env bash
# The PyTorch column of the scoreboard: makes the torch environment (about
# 3 GB of wheels, 5.4 GB installed: too large for every .ci/run), then runs
# the torch adapter's tests and the scoreboard held to the expectations kept
# for PyTorch, and prints the Markdown table the README's columns come from.
# Run by the scheduled workflow .github/workflows/torch-column.yml; by hand:
#   bash .ci/torch-column.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# One intra-op thread: the model is tiny, and two OpenMP threads on a loaded
# two-core machine make each op many times slower.
export OMP_NUM_THREADS=1

echo "== the pinned PyTorch environment"
bash python/make-env.sh torch
echo "== the torch adapter linted and tested (the environment is required)"
cargo clippy --release --all-targets --features torch -- -D warnings
NNCHECK_REQUIRE_PYTHON=torch cargo test --release --features torch --test conform_torch
echo "== the scoreboard with the PyTorch columns, held to their expectations"
"${CARGO_TARGET_DIR:-target}/release/nncheck" conform \
    --expect tests/expectations/pytorch-2.15.toml
"${CARGO_TARGET_DIR:-target}/release/nncheck" conform --markdown
echo "torch column passed"
