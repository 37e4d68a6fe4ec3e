#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz longer than ctest's smoke, one after the other, and
# merges the inputs that add coverage into the corpus in the repository (tests/fuzz/corpus/NAME),
# so that the corpus grows with each run; commit what it adds. A crash, leak or timeout stops
# the script with the reproducer in build-asan/fuzz-artifacts/.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 300 s; all targets)
#   scripts/fuzz.sh 600 http jwt
# Targets: websocket_decoder sockjs_payload http jwt publish proxy_protocol.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(websocket_decoder sockjs_payload http jwt publish proxy_protocol)
fi
build=${GW_FUZZ_BUILD:-build-asan}

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DGW_SANITIZE=ON \
    >/dev/null
cmake --build "$build" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

for t in "${targets[@]}"; do
    bin="$build/tests/fuzz/fuzz_$t"
    corpus="tests/fuzz/corpus/$t"
    dict=()
    [ -f "tests/fuzz/corpus/$t.dict" ] && dict=("-dict=tests/fuzz/corpus/$t.dict")
    # New inputs land in a scratch directory; only those that add coverage are merged back.
    found=$(mktemp -d)
    trap 'rm -rf "$found"' EXIT
    echo "== fuzz_$t: $seconds s"
    "$bin" -max_total_time="$seconds" -timeout=10 -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$t-" "${dict[@]}" "$found" "$corpus"
    before=$(ls "$corpus" | wc -l)
    "$bin" -merge=1 -max_len=4096 "$corpus" "$found" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new" || true
    echo "== fuzz_$t: corpus $before -> $(ls "$corpus" | wc -l) files"
    rm -rf "$found"
done
