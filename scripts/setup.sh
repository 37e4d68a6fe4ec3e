#!/usr/bin/env bash
# Installs what building (and, with --test, testing) needs on a Debian machine, only when
# missing. Safe to run again: it changes nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

packages=(cmake make gcc pkg-config libevent-dev libhttp-parser-dev libjansson-dev zlib1g-dev
          libssl-dev libhiredis-dev liburing-dev)
if [ "$want_tests" = 1 ]; then
    packages+=(clang clang-format libclang-rt-14-dev libwebsockets-dev python3 redis-server haproxy nginx prometheus
               chromium iproute2)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "$want_tests" = 1 ] && ! command -v node >/dev/null; then
    missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm modules of the test suites, exactly as their lock files pin them (the stock sockjs-client
# and the reference server sockjs-node; playwright-core to drive Debian's chromium). Installed
# again when the lock file is newer than the install (npm ci writes
# node_modules/.package-lock.json), so that a machine set up before picks up a changed one.
if [ "$want_tests" = 1 ]; then
    for dir in tests/node tests/browser; do
        installed="$dir/node_modules/.package-lock.json"
        if [ -f "$dir/package-lock.json" ] && { [ ! -f "$installed" ] ||
                [ "$dir/package-lock.json" -nt "$installed" ]; }; then
            echo "setup: npm ci in $dir"
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        fi
    done
fi
