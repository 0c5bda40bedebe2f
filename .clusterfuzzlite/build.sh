#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ for ClusterFuzzLite (the OSS-Fuzz
# build image) and puts each fuzzer and its seed corpus in $OUT.
#
# Runs outside the image too, from the repository root:
#   NNCHECK_SRC=. OUT=fuzz/target/cflite-out bash .clusterfuzzlite/build.sh
set -euo pipefail

: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)" # the script changes directory below
cd "${NNCHECK_SRC:-${SRC:?set SRC or NNCHECK_SRC}/nncheck}"

# The fuzzers are looked for in fuzz/target, as the image's coverage wrapper
# also assumes; a target dir set elsewhere would hide them.
unset CARGO_TARGET_DIR

# cargo-fuzz needs unstable flags (-Zsanitizer). The build image's default
# toolchain is nightly, and its cargo wrapper only recognises a plain
# `cargo fuzz ...`, so a nightly default is used as is. Elsewhere a nightly is
# used if installed; with the stable toolchain alone, RUSTC_BOOTSTRAP=1 unlocks
# the flags for this build (as .ci/fuzz.sh does).
if [[ "$(rustc --version)" == *nightly* ]]; then
    cargo=(cargo)
elif cargo +nightly --version >/dev/null 2>&1; then
    cargo=(cargo +nightly)
else
    cargo=(cargo)
    export RUSTC_BOOTSTRAP=1
    echo "build.sh: no nightly toolchain; building with stable and RUSTC_BOOTSTRAP=1" >&2
fi
# Not `cargo fuzz --version`: in a coverage build the wrapper would build.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

# -O alone would drop the debug assertions and overflow checks that a plain
# `cargo fuzz build` (and so .ci/fuzz.sh) keeps; they catch bugs sooner.
"${cargo[@]}" fuzz build -O --debug-assertions

# In a coverage build the image's cargo wrapper turns every `cargo fuzz ...`
# into a build and prints no names, hence the fallback.
mapfile -t targets < <("${cargo[@]}" fuzz list 2>/dev/null | grep -E '^[A-Za-z0-9_-]+$' || true)
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(dropout model_build fit_sequence batch_norm inspect_archive)
fi

# cargo fuzz builds for the host triple.
host="$(rustc -vV | sed -n 's/^host: //p')"
for t in "${targets[@]}"; do
    cp "fuzz/target/$host/release/$t" "$OUT/"

    # The crash reproducers join the seed corpus so that every run starts by
    # replaying them.
    files=()
    for d in "fuzz/corpus/$t" "fuzz/regressions/$t"; do
        if [ -d "$d" ]; then
            while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$d" -maxdepth 1 -type f -print0)
        fi
    done
    zip_file="$OUT/${t}_seed_corpus.zip"
    rm -f "$zip_file" # zip would add to a stale archive
    if [ "${#files[@]}" -eq 0 ]; then
        continue
    fi
    if command -v zip >/dev/null 2>&1; then
        zip -jq "$zip_file" "${files[@]}"
    else
        # A plain Debian machine may lack zip but has python3.
        python3 - "$zip_file" "${files[@]}" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for f in sys.argv[2:]:
        z.write(f, os.path.basename(f))
PY
    fi
done
