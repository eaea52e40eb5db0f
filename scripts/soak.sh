#!/usr/bin/env bash
# Soak: zcv-capture's test pattern at 60 fps for DURATION_SECONDS (default
# 600, at most 86400) with four consumers:
#   steady-verify  test-consumer checking every frame against the pattern
#   steady-record  zcv-record writing Y4M to /dev/null
#   print-sink     the sample sink (samples/print-sink.c)
#   churn          a test-consumer killed with SIGKILL and restarted every
#                  SOAK_RESTART_PERIOD seconds (default 3)
# Prints frames delivered per consumer, drops by cause (skipped at the hold
# limit, evicted, lost at the source), the producer's fd count and RSS
# (VmRSS) at start and end. Exits non-zero when:
#   - the producer's fd count grew,
#   - its RSS grew by more than the bound. VmRSS counts the pages of the
#     shared buffers the producer touched (RssShmem), which grows as
#     buffers are used for the first time, so the bound is on the rest
#     (RssAnon + RssFile): SOAK_RSS_SLACK_KB (default 2048; 16 MB more for
#     an ASan build) plus 16 bytes per frame of the run (the producer keeps
#     latency samples, 8 bytes each, in an array that doubles; capped like
#     the samples at 1,000,000 frames); and RssShmem at the end may not
#     exceed the pool (buffers x frame size) plus 1 MB,
#   - a consumer that was never restarted lost a frame the producer did not
#     count as skipped (or lost at the source), saw a frame that differs from
#     the pattern, was evicted, or exited non-zero,
#   - the producer failed, or evicted anyone.
# Usage: scripts/soak.sh [DURATION_SECONDS]; the build directory is
# $ZCV_BUILD_DIR (default: build, relative to the source tree). Other knobs:
# SOAK_SIZE (default 1280x720), SOAK_BUFFERS (default 12).
set -euo pipefail

dur=${1:-600}
if ! [[ $dur =~ ^[0-9]+$ ]] || ((dur < 20 || dur > 86400)); then
	echo "soak.sh: DURATION_SECONDS must be a whole number from 20 to 86400, not '$dur'" >&2
	exit 2
