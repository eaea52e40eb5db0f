#!/usr/bin/env bash
# tests/vm/run.sh SCENARIO [ARGS...] - run a scenario in the QEMU test guest.
#
# SCENARIO is a name (tests/vm/scenarios/NAME.sh) or a path to a script. It
# runs as root under bash in a chroot of the host's root file system (shared
# read-only over 9p), so it can use the host's binaries, python3 and
# GStreamer, and the project's build directory at the same path as on the
# host. The guest has its own tmpfs on /tmp, /run and /dev/shm (and devtmpfs
# on /dev): a source tree, build dir, scenario dir, results dir or cache dir
# under those (e.g. a clone in mktemp -d) is exported as an extra 9p share
# and mounted at the same path (source/build/scenario read-only).
# Exit status: 0 pass, 1 fail, 77 skip (also when the scenario exits 77).
#
# Environment:
#   ZCV_BUILD_DIR        project build dir (default <repo>/build), exported
#   ZCV_VM_RESULTS_DIR   results dir, writable in the guest, cleaned first
#                        (default $ZCV_BUILD_DIR/vm-results/SCENARIO, or
#                        $ZCV_VM_CACHE/results/SCENARIO without a build dir)
#   ZCV_VM_TIMEOUT       seconds for the whole VM run (default 300)
#   ZCV_VM_BOOT_TIMEOUT  seconds until the scenario must have started (90)
#   ZCV_VM_MODPARAMS_<module>  insmod parameters, e.g.
#                        ZCV_VM_MODPARAMS_vivid="n_devs=1 node_types=0x101"
#                        (overrides "# zcv-vm-modparams: vivid ..." lines in
#                        the scenario, which override the defaults below)
#   ZCV_VM_PASS_ENV      extra host variable names to pass in (ZCV_* always are)
#   ZCV_VM_MEM / ZCV_VM_SMP  guest memory / CPUs (2G / 2)
#   ZCV_VM_QEMU_ARGS     extra QEMU arguments (word-split), e.g. "-vga std"
#   ZCV_VM_VERBOSE=1     stream the serial console to stderr while running
#                        (otherwise the scenario's output is shown at the end)
#   ZCV_VM_QUIET=1       do not show the scenario's output
#   ZCV_VM_CACHE         cache dir of tests/vm/setup.sh
#   CI=true              missing setup is an error: setup.sh is run instead
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${ZCV_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zcv-vm}
is_ci() { [[ ${CI:-} == true || ${CI:-} == 1 ]]; }

say() { printf 'zcv-vm: %s\n' "$*" >&2; }
die() { printf 'zcv-vm: ERROR: %s\n' "$*" >&2; exit 1; }
skip() {
  if is_ci; then die "$* (CI=true: not skipping)"; fi
  printf 'zcv-vm: SKIP: %s\n' "$*" >&2; exit 77
}

