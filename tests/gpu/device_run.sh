#!/usr/bin/env bash
# The GPU check as ONE prepared call on a lent device machine (H200: nvcc 13, CuPy, PyTorch,
# NumPy, compute-sanitizer; no TensorFlow). From a session that has one:
#   device tool: run(command="bash tests/gpu/device_run.sh", timeout_s=420)
# Writes $OUT/gpu_check.json (the full report), $OUT/gpu_check.log (the tables) and
# $OUT/env.txt. The driver is capped at 330 s (typically ~4 min: build ~15 s, correctness
# ~1 min, speed ~1-2 min, then memcheck with what is left, <= 120 s); its JSON is rewritten
# after every phase, so a cut-short run still returns what it measured. Elsewhere it writes
# ./gpu_check_out/.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export SG2TF_CACHE_DIR="${SG2TF_CACHE_DIR:-/tmp/sg2tf_cache}"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
    --format=csv
  nvcc --version | tail -2
  python3 -c 'import sys, numpy, cupy; print(sys.version.split()[0], numpy.__version__, cupy.__version__)'
  python3 -c 'import torch; print("torch", torch.__version__)'
  command -v compute-sanitizer
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
timeout -k 15 330 python3 tests/gpu/run_gpu_check.py --json "$OUT/gpu_check.json" \
  --deadline-s 315 --sanitizer-timeout-s 120 --compile-budget-s 60 2>&1 | tee "$OUT/gpu_check.log"
rc=${PIPESTATUS[0]}
echo "run_gpu_check.py exit status: $rc (0 passed, 1 a check failed, 2 could not run," \
  "124 timed out)" | tee -a "$OUT/gpu_check.log"
exit "$rc"
