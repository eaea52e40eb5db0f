#!/usr/bin/env bash
# zcv-display on bochs (QEMU -vga std: run with ZCV_VM_QEMU_ARGS="-vga std"):
# PRIME import fails with EINVAL, so frames go through the copy fallback.
# zcv-vm-modparams: vivid n_devs=1 node_types=0x1
set -euo pipefail
# The rig's initramfs carries only the media/DRM test modules: take bochs and
# its helpers from the full module tree the rig unpacked into its cache
# (shared read-only with the guest through the host root).
if [[ ! -d /sys/module/bochs ]]; then
  if ! lspci -n 2>/dev/null | grep -q '1234:1111' && ! grep -qs 0x1111 /sys/bus/pci/devices/*/device; then
    echo "display_bochs: no bochs VGA device: run with ZCV_VM_QEMU_ARGS=\"-vga std\"" >&2
    exit 77
  fi
  root=""
  for c in ${ZCV_VM_CACHE:-} /root/.cache/zcv-vm /home/*/.cache/zcv-vm; do
    [[ -s $c/current ]] || continue
    r=$c/kernels/$(cat "$c/current")/root
    [[ -d $r/lib/modules/$ZCV_VM_KVER ]] && { root=$r; break; }
  done
  [[ -n $root ]] || { echo "display_bochs: no module tree for $ZCV_VM_KVER in the zcv-vm cache" >&2; exit 1; }
  modprobe -d "$root" -S "$ZCV_VM_KVER" bochs || { echo "display_bochs: modprobe bochs failed" >&2; exit 1; }
  for _ in $(seq 50); do ls /sys/bus/pci/drivers/bochs-drm/*/drm 2>/dev/null | grep -q card && break; sleep 0.1; done
fi
exec python3 "$ZCV_SOURCE_DIR/tests/vm/display.py" bochs "$@"
