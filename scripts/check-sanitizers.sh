#!/usr/bin/env bash
# Dynamic checks CI runs after the main suite (docs/hardening.md):
#   1. ASan + UBSan build (build-asan/, halt on the first error) running the whole ctest suite;
#   2. clang + TSan build (build-tsan/) with LLVM's libomp and its Archer tool, running the
#      suites that enter the trainer's OpenMP region;
#   3. a short training run of the Release build (build/) under valgrind memcheck.
# Installs clang, libomp-14-dev and valgrind with apt-get when run as root (like setup.sh).
# Usage: scripts/check-sanitizers.sh [asan] [tsan] [valgrind]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc)

PACKAGES=(clang libomp-14-dev libclang-rt-14-dev valgrind)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "check-sanitizers needs these Debian packages; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "check-sanitizers: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

JOBS_TO_RUN=("$@")
[ ${#JOBS_TO_RUN[@]} -gt 0 ] || JOBS_TO_RUN=(asan tsan valgrind)

stamp() { date +%s; }
# Configure + build quietly; the compiler's output is shown only when the build fails.
build() {
  local dir=$1; shift
  local log="${TMPDIR:-/tmp}/dpt-build-$(basename "$dir").log"
  if ! { cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j"$JOBS" ${DPT_TARGET:+--target "$DPT_TARGET"}; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "check-sanitizers: building $dir failed" >&2
    exit 1
  fi
}
report() { echo "check-sanitizers: $1 passed in $(($(stamp) - $2)) s" >&2; }

# ---- shared: a small CSV table and the CLI runs every dynamic check repeats -----------------
write_table() {
  awk 'BEGIN { srand(7); print "a,b,c,d,label";
               for (i = 0; i < 2000; i++) { a = rand(); b = rand(); c = rand(); d = rand();
                 printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, (a + b > c + d) ? 1 : 0 } }' >"$1"
}

# Runs the CLI paths that touch every stage once: train (validation split, dropout, a cosine
# schedule with plateau and warmup), resume, a second run with lamb + gradient clipping (the
# two-phase reduce/update with norms), eval and predict (the forward-only region), lr-find,
# checkpoint summary, schedule preview; an image network's train, resume and eval.
# $1 = a command prefix (valgrind ...), $2 = binary;
# DPT_THREADS / DPT_MICRO set the worker threads and micro-batch.
cli_runs() {
  local pre=$1 bin=$2 dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/dpt-dyn.XXXXXX")
  write_table "$dir/table.csv"
  local data=(--data "csv:$dir/table.csv" --csv-header --threads "${DPT_THREADS:-2}")
  local common=("${data[@]}" --quiet --val-split 0.2 --model dense:16,relu,dropout:0.1,dense:2
                --batch-size 32 --micro-batch "${DPT_MICRO:-16}")
  $pre "$bin" train "${common[@]}" --lr-schedule cosine:T_max=2+plateau:patience=0 \
    --warmup linear:steps=3,start_factor=0.1 --epochs 1 --out "$dir/run"
  $pre "$bin" train "${common[@]}" --lr-schedule cosine:T_max=2+plateau:patience=0 \
    --warmup linear:steps=3,start_factor=0.1 --epochs 2 --resume "$dir/run"
  $pre "$bin" train "${common[@]}" --optimizer lamb --clip-grad-norm 0.5 --epochs 1 \
    --out "$dir/run2"
  $pre "$bin" eval --checkpoint "$dir/run/best.dpt" "${data[@]}" --out "$dir/confusion.csv" \
    >/dev/null
  $pre "$bin" predict --checkpoint "$dir/run/checkpoint.dpt" "${data[@]}" \
    --out "$dir/predictions.csv" >/dev/null
  $pre "$bin" lr-find "${data[@]}" --model dense:8,relu,dense:2 --steps 30 \
    --out "$dir/lr.csv" >/dev/null
  # an image network: convolution, batch norm, pooling and a residual block with a projection,
  # trained, resumed and evaluated (running statistics through the checkpoint)
  local img=(--data synthetic:96,3,8,8,3 --threads "${DPT_THREADS:-2}" --quiet --batch-size 16
             --micro-batch "${DPT_MICRO:-16}"
             --model "conv:4:3:bias=0,bn,relu,res(conv:8:3:stride=2,bn,relu|conv:8:1:stride=2:pad=0,bn),maxpool:2,dense:3")
  # with augmentation in the workers (every kind of op, mixing labels) and eval with TTA
  $pre "$bin" train "${img[@]}" --epochs 1 --out "$dir/img" \
    --augment "crop:pad=1,mode=reflect+hflip+affine:degrees=10,translate=1,shear=5+brightness:0.1+saturation:0.2+noise:0.02+erase+cutmix"
  $pre "$bin" train "${img[@]}" --epochs 2 --resume "$dir/img"
  $pre "$bin" eval --checkpoint "$dir/img/checkpoint.dpt" --data synthetic:96,3,8,8,3 \
    --tta hflip+crop:pad=1 --out "$dir/img-confusion.csv" >/dev/null
  $pre "$bin" info --checkpoint "$dir/run/checkpoint.dpt" >/dev/null
  $pre "$bin" schedule --lr 0.1 --lr-schedule onecycle --epochs 2 --steps-per-epoch 5 >/dev/null
  rm -rf "$dir"
}

# ---- 1. ASan + UBSan: the whole suite, then a leak check of the CLI -------------------------
# abort_on_error turns every report into SIGABRT, so a Criterion worker that trips a check
# "crashes" (a failed test: Criterion exits non-zero) instead of exiting with a code it might
# not look at; the dptrain binary the CLI tests spawn aborts too, which no test expects.
# Leak detection is on for the suites too: every Criterion worker (one per test) must exit
# leak-free, fixtures included; the runner parent only runs Criterion and turns its own check
# off (__lsan_is_turned_off in tests/support.c). Library leaks are also checked by the CLI runs
# below with detect_leaks=1, every fuzz target (libFuzzer checks leaks per input) and valgrind.
run_asan() {
  local t0; t0=$(stamp)
  build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDPT_SANITIZE=ON
  local common=halt_on_error=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
  export UBSAN_OPTIONS=abort_on_error=1:halt_on_error=1:print_stacktrace=1
  ASAN_OPTIONS=$common:detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$JOBS" \
    -E test_mpi
  # The MPI suite under ASan + UBSan without leak detection: Open MPI's allocations that outlive
  # MPI_Finalize are reported unsymbolised (through its dlopen'd components), so LSan cannot
  # tell them from dptrain's; memory errors still stop it. dptrain's own leaks are checked by
  # every other suite and the CLI runs.
  ASAN_OPTIONS=$common:detect_leaks=0 ctest --test-dir build-asan --output-on-failure -R test_mpi
  ASAN_OPTIONS=$common:detect_leaks=1 cli_runs "" build-asan/dptrain
  unset UBSAN_OPTIONS
  report "ASan+UBSan suite and CLI leak check" "$t0"
}

# ---- 2. TSan + Archer: the OpenMP region, driven through the CLI -----------------------------
# gcc's libgomp is not instrumented, so its barriers look like no synchronisation to TSan;
# LLVM's libomp with the Archer OMPT tool tells TSan about them. Debian's BLIS (openmp flavour)
# is linked against libgomp.so.1: a directory holding libgomp.so.1 -> libomp.so.5 first on
# LD_LIBRARY_PATH makes the whole process use one runtime, libomp (it implements the GOMP_*
# ABI for exactly this purpose).
# Criterion cannot run under TSan (its boxfort arena is mapped where TSan keeps its shadow:
# "Could not initialize inheritable arena"), so the suites are not the driver here: the
# TSan-built dptrain runs training steps, evaluation, resume and checkpointing with 2 and 3
# worker threads (3 > cores: more interleavings), which covers both parallel regions of
# src/train/trainer.c (the step and the evaluation) and everything they call.
# No suppressions are needed: BLIS and libcsv are not instrumented, so TSan sees none of
# their memory accesses, and libomp's synchronisation is modelled by Archer.
run_tsan() {
  local t0; t0=$(stamp)
  local libdir=/usr/lib/llvm-14/lib
  CC=clang DPT_TARGET=dptrain build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDPT_TSAN=ON \
    -DDPT_BUILD_TESTS=OFF
  mkdir -p build-tsan/omp-shim
  ln -sf "$libdir/libomp.so.5" build-tsan/omp-shim/libgomp.so.1
  export LD_LIBRARY_PATH="$ROOT/build-tsan/omp-shim:$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export OMP_TOOL_LIBRARIES="$libdir/libarcher.so"
  # ignore_noninstrumented_modules: what Archer asks for, so that accesses inside libomp itself
  # (not instrumented; its synchronisation is what Archer reports) are not paired up as races.
  export TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1"
  # Fail loudly rather than pass vacuously when Archer (and so libomp) is not in the process.
  local probe
  probe=$(ARCHER_OPTIONS=verbose=1 build-tsan/dptrain info 2>&1 || true)
  if ! grep -q "Archer detected OpenMP application with TSan" <<<"$probe"; then
    echo "check-sanitizers: Archer did not load into build-tsan/dptrain:" >&2
    echo "$probe" >&2
    exit 1
  fi
  DPT_THREADS=2 cli_runs "" build-tsan/dptrain
  DPT_THREADS=3 DPT_MICRO=8 cli_runs "" build-tsan/dptrain
  # One MPI case: 2 ranks x 2 threads, the pipelined exchange (thread 0 drives MPI while the
  # others sum and update pieces, synchronised by C11 atomics) and the phase-separated one.
  # Open MPI is not instrumented (ignore_noninstrumented_modules); mpirun forwards the
  # environment with -x. Each rank must print Archer's line, or the check would be vacuous.
  if grep -q "^DPT_MPI:BOOL=ON" build-tsan/CMakeCache.txt && command -v mpirun >/dev/null; then
    local mode log
    for mode in overlap phased; do
      log="${TMPDIR:-/tmp}/dpt-tsan-mpi-$mode.log"
      if ! OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        OMPI_MCA_rmaps_base_oversubscribe=1 ARCHER_OPTIONS=verbose=1 DPT_EXCHANGE=$mode \
        mpirun -np 2 --bind-to none -x LD_LIBRARY_PATH -x OMP_TOOL_LIBRARIES -x TSAN_OPTIONS \
        -x ARCHER_OPTIONS -x DPT_EXCHANGE build-tsan/dptrain train \
        --data synthetic:160,1,28,28,10 --model dense:256,relu,dense:10 --batch-size 64 \
        --micro-batch 8 --optimizer adam --epochs 1 --threads 2 --quiet --overwrite \
        --out "build-tsan/mpi-$mode" >"$log" 2>&1 ||
        [ "$(grep -c "Archer detected" "$log")" -ne 2 ]; then
        cat "$log" >&2
        echo "check-sanitizers: TSan MPI run ($mode exchange) failed" >&2
        exit 1
      fi
    done
  fi
  unset LD_LIBRARY_PATH OMP_TOOL_LIBRARIES TSAN_OPTIONS
  report "TSan+Archer CLI runs" "$t0"
}

# ---- 3. valgrind memcheck: the CLI runs ------------------------------------------------------
# Release builds use -march=native, whose AVX-512 code valgrind 3.19 cannot execute, so the
# binary is built once more without it (build-valgrind/, RelWithDebInfo, CLI only). Under
# valgrind CPUID hides AVX-512, so dptrain picks BLIS's AVX2 kernels, which valgrind runs.
# libgomp keeps its thread pool alive until exit; those blocks show as "possibly lost", so
# only definite leaks and memory errors fail the check.
run_valgrind() {
  local t0; t0=$(stamp)
  DPT_TARGET=dptrain build build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDPT_BUILD_TESTS=OFF
  cli_runs "valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite" build-valgrind/dptrain
  report "valgrind memcheck CLI runs" "$t0"
}

for j in "${JOBS_TO_RUN[@]}"; do
  case "$j" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    valgrind) run_valgrind ;;
    *) echo "usage: scripts/check-sanitizers.sh [asan] [tsan] [valgrind]" >&2; exit 2 ;;
  esac
done
