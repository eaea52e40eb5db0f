#!/bin/sh
# SPDX-License-Identifier: MIT
# Full benchmark run (~3-4 minutes on 2 CPUs): table on stdout, JSON and
# plot into docs/ next to docs/PERFORMANCE.md. Needs a build (default
# build/), gst-launch-1.0 with gst-plugins-bad (shmsink) and gnuplot.
#   tests/bench/run.sh [BUILD_DIR] [zcv-bench options...]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
[ $# -gt 0 ] && shift
"$build/tests/bench/zcv-bench" --json "$top/docs/performance.json" "$@" | tee "$top/docs/performance.txt"
python3 "$top/tests/bench/check_json.py" "$top/docs/performance.json"
python3 "$top/tests/bench/plot.py" "$top/docs/performance.json" "$top/docs/performance.png"
