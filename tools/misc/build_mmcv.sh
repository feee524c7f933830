#!/usr/bin/env bash
# Build an mmcv wheel WITH its compiled ops (CPU kernels) from mmcv's source
# archive, against the torch of the given Python. mmseg imports mmcv.ops, and
# PyPI has no mmcv 2.1 wheels, so every dcama_mm environment needs one such
# build per (Python, torch) pair. Used by tools/setup_env.sh (its cache) and
# tools/misc/install_offline_bundle.sh (an offline machine with its own
# torch, e.g. a GPU machine).
#
# Only the CPU kernels are built, also on a machine with a GPU: the build
# hides the GPUs (CUDA_VISIBLE_DEVICES=) and sets FORCE_CUDA=0, since
# dcama_mm runs no mmcv op and CUDA kernels would take many times longer to
# compile. torch >= 2.14's headers need C++20, so the C++ standard of mmcv's
# setup.py is raised to C++20 (accepted by older torch too).
#
# Usage: bash tools/misc/build_mmcv.sh PYTHON SOURCE OUT_DIR
#   PYTHON   interpreter whose torch the ops are built against; it must
#            import torch, setuptools (< 82: mmcv's setup.py imports
#            pkg_resources) and mmcv's setup-time imports (addict, yapf, ...)
#   SOURCE   mmcv-<version>.tar.gz (pip download --no-binary :all: mmcv==V)
#   OUT_DIR  where the wheel is written; its path is the last line printed
# MAX_JOBS (default: the number of cores) sets the parallel compile jobs.
set -euo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: bash tools/misc/build_mmcv.sh PYTHON SOURCE OUT_DIR" >&2
    exit 2
fi
PY="$1"
SOURCE="$2"
OUT_DIR="$3"
log() { printf '[build_mmcv] %s\n' "$*" >&2; }

if [ ! -f "$SOURCE" ]; then
    echo "error: the mmcv source archive '$SOURCE' does not exist; get it with" \
        "'pip download --no-deps --no-build-isolation --no-binary :all: mmcv==2.1.0'." >&2
    exit 2
fi
# absolute: the build runs from inside the unpacked source
if PY_FOUND="$(command -v "$PY")"; then
    case "$PY_FOUND" in /*) PY="$PY_FOUND" ;; *) PY="$PWD/$PY_FOUND" ;; esac
fi
if ! "$PY" -c 'import pkg_resources, torch' >/dev/null 2>&1; then
    echo "error: $PY cannot import torch and pkg_resources (setuptools < 82)," \
        "which mmcv's setup.py needs; install them (or put them on PYTHONPATH) first." >&2
    exit 2
fi
# torch's BuildExtension compiles in parallel only through ninja; look for
# it beside the interpreter too (a venv's bin/ may not be on PATH).
PY_BIN="$(dirname "$PY")"
export PATH="$PATH:$PY_BIN"
if ! command -v ninja >/dev/null 2>&1; then
    log "warning: no ninja on PATH: the ops compile one file at a time (slow)"
fi

BUILD="$(mktemp -d)"
trap 'rm -rf "$BUILD"' EXIT
tar -xzf "$SOURCE" -C "$BUILD"
SRC="$(find "$BUILD" -mindepth 1 -maxdepth 1 -type d -name 'mmcv-*' | head -n1)"
if [ -z "$SRC" ] || [ ! -f "$SRC/setup.py" ]; then
    echo "error: '$SOURCE' holds no mmcv-<version>/setup.py: not an mmcv source archive." >&2
    exit 2
fi
sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"

JOBS="${MAX_JOBS:-$(nproc)}"
log "building $(basename "$SRC") with CPU ops against torch $("$PY" -c 'import torch; print(torch.__version__)') ($JOBS jobs)"
START=$SECONDS
(cd "$SRC" && CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$JOBS" \
    "$PY" -m pip wheel --no-build-isolation --no-deps --no-index -w "$BUILD/dist" . 2>&1 \
    | while IFS= read -r line; do
        case "$line" in
            *"still running"*) ;;
            *Building*|*building*|*Created*|*error*|*Error*) log "mmcv: $line" ;;
        esac
    done)
BUILT="$(ls "$BUILD"/dist/mmcv-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$BUILT" ]; then
    echo "error: the mmcv build wrote no wheel; see the messages above." >&2
    exit 1
fi
mkdir -p "$OUT_DIR"
cp "$BUILT" "$OUT_DIR/"
log "built $(basename "$BUILT") in $((SECONDS - START)) s"
echo "$OUT_DIR/$(basename "$BUILT")"
