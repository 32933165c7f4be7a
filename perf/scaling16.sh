#!/usr/bin/env bash
# The 16-thread strong-scaling run of issue #6 (default MLP, global batch 2048, 1..16 threads),
# as one prepared script for a machine with 16 cores that may lack Debian's packages and
# network access (the project's device machine).
#
#   perf/scaling16.sh --prepare   here: build build-device/ (portable -march=x86-64-v3) and
#                                  bundle dptrain with every shared library it loads, the
#                                  loader included, so it runs whatever that machine has
#   perf/scaling16.sh [OUTDIR]     there (carry build-device): dptrain info, lscpu and
#                                  `dptrain bench --synthetic 200000 --threads 1,2,4,8,16
#                                  --batch 2048 --modes strong` into OUTDIR (default $OUT or
#                                  scaling16-out): info.txt, bench.log, bench.csv
# THREADS=1,2 perf/scaling16.sh tries it on a small machine (the bench notes oversubscription).
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=build-device/bundle
if [[ "${1:-}" == "--prepare" ]]; then
    cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release -DDPT_MARCH=x86-64-v3 \
        -DDPT_BUILD_TESTS=OFF >/dev/null
    cmake --build build-device -j "$(nproc)" --target dptrain >/dev/null
    rm -rf "$bundle" && mkdir -p "$bundle"
    cp build-device/dptrain "$bundle/"
    # Every library the loader resolves, copied as a regular file under its soname.
    ldd build-device/dptrain | awk '/=>/ && $3 ~ /^\// {print $1, $3} $1 ~ /^\/.*ld-linux/ {print "ld.so", $1}' |
        while read -r name path; do cp -L "$path" "$bundle/$name"; done
    du -sh "$bundle"
    echo "carry build-device/bundle, then run: perf/scaling16.sh"
    exit 0
fi
case "${1:-}" in
    -*) echo "usage: perf/scaling16.sh --prepare | perf/scaling16.sh [OUTDIR]" >&2; exit 2 ;;
esac
if [[ ! -x "$bundle/ld.so" || ! -x "$bundle/dptrain" ]]; then
    echo "perf/scaling16.sh: no bundle in $bundle: run perf/scaling16.sh --prepare first" \
        "(and carry build-device to the machine that runs it)" >&2
    exit 1
fi
out=${1:-${OUT:-scaling16-out}}
mkdir -p -- "$out"
run() { "$bundle/ld.so" --library-path "$bundle" "$bundle/dptrain" "$@"; }
{ nproc; lscpu 2>/dev/null | grep -E "Model name|^CPU\(s\)|Thread|Socket|NUMA node\(s\)|L3" || true
  run info; } > "$out/info.txt" 2>&1
cat "$out/info.txt"
run bench --synthetic 200000 --threads "${THREADS:-1,2,4,8,16}" --batch 2048 --modes strong \
    --reps "${REPS:-5}" --steps "${STEPS:-50}" --warmup 10 --out "$out" 2>&1 | tee "$out/bench.log"
