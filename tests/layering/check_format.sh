#!/usr/bin/env bash
# Every tracked C file is as clang-format (.clang-format at the root) would write it.
# To fix: scripts/format.sh.
set -euo pipefail
cd "$1"
git ls-files -z '*.c' '*.h' | xargs -0 clang-format --dry-run --Werror
