#!/bin/sh
# SPDX-License-Identifier: MIT
# Full benchmark, run RUNS times (default 3; ~5-8 minutes each on 2 CPUs):
# docs/performance-K.{json,txt} per run, docs/performance.{json,txt,png}
# from the first, and docs/performance-tables.md: the tables of the first
# run plus min/median/max over all runs of every zcv/PipeWire ratio (each
# taken within one run) and of the syscall counts. Needs a build (default
# build/), gst-launch-1.0 with gst-plugins-bad (shmsink), gnuplot; the
# PipeWire case needs pipewire, pw-link and a build with libpipewire-0.3,
# the syscall counts strace (zcv-bench skips either, saying so).
#   RUNS=3 tests/bench/run.sh [BUILD_DIR] [zcv-bench options...]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
[ $# -gt 0 ] && shift
runs=${RUNS:-3}
files=""
k=1
while [ "$k" -le "$runs" ]; do
	out="$top/docs/performance-$k"
	echo "== run $k of $runs"
	"$build/tests/bench/zcv-bench" --json "$out.json" "$@" | tee "$out.txt"
	python3 "$top/tests/bench/check_json.py" "$out.json"
	files="$files $out.json"
	k=$((k + 1))
done
cp "$top/docs/performance-1.json" "$top/docs/performance.json"
cp "$top/docs/performance-1.txt" "$top/docs/performance.txt"
# shellcheck disable=SC2086 # one argument per file
python3 "$top/tests/bench/tables.py" $files > "$top/docs/performance-tables.md"
python3 "$top/tests/bench/plot.py" "$top/docs/performance.json" "$top/docs/performance.png"
