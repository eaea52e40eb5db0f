#!/usr/bin/env bash
# The main job: installs dependencies, builds zcv, then runs the test
# pattern source feeding two consumers (the sample sink and zcv-record)
# for five seconds and prints each process's stats. Output: build/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
B=${ZCV_BUILD_DIR:-build}
cmake -S . -B "$B" >/dev/null
cmake --build "$B" -j"$(nproc)"

OUT="$B/demo"
rm -rf "$OUT"
mkdir -p "$OUT"
SOCK="$OUT/zcv.sock"
"$B/tools/zcv-capture" --source pattern --size 1280x720 --format NV12 --fps 30 --frames 150 \
	--wait-consumers 2 --socket "$SOCK" --stats-json "$OUT/capture.json" &
cap=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
"$B/samples/zcv-sample-print" "$SOCK" >"$OUT/print-sink.log" &
sink=$!
"$B/tools/zcv-record" --no-reconnect --socket "$SOCK" -o "$OUT/pattern.y4m" --stats-json "$OUT/record.json" &
rec=$!
wait $cap $sink $rec

echo
echo "sample sink, last frames (sequence, capture-to-receipt latency, checksum):"
tail -n 3 "$OUT/print-sink.log"
echo
echo "zcv-capture stats ($OUT/capture.json):"
cat "$OUT/capture.json"
echo "zcv-record stats ($OUT/record.json), recording in $OUT/pattern.y4m:"
cat "$OUT/record.json"
