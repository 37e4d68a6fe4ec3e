#!/usr/bin/env bash
# Sets up, builds and runs the gateway on 127.0.0.1:8080 with its embedded default.
# Extra arguments go to the gateway (see: build/sockjs-gateway --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"
exec build/sockjs-gateway --listen 127.0.0.1:8080 "$@"
