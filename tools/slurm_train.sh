#!/usr/bin/env bash
# Training on a Slurm cluster (mmseg's slurm_train.sh).
#
# Usage: [GPUS=4] [GPUS_PER_NODE=4] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#     bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR \
#     [train.py options...]
#   GPUS tasks in all (one per GPU), GPUS_PER_NODE per node; each runs
#   tools/train.py with --launcher slurm. GRES (gpu:$GPUS_PER_NODE) is
#   srun's --gres, empty for CPU tasks (gloo backend).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/slurm_common.sh"

if [ "$#" -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
require_file CONFIG "$CONFIG"
slurm_launch "$PARTITION" "$JOB_NAME" train.py "$CONFIG" \
    --work-dir="$WORK_DIR" "${@:5}"
