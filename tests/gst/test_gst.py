#!/usr/bin/env python3
"""Integration tests of the GStreamer plugin (zcvsrc, zcvsink): real
pipelines (gst-launch-1.0) against zcv-capture and zcv-record.

Usage: test_gst.py TEST --build-dir DIR. Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from run import SKIP, Env, Fail, check, consumer_by_name, gst_decode_and_compare, wait_text  # noqa: E402

W, H = 320, 240
NV12_SIZE = W * H * 3 // 2
STATS = re.compile(r"stats: frames=(\d+) copied_frames=(\d+) copied_bytes=(\d+) dropped=(\d+) "
                   r"buffer_fds=(\d+)")
FDS = re.compile(r"<(zcvsrc|zcvsink)\d+> buffer fds: at start (\d+), after stop (\d+)")


class GstEnv(Env):
    def __init__(self, build):
        super().__init__(build)
        self.env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(build, "gst"),
                        GST_REGISTRY=self.path("registry.bin"), GST_DEBUG_NO_COLOR="1",
                        GST_DEBUG="zcvsrc:4,zcvsink:4")
        # a sanitizer build's plugin in GStreamer's (uninstrumented) programs:
        # the runtime must be loaded first (tests/gst/CMakeLists.txt)
        if os.environ.get("ZCV_GST_PRELOAD"):
            self.env["LD_PRELOAD"] = os.environ["ZCV_GST_PRELOAD"]
            # GLib and GStreamer keep allocations until exit that LeakSanitizer
            # cannot attribute (16 KB from g_malloc with no caller of ours):
            # memory errors are still fatal, leaks in these processes are not
            self.env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"

    def gst(self, name, *pipeline):
        """Starts gst-launch-1.0 -v (caps and messages on stdout, the
        elements' INFO log with their stats on stderr)."""
        out = open(self.path(f"{name}.out"), "w")
        err = open(self.path(f"{name}.err"), "w")
        p = subprocess.Popen(["gst-launch-1.0", "-v", *pipeline], stdout=out, stderr=err,
                             env=self.env)
        p.label = name
        self.procs.append(p)
        return p

    def stats(self, name):
        """frames, copied frames, copied bytes, dropped of the element's
        last stats line."""
        m = STATS.findall(self.text(f"{name}.err"))
        if not m:
            raise Fail(f"{name} logged no stats line")
        return tuple(int(x) for x in m[-1][:4])

    def check_fds(self, name):
        """memfd/DMA-BUF fds of the gst-launch process: some while
        streaming (the stats line), as many after the element stopped as
        before it started."""
        streaming = int(STATS.findall(self.text(f"{name}.err"))[-1][4])
        m = FDS.findall(self.text(f"{name}.err"))
        if not m:
            raise Fail(f"{name}: the element logged no fd count at stop")
        el, start, stop = m[-1]
        check(streaming > 0 and start == stop,
              f"{el}: {streaming} buffer fds open while streaming, {start} before start, "
              f"{stop} after stop")

    def capture(self, *args, frames="60", hold="4"):
        p = self.start("zcv-capture", "--source", "pattern", "--size", f"{W}x{H}", "--format",
                       "NV12", "--fps", "60", "--max-hold", hold, "--buffers", "8",
                       "--socket", self.sock, "--stats-json", self.path("cap.json"), "--quiet",
                       *(["--frames", frames] if frames else []), *args)
        self.wait_socket()
        return p


def check_producer(env, name="zcvsrc"):
    c = env.json("cap.json")
    check(c["fds_at_start"] == c["fds_at_end"],
          f"no fd leaked in the producer ({c['fds_at_start']} at start, {c['fds_at_end']} at end)")
    cc = consumer_by_name(c, name)
    check(cc["held"] == 0 and cc["end_error"] == 0,
          f"producer: {name} released everything and left cleanly (held {cc['held']}, "
          f"{cc['end_reason']!r})")
    return c, cc


def test_src_caps(env):
    """zcv-capture pattern -> zcvsrc ! fakesink: every frame, the caps of
    the stream, no copy, everything released."""
    cap = env.capture("--wait-consumers", "1")
    g = env.gst("gst", "zcvsrc", f"socket={env.sock}", "client-name=zcvsrc", "!",
                "fakesink", "silent=false")
    check(env.wait(g, 60) == 0, "gst-launch exited 0 at the producer's end of stream")
    check(env.wait(cap, 10) == 0, "zcv-capture exited 0")
    caps = next(line for line in env.text("gst.out").splitlines()
                if "GstFakeSink:fakesink0.GstPad:sink: caps" in line)
    for want in ("video/x-raw,", "format=(string)NV12", f"width=(int){W}", f"height=(int){H}",
                 "framerate=(fraction)60/1", "colorimetry="):
        check(want in caps, f"caps negotiated: {want}")
    # a buffer is the frame, not the allocation it lives in (importers
    # take its size for the payload: V4L2's bytesused)
    sizes = [int(n) for n in re.findall(r"chain   \*+ \(fakesink0:sink\) \((\d+) bytes",
                                        env.text("gst.out"))]
    check(len(sizes) == 60 and set(sizes) == {NV12_SIZE},
          f"each of the {len(sizes)} buffers is one {NV12_SIZE}-byte frame ({sorted(set(sizes))})")
    frames, copied_frames, copied, dropped = env.stats("gst")
    print(f"  zcvsrc: {frames} frames, {copied_frames} copied ({copied} bytes), {dropped} dropped")
    check(frames == 60 and dropped == 0, "zcvsrc pushed all 60 frames, none dropped")
    check(copied == 0 and copied_frames == 0, "zcvsrc copied 0 bytes (memfd path, lent)")
    c, cc = check_producer(env)
    check(cc["frames_sent"] == 60 and cc["skipped"] == 0 and cc["path"] == "memfd",
          "producer sent zcvsrc 60 frames on the memfd path, skipped none")
    env.check_fds("gst")


def test_src_content(env):
    """zcvsrc ! videoconvert ! I420 ! filesink equals the pattern function."""
    n = 30
    cap = env.capture("--wait-consumers", "1", frames=str(n))
    out = env.path("out.i420")
    g = env.gst("gst", "zcvsrc", f"socket={env.sock}", "!", "videoconvert", "!",
                "video/x-raw,format=I420", "!", "filesink", f"location={out}")
    check(env.wait(g, 60) == 0, "gst-launch exited 0")
    check(env.wait(cap, 10) == 0, "zcv-capture exited 0")
    ref = env.path("ref.i420")
    check(env.run("pattern-ref", "i420", f"{W}x{H}", "0", str(n), ref).returncode == 0,
          "reference I420 frames written")
    with open(out, "rb") as a, open(ref, "rb") as b:
        got, want = a.read(), b.read()
    check(len(got) == len(want) == n * NV12_SIZE, f"{n} frames written ({len(got)} bytes)")
    bad = [k for k in range(n) if got[k * NV12_SIZE:(k + 1) * NV12_SIZE]
           != want[k * NV12_SIZE:(k + 1) * NV12_SIZE]]
    check(not bad, f"every frame equals the pattern function byte for byte (bad: {bad[:5]})")
    frames, _, copied, _ = env.stats("gst")
    check(frames == n and copied == 0, f"zcvsrc: {frames} frames, 0 bytes copied")
    check_producer(env)


def test_src_hold(env):
    """Downstream (a queue in front of a slow sink) holds more than the 2
    frames the producer grants: zcvsrc copies, counts and says so, and
    the stream still flows to its end."""
    n = 120
    cap = env.capture("--wait-consumers", "1", frames=str(n), hold="2")
    g = env.gst("gst", "zcvsrc", f"socket={env.sock}", "max-hold=2", "!", "queue",
                "max-size-buffers=8", "max-size-time=0", "max-size-bytes=0", "!", "identity",
                "sleep-time=30000", "!", "fakesink", "sync=true")
    check(env.wait(g, 60) == 0, "gst-launch exited 0 at the end of stream")
    check(env.wait(cap, 10) == 0, "zcv-capture exited 0")
    frames, copied_frames, copied, dropped = env.stats("gst")
    print(f"  zcvsrc: {frames} frames, {copied_frames} copied ({copied} bytes), {dropped} dropped")
    check(copied > 0 and copied == copied_frames * NV12_SIZE,
          f"copies counted: {copied_frames} frames, {copied} bytes")
    check("zcvsrc copies frames" in env.text("gst.out"), "the copy was said (element warning)")
    check(env.text("gst.out").count("zcvsrc copies frames") == 1, "said once")
    check(frames > copied_frames, "frames were lent too, not only copied")
    c, cc = check_producer(env)
    check(cc["frames_sent"] == frames, f"zcvsrc pushed every frame it received ({frames})")


def test_src_producer_killed(env):
    """The producer dies mid-stream: zcvsrc posts an error with the reason
    and gst-launch exits non-zero."""
    cap = env.capture(frames=None)
    g = env.gst("gst", "zcvsrc", f"socket={env.sock}", "!", "fakesink")
    wait_text(env, "gst.err", "connected: path memfd")
    cap.send_signal(signal.SIGKILL)
    cap.wait()
    rc = env.wait(g, 15)
    out = env.text("gst.out") + env.text("gst.err")
    check(rc != 0, f"gst-launch exited {rc} (non-zero)")
    check("ERROR: from element" in out and "zcv stream failed" in out,
          "zcvsrc posted an error saying the zcv stream failed")
    print("  " + next(line for line in out.splitlines() if "zcv stream failed" in line))


def test_src_evicted(env):
    """Downstream keeps a frame longer than the producer's hold timeout:
    the producer evicts zcvsrc, which posts an error with the producer's
    reason; gst-launch exits non-zero instead of hanging."""
    cap = env.capture("--hold-timeout-ms", "300", frames=None)
    g = env.gst("gst", "zcvsrc", f"socket={env.sock}", "!", "identity", "sleep-time=2000000",
                "!", "fakesink")
    rc = env.wait(g, 20)
    out = env.text("gst.out") + env.text("gst.err")
    check(rc != 0, f"gst-launch exited {rc}")
    check(re.search(r"zcv stream failed: held frame \d+ for more than 300 ms", out),
          "the error carries the producer's reason (held a frame too long)")
    cap.send_signal(signal.SIGINT)
    check(env.wait(cap, 15) == 0, "zcv-capture exited 0")
    cc = consumer_by_name(env.json("cap.json"), "zcvsrc")
    check(cc["end_error"] != 0 and cc["held"] == 0,
          f"producer: zcvsrc evicted ({cc['end_reason']!r}), its frames reclaimed")


def test_src_no_producer(env):
    """No producer at the socket: zcvsrc fails to start with a clear
    error, gst-launch exits non-zero at once."""
    g = env.gst("gst", "zcvsrc", f"socket={env.path('nobody.sock')}", "!", "fakesink")
    rc = env.wait(g, 15)
    out = env.text("gst.out") + env.text("gst.err")
    check(rc != 0, f"gst-launch exited {rc}")
    check("Cannot connect to zcv socket" in out and "is the producer running?" in out,
          "the error names the socket and asks whether the producer runs")


def test_src_flush(env):
    """EOS into a running zcvsrc pipeline reaches the sink, and PLAYING ->
    NULL while create() waits returns at once (unlock): driven through
    the GStreamer API by gst-flush-check, because gst-launch 1.22 itself
    sometimes hangs on SIGINT (videotestsrc is-live=true too). The
    memfds it held are closed afterwards; the producer got every frame
    back."""
    drv = os.path.join(env.build, "tests", "gst", "gst-flush-check")
    if not os.path.exists(drv):
        print("SKIP: gst-flush-check not built")
        raise Skip()
    cap = env.capture(frames=None)
    r = subprocess.run([drv, env.sock], capture_output=True, text=True, timeout=60, env=env.env)
    print("  " + r.stdout.strip().replace("\n", "\n  "))
    check(r.returncode == 0, "gst-flush-check: EOS reached the sink, the stop returned, "
          "0 bytes copied, memfds closed")
    m = re.search(r"PLAYING to NULL in (\d+) ms", r.stdout)
    check(m is not None, "the stop from PLAYING returned")
    cap.send_signal(signal.SIGINT)
    check(env.wait(cap, 15) == 0, "zcv-capture exited 0 after SIGINT")
    c = env.json("cap.json")
    check(c["fds_at_start"] == c["fds_at_end"], "no fd leaked in the producer")
    gone = [x for x in c["consumers"] if x["name"] == "zcvsrc"]
    check(len(gone) == 2 and all(x["held"] == 0 and x["end_error"] == 0 for x in gone),
          "producer: both zcvsrc runs released everything and left cleanly")


def test_src_formats(env):
    """Every zcv format maps to its GStreamer format (XRGB8888, B,G,R,X in
    memory, is BGRx) and streams without a copy."""
    formats = {"NV12": "NV12", "I420": "I420", "NV16": "NV16", "YUYV": "YUY2", "UYVY": "UYVY",
               "XRGB8888": "BGRx", "ARGB8888": "BGRA", "GREY": "GRAY8"}
    for zfmt, gfmt in formats.items():
        sock = env.path(f"{zfmt}.sock")
        cap = env.start("zcv-capture", "--source", "pattern", "--size", "64x48", "--format", zfmt,
                        "--fps", "60", "--frames", "5", "--wait-consumers", "1", "--socket", sock,
                        "--quiet")
        env.wait_socket(sock)
        g = env.gst(zfmt, "zcvsrc", f"socket={sock}", "!", "fakesink")
        check(env.wait(g, 30) == 0 and env.wait(cap, 10) == 0, f"{zfmt}: both exited 0")
        caps = env.text(f"{zfmt}.out")
        frames, copied_frames, copied, _ = env.stats(zfmt)
        # fakesink takes no GstVideoMeta: zero-copy where zcv's layout is
        # GStreamer's default, a counted copy where it is not (64-byte
        # aligned chroma strides of I420/NV16 at this width)
        default = "default layout 1" in env.text(f"{zfmt}.err")
        want = 0 if default else 5
        check(f"format=(string){gfmt}," in caps and frames == 5 and copied_frames == want,
              f"{zfmt} -> video/x-raw,format={gfmt}: 5 frames, {copied_frames} copied "
              f"({copied} bytes; layout {'default' if default else 'strided'})")


def test_src_strided(env):
    """A producer layout that is not GStreamer's default (328 wide: zcv
    strides of 384): downstream that takes GstVideoMeta (videoconvert)
    reads the frames in place; one that does not (filesink) gets copies
    in the default layout, counted and said. Both equal the pattern."""
    w, n = 328, 10
    y, c = w * H, w * H // 4
    ref = env.path("ref.i420")
    check(env.run("pattern-ref", "i420", f"{w}x{H}", "0", str(n), ref).returncode == 0,
          "reference I420 frames written")
    with open(ref, "rb") as f:
        want_i420 = f.read()
    want_nv12 = bytearray()
    for k in range(n):
        fr = want_i420[k * (y + 2 * c):(k + 1) * (y + 2 * c)]
        uv = bytearray(2 * c)
        uv[0::2], uv[1::2] = fr[y:y + c], fr[y + c:]
        want_nv12 += fr[:y] + uv
    for name, tail, want, copies in (
            ("meta", ["videoconvert", "!", "video/x-raw,format=I420"], want_i420, False),
            ("copy", [], bytes(want_nv12), True)):
        sock = env.path(f"{name}.sock")
        cap = env.start("zcv-capture", "--source", "pattern", "--size", f"{w}x{H}", "--format",
                        "NV12", "--fps", "60", "--frames", str(n), "--wait-consumers", "1",
                        "--socket", sock, "--quiet")
        env.wait_socket(sock)
        out = env.path(f"{name}.raw")
        g = env.gst(name, "zcvsrc", f"socket={sock}", "!", *tail, *(["!"] if tail else []),
                    "filesink", f"location={out}")
        check(env.wait(g, 60) == 0 and env.wait(cap, 10) == 0, f"{name}: both exited 0")
        with open(out, "rb") as f:
            got = f.read()
        check(got == want, f"{name}: {n} frames of {w}x{H} equal the pattern ({len(got)} bytes)")
        frames, copied_frames, copied, _ = env.stats(name)
        said = "zcvsrc copies frames" in env.text(f"{name}.out")
        if copies:
            check(copied_frames == n and copied == n * w * H * 3 // 2 and said,
                  f"{name}: downstream without GstVideoMeta: {copied} bytes copied, said")
        else:
            check(copied == 0 and not said, f"{name}: GstVideoMeta carried the strides, 0 copied")


def test_chain_generation(env):
    """videotestsrc ! zcvsink -> zcvsrc ! filesink across a caps change
    (concat of 320x240 then 640x480): the sink serves a new generation,
    zcvsrc renegotiates, every frame arrives byte-exact, no copy on
    either side."""
    n = 10
    def concat(sink):
        return ["concat", "name=c", "!", *sink,
                *videotestsrc(n), "!", "c.",
                "videotestsrc", f"num-buffers={n}", "pattern=ball", "!",
                f"video/x-raw,format=NV12,width={2 * W},height={2 * H},framerate=30/1", "!", "c."]
    p = env.gst("producer", *concat(["zcvsink", f"socket={env.sock}", "wait-consumers=1",
                                     "max-hold=4", "buffers=8"]))
    env.wait_socket()
    out = env.path("out.nv12")
    g = env.gst("consumer", "zcvsrc", f"socket={env.sock}", "max-hold=4", "!", "filesink",
                f"location={out}")
    check(env.wait(p, 60) == 0 and env.wait(g, 60) == 0, "producer and consumer pipelines exited 0")
    ref = env.path("ref.nv12")
    r = subprocess.run(["gst-launch-1.0", "-q", *concat(["filesink", f"location={ref}"])],
                       capture_output=True, text=True, timeout=120, env=env.env)
    check(r.returncode == 0, "reference pipeline wrote GStreamer's frames")
    with open(out, "rb") as a, open(ref, "rb") as b:
        got, want = a.read(), b.read()
    check(len(want) == n * NV12_SIZE * 5 and got == want,
          f"{2 * n} frames (two sizes) equal GStreamer's own output ({len(got)} bytes)")
    caps = [line for line in env.text("consumer.out").splitlines() if "filesink0.GstPad:sink: caps" in line]
    check(len(caps) == 2 and f"width=(int){2 * W}" in caps[1], "zcvsrc renegotiated to 640x480")
    check(env.stats("producer")[2] == 0 and env.stats("consumer")[2] == 0,
          "0 bytes copied by zcvsink and by zcvsrc")
    env.check_fds("producer")
    env.check_fds("consumer")


def videotestsrc(n, fmt="NV12"):
    return ["videotestsrc", f"num-buffers={n}", "pattern=smpte", "horizontal-speed=3", "!",
            f"video/x-raw,format={fmt},width={W},height={H},framerate=30/1"]


def sink_case(env, n, middle, expect_copy):
    sock = env.sock
    g = env.gst("gst", *videotestsrc(n), *middle, "!", "zcvsink", f"socket={sock}",
                "wait-consumers=1", "max-hold=8", "buffers=12")
    env.wait_socket()
    rec = env.start("zcv-record", "--socket", sock, "--frames", str(n), "-o", env.path("rec.y4m"),
                    "--stats-json", env.path("rec.json"))
    check(env.wait(g, 60) == 0, "gst-launch (videotestsrc ! zcvsink) exited 0")
    check(env.wait(rec, 15) == 0, f"zcv-record exited 0 after {n} frames")
    r = env.json("rec.json")
    check(r["frames"] == n and r["dropped"] == 0 and r["path"] == "memfd",
          f"zcv-record got {r['frames']} frames of {n}, {r['dropped']} dropped, path {r['path']}")
    frames, copied_frames, copied, dropped = env.stats("gst")
    print(f"  zcvsink: {frames} frames, {copied_frames} copied ({copied} bytes), {dropped} dropped")
    check(frames == n and dropped == 0, f"zcvsink published {n} frames, dropped none")
    env.check_fds("gst")
    if expect_copy:
        check(copied_frames == n and copied == n * NV12_SIZE,
              f"every frame copied into the pool and counted ({copied} bytes)")
    else:
        check(copied == 0, "zcvsink copied 0 bytes: upstream rendered into the zcv pool")
    # GStreamer's own output of the same videotestsrc, as I420
    ref = env.path("ref.i420")
    r = subprocess.run(["gst-launch-1.0", "-q", *videotestsrc(n), "!", "videoconvert", "!",
                        "video/x-raw,format=I420", "!", "filesink", f"location={ref}"],
                       capture_output=True, text=True, timeout=120, env=env.env)
    check(r.returncode == 0, "reference pipeline wrote GStreamer's frames")
    gst_decode_and_compare(env, env.path("rec.y4m"), f"{W}x{H}", "I420", n, ref)


def test_sink_never_blocks(env):
    """A consumer that holds its frames forever (4 buffers, it may hold 2)
    never stalls a live upstream: zcvsink publishes every frame from the
    buffers left, without a copy, and the producer evicts the hog after
    the hold timeout."""
    n = 60
    g = env.gst("gst", "videotestsrc", "is-live=true", f"num-buffers={n}", "!",
                f"video/x-raw,format=NV12,width={W},height={H},framerate=30/1", "!", "zcvsink",
                f"socket={env.sock}", "buffers=4", "max-hold=2", "hold-timeout=300000000",
                "wait-consumers=1")
    env.wait_socket()
    hog = env.start("test-consumer", "--socket", env.sock, "--name", "hog", "--hold-forever")
    check(env.wait(g, 30) == 0, "gst-launch (live videotestsrc ! zcvsink) exited 0")
    env.wait(hog, 15)
    frames, copied_frames, copied, dropped = env.stats("gst")
    print(f"  zcvsink: {frames} frames, {copied} bytes copied, {dropped} dropped")
    check(frames == n and dropped == 0 and copied == 0,
          f"zcvsink published all {n} frames, none dropped or copied")
    check(re.search(r"consumer \d+ \(hog\) left: held frame \d+ for more than 300 ms", env.text("gst.err")),
          "the hog was evicted for holding too long")
    env.check_fds("gst")


def test_sink_socket_in_use(env):
    """A second zcvsink on a served socket fails with a clear error."""
    first = env.gst("first", "videotestsrc", "is-live=true", "!", "video/x-raw,format=NV12", "!",
                    "zcvsink", f"socket={env.sock}")
    env.wait_socket()
    g = env.gst("gst", "videotestsrc", "num-buffers=5", "!", "video/x-raw,format=NV12", "!",
                "zcvsink", f"socket={env.sock}")
    rc = env.wait(g, 15)
    out = env.text("gst.out") + env.text("gst.err")
    check(rc != 0 and "Cannot serve zcv socket" in out,
          f"gst-launch exited {rc} with 'Cannot serve zcv socket'")
    check(first.poll() is None, "the first producer still serves")
    first.kill()
    first.wait()


def test_sink_record(env):
    """videotestsrc ! zcvsink -> zcv-record: every frame, byte-exact,
    upstream renders into the proposed zcv pool (0 copies)."""
    sink_case(env, 30, [], False)


def test_sink_copy(env):
    """Upstream that does not take the proposed pool (identity
    drop-allocation): each frame is copied into the pool, counted."""
    sink_case(env, 30, ["!", "identity", "drop-allocation=true"], True)


def psnr_y(a, b, step=5):
    """PSNR of two Y planes, every step-th sample."""
    x, y = a[::step], b[::step]
    se = sum((p - q) * (p - q) for p, q in zip(x, y))
    return 99.0 if se == 0 else 10 * math.log10(255 * 255 * len(x) / se)


def test_rtsp(env):
    """zcv-capture -> zcv-rtsp (zcvsrc ! x264enc ! rtph264pay) -> an RTSP
    client over loopback (rtspsrc ! avdec_h264): frames arrive and match
    the pattern (PSNR against the best-matching source frame)."""
    try:
        rtsp = env.bin("zcv-rtsp")
    except Fail:
        print("SKIP: zcv-rtsp not built (gst-rtsp-server development files missing)")
        raise Skip()
    for el in ("x264enc", "avdec_h264", "rtspsrc"):
        if subprocess.run(["gst-inspect-1.0", el], capture_output=True, env=env.env).returncode:
            print(f"SKIP: GStreamer element {el} missing")
            raise Skip()
    n = 30
    ysize = W * H
    cap = env.capture(frames=None)
    srv = subprocess.Popen([rtsp, "--socket", env.sock, "--port", "0"], env=env.env,
                           stdout=open(env.path("zcv-rtsp.out"), "w"),
                           stderr=open(env.path("zcv-rtsp.err"), "w"))
    srv.label = "zcv-rtsp"
    env.procs.append(srv)
    wait_text(env, "zcv-rtsp.out", "serving rtsp://")
    url = re.search(r"rtsp://\S+", env.text("zcv-rtsp.out")).group(0)
    out = env.path("rtsp.i420")
    g = env.gst("client", "rtspsrc", f"location={url}", "protocols=tcp", "!", "rtph264depay", "!",
                "avdec_h264", "!", "videoconvert", "!", f"video/x-raw,format=I420,width={W},height={H}",
                "!", "identity", f"eos-after={n + 1}", "!", "filesink", f"location={out}")
    check(env.wait(g, 60) == 0, f"RTSP client ({url}) received and decoded the stream")
    srv.send_signal(signal.SIGINT)
    check(env.wait(srv, 15) == 0, "zcv-rtsp exited 0 on SIGINT")
    cap.send_signal(signal.SIGINT)
    check(env.wait(cap, 15) == 0, "zcv-capture exited 0")
    c, cc = check_producer(env)
    with open(out, "rb") as f:
        got = f.read()
    frames = len(got) // NV12_SIZE
    check(frames >= n, f"the client decoded {frames} frames")
    total = c["frames"]
    ref = env.path("ref.i420")
    check(env.run("pattern-ref", "i420", f"{W}x{H}", "0", str(total), ref, timeout=120).returncode == 0,
          f"reference frames 0..{total - 1} written")
    with open(ref, "rb") as f:
        refs = [f.read(NV12_SIZE)[:ysize] for _ in range(total)]
    worst, match = 99.0, []
    for k in range(frames):
        y = got[k * NV12_SIZE:k * NV12_SIZE + ysize]
        scores = [psnr_y(y, r) for r in refs]
        best = max(range(total), key=lambda i: scores[i])
        worst = min(worst, scores[best])
        match.append(best)
    print(f"  worst frame: {worst:.1f} dB against its best-matching source frame; "
          f"source frames matched: {match[0]}..{match[-1]}")
    check(worst >= 30.0, f"every decoded frame matches a source frame (PSNR {worst:.1f} dB >= 30)")
    check(match == sorted(match) and match[-1] > match[0],
          "the decoded frames follow the source frames in order (a moving stream, not a still)")



def srt_recipe():
    """The SRT recipe's sender and receiver pipelines, token by token, as
    README.md writes them."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")) as f:
        lines = [line for line in f.read().splitlines() if line.startswith("gst-launch-1.0 ")]
    send = [line for line in lines if "srtsink" in line]
    recv = [line for line in lines if "srtsrc" in line]
    check(len(send) == 1 and len(recv) == 1,
          f"README.md has one SRT sender and one receiver line ({len(send)}, {len(recv)})")
    return shlex.split(send[0])[1:], shlex.split(recv[0])[1:]


def substitute(argv, old, new):
    """argv with the one token equal to old replaced by new: a README
    recipe that changed shape fails here, it is not run half-edited."""
    hits = [i for i, a in enumerate(argv) if a == old]
    check(len(hits) == 1, f"the README recipe has the token {old!r} once ({len(hits)})")
    return argv[:hits[0]] + [new] + argv[hits[0] + 1:]


def udp_listening(port):
    """Whether some socket is bound to UDP port (any address)."""
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        if any(r.split()[1].rsplit(":", 1)[1] == f"{port:04X}" for r in rows):
            return True
    return False


def pattern_code(y):
    """The frame number the pattern writes into a frame's top rows (32
    white/black cells, most significant bit first), read from its Y plane
    at the middle of each cell."""
    cell_w = (W // 32) & ~1
    code_h = max(8, H // 16)
    code_h += code_h & 1
    row = (code_h // 2) * W
    k = 0
    for c in range(32):
        k = (k << 1) | (y[row + c * cell_w + cell_w // 2] > 128)
    return k


def test_srt(env):
    """README's SRT recipe over loopback, its two pipelines as written
    there (only the socket, port, host and output file substituted):
    zcv-capture pattern -> zcvsrc ! x264enc ! mpegtsmux ! srtsink, and
    srtsrc ! tsdemux ! avdec_h264 ! I420 ! filesink taking 300 frames.
    Each decoded frame is compared with the pattern frame whose number it
    carries in its top rows (PSNR), the numbers rise; zcvsrc copied 0
    bytes, the producer got everything back, and every process and the
    UDP port are gone at the end."""
    for el in ("srtsink", "srtsrc", "x264enc", "mpegtsmux", "tsdemux", "h264parse", "avdec_h264"):
        if subprocess.run(["gst-inspect-1.0", el], capture_output=True, env=env.env).returncode:
            print(f"SKIP: GStreamer element {el} missing (srtsink/srtsrc: gstreamer1.0-plugins-bad "
                  f"built with libsrt; x264enc: -ugly; avdec_h264: gstreamer1.0-libav)")
            raise Skip()
    send, recv = srt_recipe()
    n = int(next(a for a in recv if a.startswith("eos-after=")).split("=", 1)[1])
    # a free UDP port (the recipe's 8888 may be taken on this machine)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
    out = env.path("srt.i420")
    send = substitute(send, "socket=/run/user/1000/zcv/default.sock", f"socket={env.sock}")
    send = substitute(send, "uri=srt://:8888", f"uri=srt://:{port}")
    recv = substitute(recv, "uri=srt://HOST:8888", f"uri=srt://127.0.0.1:{port}")
    recv = substitute(recv, "location=srt.i420", f"location={out}")
    print(f"  sender:   gst-launch-1.0 {' '.join(send)}\n  receiver: gst-launch-1.0 {' '.join(recv)}")
    cap = env.capture(frames=None)
    snd = env.gst("sender", *send)
    end = time.time() + 30
    while not udp_listening(port):
        if snd.poll() is not None:
            raise Fail(f"the sender exited {snd.returncode} before it listened on UDP port {port}")
        if time.time() > end:
            raise Fail(f"the sender did not listen on UDP port {port} within 30 s")
        time.sleep(0.02)
    print(f"  ok: the sender listens on UDP port {port}")
    rcv = env.gst("receiver", *recv)
    check(env.wait(rcv, 120) == 0, f"the receiver (srt://127.0.0.1:{port}) decoded {n} frames and exited 0")
    # the producer's end of stream is zcvsrc's EOS: the sender ends by itself
    cap.send_signal(signal.SIGINT)
    check(env.wait(cap, 15) == 0, "zcv-capture exited 0 on SIGINT")
    check(env.wait(snd, 30) == 0, "the sender reached EOS when the producer ended, exited 0")
    frames, copied_frames, copied, dropped = env.stats("sender")
    print(f"  zcvsrc: {frames} frames, {copied_frames} copied ({copied} bytes), {dropped} dropped")
    check(frames > 0 and copied == 0 and copied_frames == 0, "zcvsrc copied 0 bytes (memfd path, lent)")
    env.check_fds("sender")
    c, cc = check_producer(env)
    check(cc["path"] == "memfd", f"producer: zcvsrc on the memfd path ({cc['path']})")
    with open(out, "rb") as f:
        got = f.read()
    check(len(got) == n * NV12_SIZE, f"the receiver wrote {n} frames ({len(got)} bytes)")
    ysize = W * H
    codes = [pattern_code(got[k * NV12_SIZE:k * NV12_SIZE + ysize]) for k in range(n)]
    total = c["frames"]
    check(all(0 <= a < b for a, b in zip(codes, codes[1:])) and codes[-1] < total,
          f"the frame numbers decoded rise and lie within the {total} captured "
          f"({codes[:3]}..{codes[-3:]})")
    first = codes[0]
    ref = env.path("ref.i420")
    check(env.run("pattern-ref", "i420", f"{W}x{H}", str(first), str(codes[-1] - first + 1), ref,
                  timeout=120).returncode == 0, f"reference frames {first}..{codes[-1]} written")
    with open(ref, "rb") as f:
        refs = f.read()
    scores = [psnr_y(got[k * NV12_SIZE:k * NV12_SIZE + ysize],
                     refs[(codes[k] - first) * NV12_SIZE:(codes[k] - first) * NV12_SIZE + ysize])
              for k in range(n)]
    worst = min(range(n), key=lambda k: scores[k])
    print(f"  {n} frames, source frames {first}..{codes[-1]} ({codes[-1] - first + 1 - n} not "
          f"received); worst {scores[worst]:.1f} dB (frame {codes[worst]})")
    check(scores[worst] >= 30.0,
          f"every decoded frame matches the source frame it carries the number of "
          f"(PSNR {scores[worst]:.1f} dB >= 30)")
    left = [p.label for p in env.procs if p.poll() is None]
    check(not left, f"no process left running ({left})")
    stray = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if env.tmp.encode() in f.read():
                    stray.append(pid)
        except OSError:
            pass
    check(not stray, f"no process on this machine names the test's directory ({stray})")
    check(not udp_listening(port), f"UDP port {port} is closed")


class Skip(Exception):
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test")
    ap.add_argument("--build-dir", required=True)
    a = ap.parse_args()
    if not shutil.which("gst-launch-1.0"):
        print("SKIP: gst-launch-1.0 not installed")
        return SKIP
    if not os.path.exists(os.path.join(a.build_dir, "gst", "libgstzcv.so")):
        print("SKIP: the zcv GStreamer plugin was not built (GStreamer dev files missing)")
        return SKIP
    env = GstEnv(a.build_dir)
    rc = 1
    try:
        globals()[f"test_{a.test}"](env)
        rc = 0
    except Skip:
        rc = SKIP
    except Fail as e:
        print(f"FAIL: {e}")
    finally:
        env.cleanup(rc != 1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
