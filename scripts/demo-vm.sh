#!/usr/bin/env bash
# The capture-to-display pipeline on real kernel drivers, in the QEMU test
# guest (tests/vm): vivid's HDMI input (1280x720 XRGB8888 at 60 fps) ->
# zcv-capture -> zcv-display on vkms (zero-copy: PRIME import + page flips)
# and zcv-record at the same time, for ZCV_DEMO_SECONDS (default 5) seconds.
#
# Leaves in build/vm-results/demo/ (ZCV_VM_RESULTS_DIR to change):
#   demo.png                 what vkms scanned out at the end (writeback)
#   demo.zcv-capture.json    the producer's stats
#   demo.zcv-display.json    the display's stats (flips, latency, copied_bytes)
#   demo.zcv-record.json     the recorder's stats
#   demo.summary.txt         one line per process
# and prints the summary, the stats and the PNG's path.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
B=${ZCV_BUILD_DIR:-$PWD/build}
cmake -S . -B "$B" >/dev/null
cmake --build "$B" -j"$(nproc)" >/dev/null
tests/vm/setup.sh >/dev/null
OUT=${ZCV_VM_RESULTS_DIR:-$B/vm-results/demo}
ZCV_BUILD_DIR=$B ZCV_VM_RESULTS_DIR=$OUT ZCV_VM_MEM=${ZCV_VM_MEM:-3G} ZCV_VM_QUIET=1 \
	tests/vm/run.sh demo
echo
cat "$OUT/demo.summary.txt"
for p in capture display record; do
	echo
	echo "zcv-$p stats ($OUT/demo.zcv-$p.json):"
	cat "$OUT/demo.zcv-$p.json"
	echo
done
echo
echo "what the display showed: $OUT/demo.png"
