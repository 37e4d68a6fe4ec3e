#!/usr/bin/env bash
# Sets up, builds and runs the gateway on 127.0.0.1:8080 (SockJS at /sockjs) with its embedded
# engine and the publish API on 127.0.0.1:8081. Without arguments it runs as a local demo
# (anonymous sessions allowed, demo secret and API key, printed below); with arguments, exactly
# those are passed (see build/sockjs-gateway --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"
if [ $# -eq 0 ]; then
    echo "demo: --jwt-secret demo-secret-for-loopback-use-only --api-key demo-key" \
        "--allow-anonymous (loopback only)"
    echo "open http://127.0.0.1:8080/demo/"
    set -- --jwt-secret demo-secret-for-loopback-use-only --api-key demo-key --allow-anonymous
fi
exec build/sockjs-gateway --listen 127.0.0.1:8080 "$@"
