#!/bin/sh
# /init of the zcv test guest (busybox sh). Packed by tests/vm/setup.sh.
# 1. load virtio 9p, mount the results share (/results) and the host root
#    (/hostroot, read-only);
# 2. insmod the media/DRM modules with parameters from
#    /results/.zcv-vm/modparams ("<module> <params...>" per line);
# 3. mount proc/sys/dev/tmpfs inside the host root, then the results dir,
#    the GStreamer registry dir and any extra shares (ZCV_MOUNTS from
#    job.conf: host dirs under /tmp, /run or /dev that the tmpfs hides) at
#    their host paths; chroot into it and run
#    /results/.zcv-vm/job.sh (written by tests/vm/run.sh) with bash;
# 4. report the status: file /results/.zcv-vm/exit-status and a serial line
#    "ZCV-VM-EXIT <status>", then power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

KVER=$(cat /etc/zcv-vm/kver)
M=/lib/modules/$KVER
up() { cut -d' ' -f1 /proc/uptime; }
fail() {
	echo "zcv-vm init: ERROR: $*"
	echo "ZCV-VM-INFRA-FAIL $*"
	poweroff -f
	sleep 10
}
echo "zcv-vm init: kernel $(uname -r) up at $(up) s"

while read -r name rel; do
	insmod "$M/$rel" || fail "insmod $name"
done </etc/zcv-vm/base.list

P9="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o "$P9" zcvresults /results || fail "mount results share"
mount -t 9p -o "$P9,ro,cache=loose" hostroot /hostroot || fail "mount host root"
J=/results/.zcv-vm
[ -r $J/job.conf ] || fail "no $J/job.conf"
. $J/job.conf

params() { # module name -> params from $J/modparams
	[ -r $J/modparams ] || return 0
	sed -n "s/^$1[[:space:]]\{1,\}//p" $J/modparams | tail -n1
}
while read -r name rel; do
	p=$(params "$name")
	[ -n "$p" ] && echo "zcv-vm init: insmod $name $p"
	# shellcheck disable=SC2086 # params are word-split on purpose
	insmod "$M/$rel" $p || fail "insmod $name $p"
done </etc/zcv-vm/media.list
echo "zcv-vm init: modules loaded at $(up) s"

H=/hostroot
mount -t proc proc $H/proc
mount -t sysfs sysfs $H/sys
mount -t devtmpfs devtmpfs $H/dev
mkdir -p $H/dev/pts $H/dev/shm
mount -t devpts devpts $H/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $H/dev/shm
mount -t debugfs debugfs $H/sys/kernel/debug 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs $H/tmp
mount -t tmpfs -o mode=755 tmpfs $H/run
if [ -n "${ZCV_MOUNTS:-}" ]; then
	# "mode:tag:path" words, parents first: ro / rw = 9p share <tag>, bind =
	# bind of the guest directory <tag>; each mounted at <path> in the chroot.
	# A path in the guest's own tmpfs (/tmp, /run, /dev...) is created first,
	# so a checkout or build dir under /tmp on the host appears at the same
	# path here.
	for m in $ZCV_MOUNTS; do
		mode=${m%%:*}; r=${m#*:}; tag=${r%%:*}; p=${r#*:}
		[ -d "$H$p" ] || mkdir -p "$H$p" || fail "mkdir $p for $m"
		case $mode in
		ro) mount -t 9p -o "$P9,ro,cache=loose" "$tag" "$H$p" ;;
		rw) mount -t 9p -o "$P9" "$tag" "$H$p" ;;
		bind) mount -o bind "$tag" "$H$p" ;;
		*) false ;;
		esac || fail "mount $m"
	done
else # job.conf of an older run.sh
	mount -o bind /results "$H$ZCV_RESULTS_PATH" || fail "bind results to $ZCV_RESULTS_PATH"
	for s in $ZCV_SHARES; do # "tag=path" pairs: extra writable shares
		mount -t 9p -o "$P9" "${s%%=*}" "$H${s#*=}" || fail "mount share $s"
	done
fi
# Module tree for in-scenario reloads: modprobe -d /run/zcv-vm vivid ...
mkdir -p $H/run/zcv-vm/lib/modules
ln -s /proc/self/mounts $H/run/zcv-vm/mtab 2>/dev/null
mkdir -p "$H/run/zcv-vm/lib/modules/$KVER"
mount -o bind "$M" "$H/run/zcv-vm/lib/modules/$KVER"

echo "ZCV-VM-SCENARIO-START $(up)"
chroot $H /bin/bash "$ZCV_RESULTS_PATH/.zcv-vm/job.sh"
rc=$?
echo "zcv-vm init: scenario finished at $(up) s"
dmesg >/results/dmesg.txt 2>/dev/null
echo $rc >$J/exit-status
sync
echo "ZCV-VM-EXIT $rc"
poweroff -f
sleep 10
