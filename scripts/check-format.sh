#!/usr/bin/env bash
# Fails when a C file differs from what clang-format (.clang-format) makes
# of it. Fix with: git ls-files '*.c' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror
echo "clang-format: all C sources formatted"
