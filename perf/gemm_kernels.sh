#!/usr/bin/env bash
# Compares BLIS kernel sets on this CPU: runs build/bench_gemm once per BLIS_ARCH_TYPE
# (0 skx, 3 haswell, 6 zen3, 8 zen, 25 generic in BLIS 0.9.0's arch_t) and once with
# dptrain's own choice. Usage: perf/gemm_kernels.sh [rows]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "kernel,shape,gflops"
for arch in 0 3 6 8 25; do BLIS_ARCH_TYPE=$arch build/bench_gemm "${1:-128}"; done
echo "# dptrain's choice:"
build/bench_gemm "${1:-128}"
