#!/usr/bin/env bash
# Multi-process testing with torchrun (mmseg's dist_test.sh).
#
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options...]
#   GPUS processes on this node, one per GPU; on a machine without GPUs the
#   processes run on the CPU with the gloo backend.
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR
# (127.0.0.1), PYTHON (python).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/dist_common.sh"

if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test.py options...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
require_file CONFIG "$CONFIG"
require_file CHECKPOINT "$CHECKPOINT"
check_gpus "$GPUS"
launch "$GPUS" test.py "$CONFIG" "$CHECKPOINT" "${@:4}"
