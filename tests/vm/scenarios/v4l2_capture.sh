#!/usr/bin/env bash
# V4L2 capture on vivid: DMA-BUF export to three consumers at 720p60 and
# 1080p60, YUYV and NV12, single- and multi-planar; copy tier; error paths.
# Then frames are read-only on the DMA-BUF path too: a consumer that tries
# every way to write into vivid's exported buffers fails each time, and a
# good consumer beside it sees exactly what the producer captured.
# vivid 0 uses the single-planar API, vivid 1 the multi-planar one.
# zcv-vm-modparams: vivid n_devs=2 node_types=0x1,0x1 multiplanar=1,2
set -euo pipefail
python3 "$ZCV_SOURCE_DIR/tests/vm/v4l2_capture.py" "$@"

dev=
for n in /sys/class/video4linux/video*; do
	if [ "$(cat "$n/name")" = "vivid-000-vid-cap" ]; then
		dev=/dev/$(basename "$n")
	fi
done
[ -n "$dev" ] || { echo "FAIL: no vivid-000-vid-cap node"; exit 1; }
echo "== read-only frames on the DMA-BUF path ($dev)"
python3 "$ZCV_SOURCE_DIR/tests/hostile/test_readonly.py" --build-dir "$ZCV_BUILD_DIR" \
	--capture-args "--source $dev --input 3 --dv-timings 1280x720p60 --format YUYV --require-zero-copy" \
	--expect-path dmabuf
