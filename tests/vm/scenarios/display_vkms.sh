#!/usr/bin/env bash
# zcv-display on vkms: vivid XRGB8888 720p60 zero-copy (PRIME import, a
# framebuffer per buffer, page flips) with zcv-record alongside, checked
# against vkms' writeback output; NV12 through the copy fallback against a
# reference conversion; a centred frame; a memfd stream; error paths.
# zcv-vm-modparams: vivid n_devs=1 node_types=0x1
# zcv-vm-modparams: vkms enable_writeback=1
set -euo pipefail
exec python3 "$ZCV_SOURCE_DIR/tests/vm/display.py" vkms "$@"
