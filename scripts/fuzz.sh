#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs
# each for SECONDS (default 60) through ctest (label fuzz), one at a time.
#   scripts/fuzz.sh [SECONDS]
#   ZCV_FUZZ_BUILD_DIR  build directory (default: build-fuzz)
# Needs clang and libclang-rt-14-dev (scripts/install-deps.sh). Long runs
# and reproducing a crash: tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${ZCV_FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_EACH=${1:-60}
case "$SECONDS_EACH" in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac
command -v clang >/dev/null || {
	echo "fuzz.sh: clang not found: apt-get install clang libclang-rt-14-dev" >&2
	exit 1
}
CC=clang cmake -S . -B "$B" -DZCV_FUZZ=ON -DZCV_FUZZ_SECONDS="$SECONDS_EACH" >/dev/null
cmake --build "$B" --target fuzzers -j"$(nproc)"
ctest --test-dir "$B" -L fuzz --output-on-failure
