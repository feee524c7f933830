#!/usr/bin/env bash
# Multi-process testing with torchrun (mmseg's dist_test.sh).
#
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options...]
#   GPUS processes on this node, one per GPU; on a machine without GPUs the
#   processes run on the CPU with the gloo backend.
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR
# (127.0.0.1), PYTHON (python).
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test.py options...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
DIR="$(cd "$(dirname "$0")" && pwd)"

if [ ! -f "$CONFIG" ]; then
    echo "error: CONFIG: the file \"$CONFIG\" does not exist." >&2
    exit 2
fi
if [ ! -f "$CHECKPOINT" ]; then
    echo "error: CHECKPOINT: the file \"$CHECKPOINT\" does not exist." >&2
    exit 2
fi
if ! [[ "$GPUS" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: GPUS must be a positive integer (processes on this node), got \"$GPUS\"." >&2
    exit 2
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    AVAILABLE=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
    if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
        AVAILABLE=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c . || true)
    fi
    if [ "$AVAILABLE" -gt 0 ] && [ "$GPUS" -gt "$AVAILABLE" ]; then
        echo "error: GPUS=$GPUS but only $AVAILABLE GPU(s) are visible on this node; pass GPUS <= $AVAILABLE." >&2
        exit 2
    fi
fi

PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$DIR/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
