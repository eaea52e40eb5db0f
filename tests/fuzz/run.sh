#!/usr/bin/env bash
# Runs one libFuzzer target for ctest (tests/fuzz/CMakeLists.txt).
#   run.sh FUZZER TARGET SECONDS WORKDIR SEEDS GEN_CORPUS
#       fuzzes for SECONDS from a scratch copy of SEEDS plus the seeds
#       GEN_CORPUS makes now; fails on a crash, leak or broken invariant.
#   run.sh FUZZER TARGET replay WORKDIR DIR
#       runs every input in DIR once (crash reproducers); passes when DIR
#       is empty or missing.
# The reproducer of a failure is left in WORKDIR (crash-*, leak-*, ...).
set -euo pipefail
fuzzer=$1 target=$2 seconds=$3 work=$4 seeds=$5 gen=${6:-}

rm -rf "$work"
mkdir -p "$work"

if [ "$seconds" = replay ]; then
	shopt -s nullglob
	inputs=("$seeds"/*)
	if [ ${#inputs[@]} -eq 0 ]; then
		echo "fuzz.$target: no reproducers in $seeds"
		exit 0
	fi
	# -error_exitcode: libFuzzer's default, 77, could read as a skip
	exec "$fuzzer" -runs=1 -error_exitcode=1 -artifact_prefix="$work/" "${inputs[@]}"
fi

mkdir -p "$work/corpus" "$work/gen"
if [ -d "$seeds" ]; then
	cp -r "$seeds/." "$work/corpus/"
fi
if [ -n "$gen" ]; then
	"$gen" "$work/gen"
	cp -r "$work/gen/$target/." "$work/corpus/"
fi
echo "fuzz.$target: $(find "$work/corpus" -type f | wc -l) seeds, $seconds s"
# -timeout: one input taking 10 s is a hang; -rss_limit_mb: the default
# 2048 MB, said out loud; -print_final_stats: executions for the record.
set +e
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" 2>&1 | tee "$work/log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
	# libFuzzer exits 77 on a crash, which ctest could take for a skip
	echo "fuzz.$target: FAILED (libFuzzer status $status); reproducer:"
	ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null || true
	exit 1
fi
