#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Plots a zcv-bench JSON file with gnuplot (Debian: gnuplot-nox).

    tests/bench/plot.py RESULT.json OUT.png

Four panels: transport CPU per frame against frame size (zcv zero-copy,
copy tier, map-per-frame, GStreamer shm a/b); hand-off latency against
frame size per placement; copy vs map-per-frame over small frames; producer
CPU per frame against the number of consumers at the largest size.
"""
import json
import os
import subprocess
import sys
import tempfile


def runs(doc, group, **kw):
    out = []
    for r in doc["runs"]:
        if r["group"] != group or not r["ok"]:
            continue
        if all(r[k] == v for k, v in kw.items()):
            out.append(r)
    return sorted(out, key=lambda r: r["frame_bytes"])


def mb(r):
    return r["frame_bytes"] / 1e6


def write(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(" ".join(str(x) for x in row) + "\n")
        if not rows:
            f.write("nan nan\n")


def main():
    if len(sys.argv) != 3:
        print("usage: plot.py RESULT.json OUT.png", file=sys.stderr)
        return 2
    doc = json.load(open(sys.argv[1]))
    out = os.path.abspath(sys.argv[2])
    d = tempfile.mkdtemp(prefix="zcv-plot-")

    def cpu(r):
        u = r["unpaced"]
        return u["producer_cpu_us_per_frame"] + u["consumer_cpu_us_per_frame"]

    for mode, name in (("zero-copy", "zc"), ("copy", "copy"), ("map-per-frame", "mapf")):
        rs = runs(doc, "matrix", consumers=1, touch="none", mode=mode)
        write(f"{d}/cpu_{name}.dat", [(mb(r), cpu(r)) for r in rs])
        rs = runs(doc, "crossover", consumers=1, mode=mode)
        for t in ("none", "read"):
            write(f"{d}/x_{name}_{t}.dat",
                  [(r["frame_bytes"] / 1e3, cpu(r)) for r in rs if r["touch"] == t])
    g = [x for x in doc.get("gstreamer", []) if x["ok"]]
    for key, name in (("zerocopy_a", "gsta"), ("copying_b", "gstb")):
        write(f"{d}/cpu_{name}.dat",
              [(x["width"] * x["height"] * 1.5 / 1e6,
                max(x[key]["producer_cpu_us_over_render"] + x[key]["consumer_cpu_us"], 0.01))
               for x in g])
    for mode, name in (("zero-copy", "zc"), ("copy", "copy")):
        for pl in ("same", "cross"):
            rs = runs(doc, "placement", consumers=1, touch="none", mode=mode, placement=pl)
            write(f"{d}/lat_{name}_{pl}.dat",
                  [(mb(r), r["lockstep"]["latency_us"]["p50"], r["lockstep"]["latency_us"]["p99"])
                   for r in rs])
        rs = runs(doc, "matrix", consumers=1, touch="none", mode=mode)
        write(f"{d}/lat_{name}_free.dat",
              [(mb(r), r["lockstep"]["latency_us"]["p50"], r["lockstep"]["latency_us"]["p99"])
               for r in rs])
    sizes = sorted({r["frame_bytes"] for r in doc["runs"] if r["group"] == "matrix"})
    big = sizes[-1] if sizes else 0
    for mode, name in (("zero-copy", "zc"), ("copy", "copy"), ("map-per-frame", "mapf")):
        for t in ("none", "read"):
            rs = [r for r in runs(doc, "matrix", touch=t, mode=mode) if r["frame_bytes"] == big]
            rs.sort(key=lambda r: r["consumers"])
            write(f"{d}/n_{name}_{t}.dat",
                  [(r["consumers"], r["unpaced"]["producer_cpu_us_per_frame"]) for r in rs])
    bigname = next((f'{r["width"]}x{r["height"]}' for r in doc["runs"]
                    if r["group"] == "matrix" and r["frame_bytes"] == big), "?")
    m = doc["machine"]
    title = f'zcv-bench, NV12, {m["cpus"]} x {m["cpu_model"]}, Linux {m["kernel"]}'

    gp = f"""
