#!/usr/bin/env bash
# Installs what zcv needs to build and test on Debian 12 (run as root, or
# through sudo when not root).
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
PKGS=(build-essential cmake pkg-config python3 libdrm-dev libv4l-dev uuid-dev libcmocka-dev
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
	gstreamer1.0-plugins-bad libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
	util-linux gnuplot-nox clang-format
	# libFuzzer targets (tests/fuzz): clang and its runtime libraries
	clang libclang-rt-14-dev
	# zcv-display: PNG snapshots (zlib)
	zlib1g-dev
	# the GStreamer plugin (zcvsrc, zcvsink) and zcv-rtsp: RTSP server, x264
	# and the libav H.264 decoder for its loopback test
	libgstrtspserver-1.0-dev gstreamer1.0-rtsp gstreamer1.0-plugins-ugly gstreamer1.0-libav
	# the real-kernel tests: QEMU, the guest's initramfs, out-of-tree modules
	qemu-system-x86 busybox-static cpio kmod xz-utils bc libelf-dev libssl-dev v4l-utils
	# zcv-bench: the PipeWire case (daemon, pw-link, pw_stream peers) and syscall counts
	pipewire pipewire-bin libpipewire-0.3-dev strace)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
