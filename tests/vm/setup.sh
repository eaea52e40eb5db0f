#!/usr/bin/env bash
# tests/vm/setup.sh - prepare the QEMU guest used by tests/vm/run.sh.
#
# Idempotent. Fetches a stock Debian bookworm-backports kernel (image, headers,
# kbuild, source) into a cache directory outside the source tree, builds the
# test drivers Debian does not ship (vkms, vicodec, vim2m, v4l2-mem2mem) out
# of tree, and packs a busybox initramfs that loads the drivers.
# Never installs a kernel into the host.
#
# Environment:
#   ZCV_VM_CACHE     cache dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/zcv-vm)
#   ZCV_VM_KSERIES   kernel series to use (default 6.12)
#   ZCV_VM_SUITE     Debian suite to fetch from (default bookworm-backports)
#   ZCV_VM_MIRROR    Debian mirror URI (default: the one the system uses)
#   ZCV_VM_OFFLINE=1 do not contact the archive; reuse the cached kernel
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ZCV_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zcv-vm}
KSERIES=${ZCV_VM_KSERIES:-6.12}
SUITE=${ZCV_VM_SUITE:-bookworm-backports}
# Modules insmod-ed by the guest's /init (their dependencies are added).
# The first group is needed to mount the 9p shares and is loaded first.
BASE_MODULES="9p 9pnet_virtio"
MEDIA_MODULES="vivid vgem vkms v4l2-mem2mem vicodec vim2m ${ZCV_VM_EXTRA_MODULES:-}"

log() { printf 'zcv-vm setup: %s\n' "$*" >&2; }
die() { printf 'zcv-vm setup: ERROR: %s\n' "$*" >&2; exit 1; }

t_start=$(date +%s.%N)

