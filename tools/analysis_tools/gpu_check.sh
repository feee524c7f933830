#!/usr/bin/env bash
# The GPU check of dcama_mm (see docs/gpu.md): CUDA tests, benchmarks in
# fp32/bf16/fp16, the largest K that fits, a training step and a 1-GPU
# dist_train.sh of the demo, within 10 minutes. Writes gpu_check.json and
# gpu_check.txt under the output dir ($OUT if set, else work_dirs/gpu_check).
#
# Usage: bash tools/analysis_tools/gpu_check.sh [--bundle DIR [--site SITE]]
#            [gpu_check.py options]
#   e.g. --out-dir DIR, --budget 540, --stages benchmark max_shots,
#   --device cpu --quick (tiny sizes: a check of the script itself).
#   --bundle DIR: first install the offline bundle DIR (made by
#   tools/misc/offline_bundle.sh) into SITE (default /tmp/dcama_mm_site_<uid>)
#   with tools/misc/install_offline_bundle.sh: for a machine that has its
#   own torch but no package index. The whole script, install included,
#   ends within 600 s: the stages' budget is cut to what the install left.
# Python: $PYTHON if set, else the project's .venv (tools/setup_env.sh),
# else python3; it must have a CUDA build of torch and the OpenMMLab stack
# (or get the stack from --bundle).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The whole script, a bundle's install included, ends within this.
TOTAL=600

# Our own options come first; the rest (up to and including --pytest-args,
# which takes everything after it) goes to gpu_check.py. Folders given here
# are taken from where the script is started.
absolute() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s' "$PWD/$1" ;; esac; }
BUNDLE=""
SITE="/tmp/dcama_mm_site_$(id -u)"
BUDGET=540
ARGS=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --bundle) BUNDLE="$(absolute "${2:?--bundle needs a folder}")"; shift 2 ;;
        --bundle=*) BUNDLE="$(absolute "${1#*=}")"; shift ;;
        --site) SITE="$(absolute "${2:?--site needs a folder}")"; shift 2 ;;
        --site=*) SITE="$(absolute "${1#*=}")"; shift ;;
        --budget) BUDGET="${2:?--budget needs seconds}"; shift 2 ;;
        --budget=*) BUDGET="${1#*=}"; shift ;;
        --out-dir) ARGS+=(--out-dir "$(absolute "${2:?--out-dir needs a folder}")"); shift 2 ;;
        -h|--help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
            echo; echo "gpu_check.py's options:"
            ARGS+=(--help); shift ;;
        --pytest-args) ARGS+=("$@"); break ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
if ! [[ "$BUDGET" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "error: --budget '$BUDGET': give the seconds for the stages, e.g. --budget 420." >&2
    exit 2
fi

if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -x "$ROOT/.venv/bin/python" ]; then
    PY="$ROOT/.venv/bin/python"
else
    PY="$(command -v python3 || command -v python || true)"
fi
if [ -z "$PY" ]; then
    echo "error: no python found; set PYTHON or run tools/setup_env.sh." >&2
    exit 2
fi
if PY_FOUND="$(command -v "$PY")"; then PY="$(absolute "$PY_FOUND")"; fi
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "error: $PY cannot import torch; set PYTHON to an interpreter with torch (and the stack of tools/setup_env.sh)." >&2
    exit 2
fi
cd "$ROOT"

if [ -n "$BUNDLE" ]; then
    START=$SECONDS
    # Leave at least 90 s of the total for the check itself.
    INSTALL_LIMIT=$((TOTAL - 90 - SECONDS))
    CODE=0
    PYTHON="$PY" timeout --kill-after=10 "$INSTALL_LIMIT" \
        bash "$ROOT/tools/misc/install_offline_bundle.sh" "$BUNDLE" "$SITE" >/dev/null || CODE=$?
    if [ "$CODE" -eq 124 ] || [ "$CODE" -eq 137 ]; then
        echo "error: installing the bundle did not end within $INSTALL_LIMIT s (building mmcv" \
            "takes about 32 CPU-minutes): carry a prebuilt mmcv wheel" \
            "(tools/misc/offline_bundle.sh --mmcv-wheel; docs/gpu.md), or install first with" \
            "tools/misc/install_offline_bundle.sh and run this with --site." >&2
        exit 2
    elif [ "$CODE" -ne 0 ]; then
        exit "$CODE"
    fi
    export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    export DCAMA_MM_BUNDLE="$BUNDLE" DCAMA_MM_BUNDLE_INSTALL_S=$((SECONDS - START))
fi
LIMIT=$((TOTAL - SECONDS))
# Leave 30 s for the stages to stop and the report to be written.
BUDGET="$("$PY" -c "import sys; print(min(float(sys.argv[1]), float(sys.argv[2])))" "$BUDGET" "$((LIMIT - 30))")"
exec timeout --kill-after=10 "$LIMIT" "$PY" "$ROOT/tools/analysis_tools/gpu_check.py" \
    --python "$PY" --budget "$BUDGET" "${ARGS[@]}"
