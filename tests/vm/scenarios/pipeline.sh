#!/usr/bin/env bash
# What splitting into processes costs: vivid 720p60 -> zcv-capture ->
# zcv-display (vkms) + zcv-encode (vicodec) + zcv-record, against one
# GStreamer process (v4l2src ! tee to kmssink, v4l2fwhtenc, filesink):
# CPU per frame, capture-to-flip latency, frames each branch got.
# zcv-vm-modparams: vivid n_devs=1 node_types=0x1
set -euo pipefail
exec python3 "$ZCV_SOURCE_DIR/tests/vm/pipeline.py" "$@"
