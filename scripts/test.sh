#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite twice: a gcc build, and a clang build under
# AddressSanitizer + UndefinedBehaviorSanitizer (leaks included). -Werror in both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

jobs=$(nproc)
cmake -S . -B build -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DGW_SANITIZE=ON \
    >/dev/null
cmake --build build-asan -j "$jobs"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

status=0
echo "== tests (gcc) =="
ctest --test-dir build --output-on-failure || status=1
echo "== tests (clang, ASan + UBSan) =="
ctest --test-dir build-asan --output-on-failure || status=1
exit $status
