#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c; clang, ASan+UBSan) into build-fuzz/ and
# runs each for SECONDS (default 10: the CI smoke run), two at a time on a 2-core machine.
# New inputs go to build-fuzz/corpus/<target>/ (the committed seeds in tests/fuzz/corpus/ are
# read, never written); a crash, leak, timeout or out-of-memory leaves its input in
# build-fuzz/findings/ and fails the script. docs/hardening.md has the campaign figures.
# Usage: scripts/check-fuzz.sh [SECONDS] [TARGET...]    (targets: idx cifar csv checkpoint
#        specs metrics; default all). DPT_FUZZ_JOBS overrides the parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${1:-10}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(idx cifar csv checkpoint specs metrics)
JOBS=${DPT_FUZZ_JOBS:-$(nproc)}

if ! command -v clang >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "check-fuzz needs clang: sudo apt-get install -y clang libclang-rt-14-dev" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi

log="${TMPDIR:-/tmp}/dpt-build-fuzz.log"
if ! { CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDPT_FUZZ=ON \
         -DDPT_BUILD_TESTS=OFF && cmake --build build-fuzz -j"$(nproc)"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "check-fuzz: building build-fuzz failed" >&2
  exit 1
fi

# Longest input per target: enough for a few records / sections / rows, small enough that
# each execution stays fast.
max_len() {
  case "$1" in
    cifar) echo 8192 ;;
    specs) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

mkdir -p build-fuzz/findings build-fuzz/logs
run_one() {
  local t=$1 work="$ROOT/build-fuzz/corpus/$1"
  mkdir -p "$work"
  # -timeout: one input may take 10 s (ASan, gzip); -rss_limit_mb also caps single mallocs.
  if "$ROOT/build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" \
       -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$ROOT/build-fuzz/findings/$t-" "$work" "$ROOT/tests/fuzz/corpus/$t" \
       >"$ROOT/build-fuzz/logs/$t.log" 2>&1; then
    local execs
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$ROOT/build-fuzz/logs/$t.log")
    echo "check-fuzz: $t ok: ${execs:-?} executions in ${SECONDS_EACH} s, corpus $(ls "$work" | wc -l) files"
  else
    echo "check-fuzz: $t FAILED; its log follows (build-fuzz/logs/$t.log)" >&2
    tail -60 "$ROOT/build-fuzz/logs/$t.log" >&2
    return 1
  fi
}
export -f run_one max_len
export ROOT SECONDS_EACH
printf '%s\n' "${TARGETS[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}
