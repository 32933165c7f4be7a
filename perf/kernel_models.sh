#!/usr/bin/env bash
# Whole-step throughput of three models under two BLIS kernel sets, interleaved: the default
# MLP, the small Fashion-MNIST CNN and ResNet-20 (3x32x32), one thread, batch 128, with
# BLIS_ARCH_TYPE=3 (haswell, AVX2) and =0 (skx, AVX-512), ROUNDS times in turn; prints one CSV
# row per run and the median per (model, kernel set). Decides which set dptrain should force on
# CPUs where BLIS picks haswell but AVX-512 is there (src/kernels/gemm.c).
#     perf/kernel_models.sh [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
out=$(mktemp -d)
cnn="conv:32:3,bn,relu,maxpool:2,conv:64:3,bn,relu,maxpool:2,dense:128,relu,dropout:0.3,dense:10"
declare -A data=([mlp]="synthetic:4096" [cnn]="synthetic:4096" [resnet20]="synthetic:1024,3,32,32,10")
declare -A model=([mlp]="dense:256,relu,dense:128,relu,dense:10" [cnn]="$cnn" [resnet20]="resnet20")
declare -A steps=([mlp]=200 [cnn]=20 [resnet20]=5)
echo "round,model,kernel,samples_per_second"
for r in $(seq "$rounds"); do
  for m in mlp cnn resnet20; do
    for arch in 3 0; do
      rate=$(BLIS_ARCH_TYPE=$arch build/dptrain bench --data "${data[$m]}" --model "${model[$m]}" \
        --modes strong --threads 1 --batch 128 --reps 1 --steps "${steps[$m]}" --warmup 2 \
        --out "$out" | awk '$1 == "strong" { print $4 }')
      echo "$r,$m,$([ "$arch" = 0 ] && echo skx || echo haswell),$rate"
    done
  done
done | tee "$out/runs.csv"
echo "# medians"
for m in mlp cnn resnet20; do
  for k in haswell skx; do
    med=$(awk -F, -v m="$m" -v k="$k" '$2 == m && $3 == k { print $4 }' "$out/runs.csv" | sort -n |
      awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    echo "$m,$k,$med"
  done
done
rm -rf "$out"
