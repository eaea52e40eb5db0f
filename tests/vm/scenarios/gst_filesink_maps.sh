#!/usr/bin/env bash
# Not in CI: what docs/PERFORMANCE.md ("The whole pipeline") says of
# GStreamer's recorder branch. v4l2src io-mode=dmabuf ! tee, 300 frames of
# vivid 720p60 XRGB8888, with and without a filesink branch, under
# strace -f -c: how many mmap/munmap calls each makes.
#   tests/vm/run.sh gst_filesink_maps
# zcv-vm-modparams: vivid n_devs=1 node_types=0x1
set -euo pipefail
B=$ZCV_BUILD_DIR
probe=$B/tests/bench/gst-pipeline-probe
[ -x "$probe" ] && command -v strace >/dev/null || { echo "needs $probe and strace"; exit 77; }
dev=
for n in /sys/class/video4linux/*; do
	if grep -q '^vivid-.*-vid-cap' "$n/name"; then dev=/dev/$(basename "$n"); break; fi
done
# vivid's HDMI input at 1280x720p60: zcv-capture sets input and timings,
# which stay set for v4l2src
"$B/tools/zcv-capture" --source "$dev" --input 3 --dv-timings 1280x720p60 --format XRGB8888 \
	--frames 2 --wait-consumers 1 --socket /tmp/maps.sock >/dev/null 2>&1 &
cap=$!
for _ in $(seq 200); do [ -S /tmp/maps.sock ] && break; sleep 0.05; done
"$B/tools/zcv-record" --no-reconnect --raw --socket /tmp/maps.sock -o /dev/null >/dev/null 2>&1
wait "$cap"
for branch in filesink none; do
	tail=()
	[ $branch = filesink ] && tail=(t. ! queue max-size-buffers=8 leaky=downstream !
		filesink name=rec location=/dev/null buffer-mode=unbuffered)
	strace -f -c -o "/tmp/maps.$branch" "$probe" "/tmp/maps.$branch.json" disp \
		v4l2src device="$dev" io-mode=dmabuf num-buffers=300 ! \
		video/x-raw,format=BGRx,width=1280,height=720,framerate=60/1 ! tee name=t \
		t. ! queue max-size-buffers=3 leaky=downstream ! fakesink name=disp sync=false \
		"${tail[@]}"
	echo "== $([ $branch = filesink ] && echo with || echo without) a filesink branch: 300 frames"
	awk '$NF == "mmap" || $NF == "munmap" || $NF == "ioctl" || $NF == "writev" { print "  " $NF, $4 }' \
		"/tmp/maps.$branch"
done
