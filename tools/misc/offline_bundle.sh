#!/usr/bin/env bash
# Download what dcama_mm needs for a machine that has its own torch but no
# package index (e.g. a GPU machine): the wheels of
# tools/misc/offline_requirements.txt for the target Python and mmcv's
# source archive. Carry the folder there and run
# tools/misc/install_offline_bundle.sh on it (docs/gpu.md, "A GPU machine
# without a package index").
#
# Usage: bash tools/misc/offline_bundle.sh [--python-version 3.12] [--dest .whl]
#            [--mmcv-wheel WHEEL]
#   --python-version  the target machine's Python (major.minor; default: 3.12)
#   --dest            the folder to fill (default: .whl, ignored by git); a
#                     folder holding other files than an earlier bundle is
#                     refused, an earlier bundle is replaced
#   --mmcv-wheel      also carry an mmcv wheel built for the target's Python
#                     and torch (tools/misc/build_mmcv.sh, e.g. in a venv
#                     with that torch): the installer then builds nothing
#                     unless it fails to import there
# Runs pip of $PYTHON, else the project's .venv (tools/setup_env.sh), which
# must import torch: pip prepares mmcv's source archive with it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYVER=3.12
DEST="$ROOT/.whl"
MMCV_VERSION=2.1.0
MMCV_WHEEL=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --python-version) PYVER="$2"; shift 2 ;;
        --dest) DEST="$2"; shift 2 ;;
        --mmcv-wheel) MMCV_WHEEL="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "error: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if ! [[ "$PYVER" =~ ^3\.[0-9]+$ ]]; then
    echo "error: --python-version '$PYVER': give major.minor, e.g. 3.12" >&2
    exit 2
fi
if [ -n "${MMCV_WHEEL:-}" ]; then
    case "$(basename "$MMCV_WHEEL")" in
        mmcv-"$MMCV_VERSION"-cp"${PYVER/./}"-cp"${PYVER/./}"-linux_x86_64.whl) ;;
        *) echo "error: --mmcv-wheel '$MMCV_WHEEL' is not an mmcv $MMCV_VERSION wheel for" \
               "CPython $PYVER on x86_64 Linux (mmcv-$MMCV_VERSION-cp${PYVER/./}-cp${PYVER/./}-linux_x86_64.whl)." >&2
           exit 2 ;;
    esac
    if [ ! -f "$MMCV_WHEEL" ]; then
        echo "error: --mmcv-wheel '$MMCV_WHEEL' does not exist." >&2
        exit 2
    fi
fi
PY="${PYTHON:-$ROOT/.venv/bin/python}"
if ! "$PY" -c 'import torch, pkg_resources' >/dev/null 2>&1; then
    echo "error: $PY cannot import torch and pkg_resources (setuptools < 82), with which" \
        "pip prepares mmcv's source archive; run tools/setup_env.sh first or set PYTHON." >&2
    exit 2
fi

if [ -d "$DEST" ] && [ -n "$(ls -A "$DEST")" ]; then
    if [ ! -f "$DEST/BUNDLE.txt" ]; then
        echo "error: --dest $DEST already holds files and no BUNDLE.txt: it is not an" \
            "earlier bundle of this script. Give an empty or new folder." >&2
        exit 2
    fi
    OTHERS="$(cd "$DEST" && for f in * .[!.]*; do [ -e "$f" ] || continue; grep -qxF -- "$f" BUNDLE.txt || [ "$f" = BUNDLE.txt ] || echo "$f"; done)"
    if [ -n "$OTHERS" ]; then
        echo "error: --dest $DEST holds files that are not in its BUNDLE.txt (" $OTHERS "):" \
            "move them away or give another folder." >&2
        exit 2
    fi
fi

# Download beside DEST, then swap: a failed download leaves an earlier
# bundle as it was.
PARENT="$(dirname "$DEST")"
mkdir -p "$PARENT"
NEW="$(mktemp -d "$PARENT/.$(basename "$DEST").new.XXXXXX")"
trap 'rm -rf "$NEW"' EXIT
PIP=("$PY" -m pip download -q --no-deps --disable-pip-version-check -d "$NEW")
TAG="${PYVER/./}"
REQS="$(grep -v -e '^#' -e '^$' "$ROOT/tools/misc/offline_requirements.txt")"
"${PIP[@]}" --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 \
    --platform manylinux2010_x86_64 --platform manylinux_2_5_x86_64 \
    --platform manylinux1_x86_64 --platform any $REQS
"${PIP[@]}" --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION"
if [ -n "$MMCV_WHEEL" ]; then cp "$MMCV_WHEEL" "$NEW/"; fi
{
    echo "# dcama_mm offline bundle for CPython $PYVER (cp$TAG), x86_64 Linux,"
    echo "# made $(date -u +%Y-%m-%dT%H:%MZ) by tools/misc/offline_bundle.sh"
    (cd "$NEW" && ls -1 | grep -v "^BUNDLE.txt$")
} > "$NEW/BUNDLE.txt"

if [ -d "$DEST" ]; then
    (cd "$DEST" && grep -v '^#' BUNDLE.txt 2>/dev/null | while IFS= read -r f; do
        if [ -n "$f" ]; then rm -f -- "$f"; fi
    done; rm -f BUNDLE.txt)
fi
mkdir -p "$DEST"
mv "$NEW"/* "$DEST"/
TOTAL="$(du -sk "$DEST" | cut -f1)"
echo "bundle for Python $PYVER in $DEST: $(($(wc -l < "$DEST/BUNDLE.txt") - 2)) files, $((TOTAL / 1024)) MiB"
echo "carry the folder to the target machine and run there, in this repository:"
echo "  bash tools/misc/install_offline_bundle.sh <the folder>"
