#!/usr/bin/env bash
# Evaluation on a slurm cluster.
#   GPUS=8 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options...]
set -euo pipefail
partition=$1
job_name=$2
config=$3
checkpoint=$4
shift 4
gpus=${GPUS:-8}
gpus_per_node=${GPUS_PER_NODE:-8}
cpus_per_task=${CPUS_PER_TASK:-5}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$partition" \
  --job-name="$job_name" \
  --gres=gpu:"$gpus_per_node" \
  --ntasks="$gpus" \
  --ntasks-per-node="$gpus_per_node" \
  --cpus-per-task="$cpus_per_task" \
  --kill-on-bad-exit=1 \
  ${SRUN_ARGS:-} \
  "${PYTHON:-python}" -u "$here/test.py" "$config" "$checkpoint" --launcher slurm "$@"
