#!/usr/bin/env bash
# Regenerates the figures in docs/performance.md on this machine: dataset load time, the
# BLIS kernel-set comparison, dptrain's thread/batch scaling (CSV + PNG plots into
# docs/perf/), and the side-by-side comparison with PyTorch (when python3-torch is installed).
# Run on an otherwise idle machine: perf/run_all.sh [reps=5]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
mkdir -p docs/perf
echo "== machine"; nproc; grep -m1 "model name" /proc/cpuinfo; build/dptrain info | grep -E "blis|omp"
echo "== dataset load (bench_load fashion-mnist)"; build/bench_load fashion-mnist 7
echo "== sgemm by kernel set (GFLOP/s, one thread)"; perf/gemm_kernels.sh 128
echo "== each GEMM of a 64-row shard's step, BLIS default vs B packed"; build/bench_step_gemm 64 "$reps"
echo "== dptrain bench"
build/dptrain bench --reps "$reps" --out docs/perf --plot
echo "== training run (3 epochs, default settings)"
build/dptrain train --epochs 3 --quiet --out perf/out-train && cat perf/out-train/metrics.csv
echo "== PyTorch comparison"
perf/compare_pytorch.py --rounds "$reps" --reps 5 --steps 200
