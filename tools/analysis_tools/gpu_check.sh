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
#   tools/misc/offline_bundle.sh) into SITE (default /tmp/dcama_mm_site)
#   with tools/misc/install_offline_bundle.sh: for a machine that has its
#   own torch but no package index. The whole script, install included,
#   ends within 600 s: the stages' budget is cut to what the install left.
# Python: $PYTHON if set, else the project's .venv (tools/setup_env.sh),
# else python3; it must have a CUDA build of torch and the OpenMMLab stack
# (or get the stack from --bundle).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
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
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "error: $PY cannot import torch; set PYTHON to an interpreter with torch (and the stack of tools/setup_env.sh)." >&2
    exit 2
fi
cd "$ROOT"

# Our own options come first; the rest (up to and including --pytest-args,
# which takes everything after it) goes to gpu_check.py.
BUNDLE=""
SITE=/tmp/dcama_mm_site
BUDGET=540
ARGS=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --bundle) BUNDLE="${2:?--bundle needs a folder}"; shift 2 ;;
        --site) SITE="${2:?--site needs a folder}"; shift 2 ;;
        --budget) BUDGET="${2:?--budget needs seconds}"; shift 2 ;;
        --pytest-args) ARGS+=("$@"); break ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
LIMIT=600
if [ -n "$BUNDLE" ]; then
    START=$SECONDS
    EXPORT="$(PYTHON="$PY" bash "$ROOT/tools/misc/install_offline_bundle.sh" "$BUNDLE" "$SITE" | tail -n1)"
    eval "$EXPORT"
    export DCAMA_MM_BUNDLE="$BUNDLE" DCAMA_MM_BUNDLE_INSTALL_S=$((SECONDS - START))
    LIMIT=$((600 - (SECONDS - START)))
    # Leave 30 s for the stages to stop and the report to be written.
    if [ "$LIMIT" -lt 90 ]; then
        echo "error: installing the bundle took $((SECONDS - START)) s: no time is left for the check." >&2
        exit 2
    fi
    BUDGET="$("$PY" -c "print(min(float('$BUDGET'), $LIMIT - 30))")"
fi
exec timeout --kill-after=10 "$LIMIT" "$PY" "$ROOT/tools/analysis_tools/gpu_check.py" \
    --python "$PY" --budget "$BUDGET" "${ARGS[@]}"
