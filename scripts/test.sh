#!/usr/bin/env bash
# Quick start, command 2: set up, build, and run the whole test suite (ctest over the
# Criterion suites). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
ctest --output-on-failure -j"$(nproc)"
cd ..
# Hardening (docs/hardening.md): ASan+UBSan suite, TSan+Archer and valgrind runs.
scripts/check-sanitizers.sh
# libFuzzer smoke run: every parser target for 10 s from the committed seeds.
scripts/check-fuzz.sh 10
