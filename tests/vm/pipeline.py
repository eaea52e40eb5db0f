#!/usr/bin/env python3
"""What splitting into processes costs (tests/vm/run.sh pipeline).

One camera, three consumers, two ways, on the guest's real drivers:
- zcv: vivid 1280x720p60 XRGB8888 -> zcv-capture -> zcv-display (vkms,
  PRIME import) + zcv-encode (vicodec, DMABUF import) + zcv-record (raw
  frames to /dev/null): four processes;
- GStreamer, one process: v4l2src io-mode=dmabuf ! tee, one queue per
  branch as deep as the zcv consumer's hold (3, 4, 8), leaky so a slow
  branch loses frames instead of stalling the camera (what zcv's producer
  does to a slow consumer), to kmssink, v4l2fwhtenc
  output-io-mode=dmabuf-import ! filesink, and filesink (unbuffered, as
  zcv-record writes: filesink's default stdio buffering copies every
  frame): run by gst-pipeline-probe, which times each buffer at the sinks.

Per run, for each way: CPU per frame of the processes (their rusage) and
of the whole guest (/proc/stat busy time: vivid's generator thread,
vicodec, vkms' vblank work, both ways alike), each taken as the
difference between a long and a short run of the same pipeline divided
by the frames between them, so start-up and tear-down cancel out;
capture-to-flip latency (zcv-display's flip events; kmssink returning
from a buffer, which it does once its flip is done); capture-to-receipt
at the recorder; frames each branch got of those captured.

Runs alternate zcv, GStreamer, zcv, ... The figures are printed and
written to $ZCV_RESULTS_DIR/pipeline.json; nothing about them is
asserted (a benchmark, not a test). What is checked: both ways ran to
the end, zcv's three consumers on the DMA-BUF path with nothing copied,
GStreamer's display and encoder importing the DMA-BUFs.

Environment: ZCV_PIPELINE_RUNS (default 1), ZCV_PIPELINE_FRAMES (long
run, default 300), ZCV_PIPELINE_SHORT (short run, default 60).
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["ZCV_SOURCE_DIR"], "tests", "integration"))
from run import Env, Fail, check, consumer_by_name  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from display import drm_cards, vivid_node  # noqa: E402

W, H, FPS = 1280, 720, 60
HOLDS = {"display": 3, "encode": 4, "record": 8}  # what each zcv consumer asks to hold


def busy_ticks():
    """Busy clock ticks of the whole guest (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # less idle and iowait


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_cpu(p, timeout):
    """Waits for p like Env.wait and returns the CPU seconds it used."""
    end = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return ru.ru_utime + ru.ru_stime
        if time.monotonic() > end:
            raise Fail(f"{p.label} did not exit within {timeout} s")
        time.sleep(0.01)


# GStreamer's streaming threads by branch (a thread is named after the pad
# it pushes from: "qenc:src" feeds the encoder, "fwht:src" drains it)
GST_BRANCHES = {"display": ("qdisp:src",), "encode": ("qenc:src", "fwht:src"), "record": ("qrec:src",)}


class Meter:
    """CPU seconds of the processes waited for, and of the guest, over a run."""

    def __enter__(self):
        self.c0, self.t0, self.w0 = children_cpu(), busy_ticks(), time.monotonic()
        return self

    def __exit__(self, *exc):
        hz = os.sysconf("SC_CLK_TCK")
        self.procs = children_cpu() - self.c0
        self.system = (busy_ticks() - self.t0) / hz
        self.wall = time.monotonic() - self.w0


def run_zcv(env, card, frames, tag):
    sock = env.path(f"{tag}.sock")
    j = {k: env.path(f"{tag}.{k}.json") for k in ("cap", "disp", "enc", "rec")}
    with Meter() as m:
        cap = env.start("zcv-capture", "--source", vivid_node(), "--input", "3", "--dv-timings",
                        f"{W}x{H}p{FPS}", "--format", "XRGB8888", "--frames", str(frames),
                        "--wait-consumers", "3", "--socket", sock, "--stats-json", j["cap"],
                        # vicodec takes ~0.2 s a 720p frame under TCG: with 4
                        # frames queued the oldest is held past the default
                        # 1 s (GStreamer evicts nobody either)
                        "--hold-timeout-ms", "10000")
        env.wait_socket(sock)
        procs = [env.start("zcv-display", "--no-reconnect", "--device", card, "--mode", f"{W}x{H}",
                           "--socket", sock,
                           "--max-hold", str(HOLDS["display"]), "--stats-json", j["disp"]),
                 env.start("zcv-encode", "--socket", sock, "-o", "/dev/null", "--max-hold",
                           str(HOLDS["encode"]), "--stats-json", j["enc"]),
                 env.start("zcv-record", "--no-reconnect", "--raw", "--socket", sock, "-o", "/dev/null",
                           "--max-hold", str(HOLDS["record"]), "--stats-json", j["rec"])]
        cpu = {"capture": wait_cpu(cap, 120)}
        check(cap.returncode == 0, f"[{tag}] zcv-capture exited 0")
        for branch, p in zip(("display", "encode", "record"), procs):
            cpu[branch] = wait_cpu(p, 60)
            check(p.returncode == 0, f"[{tag}] {p.label} exited 0")
    c, d, e, r = (env.json(j[k]) for k in ("cap", "disp", "enc", "rec"))
    check(c["frames"] == frames, f"[{tag}] zcv-capture published {frames} frames ({c['frames']})")
    for name in ("zcv-display", "zcv-encode", "zcv-record"):
        cc = consumer_by_name(c, name)
        check(cc["path"] == "dmabuf" and cc["copied_bytes"] == 0,
              f"[{tag}] {name} on the DMA-BUF path, nothing copied ({cc['path']}, {cc['copied_bytes']})")
    check(d["display_path"] == "zero-copy" and d["copied_bytes"] == 0 and e["copied_bytes"] == 0
          and r["copied_bytes"] == 0 and c["copied_bytes"] == 0,
          f"[{tag}] zero-copy end to end: display {d['display_path']}, copied bytes capture "
          f"{c['copied_bytes']}, display {d['copied_bytes']}, encode {e['copied_bytes']}, "
          f"record {r['copied_bytes']}")
    return {"cpu_procs_s": m.procs, "cpu_system_s": m.system, "wall_s": m.wall, "frames": frames,
            "cpu_branch_s": cpu, "display_frames": d["frames"], "display_flips": d["flips"],
            "encoder_frames": e["frames_out"], "record_frames": r["frames"],
            "flip_us": {"p50": d["latency_us"]["p50"], "p99": d["latency_us"]["p99"]},
            "record_receipt_us": {"p50": r["latency_us"]["p50"], "p99": r["latency_us"]["p99"]},
            "source_fps": c["fps"]}


def run_gst(env, card, frames, tag):
    probe = os.path.join(env.build, "tests", "bench", "gst-pipeline-probe")
    out = env.path(f"{tag}.probe.json")
    # both displays set the frame's mode, 1280x720 (force-modesetting:
    # kmssink picks the connector mode of the frame's size)
    pipeline = [
        "v4l2src", "name=src", f"device={vivid_node()}", "io-mode=dmabuf", f"num-buffers={frames}", "!",
        f"video/x-raw,format=BGRx,width={W},height={H},framerate={FPS}/1", "!", "tee", "name=t",
        "t.", "!", "queue", "name=qdisp", f"max-size-buffers={HOLDS['display']}", "max-size-bytes=0", "max-size-time=0",
        "leaky=downstream", "!", "kmssink", "name=disp", "driver-name=vkms", "force-modesetting=true", "sync=false",
        "t.", "!", "queue", "name=qenc", f"max-size-buffers={HOLDS['encode']}", "max-size-bytes=0", "max-size-time=0",
        "leaky=downstream", "!", "v4l2fwhtenc", "name=fwht", "output-io-mode=dmabuf-import", "!",
        "filesink", "name=enc", "location=/dev/null", "buffer-mode=unbuffered",
        "t.", "!", "queue", "name=qrec", f"max-size-buffers={HOLDS['record']}", "max-size-bytes=0", "max-size-time=0",
        "leaky=downstream", "!", "filesink", "name=rec", "location=/dev/null", "buffer-mode=unbuffered"]
    genv = dict(os.environ, GST_DEBUG_NO_COLOR="1", GST_REGISTRY=env.path("registry.bin"),
                GST_DEBUG="GST_PERFORMANCE:5,v4l2bufferpool:5,v4l2src:2")
    with Meter() as m:
        p = subprocess.Popen([probe, out, "disp,enc,rec", *pipeline], env=genv,
                             stdout=subprocess.DEVNULL, stderr=open(env.path(f"{tag}.gst.err"), "w"))
        p.label = "gst-pipeline-probe"
        env.procs.append(p)
        rc = env.wait(p, 180)
    g = env.json(f"{tag}.probe.json")
    log = env.text(f"{tag}.gst.err")
    check(rc == 0 and not g["error"], f"[{tag}] the GStreamer pipeline ran to its end ({g['error']!r})")
    # frames copied on the way: v4l2src's pool copying when short of
    # buffers, kmssink copying what it cannot import, the encoder's input
    # (not the encoder's output pool, which copies the bitstream out)
    copies = [line for line in log.splitlines() if "<fwht:pool0:src>" not in line  # the bitstream
              and any(s in line for s in ("copy video frame", "copy raw bytes", "copying buffer",
                                          "not of DMABUF", "copy into"))]
    s = g["sinks"]
    threads = {k.rsplit("/", 1)[0]: 0.0 for k in g["threads"]}
    for k, v in g["threads"].items():
        threads[k.rsplit("/", 1)[0]] += v
    cpu = {b: sum(threads.get(t, 0.0) for t in names) for b, names in GST_BRANCHES.items()}
    cpu["capture"] = sum(threads.values()) - sum(cpu.values())
    return {"cpu_procs_s": m.procs, "cpu_branch_s": cpu, "threads": threads,
            "driver_timestamps_ignored": "ignoring driver timestamps" in log, "cpu_system_s": m.system, "wall_s": m.wall, "frames": frames,
            "display_frames": s["disp"]["buffers"], "encoder_frames": s["enc"]["buffers"],
            "record_frames": s["rec"]["buffers"], "flip_us": s["disp"]["done_us"],
            "display_receipt_us": s["disp"]["receipt_us"], "record_receipt_us": s["rec"]["receipt_us"],
            "frame_copies_logged": len(copies), "copy_lines": copies[:3]}


def per_frame(long, short, key):
    """CPU µs per frame from a long and a short run: start-up cancels."""
    return (long[key] - short[key]) / (long["frames"] - short["frames"]) * 1e6


def main():
    env = Env(os.environ.get("ZCV_BUILD_DIR"))
    runs = int(os.environ.get("ZCV_PIPELINE_RUNS", "1"))
    n_long = int(os.environ.get("ZCV_PIPELINE_FRAMES", "300"))
    n_short = int(os.environ.get("ZCV_PIPELINE_SHORT", "60"))
    ok = False
    t0 = time.time()
    results = {"size": f"{W}x{H}", "fps": FPS, "format": "XRGB8888", "frames_long": n_long,
               "frames_short": n_short, "cpus": os.cpu_count(), "runs": []}
    if not os.path.exists(os.path.join(env.build, "tests", "bench", "gst-pipeline-probe")):
        print("pipeline: SKIP: tests/bench/gst-pipeline-probe is not built (GStreamer's development "
              "files are missing: scripts/install-deps.sh)")
        return 77
    try:
        card = drm_cards().get("vkms")
        check(card, f"a vkms card ({drm_cards()})")
        # start-up costs that are once per boot, not per run (binaries read
        # over 9p, GStreamer's registry scan): a short run of each first
        for way, fn in (("zcv", run_zcv), ("gst", run_gst)):
            fn(env, card, n_short, f"{way}-warm")
        for k in range(runs):
            one = {}
            for way, fn in (("zcv", run_zcv), ("gst", run_gst)):
                short = fn(env, card, n_short, f"{way}{k}s")
                long = fn(env, card, n_long, f"{way}{k}l")
                long["cpu_procs_us_per_frame"] = per_frame(long, short, "cpu_procs_s")
                long["cpu_branch_us_per_frame"] = {
                    b: (long["cpu_branch_s"][b] - short["cpu_branch_s"][b]) / (n_long - n_short) * 1e6
                    for b in long["cpu_branch_s"]}
                enc = long["encoder_frames"] - short["encoder_frames"]
                long["cpu_encode_us_per_encoded_frame"] = (
                    (long["cpu_branch_s"]["encode"] - short["cpu_branch_s"]["encode"]) / enc * 1e6 if enc > 0 else None)
                long["cpu_system_us_per_frame"] = per_frame(long, short, "cpu_system_s")
                one[way] = {"long": long, "short": short}
                print(f"  [run {k + 1}] {way}: processes {long['cpu_procs_us_per_frame']:.0f} µs/frame, "
                      f"guest {long['cpu_system_us_per_frame']:.0f} µs/frame; of {n_long} frames: display "
                      f"{long['display_frames']}, encoder {long['encoder_frames']}, record "
                      f"{long['record_frames']}; capture-to-flip p50 {long['flip_us']['p50'] / 1000:.1f} ms "
                      f"p99 {long['flip_us']['p99'] / 1000:.1f} ms; record receipt p50 "
                      f"{long['record_receipt_us']['p50'] / 1000:.1f} ms")
                b = long["cpu_branch_us_per_frame"]
                epf = long["cpu_encode_us_per_encoded_frame"]
                print(f"  [run {k + 1}] {way} by part, µs per captured frame: capture {b['capture']:.0f}, "
                      f"display {b['display']:.0f}, encode {b['encode']:.0f} "
                      f"({'-' if epf is None else f'{epf:.0f}'} per encoded frame), record {b['record']:.0f}")
            z, g = one["zcv"]["long"], one["gst"]["long"]
            one["ratio_procs"] = z["cpu_procs_us_per_frame"] / g["cpu_procs_us_per_frame"]
            one["ratio_system"] = z["cpu_system_us_per_frame"] / g["cpu_system_us_per_frame"]
            # the part that does the same work both ways: everything but the
            # encoder, whose share depends on how many frames it took
            zb, gb = z["cpu_branch_us_per_frame"], g["cpu_branch_us_per_frame"]
            one["ratio_without_encoder"] = (sum(v for b, v in zb.items() if b != "encode")
                                            / sum(v for b, v in gb.items() if b != "encode"))
            print(f"  [run {k + 1}] zcv / GStreamer CPU per frame: processes {one['ratio_procs']:.2f}x, "
                  f"whole guest {one['ratio_system']:.2f}x, all but the encoder {one['ratio_without_encoder']:.2f}x")
            if g["driver_timestamps_ignored"]:
                print(f"  [run {k + 1}] v4l2src ignored vivid's timestamps (its PTS is then one frame early); "
                      f"latency here is from v4l2src's push")
            if g["frame_copies_logged"]:
                print(f"  [run {k + 1}] GStreamer logged frame copies: {g['frame_copies_logged']} "
                      f"({g['copy_lines']})")
            results["runs"].append(one)
        if runs > 1:
            for key in ("ratio_procs", "ratio_system", "ratio_without_encoder"):
                v = [r[key] for r in results["runs"]]
                print(f"  {key}: min {min(v):.2f} median {statistics.median(v):.2f} max {max(v):.2f}")
        ok = True
    except Fail as e:
        print(f"FAIL: {e}")
    finally:
        res = os.environ.get("ZCV_RESULTS_DIR")
        if res:
            with open(os.path.join(res, "pipeline.json"), "w") as f:
                json.dump(results, f, indent=1)
        env.cleanup(ok)
        print(f"pipeline: {'PASS' if ok else 'FAIL'} in {time.time() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
