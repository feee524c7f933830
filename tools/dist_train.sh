#!/usr/bin/env bash
# Multi-process training with torchrun (mmseg's dist_train.sh).
#
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py options...]
#   GPUS processes on this node, one per GPU; on a machine without GPUs the
#   processes run on the CPU with the gloo backend.
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR
# (127.0.0.1), PYTHON (python).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/dist_common.sh"

if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py options...]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
require_file CONFIG "$CONFIG"
check_gpus "$GPUS"
launch "$GPUS" train.py "$CONFIG" "${@:3}"
