#!/usr/bin/env bash
# What to run when a GPU is lent (none was in the session that wrote this; nothing here has been run on one).
#   bash benchmarks/gpu_checks.sh            # from the repository root, on the GPU machine
# 1. Time per SGLD step on the DLN suite up to 1e8 parameters, against the memory-bandwidth floor
#    (12 d bytes per step: read and write the parameters, read the gradient; divide by the
#    device's bandwidth, e.g. about 4.8 TB/s on an H200) and the FLOPs per step the script states.
# 2. The accuracy suite to 1e8 parameters with the library's defaults (population sampling: no
#    n-sized data set in device memory).
# Results land in benchmarks/results/dln_speed_gpu.json and dln_scaling_gpu.{md,csv,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv || true
$PY -c 'import jax; print(jax.devices())'
timeout 900 $PY benchmarks/dln_scaling.py --largest 1e8 --speed-only --n 20000 --suffix _gpu
timeout 3600 $PY benchmarks/dln_scaling.py --largest 1e8 --population --suffix _gpu
