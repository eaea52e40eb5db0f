#!/usr/bin/env bash
# Smoke test of the VM rig: the kernel drivers zcv tests rely on are present
# and vivid's buffers export as DMA-BUF through GStreamer.
# zcv-vm-modparams: vivid n_devs=1 node_types=0x1
set -euo pipefail

out=${ZCV_RESULTS_DIR:-/tmp}
fails=0
ok()  { echo "smoke: ok   - $*"; }
bad() { echo "smoke: FAIL - $*"; fails=$((fails + 1)); }

echo "smoke: kernel $(uname -r), $(nproc) CPUs, cwd $PWD, ZCV_BUILD_DIR=${ZCV_BUILD_DIR:-}"

# driver name of a video node, via VIDIOC_QUERYCAP
vdrv() { v4l2-ctl -d "$1" -D 2>/dev/null | sed -n 's/^[[:space:]]*Driver name[[:space:]]*: //p' | head -n1; }

echo "smoke: video nodes:"
declare -A seen=()
for n in /sys/class/video4linux/video*; do
  [[ -e $n ]] || continue
  dev=/dev/$(basename "$n")
  d=$(vdrv "$dev")
  printf 'smoke:   %-12s %-10s %s\n' "$dev" "${d:-?}" "$(cat "$n/name")"
  [[ -n $d ]] && seen[$d]=1
done

# 1. vivid on /dev/video0
if [[ -c /dev/video0 ]]; then
  if v4l2-ctl -d /dev/video0 --all >"$out/v4l2-ctl-all.txt" 2>&1; then
    d=$(vdrv /dev/video0)
    [[ $d == vivid ]] && ok "/dev/video0 is vivid (v4l2-ctl --all: $out/v4l2-ctl-all.txt)" ||
      bad "/dev/video0 driver is '$d', expected vivid"
  else
    bad "v4l2-ctl -d /dev/video0 --all failed: $(tail -n 3 "$out/v4l2-ctl-all.txt")"
  fi
else
  bad "/dev/video0 missing (vivid not loaded?)"
fi

# 2. GStreamer capture with DMA-BUF export
t0=$(date +%s.%N)
if timeout 120 gst-launch-1.0 -q v4l2src device=/dev/video0 io-mode=dmabuf num-buffers=30 ! fakesink \
     >"$out/gst-launch.txt" 2>&1; then
  ok "gst-launch v4l2src io-mode=dmabuf num-buffers=30 ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
else
  bad "gst-launch v4l2src io-mode=dmabuf failed: $(tail -n 5 "$out/gst-launch.txt")"
fi

# 3. vkms DRM card
vkms_card=""
for c in /sys/class/drm/card[0-9]*; do
  # vkms registers a bare platform device named "vkms" (no bound driver)
  [[ -e $c/device && $(basename "$(readlink -f "$c/device")") == vkms ]] && vkms_card=/dev/dri/$(basename "$c")
done
ls -l /dev/dri/ >"$out/dev-dri.txt" 2>&1 || true
if [[ -d /sys/module/vkms && -n $vkms_card && -c $vkms_card ]]; then
  ok "vkms loaded, card $vkms_card"
else
  bad "no vkms DRM card in /dev/dri ($(ls /dev/dri 2>/dev/null | tr '\n' ' '))"
fi

# 4. mem2mem test drivers
[[ -n ${seen[vicodec]:-} ]] && ok "vicodec video nodes present" || bad "no vicodec video node"
[[ -n ${seen[vim2m]:-} ]] && ok "vim2m video node present" || bad "no vim2m video node"

if ((fails)); then echo "smoke: $fails check(s) failed"; exit 1; fi
echo "smoke: all checks passed"