fi
top=$(cd "$(dirname "$0")/.." && pwd)
build=${ZCV_BUILD_DIR:-build}
[[ $build == /* ]] || build=$top/$build
period=${SOAK_RESTART_PERIOD:-3}
size=${SOAK_SIZE:-1280x720}
buffers=${SOAK_BUFFERS:-12}
rss_slack_kb=${SOAK_RSS_SLACK_KB:-2048}
fps=60

cap_bin=$build/tools/zcv-capture
rec_bin=$build/tools/zcv-record
tc_bin=$build/tests/integration/test-consumer
print_bin=$build/samples/zcv-sample-print
for b in "$cap_bin" "$rec_bin" "$tc_bin" "$print_bin"; do
	if [[ ! -x $b ]]; then
		echo "soak.sh: $b is not built (ZCV_BUILD_DIR=$build)" >&2
		exit 2
	fi
done

# AddressSanitizer keeps freed memory in a quarantine that shows as RSS:
# keep it small and allow for it
if ldd "$cap_bin" 2>/dev/null | grep -q libasan; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
	rss_slack_kb=$((rss_slack_kb + 16384))
	echo "soak: ASan build: quarantine 4 MB, RSS slack raised to $rss_slack_kb kB"
fi

tmp=$(mktemp -d /tmp/zcv-soak-XXXXXX)
sock=$tmp/zcv.sock
pids=()
ok=0
cleanup() {
	for p in "${pids[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if ((ok)); then
		rm -rf "$tmp"
	else
		echo "soak.sh: kept $tmp for inspection" >&2
	fi
}
trap cleanup EXIT

count() { # count LINES-MATCHING-REGEX FILE
	grep -c -- "$1" "$2" 2>/dev/null || true
}

# Waits until a condition another process brings about holds: they report
# through files, so this polls (bounded).
wait_until() { # wait_until TIMEOUT_S WHAT COMMAND...
	local deadline=$((SECONDS + $1)) what=$2
	shift 2
	until "$@"; do
		if ((SECONDS > deadline)); then
			echo "soak.sh: timed out waiting for $what" >&2
			exit 1
		fi
		sleep 0.05
	done
}

more_than() { # more_than N REGEX FILE
	(($(count "$2" "$3") > $1))
}

fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# "VmRSS,RssAnon,RssFile,RssShmem" in kB
rss_of() {
	awk '/^(VmRSS|RssAnon|RssFile|RssShmem):/ { v[$1] = $2 }
	     END { print v["VmRSS:"] "," v["RssAnon:"] "," v["RssFile:"] "," v["RssShmem:"] }' \
		"/proc/$1/status"
}

echo "soak: $dur s, $size at $fps fps, $buffers buffers, churn every $period s, build $build"
"$cap_bin" --source pattern --size "$size" --fps "$fps" --buffers "$buffers" --max-hold 2 \
	--wait-consumers 3 --socket "$sock" --stats-json "$tmp/cap.json" 2>"$tmp/cap.err" &
cap=$!
pids+=("$cap")
wait_until 10 "the producer's socket" test -S "$sock"

"$tc_bin" --socket "$sock" --name steady-verify --verify --stats-json "$tmp/verify.json" \
	2>"$tmp/verify.err" &
verify=$!
"$rec_bin" --no-reconnect --socket "$sock" --name steady-record -o /dev/null --stats-json "$tmp/record.json" \
	2>"$tmp/record.err" &
record=$!
"$print_bin" "$sock" >"$tmp/print.out" 2>"$tmp/print.err" &
print=$!
pids+=("$verify" "$record" "$print")
wait_until 10 "the steady consumers to join" more_than 2 "joined" "$tmp/cap.err"

end=$((SECONDS + dur))
cycles=0
fds_start='' rss_start=''
while ((SECONDS + period + 1 < end)); do
	joined=$(count "'churn' .*joined" "$tmp/cap.err")
	left=$(count "'churn' left" "$tmp/cap.err")
	"$tc_bin" --socket "$sock" --name churn 2>/dev/null &
	churn=$!
	pids+=("$churn")
	wait_until 10 "the churning consumer to join" more_than "$joined" "'churn' .*joined" "$tmp/cap.err"
	sleep "$period" # the restart interval, not a synchronisation
	kill -9 "$churn"
	wait "$churn" 2>/dev/null || true
	wait_until 10 "the producer to see the churning consumer go" \
		more_than "$left" "'churn' left" "$tmp/cap.err"
	cycles=$((cycles + 1))
	if ((cycles == 1)); then
		# measured once everything ran once, with the same three consumers
		# connected as at the end: first-use allocations are not growth
		fds_start=$(fds_of "$cap")
		rss_start=$(rss_of "$cap")
	fi
	kill -0 "$cap" 2>/dev/null || break
done
# the rest of the run with the three steady consumers
if ((end > SECONDS)) && kill -0 "$cap" 2>/dev/null; then
	sleep $((end - SECONDS))
fi
if ! kill -0 "$cap" 2>/dev/null; then
	echo "soak.sh: the producer died during the run" >&2
	cat "$tmp/cap.err" >&2
	exit 1
fi
fds_end=$(fds_of "$cap")
rss_end=$(rss_of "$cap")
: "${fds_start:=$fds_end}" "${rss_start:=$rss_end}"

kill -TERM "$cap"
rc_cap=0 rc_verify=0 rc_record=0 rc_print=0
wait "$cap" || rc_cap=$?
wait "$verify" || rc_verify=$?
wait "$record" || rc_record=$?
wait "$print" || rc_print=$?

python3 - "$tmp" "$dur" "$cycles" "$fds_start" "$fds_end" "$rss_start" "$rss_end" "$rss_slack_kb" \
	"$rc_cap" "$rc_verify" "$rc_record" "$rc_print" "$size" "$buffers" <<'EOF'
import json, re, sys

tmp = sys.argv[1]
dur, cycles, fds0, fds1 = map(int, sys.argv[2:6])
rss0, rss1 = (dict(zip(("VmRSS", "RssAnon", "RssFile", "RssShmem"), map(int, a.split(","))))
              for a in sys.argv[6:8])
slack = int(sys.argv[8])
rc = dict(zip(("zcv-capture", "steady-verify", "steady-record", "print-sink"), map(int, sys.argv[9:13])))
w, h = map(int, sys.argv[13].split("x"))
pool_kb = int(sys.argv[14]) * w * h * 3 // 2 // 1024  # NV12
fail = []
cap = json.load(open(f"{tmp}/cap.json"))
err = open(f"{tmp}/cap.err").read()
by_name = {}
for c in cap["consumers"]:
    by_name[c["name"]] = c  # the last entry of a name: the steady ones appear once

# every departure is on the producer's stderr (its stats keep the last 64)
left = re.findall(r"consumer \d+ '([^']*)' left: (.*) \(sent (\d+), skipped (\d+)\)", err)
evicted = [l for l in left if l[1].startswith("held frame")]
churn = [l for l in left if l[0] == "churn"]

seqs = [int(m) for m in re.findall(r"^frame seq=(\d+)", open(f"{tmp}/print.out").read(), re.M)]
seen = {
    "steady-verify": json.load(open(f"{tmp}/verify.json")),
    "steady-record": json.load(open(f"{tmp}/record.json")),
    "print-sink": {"frames": len(seqs),
                   "dropped": sum(b - a - 1 for a, b in zip(seqs, seqs[1:])) + (seqs[0] if seqs else 0)},
}
published, source_dropped = cap["frames"], cap["source_dropped"]
print(f"producer: {published} frames published in {published / cap['fps'] if cap['fps'] else 0:.1f} s ({cap['fps']:.2f} fps), path {cap['path']}, "
      f"publish latency p50 {cap['latency_us']['p50']} us p99 {cap['latency_us']['p99']} us")
print(f"{'consumer':<15} {'delivered':>10} {'sent':>10} {'skipped':>8} {'gaps seen':>10}  path")
for name, s in seen.items():
    p = by_name.get(name)
    if not p:
        fail.append(f"the producer's stats do not list {name}")
        continue
    print(f"{name:<15} {s['frames']:>10} {p['frames_sent']:>10} {p['skipped']:>8} {s['dropped']:>10}  {p['path']}")
    if s["frames"] != p["frames_sent"]:
        fail.append(f"{name} received {s['frames']} frames, the producer sent it {p['frames_sent']}")
    if s["dropped"] > p["skipped"] + source_dropped:
        fail.append(f"{name} lost {s['dropped']} frames, only {p['skipped']} skipped + {source_dropped} at the source")
    if p["frames_sent"] + p["skipped"] != published:
        fail.append(f"{name}: sent {p['frames_sent']} + skipped {p['skipped']} != {published} published")
    if p["end_error"] not in (0,):
        fail.append(f"{name} ended with {p['end_error']} ({p['end_reason']})")
churn_sent = sum(int(l[2]) for l in churn)
churn_skipped = sum(int(l[3]) for l in churn)
print(f"{'churn':<15} {churn_sent:>10} {churn_sent:>10} {churn_skipped:>8} {'-':>10}  "
      f"({len(churn)} runs, killed with SIGKILL every few seconds)")
steady_skipped = sum(by_name[n]["skipped"] for n in seen if n in by_name)
print(f"drops by cause: skipped at the hold limit {steady_skipped + churn_skipped}"
      f" (steady consumers {steady_skipped}, churn {churn_skipped}),"
      f" evicted {len(evicted)}, lost at the source {source_dropped}"
      f" (driver starved {cap['source_starved']})")
print(f"producer fds: {fds0} at start, {fds1} at end")
for k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
    print(f"producer {k:<8}: {rss0[k]:>7} kB at start, {rss1[k]:>7} kB at end ({rss1[k] - rss0[k]:+d} kB)")
private0, private1 = rss0["RssAnon"] + rss0["RssFile"], rss1["RssAnon"] + rss1["RssFile"]
bound = slack + min(published, 1000000) * 16 // 1024
print(f"producer fds in its own stats: {cap['fds_at_start']} at start, {cap['fds_at_end']} at exit")
if fds1 > fds0:
    fail.append(f"the producer's fd count grew from {fds0} to {fds1}")
if cap["fds_at_end"] != cap["fds_at_start"]:
    fail.append(f"the producer leaked fds: {cap['fds_at_start']} at start, {cap['fds_at_end']} at exit")
if private1 - private0 > bound:
    fail.append(f"the producer's RSS other than shared buffers grew by {private1 - private0} kB, "
                f"more than the {bound} kB allowed")
if rss1["RssShmem"] > pool_kb + 1024:
    fail.append(f"the producer maps {rss1['RssShmem']} kB of shared memory, more than its pool ({pool_kb} kB) + 1 MB")
if evicted:
    fail.append(f"{len(evicted)} consumers were evicted: {evicted[:3]}")
if seen["steady-verify"].get("mismatches", 0):
    fail.append(f"steady-verify saw {seen['steady-verify']['mismatches']} frames that differ from the pattern")
if cycles < 2:
    fail.append(f"the churning consumer ran only {cycles} times")
for name, code in rc.items():
    if code != 0:
        fail.append(f"{name} exited {code}")
print(f"churn cycles: {cycles}; bounds: RssAnon+RssFile growth {bound} kB, RssShmem {pool_kb + 1024} kB")
for f in fail:
    print(f"FAIL: {f}")
print("soak: " + ("FAILED" if fail else "passed"))
sys.exit(1 if fail else 0)
EOF
ok=1
