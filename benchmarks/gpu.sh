#!/usr/bin/env bash
# The GPU figures of the project, in one command on a CUDA machine (run from the project root):
#
#   bash benchmarks/gpu.sh OUTDIR [--install WHEELS_DIR]
#
# --install first installs the OpenMMLab packages from a folder of wheels plus the mmcv 2.1.0
# source (an offline machine: no package index), into /tmp/site; mmcv is built with its CPU
# ops only (CUDA_VISIBLE_DEVICES= during the build; nothing here needs mmcv's CUDA ops).
# Gather that folder on a machine with a package index, for the GPU machine's Python 3.12:
#   bash ../shared/tools/gpu-wheels.sh     # wheels into .whl/ (ignored by git)
#   echo 'setuptools<70' > /tmp/setuptools.txt
#   PIP_CONSTRAINT=/tmp/setuptools.txt python3 -m pip download --no-deps --no-binary :all: \
#       -d .whl mmcv==2.1.0               # the source, when the first step left it out
# (pip reads mmcv's metadata by running its setup.py, which needs pkg_resources: gone from
# setuptools >= 70, hence the constraint.)
#
# Then, MiT-B5 at the configs' own 512x512 crops, batch 2+2, random weights:
#   OUTDIR/gpu-mitb5-512-fp32.{json,md}   DAFormer vs ICCLD phase 1/2, fp32, latency 1024x512 at K=0/1/3/10
#   OUTDIR/gpu-mitb5-512-bf16.{json,md}   the same with bf16 autocast (AmpOptimWrapper)
#   OUTDIR/gpu-mitb5-512-bf16-speed-options.{json,md}
#                                         ICCLD phase 2, bf16: mmseg's MiT attention vs the fused
#                                         one (the default), + channels_last, + torch.compile of
#                                         the student's backbone, decode head and UNet
#   OUTDIR/profile-gpu-iccld-mitb5-512-bf16.{json,md}
#                                         one ICCLD phase-2 iteration under the profiler
# Each benchmark writes the schedule wall-clock (40k DAFormer, 40k+40k ICCLD) next to its
# iteration times, and peak memory as CUDA's max_memory_allocated. STAGES (default
# "fp32 bf16 options profile") picks which of the four run, e.g. to stay under a time limit.
set -euo pipefail
out=${1:?usage: bash benchmarks/gpu.sh OUTDIR [--install WHEELS_DIR]}
shift
if [ "${1:-}" = "--install" ]; then
  wheels=${2:?--install needs the folder of wheels}
  if [ ! -f "$wheels/mmcv-2.1.0.tar.gz" ]; then
    echo "$wheels/mmcv-2.1.0.tar.gz is missing: download it as this script's header says" >&2
    exit 1
  fi
  site=/tmp/site
  python3 -m pip install -q --no-index --no-deps --target "$site" "$wheels"/*.whl
  export PYTHONPATH=$site:$PWD${PYTHONPATH:+:$PYTHONPATH}
  CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 MAX_JOBS=$(nproc) python3 -m pip install -q --no-index \
    --no-deps --no-build-isolation --target "$site" "$wheels"/mmcv-2.1.0.tar.gz
fi
export PYTHONPATH=${PYTHONPATH:-}:$PWD
mkdir -p "$out"
python3 - <<'EOF'
import torch, mmcv, mmseg, mmengine, diffusers
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))
print('mmcv', mmcv.__version__, 'mmseg', mmseg.__version__, 'mmengine', mmengine.__version__,
      'diffusers', diffusers.__version__)
EOF
stages=${STAGES:-fp32 bf16 options profile}
bench="python3 tools/analysis_tools/benchmark.py configs/daformer/gta2cs.py configs/iccld/gta2cs.py --iters 20 --rounds 4 --warmup 3"
for stage in $stages; do
  case $stage in
    fp32) $bench --out "$out/gpu-mitb5-512-fp32" ;;
    bf16) $bench --amp bfloat16 --out "$out/gpu-mitb5-512-bf16" ;;
    options)
      python3 tools/analysis_tools/benchmark.py \
        "configs/iccld/gta2cs.py@model.model.backbone.type=MixVisionTransformer" \
        configs/iccld/gta2cs.py "configs/iccld/gta2cs.py@model.channels_last=True" \
        "configs/iccld/gta2cs.py@model.compile_modules=[backbone,decode_head,diffusion.unet]" \
        --iccld-phases 2 --no-latency --amp bfloat16 --iters 20 --rounds 4 --warmup 3 \
        --out "$out/gpu-mitb5-512-bf16-speed-options" ;;
    profile)
      python3 tools/analysis_tools/profile_step.py configs/iccld/gta2cs.py --phase 2 --amp bfloat16 --iters 5 \
        --warmup 3 --out "$out/profile-gpu-iccld-mitb5-512-bf16" ;;
    *) echo "unknown stage $stage (fp32, bf16, options, profile)" >&2; exit 1 ;;
  esac
done