[[ $# -ge 1 ]] || { echo "usage: $0 SCENARIO [ARGS...]" >&2; exit 2; }
scen=$1; shift
if [[ -f $scen ]]; then
  scen_path=$(cd "$(dirname "$scen")" && pwd)/$(basename "$scen")
else
  scen_path=$here/scenarios/$scen.sh
  [[ -f $scen_path ]] || die "no scenario '$scen' ($scen_path); have: $(cd "$here/scenarios" && ls ./*.sh 2>/dev/null | sed 's|^\./||; s|\.sh$||' | tr '\n' ' ')"
fi
name=$(basename "$scen_path" .sh)

command -v qemu-system-x86_64 >/dev/null 2>&1 ||
  skip "qemu-system-x86_64 not installed (run tests/vm/setup.sh as root, or apt-get install qemu-system-x86)"

have_setup() {
  [[ -s $CACHE/current ]] || return 1
  KD=$CACHE/kernels/$(cat "$CACHE/current")
  [[ -e $KD/vmlinuz && -e $KD/initramfs.cpio.gz ]]
}
if ! have_setup; then
  if is_ci; then
    say "CI=true and no VM cache in $CACHE: running tests/vm/setup.sh"
    "$here/setup.sh" || die "tests/vm/setup.sh failed"
    have_setup || die "setup.sh did not produce a usable cache in $CACHE"
  else
    skip "VM not set up (no kernel/initramfs in $CACHE): run tests/vm/setup.sh first"
  fi
fi
# The guest's /init is this directory's init.sh as packed by setup.sh: repack
# (offline, a few seconds) when init.sh has changed since.
if [[ $(cat "$KD/initramfs.init-sha256" 2>/dev/null) != "$(sha256sum <"$here/init.sh" | cut -c1-64)" ]]; then
  say "initramfs was packed from another tests/vm/init.sh: repacking it (ZCV_VM_OFFLINE=1 setup.sh)"
  ZCV_VM_OFFLINE=1 "$here/setup.sh" >&2 || die "tests/vm/setup.sh failed"
  have_setup || die "setup.sh did not produce a usable cache in $CACHE"
fi
KVER=$(cat "$CACHE/current")-amd64

# The guest mounts its own proc/sysfs/devtmpfs/tmpfs over /proc, /sys, /dev,
# /dev/shm, /tmp and /run of the shared host root, hiding whatever the host has
# there. Directories the scenario needs from those trees (a checkout or build
# made under mktemp -d, the results dir, ...) are exported as extra 9p shares
# and mounted by the guest's /init at the same absolute paths, on top of its
# tmpfs.
shadowed() { case $1 in /tmp|/tmp/*|/run|/run/*|/dev|/dev/*) return 0 ;; esac; return 1; }
unreachable() { case $1 in /proc|/proc/*|/sys|/sys/*) return 0 ;; esac; return 1; }
# physical path of an existing directory when it is (or resolves into) a
# shadowed tree, else its logical path: shares are mounted at physical paths
shadowed_dir() { shadowed "$(cd "$1" && pwd)" || shadowed "$(cd "$1" && pwd -P)"; }
guest_path() {
  if shadowed_dir "$1"; then (cd "$1" && pwd -P); else (cd "$1" && pwd); fi
}
check_path() { # PATH WHAT
  [[ $1 =~ ^/[A-Za-z0-9._/+-]+$ ]] ||
    die "$2 '$1' must match [A-Za-z0-9._/+-] (it is passed to the guest's busybox /init)"
  if unreachable "$1"; then
    die "$2 '$1' is under /proc or /sys, which the guest mounts over"
  fi
}

BUILD=${ZCV_BUILD_DIR:-$repo/build}
if [[ -n ${ZCV_VM_RESULTS_DIR:-} ]]; then RES=$ZCV_VM_RESULTS_DIR
elif [[ -d $BUILD ]]; then RES=$BUILD/vm-results/$name
else RES=$CACHE/results/$name
fi
mkdir -p "$RES"
RES=$(guest_path "$RES")
# The results dir is wiped before each run: refuse anything that does not
# look like one of ours.
if [[ -n $(ls -A "$RES") && ! -e $RES/.zcv-vm && ! -e $RES/serial.log ]]; then
  die "results dir $RES is not empty and was not made by run.sh; refusing to wipe it"
fi
GSTDIR=$CACHE/gst
mkdir -p "$GSTDIR"
GSTDIR=$(guest_path "$GSTDIR")
check_path "$RES" "results dir"
check_path "$GSTDIR" "GStreamer registry dir (ZCV_VM_CACHE)"

# Read-only shares for the source tree, the build dir and the scenario's
# directory when they live in a shadowed tree; a dir inside another share
# needs none of its own.
SRC=$repo
ro_dirs=()
if shadowed_dir "$SRC"; then SRC=$(guest_path "$SRC"); ro_dirs+=("$SRC"); fi
if [[ -d $BUILD ]] && shadowed_dir "$BUILD"; then BUILD=$(guest_path "$BUILD"); ro_dirs+=("$BUILD"); fi
sdir=$(dirname "$scen_path")
if shadowed_dir "$sdir"; then
  sdir=$(guest_path "$sdir"); ro_dirs+=("$sdir")
  scen_path=$sdir/$(basename "$scen_path")
fi
# mounts: "mode:tag:path" (mode ro|rw = 9p share, bind = bind of a guest dir),
# parents before children
mounts=("bind:/results:$RES" "rw:zcvgst:$GSTDIR")
virtfs=()
kept=()
while IFS= read -r d; do
  [[ -n $d ]] || continue
  inside=0
  for k in "${kept[@]}"; do [[ $d == "$k" || $d == "$k"/* ]] && inside=1; done
  ((inside)) && continue
  check_path "$d" "shadowed directory"
  kept+=("$d")
  tag=zcvro${#kept[@]}
  mounts+=("ro:$tag:$d")
  virtfs+=(-virtfs "local,path=$d,mount_tag=$tag,security_model=none,readonly=on,multidevs=remap")
done < <(((${#ro_dirs[@]})) && printf '%s\n' "${ro_dirs[@]}" | LC_ALL=C sort -u)
mapfile -t mounts < <(printf '%s\n' "${mounts[@]}" | LC_ALL=C sort -t: -k3,3)
for k in "${kept[@]}"; do say "sharing $k with the guest (read-only; the guest has its own tmpfs there)"; done

# ---------------------------------------------------------------- modparams
declare -A modp=(
  [vivid]="n_devs=1 node_types=0x1"
)
while read -r m p; do
  [[ -n $m ]] && modp[$m]=$p
done < <(sed -n 's/^#[[:space:]]*zcv-vm-modparams:[[:space:]]*//p' "$scen_path")
while IFS='=' read -r var _; do
  m=${var#ZCV_VM_MODPARAMS_}
  modp[$m]=${!var}
done < <(env | grep -o '^ZCV_VM_MODPARAMS_[A-Za-z0-9_]*=' || true)

# ---------------------------------------------------------------- job files
J=$RES/.zcv-vm
write_job() {
  find "$RES" -mindepth 1 -delete 2>/dev/null || rm -rf "${RES:?}"/* "${RES:?}"/.[!.]*
  mkdir -p "$J"
  for m in "${!modp[@]}"; do printf '%s %s\n' "$m" "${modp[$m]}"; done >"$J/modparams"
  {
    printf "ZCV_RESULTS_PATH='%s'\n" "$RES"
    # older /init: bind /results + writable shares; newer: ZCV_MOUNTS in order
    printf "ZCV_SHARES='zcvgst=%s'\n" "$GSTDIR"
    printf "ZCV_MOUNTS='%s'\n" "${mounts[*]}"
  } >"$J/job.conf"
  local cwd=$PWD v
  {
    echo "# generated by tests/vm/run.sh; runs in the guest chroot"
    echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    echo "export HOME=/tmp/home LANG=C.UTF-8 TERM=dumb"
    echo 'mkdir -p "$HOME"'
    for v in $(compgen -e | grep '^ZCV_' || true) ${ZCV_VM_PASS_ENV:-}; do
      [[ -n ${!v+x} ]] && printf 'export %s=%q\n' "$v" "${!v}"
    done
    printf 'export ZCV_VM=1 ZCV_VM_KVER=%q ZCV_VM_MODROOT=/run/zcv-vm\n' "$KVER"
    printf 'export ZCV_SOURCE_DIR=%q ZCV_BUILD_DIR=%q ZCV_RESULTS_DIR=%q\n' "$SRC" "$BUILD" "$RES"
    printf 'export GST_REGISTRY=%q\n' "$GSTDIR/registry.x86_64.bin"
    printf 'cd %q 2>/dev/null || cd %q\n' "$cwd" "$SRC"
    printf 'exec /bin/bash %q' "$scen_path"
    (($#)) && printf ' %q' "$@"
    echo
  } >"$J/job.sh"
}

# ---------------------------------------------------------------- QEMU
TIMEOUT=${ZCV_VM_TIMEOUT:-300}
BOOT_TIMEOUT=${ZCV_VM_BOOT_TIMEOUT:-90}
qpid=""
cleanup() { [[ -n $qpid ]] && kill "$qpid" 2>/dev/null; true; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

now() { date +%s.%N; }
# serial log without terminal escapes / CRs, for printing
clean() { sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b[c=>]//g; s/\r$//'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# run_vm LOG -> sets: outcome (exit|infra|scenario-crash|timeout), status, t_boot, t_scen
run_vm() {
  local log=$1 t0 t_start="" tailpid=""
  : >"$log"
  # shellcheck disable=SC2086
  qemu-system-x86_64 -machine q35 -accel tcg -cpu max \
    -m "${ZCV_VM_MEM:-2G}" -smp "${ZCV_VM_SMP:-2}" \
    -nographic -monitor none -serial "file:$log" -no-reboot -vga none -nic none \
    -kernel "$KD/vmlinuz" -initrd "$KD/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=1 loglevel=5 edd=off ${ZCV_VM_APPEND:-}" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$RES,mount_tag=zcvresults,security_model=none,multidevs=remap" \
    -virtfs "local,path=$GSTDIR,mount_tag=zcvgst,security_model=none,multidevs=remap" \
    "${virtfs[@]}" \
    ${ZCV_VM_QEMU_ARGS:-} </dev/null >"$log.qemu" 2>&1 &
  qpid=$!
  t0=$(now)
  if [[ ${ZCV_VM_VERBOSE:-0} == 1 ]]; then tail -n +1 -f "$log" >&2 & tailpid=$!; fi
  outcome="" status="" t_boot="" t_scen=""
  while :; do
    if ! kill -0 "$qpid" 2>/dev/null; then break; fi
    if [[ -z $t_start ]] && grep -q '^ZCV-VM-SCENARIO-START' "$log"; then
      t_start=$(now); t_boot=$(elapsed "$t0" "$t_start")
    fi
    local t; t=$(now)
    if [[ -z $t_start ]] && awk -v a="$t0" -v b="$t" -v l="$BOOT_TIMEOUT" 'BEGIN { exit !(b - a > l) }'; then
      outcome=infra; say "guest did not start the scenario within ${BOOT_TIMEOUT}s"; break
    fi
    if awk -v a="$t0" -v b="$t" -v l="$TIMEOUT" 'BEGIN { exit !(b - a > l) }'; then
      outcome=timeout; say "TIMEOUT: VM still running after ${TIMEOUT}s (ZCV_VM_TIMEOUT)"; break
    fi
    sleep 0.2
  done
  if kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null || true; fi
  wait "$qpid" 2>/dev/null || true
  qpid=""
  [[ -n $tailpid ]] && { kill "$tailpid" 2>/dev/null || true; wait "$tailpid" 2>/dev/null || true; }
  if [[ -z $t_start ]] && grep -q '^ZCV-VM-SCENARIO-START' "$log"; then t_start=$(now); t_boot=$(elapsed "$t0" "$t_start"); fi
  [[ -n $t_start ]] && t_scen=$(elapsed "$t_start" "$(now)")
  if [[ -z $outcome ]]; then
    if [[ -s $J/exit-status ]]; then
      outcome="exit"
      status=$(tr -dc 0-9 <"$J/exit-status")
    elif grep -q '^ZCV-VM-EXIT [0-9]' "$log"; then
      outcome="exit"
      status=$(sed -n 's/^ZCV-VM-EXIT \([0-9]*\).*/\1/p' "$log" | tail -n1)
    elif [[ -n $t_start ]]; then
      outcome=scenario-crash
    else
      outcome=infra
    fi
  fi
  if [[ $outcome == infra ]] && grep -q 'could not\|Could not\|qemu-system' "$log.qemu" 2>/dev/null; then
    say "QEMU said:"; sed 's/^/  | /' "$log.qemu" >&2
  fi
  true
}

say "scenario $name (kernel $KVER), results in $RES"
attempt=1
t_all=$(now)
while :; do
  write_job "$@"
  LOG=$RES/serial.log
  run_vm "$LOG"
  if [[ $outcome == infra && $attempt == 1 ]]; then
    mkdir -p "$RES.infra-fail"
    cp "$LOG" "$RES.infra-fail/serial.attempt1.log" 2>/dev/null || true
    say "INFRASTRUCTURE FAILURE (guest died before the scenario started, no exit marker)."
    say "serial log tail:"; tail -n 25 "$LOG" | clean | sed 's/^/  | /' >&2
    say "INFRASTRUCTURE RETRY: booting the VM once more (attempt 1 log will be kept as $RES/serial.attempt1.log)"
    attempt=2
    continue
  fi
  break
done
[[ -d $RES.infra-fail ]] && { mv "$RES.infra-fail/serial.attempt1.log" "$RES/serial.attempt1.log"; rmdir "$RES.infra-fail"; }
rm -f "$LOG.qemu"

# Scenario output (serial console from the start marker on), unless it was
# already streamed.
if [[ ${ZCV_VM_VERBOSE:-0} != 1 && ${ZCV_VM_QUIET:-0} != 1 ]] && grep -q '^ZCV-VM-SCENARIO-START' "$LOG"; then
  n=$(sed -n '/^ZCV-VM-SCENARIO-START/,$p' "$LOG" | wc -l)
  ((n > 201)) && say "scenario output ($((n - 201)) earlier lines omitted, see $LOG):"
  sed -n '/^ZCV-VM-SCENARIO-START/,$p' "$LOG" | sed 1d | tail -n 200 | clean | sed 's/^/  | /' >&2
fi

timing="boot-to-scenario ${t_boot:-?}s, scenario ${t_scen:-?}s, total $(elapsed "$t_all" "$(now)")s"
case $outcome in
  exit)
    if [[ $status == 0 ]]; then say "PASS $name ($timing)"; exit 0; fi
    if [[ $status == 77 ]]; then say "SKIP $name: scenario exited 77 ($timing)"; exit 77; fi
    say "FAIL $name: scenario exited $status ($timing)" ;;
  timeout) say "FAIL $name: timed out after ${TIMEOUT}s ($timing)" ;;
  scenario-crash) say "FAIL $name: guest died during the scenario, no exit marker (kernel crash?) ($timing)" ;;
  infra) say "FAIL $name: INFRASTRUCTURE FAILURE twice: guest never reached the scenario" ;;
esac
if [[ $outcome == infra || ${ZCV_VM_VERBOSE:-0} == 1 || ${ZCV_VM_QUIET:-0} == 1 ]]; then
  say "serial log: $LOG; last lines:"
  tail -n 40 "$LOG" | clean | sed 's/^/  | /' >&2
else
  say "serial log: $LOG$([[ -e $RES/dmesg.txt ]] && echo ", guest dmesg: $RES/dmesg.txt")"
fi
exit 1
