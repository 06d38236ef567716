#!/usr/bin/env bash
# Distributed training on one or more machines with torchrun.
#   bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py options...]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR and PORT on each.
# Without GPUs the processes run on the CPU and talk through gloo.
set -euo pipefail
config=$1
nproc=$2
shift 2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" \
"${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" \
  --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" \
  --nproc_per_node="$nproc" \
  "$here/train.py" "$config" --launcher pytorch "$@"
