#!/usr/bin/env bash
# V4L2 capture on vivid: DMA-BUF export to three consumers at 720p60 and
# 1080p60, YUYV and NV12, single- and multi-planar; copy tier; error paths.
# vivid 0 uses the single-planar API, vivid 1 the multi-planar one.
# zcv-vm-modparams: vivid n_devs=2 node_types=0x1,0x1 multiplanar=1,2
set -euo pipefail
exec python3 "$ZCV_SOURCE_DIR/tests/vm/v4l2_capture.py" "$@"
