#!/usr/bin/env bash
# The main job on the embedded default, CPU only: install, generate the synthetic
# synthetic-to-real benchmark, train ICCLD (tiny MiT; 1000 phase-1 + 1000 phase-2 iterations),
# evaluate it on the target validation set (metrics and the per-class table), draw image /
# ground truth / prediction / uncertainty for a few target images, and plot the training curves.
#   bash scripts/demo.sh            (writes work_dirs/demo/)
# Environment: DEMO_CONFIG (default configs/synthetic/iccld_tiny.py), DEMO_WORK_DIR,
# DEMO_ITERS (shorter run, e.g. 200; the phase switch moves to its middle).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/install.sh"
source "$here/env.sh"
cd "$root"

config="${DEMO_CONFIG:-configs/synthetic/iccld_tiny.py}"
work_dir="${DEMO_WORK_DIR:-work_dirs/demo}"
# Tiny models on a CPU: one thread per process avoids the oversubscription stalls of
# several threads (and of the data-loading workers) fighting over two cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

if [ ! -f data/synthetic/gta/sample_class_stats.json ]; then
  echo "[demo] generating the synthetic benchmark into data/synthetic"
  "$PY" tools/make_synthetic_uda.py --out data/synthetic
fi

options=()
if [ -n "${DEMO_ITERS:-}" ]; then
  options=(--cfg-options "train_cfg.max_iters=$DEMO_ITERS" "train_cfg.val_interval=$DEMO_ITERS"
           "default_hooks.checkpoint.interval=$DEMO_ITERS"
           "default_hooks.logger.interval=$(( DEMO_ITERS >= 20 ? DEMO_ITERS / 20 : 1 ))")
  case "$config" in
    *iccld*) options+=("custom_hooks.0.switch_iter=$((DEMO_ITERS / 2))") ;;
  esac
fi
echo "[demo] training $config (log: $work_dir)"
"$PY" tools/train.py "$config" --work-dir "$work_dir" "${options[@]}"

checkpoint="$(cat "$work_dir/last_checkpoint")"
echo "[demo] evaluating $checkpoint on the target validation set"
"$PY" tools/test.py "$config" "$checkpoint" --work-dir "$work_dir/test"
cp "$work_dir/test/metrics.json" "$work_dir/test/per_class.md" "$work_dir/"
"$PY" tools/analysis_tools/visualize_predictions.py "$config" "$checkpoint" --out "$work_dir/predictions.png"
# the newest run only: an earlier demo in the same work dir is another training, not a resume
run="$(basename "$(ls -d "$work_dir"/[0-9]*_[0-9]*/ | sort | tail -n 1)")"
"$PY" tools/analysis_tools/plot_curves.py "$work_dir" --run "$run" --out "$work_dir/curves.png"
echo "[demo] done: $work_dir/metrics.json, $work_dir/per_class.md, $work_dir/predictions.png," \
  "$work_dir/curves.png"
cat "$work_dir/metrics.json"
