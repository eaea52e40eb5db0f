#!/usr/bin/env bash
# The README's quick-start pipeline (scripts/demo-vm.sh): vivid -> zcv-capture
# -> zcv-display on vkms + zcv-record for ZCV_DEMO_SECONDS (5) seconds. Leaves
# demo.png (what vkms scanned out), demo.zcv-{capture,display,record}.json and
# demo.summary.txt in the results dir.
# zcv-vm-modparams: vivid n_devs=1 node_types=0x1
# zcv-vm-modparams: vkms enable_writeback=1
set -euo pipefail
exec python3 "$ZCV_SOURCE_DIR/tests/vm/display.py" demo "$@"
