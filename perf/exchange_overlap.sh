#!/usr/bin/env bash
# The pipelined exchange (DPT_EXCHANGE=overlap) against the phase-separated one (phased) on
# 2 ranks x 1 thread, with 1 rank x 2 threads (single) alongside, interleaved: per-step
# milliseconds of epoch 2 from DPT_PHASE_TIMES (the slowest rank), and samples/s.
#   REPS_MLP=9 REPS_CNN=5 perf/exchange_overlap.sh      (needs a Release build with MPI)
cd "$(dirname "$0")/.."
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 DPT_PHASE_TIMES=1
CNN="conv:32:3,bn,relu,maxpool:2,conv:64:3,bn,relu,maxpool:2,dense:128,relu,dense:10"
mkdir -p "${OUT:-${TMPDIR:-/tmp}/dpt-exchange-overlap}"
grep -m1 "model name" /proc/cpuinfo | sed 's/^/# /'; uptime | sed 's/^/# /'
echo "model,mode,rep,steps,step_ms,fb_ms,update_ms,exchange_ms,samples_per_s  (slowest rank, epoch 2)"
for model in mlp cnn; do
  reps=${REPS_MLP:-7}; spec="dense:256,relu,dense:128,relu,dense:10"; data="synthetic:30000,1,28,28,10"
  [[ $model == cnn ]] && reps=${REPS_CNN:-3} spec=$CNN data="synthetic:2048,1,28,28,10"
  for rep in $(seq $reps); do
    for mode in single phased overlap; do
      dir=${OUT:-${TMPDIR:-/tmp}/dpt-exchange-overlap}/$model-$mode-$rep
      if [[ $mode == single ]]; then pre=(); thr=2; else pre=(env DPT_EXCHANGE=$mode mpirun -np 2 --bind-to none -x DPT_EXCHANGE -x DPT_PHASE_TIMES); thr=1; fi
      "${pre[@]}" build/dptrain train --data $data --model $spec --batch-size 256 --epochs 2 --threads $thr --quiet --overwrite --out $dir 2>&1 >/dev/null | grep "epoch 2" > $dir.ph
      sps=$(tail -1 $dir/metrics.csv | cut -d, -f10)
      awk -v m=$model -v mo=$mode -v r=$rep -v sps=$sps '{for(i=1;i<=NF;i++){if($i=="steps")s=$(i+1); if($i=="forward_backward")f=$(i+1); if($i=="update")u=$(i+1); if($i=="exchange")x=$(i+1)} if(f+u>T){T=f+u;F=f;U=u;X=x;S=s}} END{printf "%s,%s,%d,%d,%.3f,%.3f,%.3f,%.3f,%.0f\n",m,mo,r,S,1000*T/S,1000*F/S,1000*U/S,1000*X/S,sps}' $dir.ph
    done
  done
done
