#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment at .venv/ and install
# the OpenMMLab stack dcama_mm runs on.
#
# mmcv 2.1.0 must be built from source WITH its compiled ops (mmseg imports
# mmcv.ops); against torch 2.14 its C++ flags must be raised to C++20. The
# build takes ~10 minutes on 2 cores, so the wheel is cached outside the
# repository (DCAMA_MM_CACHE, default ~/.cache/dcama_mm) and reused by every
# later set-up, which then takes seconds.
#
# Usage: bash tools/setup_env.sh        (idempotent; run by `make` targets)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DCAMA_MM_VENV:-$ROOT/.venv}"
CACHE="${DCAMA_MM_CACHE:-$HOME/.cache/dcama_mm}"
PYTHON="${PYTHON:-python3}"

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
STAMP_VERSION=4  # bump when the package set below changes

log() { printf '[setup_env] %s\n' "$*"; }

# openmim (`mim train/test dcama_mm ...`) looks for tools/ and configs/ under
# <site-packages>/dcama_mm/.mim; a PEP 660 editable install has no package
# folder there, so link the source package in (dcama_mm/.mim holds links to
# ../../tools and ../../configs).
link_for_mim() {
    local site
    site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    [ -e "$site/dcama_mm" ] || ln -s "$ROOT/dcama_mm" "$site/dcama_mm"
}

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment at $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PYVER="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
STAMP="$VENV/.dcama_mm_setup_v${STAMP_VERSION}"

if [ -f "$STAMP" ] && "$PY" -c 'import mmcv.ops, mmseg.models, mmpretrain.models' >/dev/null 2>&1; then
    # Already set up: only (re)register the project itself, which is cheap.
    "$PY" -m pip install -q --no-deps --no-build-isolation -e "$ROOT" >/dev/null
    link_for_mim
    log "environment ready at $VENV (delete $STAMP to force a re-install)"
    exit 0
fi

log "installing build tools (setuptools>=77,<82 keeps pkg_resources for mmcv and openmim)"
"$PY" -m pip install -q --upgrade "pip<26.2" "setuptools>=77,<82" wheel ninja

log "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION (about 1 minute)"
"$PY" -m pip install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PYVER"
mkdir -p "$WHEEL_DIR"
WHEEL="$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$WHEEL" ]; then
    log "no cached mmcv wheel in $WHEEL_DIR: building mmcv $MMCV_VERSION with ops from source"
    log "this takes about 10-12 minutes on 2 cores and happens once per machine"
    BUILD="$(mktemp -d)"
    trap 'rm -rf "$BUILD"' EXIT
    # Build deps that mmcv's setup.py imports.
    "$PY" -m pip install -q addict packaging pyyaml yapf opencv-python Pillow "setuptools>=77,<82"
    "$PY" -m pip download -q --no-deps --no-build-isolation --no-binary :all: -d "$BUILD" "mmcv==$MMCV_VERSION"
    WHEEL="$(bash "$ROOT/tools/misc/build_mmcv.sh" "$PY" "$BUILD/mmcv-$MMCV_VERSION.tar.gz" "$WHEEL_DIR" | tail -n1)"
    log "cached mmcv wheel at $WHEEL"
else
    log "reusing cached mmcv wheel $WHEEL"
fi

log "installing mmcv (with ops), mmengine, mmsegmentation, mmpretrain, pycocotools, openmim"
"$PY" -m pip install -q "$WHEEL" \
    "mmengine==0.10.7" "mmsegmentation==1.2.2" "mmpretrain==1.2.0" \
    "pycocotools>=2.0.7" "numpy>=1.24" "setuptools>=77,<82" \
    ftfy regex tensorboard "pytest>=7" psutil \
    Click colorama model-index pandas requests rich tabulate
# openmim 0.3.9 declares opendatalab -> openxlab, which pins setuptools~=60.2
# (too old for torch 2.14 and PEP 660 installs) and is never imported by the
# train/test/run commands we use: install mim without it (its other
# dependencies are listed above).
"$PY" -m pip install -q --no-deps "openmim==0.3.9"
"$PY" -m pip uninstall -q -y openxlab opendatalab >/dev/null 2>&1 || true
"$PY" -m pip install -q "setuptools>=77,<82"

# Optional extras, imported only where used: the web page (Gradio; it asks
# for Pillow < 13), its browser test (Selenium driving Debian's chromium,
# which .ci/run installs with apt-get), the ONNX export and its runtime, and
# flake8 for the style check.
log "installing the optional extras (gradio, selenium, onnx, onnxruntime, flake8)"
"$PY" -m pip install -q "gradio==6.31.0" "selenium==4.51.0" "onnx==1.23.2" \
    "onnxruntime==1.32.0" flake8

log "installing dcama_mm in editable mode"
"$PY" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
link_for_mim

"$PY" -c 'import mmcv.ops, mmseg.models, mmpretrain.models, pycocotools, dcama_mm' \
    || { log "ERROR: the stack does not import; see the messages above"; exit 1; }
touch "$STAMP"
log "environment ready at $VENV"
