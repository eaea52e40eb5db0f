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

    for key in ("machine", "config", "runs", "gstreamer", "targets"):
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
        if r["mode"] != "copy" and r["group"] != "paced60" and "vs_copy" not in r:
            fail(f"no ratio to the copy tier: {r}")
        if r["dropped"] or r["skipped"]:
            fail(f"frames dropped: {r}")
    if modes != {"zero-copy", "copy", "map-per-frame"}:
        fail(f"modes measured: {sorted(modes)}")
    for g in doc["gstreamer"]:
        if not g["ok"]:
            fail(f"GStreamer run failed: {g}")
    print(f"check_json: {path}: {len(runs)} runs, {len(doc['gstreamer'])} GStreamer sizes, "
          f"{len(doc['targets'])} targets: OK")


if __name__ == "__main__":
    main()