set terminal pngcairo size 1500,1100 font "sans,11"
set output "{out}"
set multiplot layout 2,2 title "{title}"
set grid
set linetype 1 lc rgb "#1f77b4"
set linetype 2 lc rgb "#d62728"
set linetype 3 lc rgb "#2ca02c"
set linetype 4 lc rgb "#9467bd"
set linetype 5 lc rgb "#ff7f0e"
set key top left box opaque
set logscale y
set logscale x
set format y "%g"
set format x "%g"

set title "Transport CPU per frame: producer + 1 consumer (touching nothing)"
set xlabel "frame size (MB)"
set ylabel "CPU us per frame"
plot "{d}/cpu_zc.dat" using 1:2 with linespoints lw 2 pt 7 title "zcv zero-copy", \\
     "{d}/cpu_copy.dat" using 1:2 with linespoints lw 2 pt 5 title "zcv copy tier", \\
     "{d}/cpu_mapf.dat" using 1:2 with linespoints lw 2 pt 9 title "map per frame", \\
     "{d}/cpu_gsta.dat" using 1:2 with linespoints lw 2 dt 2 pt 4 title "GStreamer shm (a) zero-copy", \\
     "{d}/cpu_gstb.dat" using 1:2 with linespoints lw 2 dt 2 pt 6 title "GStreamer shm (b) copying"

set title "Hand-off latency p50 (bars: p99), one frame in flight, 1 consumer"
set ylabel "us, publish -> consumer callback"
plot "{d}/lat_zc_same.dat" using 1:2:2:3 with yerrorlines lw 2 pt 7 title "zero-copy, same CPU", \\
     "{d}/lat_zc_cross.dat" using 1:2:2:3 with yerrorlines lw 2 pt 5 title "zero-copy, cross CPU", \\
     "{d}/lat_zc_free.dat" using 1:2 with linespoints lw 2 pt 9 title "zero-copy, unpinned", \\
     "{d}/lat_copy_same.dat" using 1:2 with linespoints lw 2 dt 2 pt 4 title "copy tier, same CPU", \\
     "{d}/lat_copy_cross.dat" using 1:2 with linespoints lw 2 dt 2 pt 6 title "copy tier, cross CPU"

set title "Copy vs map per frame (producer + 1 consumer)"
set xlabel "frame size (kB)"
set ylabel "CPU us per frame"
plot "{d}/x_copy_none.dat" using 1:2 with linespoints lw 2 pt 5 title "copy, touch none", \\
     "{d}/x_mapf_none.dat" using 1:2 with linespoints lw 2 pt 9 title "map per frame, touch none", \\
     "{d}/x_copy_read.dat" using 1:2 with linespoints lw 2 dt 2 pt 4 title "copy, read all", \\
     "{d}/x_mapf_read.dat" using 1:2 with linespoints lw 2 dt 2 pt 8 title "map per frame, read all", \\
     "{d}/x_zc_none.dat" using 1:2 with linespoints lw 1 pt 7 title "zero-copy, touch none"

unset logscale x
set xtics (1, 2, 4, 8)
set title "Producer CPU per frame vs consumers, {bigname}"
set xlabel "consumers"
set ylabel "producer CPU us per frame"
plot "{d}/n_zc_none.dat" using 1:2 with linespoints lw 2 pt 7 title "zero-copy, touch none", \\
     "{d}/n_zc_read.dat" using 1:2 with linespoints lw 2 dt 2 pt 6 title "zero-copy, read all", \\
     "{d}/n_copy_none.dat" using 1:2 with linespoints lw 2 pt 5 title "copy tier, touch none", \\
     "{d}/n_copy_read.dat" using 1:2 with linespoints lw 2 dt 2 pt 4 title "copy tier, read all"
unset multiplot
"""
    with open(f"{d}/plot.gp", "w") as f:
        f.write(gp)
    subprocess.run(["gnuplot", f"{d}/plot.gp"], check=True)
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)
    print(f"plot.py: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
