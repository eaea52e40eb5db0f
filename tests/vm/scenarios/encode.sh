#!/usr/bin/env bash
# zcv-encode on vicodec: vivid 720p/1080p NV12 -> FWHT, decoded by vicodec and
# compared with the captured frames (PSNR); allocation that fits (1088 lines);
# three consumers at once; bad input. vivid 0 single-planar, vivid 1 multi-planar.
# zcv-vm-modparams: vivid n_devs=2 node_types=0x1,0x1 multiplanar=1,2
set -euo pipefail
exec python3 "$ZCV_SOURCE_DIR/tests/vm/encode.py" "$@"
