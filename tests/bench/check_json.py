#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs zcv-bench --quick (with --run BENCH OUT.json) or checks an existing
JSON file: well formed, and carrying the figures docs/PERFORMANCE.md uses.
Not a timed assertion: numbers are only checked to be present and sane."""
import json
import subprocess
import sys


def fail(msg):
    print(f"check_json: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "--run":
        bench, path = args[1], args[2]
        r = subprocess.run([bench, "--quick", "--json", path], timeout=280)
        if r.returncode != 0:
            fail(f"{bench} --quick exited {r.returncode}")
    elif len(args) == 1:
        path = args[0]
    else:
        fail("usage: check_json.py [--run BENCH] FILE.json")

    with open(path) as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as e:
            fail(f"{path} is not valid JSON: {e}")

    for key in ("machine", "config", "runs", "gstreamer", "pipewire", "syscalls", "targets"):
        if key not in doc:
            fail(f"missing '{key}'")
    runs = doc["runs"]
    if not runs:
        fail("no runs")
    modes = set()
    for r in runs:
        if not r["ok"]:
            fail(f"run failed: {r}")
        modes.add(r["mode"])
        u = r["unpaced"]
        if u["frames"] <= 0 or u["fps"] <= 0 or u["producer_cpu_us_per_frame"] <= 0:
            fail(f"empty unpaced figures: {r}")
        ph = r.get("lockstep") or r.get("paced")
        if ph is None or ph["frames"] <= 0 or ph["latency_us"]["p50"] <= 0:
            fail(f"no latency figures: {r}")
        if r["mode"] != "copy" and r["copied_bytes"] != 0:
            fail(f"zero-copy run copied bytes: {r}")
        if r["mode"] == "copy" and r["copied_bytes"] == 0:
            fail(f"copy run copied nothing: {r}")
        if r["mode"] != "copy" and r["group"] == "matrix" and "vs_copy" not in r:
            fail(f"no ratio to the copy tier: {r}")
        if r["dropped"] or r["skipped"]:
            fail(f"frames dropped: {r}")
    if modes != {"zero-copy", "copy", "map-per-frame"}:
        fail(f"modes measured: {sorted(modes)}")
    for g in doc["gstreamer"]:
        if not g["ok"]:
            fail(f"GStreamer run failed: {g}")
    # PipeWire is optional (not built, not installed): then it says why
    pw = doc["pipewire"]
    if pw["skipped"] is None and not pw["runs"]:
        fail("PipeWire neither run nor skipped")
    for p in pw["runs"]:
        w = p["pipewire"]
        if not w["ok"]:
            fail(f"PipeWire run failed: {p}")
        if not w["memfd"] or w["sent"] <= 0 or not 0 < w["delivered"] <= w["sent"] * p["consumers"]:
            fail(f"PipeWire run delivered nothing or not memfd: {p}")
        if w["producer_cpu_us_per_frame"] <= 0 or w["latency_us"]["p50"] <= 0:
            fail(f"empty PipeWire figures: {p}")
        z = p["zcv"]
        # zcv's pool caps its consumers (ZCV_POOL_MAX_BUFFERS): such a run says so
        if not z["ok"] and "consumers need a pool" not in z.get("error", ""):
            fail(f"zcv run next to PipeWire failed: {p}")
    for sc in doc["syscalls"]:
        for side in ("zcv", "pipewire"):
            v = sc[side]
            # strace may fail to attach (reported, not fatal): a count made is sane
            if v is not None and v["ok"] and (v["producer"] <= 0 or v["consumer"] <= 0):
                fail(f"bad syscall count for {side}: {sc}")
            # zcv's counts call by call (zcv-bench since issue 13)
            if v is not None and v["ok"] and "consumer_by_name" in v:
                if v.get("consumer_loop") not in ("wait_dispatch", "poll+dispatch"):
                    fail(f"unknown consumer loop: {sc}")
                names = {**v["consumer_by_name"], **v.get("producer_by_name", {})}
                if any(x < 0 for x in names.values()):
                    fail(f"negative syscall count by name: {sc}")
                if v["consumer_by_name"].get("recvmmsg", 0) <= 0 or \
                        v.get("producer_library_per_consumer", 0) <= 0:
                    fail(f"no socket calls counted: {sc}")
    print(f"check_json: {path}: {len(runs)} runs, {len(doc['gstreamer'])} GStreamer sizes, "
          f"{len(pw['runs'])} PipeWire runs"
          f"{' (skipped: ' + pw['skipped'] + ')' if pw['skipped'] else ''}, "
          f"{len(doc['syscalls'])} syscall counts, {len(doc['targets'])} targets: OK")


if __name__ == "__main__":
    main()
