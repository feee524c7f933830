# Shared by tools/slurm_train.sh and tools/slurm_test.sh (sourced, not run):
# the srun launch of mmseg's Slurm scripts.
# Environment: GPUS (4: tasks in all), GPUS_PER_NODE (4: tasks per node),
# CPUS_PER_TASK (5), GRES (gpu:$GPUS_PER_NODE; empty for a partition
# without GPUs), SRUN_ARGS (more srun options), PYTHON (python).
# require_file comes from the torchrun scripts' helpers.
source "$(dirname "${BASH_SOURCE[0]}")/dist_common.sh"
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
GRES=${GRES-gpu:${GPUS_PER_NODE}}
SRUN_ARGS=${SRUN_ARGS:-""}

# require_positive NAME VALUE: stop unless VALUE is a positive integer.
require_positive() {
    if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: $1 must be a positive integer, got \"$2\"." >&2
        exit 2
    fi
}

# slurm_launch PARTITION JOB_NAME SCRIPT ARGS...: run tools/SCRIPT in GPUS
# Slurm tasks (srun), each with --launcher slurm.
slurm_launch() {
    local partition=$1 job_name=$2 script=$3
    shift 3
    require_positive GPUS "$GPUS"
    require_positive GPUS_PER_NODE "$GPUS_PER_NODE"
    require_positive CPUS_PER_TASK "$CPUS_PER_TASK"
    local gres=()
    if [ -n "$GRES" ]; then
        gres=(--gres="$GRES")
    fi
    # SRUN_ARGS is split into words on purpose (several options).
    # shellcheck disable=SC2086
    PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
    srun -p "$partition" \
        --job-name="$job_name" \
        "${gres[@]}" \
        --ntasks="$GPUS" \
        --ntasks-per-node="$GPUS_PER_NODE" \
        --cpus-per-task="$CPUS_PER_TASK" \
        --kill-on-bad-exit=1 \
        $SRUN_ARGS \
        "$PYTHON" -u "$DIR/$script" "$@" --launcher slurm
}
