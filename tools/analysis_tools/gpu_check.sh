#!/usr/bin/env bash
# The GPU check of dcama_mm (see docs/gpu.md): CUDA tests, benchmarks in
# fp32/bf16/fp16, the largest K that fits, a training step and a 1-GPU
# dist_train.sh of the demo, within 10 minutes. Writes gpu_check.json and
# gpu_check.txt under the output dir ($OUT if set, else work_dirs/gpu_check).
#
# Usage: bash tools/analysis_tools/gpu_check.sh [gpu_check.py options]
#   e.g. --out-dir DIR, --budget 540, --stages benchmark max_shots,
#   --device cpu --quick (tiny sizes: a check of the script itself).
# Python: $PYTHON if set, else the project's .venv (tools/setup_env.sh),
# else python3; it must have a CUDA build of torch and the OpenMMLab stack.
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
exec timeout --kill-after=10 600 "$PY" "$ROOT/tools/analysis_tools/gpu_check.py" --python "$PY" "$@"
