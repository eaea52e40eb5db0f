#!/usr/bin/env bash
# Builds zcv (if needed) and runs the whole test suite with ctest.
#   ZCV_BUILD_DIR   build directory (default: build)
#   ZCV_CMAKE_FLAGS extra cmake flags
#   ZCV_TEST_LABELS ctest label regex (default: all tests)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${ZCV_BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$B" ${ZCV_CMAKE_FLAGS:-} >/dev/null
cmake --build "$B" -j"$(nproc)"
# the VM tests' kernel, modules and initramfs: fetched and built once into
# a cache outside the tree (~22 s the first time, instant after)
case "${ZCV_TEST_LABELS:-vm}" in
*vm*) tests/vm/setup.sh ;;
esac
args=(--test-dir "$B" --output-on-failure)
[ -n "${ZCV_TEST_LABELS:-}" ] && args+=(-L "$ZCV_TEST_LABELS")
ctest "${args[@]}"
