#!/usr/bin/env bash
# Make (or confirm) a pinned Python virtual environment for a framework bridge.
#
#   python/make-env.sh NAME
#
# creates $NNCHECK_VENV_DIR/NAME (default: .venv/NAME at the repository root)
# with `python3 -m venv` and installs python/requirements-NAME.txt into it,
# every package pinned with `==` (the files are `pip freeze` output of a real
# install, so pip's resolver only confirms them). NAME is e.g. `keras` or
# `torch`.
#
# Idempotent: a stamp file in the environment holds the sha256 of the
# requirements file and the interpreter's version; when both still match, the
# script says the environment is up to date and does nothing. When they do not
# (or an earlier run was interrupted before writing the stamp), the environment
# is removed and made anew, so no package from an older pin set survives.
#
# Environment:
#   NNCHECK_VENV_DIR  folder that holds the environments (default <repo>/.venv)
#   NNCHECK_PYTHON    interpreter to make the environment with (default python3);
#                     the Rust side must embed the same Python version
set -euo pipefail

usage() { echo "usage: $0 NAME   (reads python/requirements-NAME.txt)" >&2; exit 2; }
[ $# -eq 1 ] || usage
name="$1"
# The name becomes a path component that may be deleted: keep it plain.
[[ "$name" =~ ^[a-z0-9][a-z0-9_-]*$ ]] || { echo "make-env: bad environment name '$name'" >&2; usage; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$repo/python/requirements-$name.txt"
[ -f "$req" ] || { echo "make-env: no requirements file $req" >&2; exit 1; }

python="${NNCHECK_PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "make-env: interpreter '$python' not found" >&2; exit 1; }

venv_root="${NNCHECK_VENV_DIR:-$repo/.venv}"
mkdir -p "$venv_root"
venv_root="$(cd "$venv_root" && pwd)"
venv="$venv_root/$name"
stamp="$venv/.nncheck-stamp"

# Two runs at once (e.g. parallel test binaries) must not build the same env.
if command -v flock >/dev/null; then
    exec 9>"$venv_root/.$name.lock"
    flock 9
fi

want="$(sha256sum "$req" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
    echo "make-env: $name is up to date: $venv"
    exit 0
fi

if [ -e "$venv" ]; then
    # Only ever delete something that is a virtual environment.
    [ -f "$venv/pyvenv.cfg" ] || { echo "make-env: $venv exists and is not a virtual environment; not touching it" >&2; exit 1; }
    echo "make-env: $name is stale or incomplete; making it anew"
    rm -rf "$venv"
fi

echo "make-env: creating $venv with $("$python" --version 2>&1)"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --require-virtualenv --disable-pip-version-check \
    --no-input -r "$req"
"$venv/bin/python" -m pip check --disable-pip-version-check
# The stamp is written last: an interrupted run leaves no stamp and is redone.
printf '%s\n' "$want" > "$stamp"

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
echo "make-env: $name is ready: $venv"
echo "make-env: interpreter $venv/bin/python, site-packages $site"
