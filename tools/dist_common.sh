# Shared by tools/dist_train.sh and tools/dist_test.sh (sourced, not run):
# checks of the arguments and the torchrun launch.
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR
# (127.0.0.1), PYTHON (python).
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# require_file OPTION PATH: stop with a message naming OPTION if PATH is missing.
require_file() {
    if [ ! -f "$2" ]; then
        echo "error: $1: the file \"$2\" does not exist." >&2
        exit 2
    fi
}

# check_gpus GPUS: a positive integer, and no more than the visible GPUs.
check_gpus() {
    local gpus=$1 available
    if ! [[ "$gpus" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: GPUS must be a positive integer (processes on this node), got \"$gpus\"." >&2
        exit 2
    fi
    if command -v nvidia-smi >/dev/null 2>&1; then
        available=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
        if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
            available=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c . || true)
        fi
        if [ "$available" -gt 0 ] && [ "$gpus" -gt "$available" ]; then
            echo "error: GPUS=$gpus but only $available GPU(s) are visible on this node; pass GPUS <= $available." >&2
            exit 2
        fi
    fi
}

# launch GPUS SCRIPT ARGS...: run tools/SCRIPT in GPUS processes with torchrun.
launch() {
    local gpus=$1 script=$2
    shift 2
    PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" -m torch.distributed.run \
        --nnodes="$NNODES" \
        --node_rank="$NODE_RANK" \
        --master_addr="$MASTER_ADDR" \
        --nproc_per_node="$gpus" \
        --master_port="$PORT" \
        "$DIR/$script" "$@" --launcher pytorch
}
