#!/usr/bin/env bash
# The evidence of docs/augmentation.md: the small CNN on Fashion-MNIST with and without
# --augment, 3 seeds each, on a seeded 10% subset (30 epochs) and on the full training set
# (5 epochs); validation is the test split, so val_accuracy is test accuracy. Then test-time
# augmentation (eval --tta) on the final checkpoints. Writes one CSV row per run.
# Usage: perf/augment_study.sh [OUT_DIR] [DPTRAIN]   (default /tmp/augment_study, build/dptrain)
#        PHASE=tta perf/augment_study.sh OUT_DIR    only the test-time augmentation part
# TTA: every final checkpoint evaluated plain and with --tta hflip; the full-set ones of seed 1
# also with --tta hflip+crop:pad=2 (10 views). One CSV row per evaluation (augment_tta.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/augment_study}
BIN=${2:-build/dptrain}
mkdir -p "$OUT"
if [ "${PHASE:-all}" != tta ]; then
  cp "$BIN" "$OUT/dptrain" # a rebuild during the study must not swap the binary under it
  BIN="$OUT/dptrain"
fi
# the small CNN with the initialisation the study was measured with (He-normal convolutions,
# Xavier dense layers: the defaults before 2026-12-07, docs/models.md "Initialisation")
MODEL="conv:32:3:init=he,bn,relu,maxpool:2,conv:64:3:init=he,bn,relu,maxpool:2,dense:128:xavier,relu,dropout:0.3,dense:10:xavier"
AUG="crop:pad=2+hflip+rotate:degrees=10"
SEEDS=${SEEDS:-"1 2 3"}
CSV="$OUT/augment_study.csv"
TTA_CSV="$OUT/augment_tta.csv"

tta() { # run directory, tta spec ("none": plain)
  local dir=$1 spec=$2 flags=()
  [ "$spec" = none ] || flags=(--tta "$spec")
  "$BIN" eval --checkpoint "$dir/checkpoint.dpt" --data fashion-mnist --threads 2 "${flags[@]}" \
    --out "$dir/confusion-tta.csv" |
    awk -v d="$(basename "$dir")" -v t="$spec" -F' = ' '/^accuracy/ { a = $2 } /^loss/ { l = $2 }
      END { printf "%s,%s,%.4f,%.4f\n", d, t, a, l }' >>"$TTA_CSV"
}

if [ "${PHASE:-all}" = tta ]; then
  echo "run,tta,test_acc,test_loss" >"$TTA_CSV"
  for dir in "$OUT"/subset10-* "$OUT"/full-*; do
    tta "$dir" none
    tta "$dir" hflip
  done
  for dir in "$OUT"/full-aug0-seed1 "$OUT"/full-aug1-seed1; do tta "$dir" hflip+crop:pad=2; done
  cat "$TTA_CSV"
  exit 0
fi
echo "subset,augment,seed,epochs,final_test_acc,best_test_acc,best_epoch,final_train_acc,mean_epoch_seconds" >"$CSV"

run() { # subset fraction epochs augment(0/1) seed
  local name=$1 frac=$2 epochs=$3 aug=$4 seed=$5 dir="$OUT/$1-aug$4-seed$5"
  local extra=()
  [ "$aug" = 1 ] && extra=(--augment "$AUG")
  "$BIN" train --data fashion-mnist --train-fraction "$frac" --model "$MODEL" \
    --optimizer sgd:momentum=0.9 --lr 0.05 --lr-schedule "cosine:T_max=$epochs" \
    --epochs "$epochs" --batch-size 128 --threads 2 --seed "$seed" "${extra[@]}" \
    --out "$dir" --overwrite --quiet
  # metrics.csv: epoch,step,lr,momentum,train_loss,train_accuracy,val_loss,val_accuracy,epoch_seconds,...
  awk -F, -v n="$name" -v a="$aug" -v s="$seed" -v e="$epochs" 'NR > 1 {
      if ($8 > best) { best = $8; be = $1 } last = $8; tr = $6; secs += $9; k++ }
    END { printf "%s,%d,%d,%d,%.4f,%.4f,%d,%.4f,%.2f\n", n, a, s, e, last, best, be, tr, secs / k }' \
    "$dir/metrics.csv" >>"$CSV"
}

for seed in $SEEDS; do
  for aug in 0 1; do run subset10 0.1 30 "$aug" "$seed"; done
done
for seed in $SEEDS; do
  for aug in 0 1; do run full 1 5 "$aug" "$seed"; done
done
cat "$CSV"
PHASE=tta "$0" "$OUT" "$BIN"
