#!/usr/bin/env bash
# Ranks x threads on one machine: the same training job as 1 process of P threads and as R
# processes (mpirun) of T threads each, R x T = P, interleaved and repeated, median
# samples/s of the whole job (metrics.csv, last epoch: the first warms up), with each row's
# ratio to the same run's 1 x P row. Then the exchange against MPI_Allreduce
# (build/bench_exchange, 16 MiB). Needs a Release build with MPI in build/.
#
#   perf/mpi_scaling.sh                       2 cores: 1x2, 2x1 on the MLP and the small CNN
#   CONFIGS="1x2 2x1p 2x1" perf/mpi_scaling.sh   the pipelined exchange (2x1: DPT_EXCHANGE=overlap)
#                                             against the phase-separated one (2x1p:
#                                             DPT_EXCHANGE=phased), same run, interleaved
#   CONFIGS="1x16 2x8 4x4 8x2 16x1" BATCH=2048 MODELS=mlp perf/mpi_scaling.sh
#                                             a 16-core machine (efficiency vs 1x16)
# Environment: CONFIGS, MODELS (mlp cnn), BATCH (256), REPS (5), SAMPLES_MLP (30000),
# SAMPLES_CNN (3072), CNN (the model spec), OUT ($TMPDIR/dpt-mpi-scaling).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/dptrain
CONFIGS=${CONFIGS:-"1x2 2x1"}
MODELS=${MODELS:-"mlp cnn"}
BATCH=${BATCH:-256}
REPS=${REPS:-5}
OUT=${OUT:-${TMPDIR:-/tmp}/dpt-mpi-scaling}
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
CNN=${CNN:-"conv:32:3,bn,relu,maxpool:2,conv:64:3,bn,relu,maxpool:2,dense:128,relu,dropout:0.3,dense:10"}

run_one() { # model config rep -> samples/s
    local model=$1 cfg=$2 rep=$3 r=${2%x*} t=${2#*x} dir="$OUT/run-$1-$2-$3" spec data mode=overlap
    [[ $t == *p ]] && t=${t%p} mode=phased
    if [[ $model == mlp ]]; then
        spec="dense:256,relu,dense:128,relu,dense:10"; data="synthetic:${SAMPLES_MLP:-30000},1,28,28,10"
    else
        spec=$CNN; data="synthetic:${SAMPLES_CNN:-3072},1,28,28,10"
    fi
    local args=(train --data "$data" --model "$spec" --batch-size "$BATCH" --epochs 2
                --threads "$t" --quiet --overwrite --out "$dir")
    if [[ $r == 1 ]]; then
        "$bin" "${args[@]}" >/dev/null
    else
        # --bind-to none: the OpenMP threads of a rank must not share one core.
        DPT_EXCHANGE=$mode mpirun -np "$r" --bind-to none -x DPT_EXCHANGE "$bin" "${args[@]}" >/dev/null
    fi
    tail -1 "$dir/metrics.csv" | cut -d, -f10
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

grep -m1 "model name" /proc/cpuinfo | sed 's/^/# /'
mpirun --version | head -1 | sed 's/^/# /'
echo "model,config,ranks,threads,samples_per_second_median,ratio_to_1xP,all_reps"
for model in $MODELS; do
    declare -A rates=()
    for rep in $(seq "$REPS"); do
        for cfg in $CONFIGS; do
            rates[$cfg]+="$(run_one "$model" "$cfg" "$rep") "
        done
    done
    p=""
    for cfg in $CONFIGS; do [[ ${cfg%x*} == 1 ]] && p=$cfg; done
    base=$(echo "${rates[$p]}" | tr ' ' '\n' | grep . | median)
    for cfg in $CONFIGS; do
        m=$(echo "${rates[$cfg]}" | tr ' ' '\n' | grep . | median)
        echo "$model,$cfg,${cfg%x*},${cfg#*x},$m,$(awk -v a="$m" -v b="$base" 'BEGIN{printf "%.3f", a/b}'),${rates[$cfg]% }"
    done
    unset rates
done | tee "$OUT/scaling.csv"
# The exchange of a 16 MiB gradient against MPI_Allreduce between the same ranks.
for np in 2 ${EXCHANGE_RANKS:-}; do
    mpirun -np "$np" --bind-to none build/bench_exchange 16 "$np" 15
done | tee "$OUT/exchange.csv"