# --------------------------------------------------------------------------
# 1. Host dependencies
# --------------------------------------------------------------------------
# Package -> a file it provides (checked instead of dpkg status so that
# non-Debian hosts that have the tools still work).
declare -A need=(
  [qemu-system-x86]=qemu-system-x86_64
  [busybox-static]=/bin/busybox
  [cpio]=cpio
  [kmod]=depmod
  [xz-utils]=xz
  [build-essential]=make
  [gcc-12]=x86_64-linux-gnu-gcc-12
  [bc]=bc
  [libelf-dev]=/usr/include/libelf.h
  [libssl-dev]=/usr/include/openssl/ssl.h
  [dpkg]=dpkg
  [apt]=apt-get
  [gzip]=gzip
)
# flex/bison are not needed: linux-kbuild ships prebuilt host tools and we
# only build modules.
missing=()
for pkg in "${!need[@]}"; do
  f=${need[$pkg]}
  if [[ $f == /* ]]; then [[ -e $f ]] || missing+=("$pkg")
  else command -v "$f" >/dev/null 2>&1 || [[ -x /usr/sbin/$f || -x /sbin/$f ]] || missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing missing host packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; } ||
      die "apt-get install ${missing[*]} failed"
  else
    die "missing host packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})"
  fi
fi
export PATH="$PATH:/usr/sbin:/sbin"

mkdir -p "$CACHE"
exec 9>"$CACHE/.setup.lock"
flock 9 || die "cannot lock $CACHE/.setup.lock"

# --------------------------------------------------------------------------
# 2. Private apt configuration (system sources stay untouched)
# --------------------------------------------------------------------------
mirror=${ZCV_VM_MIRROR:-}
if [[ -z $mirror ]]; then
  # deb822 sources: first URIs whose Suites mention bookworm (not -security).
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f ]] || continue
    mirror=$(awk '
      /^[[:space:]]*$/ { if (u != "" && s ~ /bookworm( |$)/) { print u; exit } u=""; s=""; next }
      /^URIs:/ { u=$2 } /^Suites:/ { $1=""; s=$0 }
      END { if (u != "" && s ~ /bookworm( |$)/) print u }' "$f" | head -n1)
    [[ -n $mirror ]] && break
  done
fi
if [[ -z $mirror && -e /etc/apt/sources.list ]]; then
  mirror=$(awk '$1=="deb" && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list | head -n1)
fi
mirror=${mirror:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -e $keyring ]] || die "$keyring missing (apt-get install debian-archive-keyring)"

APTD=$CACHE/apt
mkdir -p "$APTD"/etc/sources.list.d "$APTD"/etc/preferences.d "$APTD"/state/lists/partial "$APTD"/cache/archives/partial
touch "$APTD/state/status"
printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$SUITE" >"$APTD/etc/sources.list.new"
mv "$APTD/etc/sources.list.new" "$APTD/etc/sources.list"
APT_OPTS=(
  -o "Dir::Etc::sourcelist=$APTD/etc/sources.list"
  -o "Dir::Etc::sourceparts=$APTD/etc/sources.list.d"
  -o "Dir::Etc::preferencesparts=$APTD/etc/preferences.d"
  -o "Dir::State=$APTD/state"
  -o "Dir::State::status=$APTD/state/status"
  -o "Dir::Cache=$APTD/cache"
  -o "APT::Get::List-Cleanup=0"
)
[[ $(id -u) == 0 ]] && APT_OPTS+=(-o "APT::Sandbox::User=root")

resolve_version() {
  # Prints "<abi> <debian-version>", e.g. "6.12.95+deb12 6.12.95-1~bpo12+1".
  local dep abi ver
  dep=$(apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: linux-image-\(.*\)-amd64$/\1/p' | head -n1)
  if [[ $dep != "$KSERIES".* ]]; then
    # The meta package moved on to another series: take the newest $KSERIES.
    dep=$(apt-cache "${APT_OPTS[@]}" pkgnames "linux-image-$KSERIES." 2>/dev/null |
          sed -n "s/^linux-image-\\($KSERIES\\.[0-9]*+[a-z0-9.]*\\)-amd64-unsigned\$/\\1/p" |
          sort -V | tail -n1)
  fi
  [[ -n $dep ]] || return 1
  abi=$dep
  ver=$(apt-cache "${APT_OPTS[@]}" show "linux-image-$abi-amd64-unsigned" 2>/dev/null |
        sed -n 's/^Version: //p' | sort -V | tail -n1)
  [[ -n $ver ]] || return 1
  echo "$abi $ver"
}

abi="" ver=""
if [[ ${ZCV_VM_OFFLINE:-0} != 1 ]]; then
  log "updating private apt lists ($mirror $SUITE)"
  if apt-get "${APT_OPTS[@]}" -q update >"$APTD/update.log" 2>&1; then
    read -r abi ver < <(resolve_version) || true
    [[ -n $abi ]] || die "could not resolve a linux-image $KSERIES package in $SUITE (see $APTD/update.log)"
  else
    log "WARNING: apt-get update failed (see $APTD/update.log); trying the cached kernel"
  fi
fi
if [[ -z $abi ]]; then
  [[ -s $CACHE/current ]] || die "no network and no cached kernel in $CACHE"
  read -r abi ver <"$CACHE/current.version" || die "corrupt $CACHE/current.version"
  log "offline: reusing cached kernel $abi ($ver)"
fi
KVER=$abi-amd64
KD=$CACHE/kernels/$abi
log "kernel: $KVER (Debian $ver)"
mkdir -p "$KD"

# --------------------------------------------------------------------------
# 3. Download + unpack (cached, keyed by kernel version)
# --------------------------------------------------------------------------
pkgs=(
  "linux-image-$abi-amd64-unsigned=$ver"
  "linux-headers-$abi-amd64=$ver"
  "linux-headers-$abi-common=$ver"
  "linux-kbuild-$abi=$ver"
  "linux-source-$KSERIES=$ver"
)
if [[ ! -e $KD/debs/.done ]]; then
  log "downloading ${#pkgs[@]} packages (~280 MB)"
  rm -rf "$KD/debs"; mkdir -p "$KD/debs"
  (cd "$KD/debs" && apt-get "${APT_OPTS[@]}" -q download "${pkgs[@]}" >&2) ||
    die "apt-get download failed"
  touch "$KD/debs/.done"
fi

R=$KD/root
if [[ ! -e $R/.done ]]; then
  log "unpacking packages"
  rm -rf "$R"; mkdir -p "$R"
  for d in "$KD"/debs/*.deb; do dpkg -x "$d" "$R"; done
  touch "$R/.done"
fi
HDR=$R/usr/src/linux-headers-$KVER
COMMON=$R/usr/src/linux-headers-$abi-common
[[ -d $HDR && -d $COMMON && -e $R/boot/vmlinuz-$KVER ]] || die "unexpected package layout under $R"
# The headers Makefile includes the -common Makefile by absolute path.
echo "include $COMMON/Makefile" >"$HDR/Makefile"

# --------------------------------------------------------------------------
# 4. Out-of-tree test drivers
# --------------------------------------------------------------------------
MODDIR=$R/lib/modules/$KVER
B=$KD/build
stock_m2m=$(find "$MODDIR/kernel" -name 'v4l2-mem2mem.ko*' -print -quit)
if [[ ! -e $B/.done ]]; then
  log "building vkms vicodec vim2m v4l2-mem2mem out of tree"
  rm -rf "$KD/src" "$B"; mkdir -p "$KD/src" "$B"
  sp=linux-source-$KSERIES/drivers
  tar -C "$KD/src" -xJf "$R/usr/src/linux-source-$KSERIES.tar.xz" --wildcards \
    "$sp/gpu/drm/vkms/*" "$sp/media/test-drivers/vicodec/*" \
    "$sp/media/test-drivers/vim2m.c" "$sp/media/v4l2-core/v4l2-mem2mem.c"
  S=$KD/src/$sp
  cp -r "$S/gpu/drm/vkms" "$B/vkms"
  cp -r "$S/media/test-drivers/vicodec" "$B/vicodec"
  cp "$S/media/test-drivers/vim2m.c" "$B/"
  {
    echo "obj-m += vim2m.o vicodec/ vkms/"
    if [[ -n $stock_m2m ]]; then
      log "stock kernel ships $(basename "$stock_m2m"); using it"
    else
      cp "$S/media/v4l2-core/v4l2-mem2mem.c" "$B/"
      echo "obj-m += v4l2-mem2mem.o"
    fi
  } >"$B/Kbuild"
  make -C "$HDR" M="$B" -j"$(nproc)" \
    CONFIG_DRM_VKMS=m CONFIG_VIDEO_VICODEC=m CONFIG_DEBUG_INFO_BTF_MODULES= \
    modules >"$B/build.log" 2>&1 || { tail -n 40 "$B/build.log" >&2; die "module build failed (log: $B/build.log)"; }
  touch "$B/.done"
fi

if [[ ! -e $MODDIR/extra/.done || $B/.done -nt $MODDIR/extra/.done ]]; then
  rm -rf "$MODDIR/extra"; mkdir -p "$MODDIR/extra"
  find "$B" -name '*.ko' -exec cp {} "$MODDIR/extra/" \;
  depmod -b "$R" "$KVER" || die "depmod failed"
  touch "$MODDIR/extra/.done"
fi

# --------------------------------------------------------------------------
# 5. initramfs
# --------------------------------------------------------------------------
# Load order: union of modprobe --show-depends, first occurrence wins.
order() {
  local m
  for m in "$@"; do
    modprobe -d "$R" -S "$KVER" --show-depends "$m" ||
      die "module $m not found for $KVER"
  done | awk '$1=="insmod" { if (!seen[$2]++) print $2 }'
}
base_list=$(order $BASE_MODULES)
media_list=$(order $MEDIA_MODULES | grep -vxF -f <(printf '%s\n' "$base_list") || true)

stamp_in=$( { echo "$KVER $base_list $media_list"; cat "$here/init.sh"; sha256sum /bin/busybox "$MODDIR"/extra/*.ko; } | sha256sum | cut -c1-16)
IMG=$KD/initramfs-$stamp_in.cpio.gz
if [[ ! -e $IMG ]]; then
  log "building initramfs"
  ST=$KD/initramfs.stage
  rm -rf "$ST"; mkdir -p "$ST"/{bin,dev,proc,sys,tmp,results,hostroot,etc/zcv-vm,lib/modules/"$KVER"}
  cp /bin/busybox "$ST/bin/busybox"
  ln -s busybox "$ST/bin/sh"
  cp "$here/init.sh" "$ST/init"; chmod 755 "$ST/init"
  echo "$KVER" >"$ST/etc/zcv-vm/kver"
  put() { # module path list -> decompressed copies + "name relpath" list
    local p rel name
    while read -r p; do
      [[ -n $p ]] || continue
      rel=${p#"$MODDIR"/}; rel=${rel%.xz}
      name=$(basename "$rel" .ko)
      mkdir -p "$ST/lib/modules/$KVER/$(dirname "$rel")"
      case $p in
        *.xz) xz -dc "$p" >"$ST/lib/modules/$KVER/$rel" ;;
        *) cp "$p" "$ST/lib/modules/$KVER/$rel" ;;
      esac
      echo "$name $rel"
    done
  }
  put <<<"$base_list" >"$ST/etc/zcv-vm/base.list"
  put <<<"$media_list" >"$ST/etc/zcv-vm/media.list"
  cp "$MODDIR"/modules.{order,builtin,builtin.modinfo} "$ST/lib/modules/$KVER/"
  depmod -b "$ST" "$KVER"
  (cd "$ST" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$IMG.tmp"
  mv "$IMG.tmp" "$IMG"
  find "$KD" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "$(basename "$IMG")" -delete
fi
cp "$R/boot/vmlinuz-$KVER" "$KD/vmlinuz"
ln -sfn "$(basename "$IMG")" "$KD/initramfs.cpio.gz"
# run.sh compares this with its init.sh and repacks a stale initramfs.
sha256sum <"$here/init.sh" | cut -c1-64 >"$KD/initramfs.init-sha256"

mkdir -p "$CACHE/gst"
echo "$abi $ver" >"$CACHE/current.version.new" && mv "$CACHE/current.version.new" "$CACHE/current.version"
echo "$abi" >"$CACHE/current.new" && mv "$CACHE/current.new" "$CACHE/current"

# Drop kernels the archive has superseded (keep the one just prepared).
for d in "$CACHE"/kernels/*; do
  [[ -d $d && $d != "$KD" ]] || continue
  log "removing superseded kernel cache $d"
  rm -rf "$d"
done

t_end=$(date +%s.%N)
log "ready: $KD ($(awk -v a="$t_start" -v b="$t_end" 'BEGIN{printf "%.1f", b-a}') s)"
log "modules: $(awk '{printf "%s ", $1}' "$KD/initramfs.stage/etc/zcv-vm/base.list" "$KD/initramfs.stage/etc/zcv-vm/media.list" 2>/dev/null)"
