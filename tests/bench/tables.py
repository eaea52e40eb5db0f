#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Markdown tables of a zcv-bench JSON file, as used in docs/PERFORMANCE.md.

    tests/bench/tables.py docs/performance.json
    tests/bench/tables.py RUN1.json RUN2.json RUN3.json   # + min/median/max over runs

With several files the tables are those of the first, followed by the
zcv / PipeWire ratios and syscall counts as min / median / max over the
files: every ratio is taken within one run, then summarised.
"""
import json
import statistics
import sys


def f(v, nd=1):
    return f"{v:.{nd}f}"


def main():
    doc = json.load(open(sys.argv[1]))
    runs = [r for r in doc["runs"] if r["ok"]]
    gst = {(g["width"], g["height"]): g for g in doc.get("gstreamer", []) if g["ok"]}

    def get(group, w, h, n, mode, touch, placement=None):
        for r in runs:
            if (r["group"], r["width"], r["height"], r["consumers"], r["mode"], r["touch"]) == \
                    (group, w, h, n, mode, touch) and (placement is None or r["placement"] == placement):
                return r
        return None

    sizes = sorted({(r["width"], r["height"]) for r in runs if r["group"] == "matrix"},
                   key=lambda s: s[0] * s[1])
    cons = sorted({r["consumers"] for r in runs if r["group"] == "matrix"})

    def cpu(r):
        return r["unpaced"]["producer_cpu_us_per_frame"] + r["unpaced"]["consumer_cpu_us_per_frame"]

    print("### Transport CPU per frame, producer + 1 consumer touching nothing (µs)\n")
    print("| size | zcv zero-copy (same CPU) | (cross CPU) | zcv copy tier (same CPU) | map per frame | "
          "GStreamer (a) zero-copy | GStreamer (b) copying | copy ÷ zero-copy | (b) ÷ zero-copy | (a) ÷ zero-copy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    def pair(v):
        """'a (b + c)' of producer + consumer µs, or '-' (a --quick run has no such run)."""
        if v is None:
            return "-"
        p, c = v
        return f"{f(p + c, 2)} ({f(p, 2)} + {f(c, 2)})"

    def ratio(a, b):
        return f"{f(a / b)}×" if a is not None and b else "-"

    for w, h in sizes:
        zs = get("placement", w, h, 1, "zero-copy", "none", "same")
        zx = get("placement", w, h, 1, "zero-copy", "none", "cross")
        cs = get("placement", w, h, 1, "copy", "none", "same")
        mf = get("matrix", w, h, 1, "map-per-frame", "none")
        g = gst.get((w, h))
        gap = (g["zerocopy_a"]["producer_cpu_us_over_render"], g["zerocopy_a"]["consumer_cpu_us"]) if g else None
        gbp = (g["copying_b"]["producer_cpu_us_over_render"], g["copying_b"]["consumer_cpu_us"]) if g else None
        zsp = (zs["unpaced"]["producer_cpu_us_per_frame"], zs["unpaced"]["consumer_cpu_us_per_frame"]) if zs else None
        z = cpu(zs) if zs else None
        ga = sum(gap) if gap else None
        gb = sum(gbp) if gbp else None
        print(f"| {w}x{h} | {pair(zsp)} | "
              f"{f(cpu(zx), 2) if zx else '-'} | {f(cpu(cs)) if cs else '-'} | {f(cpu(mf), 2) if mf else '-'} | "
              f"{pair(gap)} | {pair(gbp)} | "
              f"{ratio(cpu(cs) if cs else None, z)} | {ratio(gb, z)} | {ratio(ga, z)} |")

    print("\n### Hand-off latency, 1 consumer, one frame in flight (µs, p50 / p99 / max)\n")
    print("| size | zero-copy same CPU | zero-copy cross CPU | zero-copy unpinned | copy tier same CPU | copy tier cross CPU |")
    print("|---|---|---|---|---|---|")
    for w, h in sizes:
        cells = []
        for grp, mode, pl in (("placement", "zero-copy", "same"), ("placement", "zero-copy", "cross"),
                              ("matrix", "zero-copy", None), ("placement", "copy", "same"),
                              ("placement", "copy", "cross")):
            r = get(grp, w, h, 1, mode, "none", pl)
            if r:
                lat = r["lockstep"]["latency_us"]
                cells.append(f"{f(lat['p50'])} / {f(lat['p99'])} / {f(lat['max'], 0)}")
            else:
                cells.append("-")
        print(f"| {w}x{h} | " + " | ".join(cells) + " |")

    for touch in ("none", "read"):
        print(f"\n### Unpinned, touch {touch}: frames/s and CPU µs per frame "
              "(producer / mean consumer), ratio to the copy tier\n")
        print("| size | n | zero-copy fps | zero-copy prod / cons | copy fps | copy prod / cons | "
              "map-per-frame fps | map-per-frame prod / cons | zero-copy CPU ÷ copy | zero-copy fps ÷ copy |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for w, h in sizes:
            for n in cons:
                z = get("matrix", w, h, n, "zero-copy", touch)
                c = get("matrix", w, h, n, "copy", touch)
                m = get("matrix", w, h, n, "map-per-frame", touch)
                if not (z and c and m):
                    continue
                u = lambda r: r["unpaced"]
                print(f"| {w}x{h} | {n} | {f(u(z)['fps'], 0)} | {f(u(z)['producer_cpu_us_per_frame'])} / {f(u(z)['consumer_cpu_us_per_frame'])} | "
                      f"{f(u(c)['fps'], 0)} | {f(u(c)['producer_cpu_us_per_frame'])} / {f(u(c)['consumer_cpu_us_per_frame'])} | "
                      f"{f(u(m)['fps'], 0)} | {f(u(m)['producer_cpu_us_per_frame'])} / {f(u(m)['consumer_cpu_us_per_frame'])} | "
                      f"{f(z['vs_copy']['transport_cpu'], 3)} | {f(z['vs_copy']['fps'], 2)} |")

    print("\n### Copy vs map per frame, 1 consumer (producer + consumer CPU µs per frame)\n")
    xs = sorted({(r["width"], r["height"], r["frame_bytes"]) for r in runs if r["group"] == "crossover"},
                key=lambda s: s[2])
    print("| size | bytes | copy, touch none | map per frame, touch none | copy, read all | map per frame, read all | zero-copy, read all |")
    print("|---|---|---|---|---|---|---|")
    for w, h, b in xs:
        cells = []
        for mode, t in (("copy", "none"), ("map-per-frame", "none"), ("copy", "read"),
                        ("map-per-frame", "read"), ("zero-copy", "read")):
            r = get("crossover", w, h, 1, mode, t)
            cells.append(f(cpu(r)) if r else "-")
        print(f"| {w}x{h} | {b} | " + " | ".join(cells) + " |")

    p = [r for r in runs if r["group"] == "paced60"]
    if p:
        r = p[0]
        ph = r["paced"]
        print(f"\n### Paced: {r['consumers']} consumers, {r['width']}x{r['height']}, 60 fps, {ph['frames']} frames\n")
        print(f"producer {f(ph['producer_core_percent'], 3)} % of one core "
              f"({f(ph['producer_cpu_us_per_frame'])} µs per frame), consumers {f(ph['consumer_cpu_us_per_frame'])} µs per frame each; "
              f"latency p50 {f(ph['latency_us']['p50'])} µs, p99 {f(ph['latency_us']['p99'])} µs, max {f(ph['latency_us']['max'], 0)} µs")

    pipewire_tables(doc)

    print("\n### Targets\n")
    print("| target | value | limit | met | note |")
    print("|---|---|---|---|---|")
    for t in doc["targets"]:
        print(f"| {t['name']} | {t['value']:.3f} | {t['op']} {t['limit']} | {'yes' if t['met'] else '**no**'} | {t['note']} |")
    if len(sys.argv) > 2:
        summary([json.load(open(p)) for p in sys.argv[1:]])


def pw_rows(doc):
    """(size, n, fps) -> (pipewire, zcv) of the runs that both succeeded."""
    out = {}
    for p in doc.get("pipewire", {}).get("runs", []):
        if p["pipewire"]["ok"] and p["zcv"]["ok"]:
            out[(p["width"], p["height"], p["consumers"], p["fps"])] = (p["pipewire"], p["zcv"])
    return out


def zcv_side(z):
    ph = z.get("paced") or z["lockstep"]
    return ph["producer_cpu_us_per_frame"], ph["consumer_cpu_us_per_frame"], ph["latency_us"]


def ratios(pw, z):
    zp, zc, zl = zcv_side(z)
    return (zp / pw["producer_cpu_us_per_frame"] if pw["producer_cpu_us_per_frame"] else 0,
            zc / pw["consumer_cpu_us_per_frame"] if pw["consumer_cpu_us_per_frame"] else 0,
            zl["p50"] / pw["latency_us"]["p50"] if pw["latency_us"]["p50"] else 0)


def pipewire_tables(doc):
    pw = doc.get("pipewire")
    if not pw:
        return
    if pw["skipped"]:
        print(f"\n### PipeWire\n\nskipped: {pw['skipped']}")
        return
    print("\n### zcv vs PipeWire (zero-copy memfd, header write/read per frame, free placement; "
          "fps 0 = unpaced: PipeWire cycle after cycle, zcv lockstep)\n")
    print("| size | n | fps | PipeWire prod / cons / daemon µs | PipeWire p50 / p99 µs | PipeWire delivered | "
          "zcv prod / cons µs | zcv p50 / p99 µs | zcv ÷ PipeWire prod | cons | p50 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for p in pw["runs"]:
        w, z = p["pipewire"], p["zcv"]
        head = f"| {p['width']}x{p['height']} | {p['consumers']} | {p['fps']} |"
        if not w["ok"]:
            print(head + f" failed: {w['error']} |" + " |" * 7)
            continue
        got = 100.0 * w["delivered"] / (w["sent"] * p["consumers"])
        cells = (f" {f(w['producer_cpu_us_per_frame'])} / {f(w['consumer_cpu_us_per_frame'])} / "
                 f"{f(w['daemon_cpu_us_per_frame'])} | {f(w['latency_us']['p50'])} / "
                 f"{f(w['latency_us']['p99'])} | {f(got)} % |")
        if z["ok"]:
            zp, zc, zl = zcv_side(z)
            rp, rc, rl = ratios(w, z)
            cells += (f" {f(zp)} / {f(zc)} | {f(zl['p50'])} / {f(zl['p99'])} | {f(rp, 2)} | "
                      f"{f(rc, 2)} | {f(rl, 2)} |")
        else:
            cells += f" n/a: {z['error']} | | | | |"
        print(head + cells)
    sc = doc.get("syscalls", [])
    if sc:
        print("\n### Syscalls per frame (strace -f -c over the measured frames, 1 consumer)\n")
        print("| size | fps | zcv producer | zcv consumer | PipeWire producer | PipeWire consumer |")
        print("|---|---|---|---|---|---|")
        for r in sc:
            z, w = r["zcv"], r["pipewire"]
            zc = f"{f(z['producer'], 2)} | {f(z['consumer'], 2)}" if z["ok"] else "failed | failed"
            wc = (f"{f(w['producer'], 2)} | {f(w['consumer'], 2)}" if w and w["ok"] else
                  "- | -")
            print(f"| {r['width']}x{r['height']} | {r['fps']} | {zc} | {wc} |")
        named = [r for r in sc if r["zcv"]["ok"] and "consumer_by_name" in r["zcv"]]
        if named:
            print("\n| size | fps | zcv consumer loop | consumer calls per frame by name | "
                  "producer library (sendmsg + recvmmsg + recvmsg) per consumer per frame | "
                  "server epoll_wait | bench pacing (poll + read) |")
            print("|---|---|---|---|---|---|---|")
            for r in named:
                z = r["zcv"]
                names = sorted(z["consumer_by_name"].items(), key=lambda kv: -kv[1])
                by = ", ".join(f"{k} {v:.2f}" for k, v in names if v >= 0.005)
                print(f"| {r['width']}x{r['height']} | {r['fps']} | {z['consumer_loop']} | {by} | "
                      f"{f(z.get('producer_library_per_consumer', -1), 2)} | "
                      f"{f(z.get('producer_epoll_wait', -1), 2)} | {f(z.get('producer_pacing', -1), 2)} |")


def summary(docs):
    def mmm(vals):
        return f"{min(vals):.2f} / {statistics.median(vals):.2f} / {max(vals):.2f}"

    print(f"\n### Over {len(docs)} runs: min / median / max (each ratio within one run)\n")
    keys = sorted(set.intersection(*[set(pw_rows(d)) for d in docs]))
    if keys:
        print("| size | n | fps | zcv ÷ PipeWire prod CPU | cons CPU | p50 | PipeWire delivered % |")
        print("|---|---|---|---|---|---|---|")
        for k in keys:
            rs = [ratios(*pw_rows(d)[k]) for d in docs]
            got = [100.0 * pw_rows(d)[k][0]["delivered"] / (pw_rows(d)[k][0]["sent"] * k[2])
                   for d in docs]
            print(f"| {k[0]}x{k[1]} | {k[2]} | {k[3]} | {mmm([r[0] for r in rs])} | "
                  f"{mmm([r[1] for r in rs])} | {mmm([r[2] for r in rs])} | {mmm(got)} |")
    rows = {}
    for d in docs:
        for r in d.get("syscalls", []):
            for side in ("zcv", "pipewire"):
                v = r[side]
                if v and v["ok"]:
                    # an A/B of the consumer loop (--consumer-poll) is two cases
                    case = f"{side} ({v['consumer_loop']})" if "consumer_loop" in v else side
                    for who in ("producer", "consumer"):
                        rows.setdefault((r["fps"], case, who), []).append(v[who])
                    if "consumer_by_name" in v:
                        for k, val in v["consumer_by_name"].items():
                            rows.setdefault((r["fps"], case, f"consumer {k}"), []).append(val)
                        rows.setdefault((r["fps"], case, "producer library per consumer"),
                                        []).append(v["producer_library_per_consumer"])
    if rows:
        print("\n| fps | case | side | syscalls per frame |")
        print("|---|---|---|---|")
        for (fps, side, who), vals in sorted(rows.items()):
            print(f"| {fps} | {side} | {who} | {mmm(vals)} |")


if __name__ == "__main__":
    main()
