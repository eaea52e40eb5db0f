#!/usr/bin/env python3
"""zcv-display against real KMS drivers, run inside the QEMU guest by
tests/vm/run.sh display_vkms | display_bochs | demo. Reuses the host
integration harness (tests/integration/run.py).

  display.py vkms   vivid XRGB8888 720p60 zero-copy on vkms with zcv-record
                    alongside, what vkms scanned out (writeback) == the
                    captured frame; NV12 through the copy fallback against a
                    reference conversion; a centred smaller frame; a memfd
                    stream; error paths
  display.py bochs  XRGB8888 on bochs (-vga std): PRIME import fails, copy
                    fallback, picture checked in the dumb buffer
  display.py demo   the README pipeline, leaving PNG + stats in the results dir
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.environ["ZCV_SOURCE_DIR"], "tests", "integration"))
from run import Env, Fail, check, consumer_by_name  # noqa: E402

W, H = 1280, 720


# ------------------------------------------------------------------ helpers

def drm_cards():
    """{driver: '/dev/dri/cardN'} from sysfs (vkms and vgem are bare platform
    devices without a bound driver: their device name is the driver's)."""
    cards = {}
    for n in sorted(os.listdir("/sys/class/drm")):
        if not re.fullmatch(r"card\d+", n):
            continue
        dev = os.path.realpath(f"/sys/class/drm/{n}/device")
        drv = f"/sys/class/drm/{n}/device/driver"
        name = os.path.basename(os.path.realpath(drv)) if os.path.exists(drv) else os.path.basename(dev)
        cards[name] = f"/dev/dri/{n}"
    return cards


def vivid_node():
    for n in sorted(os.listdir("/sys/class/video4linux")):
        with open(f"/sys/class/video4linux/{n}/name") as f:
            if re.match(r"vivid-\d+-vid-cap", f.read().strip()):
                return f"/dev/{n}"
    raise Fail("no vivid capture node")


def read_sums(path):
    out = {}
    with open(path) as f:
        for line in f:
            seq, h = line.split()
            out[int(seq)] = h
    return out


def read_png(path):
    """(width, height, rgb bytes) of an 8-bit RGB PNG; any filter type."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Fail(f"{path} is not a PNG")
    pos, idat, w = 8, [], None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(typ + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise Fail(f"{path}: bad CRC in chunk {typ}")
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype != 2:
                raise Fail(f"{path}: depth {depth} colour type {ctype}, expected 8-bit RGB")
        elif typ == b"IDAT":
            idat.append(body)
        pos += 12 + n
    raw = zlib.decompress(b"".join(idat))
    stride = w * 3
    out = bytearray()
    prev = bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 1:
            for i in range(3, stride):
                line[i] = (line[i] + line[i - 3]) & 255
        elif ft == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ft != 0:  # 3, 4: not produced by zcv; keep the checker short
            raise Fail(f"{path}: PNG filter {ft} not supported by this checker")
        out += line
        prev = line
    return w, h, bytes(out)


def xrgb_to_rgb(raw, w, h, stride):
    """B,G,R,X rows -> R,G,B bytes."""
    out = bytearray(w * h * 3)
    for y in range(h):
        row = raw[y * stride:y * stride + w * 4]
        o = y * w * 3
        out[o:o + w * 3:3] = row[2::4]
        out[o + 1:o + w * 3:3] = row[1::4]
        out[o + 2:o + w * 3:3] = row[0::4]
    return bytes(out)


def crop_rgb(rgb, w, x, y, cw, ch):
    return b"".join(rgb[((y + r) * w + x) * 3:((y + r) * w + x + cw) * 3] for r in range(ch))


def placement(fw, fh, dw, dh):
    """Where zcv centres a fw x fh frame in dw x dh: (sx, sy, dx, dy, w, h)."""
    w, h = min(fw, dw), min(fh, dh)
    return ((fw - w) // 2) & ~1, ((fh - h) // 2) & ~1, (dw - w) // 2, (dh - h) // 2, w, h


def nv12_reference(raw, fw, fh, x, y, bt709=True):
    """BT.709 (or 601) limited-range NV12 -> RGB of pixel (x, y), in floats,
    straight from the formulas (independent of zcv's fixed-point tables)."""
    yv = raw[y * fw + x]
    uv = fw * fh + (y // 2) * fw + (x // 2) * 2
    u, v = raw[uv] - 128, raw[uv + 1] - 128
    c = 1.164383 * (yv - 16)
    if bt709:
        r, g, b = c + 1.792741 * v, c - 0.213249 * u - 0.532909 * v, c + 2.112402 * u
    else:
        r, g, b = c + 1.596027 * v, c - 0.391762 * u - 0.812968 * v, c + 2.017232 * u
    return [min(255, max(0, round(t))) for t in (r, g, b)]


def stats_line(tag, d):
    lat = d["latency_us"]
    src = f" (source {d['_src_fps']:.1f} fps)" if d.get("_src_fps") else ""
    return (f"[{tag}] {d['driver']} {d['display_path']}: {d['frames']} frames, {d['flips']} flips at "
            f"{d['flip_rate']:.1f}/s{src}, skipped {d['skipped']}, dropped {d['dropped']}, path {d['path']}, "
            f"copied_bytes {d['copied_bytes']}, capture-to-flip p50 {lat['p50'] / 1000:.1f} ms "
            f"p99 {lat['p99'] / 1000:.1f} ms")


class Run:
    """One capture from vivid's HDMI input to zcv-display (and zcv-record)."""

    def __init__(self, env, tag, card, fmt="XRGB8888", frames=300, mode="1280x720", record=False,
                 display_args=(), keep=None, instrument=True, buffers=8):
        self.env, self.tag = env, tag
        sock = env.path(f"{tag}.sock")
        self.sums = env.path(f"{tag}.sums")
        out = keep or env.tmp
        self.png = os.path.join(out, f"{tag}.png")
        self.raw = env.path(f"{tag}.raw")
        self.cap_json = os.path.join(out, f"{tag}.zcv-capture.json")
        self.disp_json = os.path.join(out, f"{tag}.zcv-display.json")
        self.rec_json = os.path.join(out, f"{tag}.zcv-record.json")
        t0 = time.time()
        cap = env.start("zcv-capture", "--source", vivid_node(), "--input", "3",
                        "--dv-timings", f"{W}x{H}p60", "--format", fmt, "--frames", str(frames),
                        "--wait-consumers", "2" if record else "1", "--buffers", str(buffers),
                        "--max-hold", "3", "--require-zero-copy", "--socket", sock,
                        # checksums of every 30th frame and the last (the one left on
                        # screen): checksumming all of them starves the guest
                        *(("--checksums", self.sums, "--checksum-every", "30") if instrument else ()),
                        "--stats-json", self.cap_json)
        env.wait_socket(sock)
        disp = env.start("zcv-display", "--no-reconnect", "--device", card, *(("--mode", mode) if mode else ()),
                         "--socket", sock,
                         *(("--snapshot", self.png, "--snapshot-raw", self.raw) if instrument else ()),
                         "--stats-json", self.disp_json, *display_args)
        procs = [disp]
        if record:
            # raw frames to /dev/null: under TCG the guest cannot also write
            # 3.7 MB a frame at 60 fps to a file (see v4l2_capture.py)
            procs.append(env.start("zcv-record", "--no-reconnect", "--raw", "--socket", sock, "-o", "/dev/null",
                                   "--stats-json", self.rec_json))
        check(env.wait(cap, 90) == 0, f"[{tag}] zcv-capture exited 0")
        for p in procs:
            check(env.wait(p, 20) == 0, f"[{tag}] {p.label} exited 0")
        self.wall = time.time() - t0
        self.err = env.text("zcv-display.err")
        self.cap = env.json(self.cap_json)
        self.d = env.json(self.disp_json)
        self.rec = env.json(self.rec_json) if record else None
        self.d["_src_fps"] = self.cap["fps"]
        print("  " + stats_line(tag, self.d))

    def check_shown_is_captured(self):
        d, sums = self.d, read_sums(self.sums)
        seq = d["snapshot_sequence"]
        check(sums.get(seq) == d["shown_checksum"],
              f"[{self.tag}] the frame on screen at the end (sequence {seq}) is the frame the producer "
              f"captured (checksum {d['shown_checksum']})")
        check(seq == max(sums), f"[{self.tag}] it is the last frame captured ({max(sums)})")


# ------------------------------------------------------------------ tests

def test_vkms_zero_copy(env, card):
    # The flip rate from a run with nothing but capture and display: under
    # emulation even checksumming every 30th frame costs the guest frames.
    # 16 buffers: slack for the producer being scheduled late in the guest,
    # which otherwise leaves vivid without a queued buffer now and then
    # What vivid delivers under emulation depends on the host (its timer
    # thread runs late when the host is busy and it then loses frames), so
    # the checks are about what zcv controls: the driver never ran out of
    # buffers, and the display flipped to every frame it was given at the
    # rate it was given them. The absolute rate is a sanity floor only.
    floor = float(os.environ.get("ZCV_DISPLAY_MIN_FLIPS", "30"))
    r = Run(env, "vkms-rate", card, instrument=False, buffers=16)
    d, c = r.d, r.cap
    check(d["driver"] == "vkms" and d["modeset"] == "atomic" and d["mode"] == "1280x720@60",
          f"[vkms-xrgb] vkms, atomic, 1280x720@60 ({d['device']}, {d['connector']})")
    check(d["display_path"] == "zero-copy" and d["path"] == "dmabuf" and d["copied_bytes"] == 0
          and d["fallback_reason"] == "" and "copy path" not in r.err,
          "[vkms-xrgb] zero-copy: PRIME-imported DMA-BUFs scanned out, copied_bytes 0")
    check(d["imports"] == 16 and d["placement"] == "full",
          f"[vkms-xrgb] one framebuffer per pool buffer ({d['imports']} imports for 16 buffers)")
    check(c["source_starved"] == 0,
          f"[vkms-xrgb] the driver always had a buffer to capture into (starved {c['source_starved']} times; "
          f"vivid lost {c['source_dropped']} frames on its own)")
    check(d["flip_rate"] >= 0.9 * c["fps"] and d["flip_rate"] >= floor,
          f"[vkms-xrgb] {d['flip_rate']:.1f} flips/s: the pace vivid delivered ({c['fps']:.1f} fps; "
          f"floor {floor:g})")
    check(d["flips"] >= d["frames"] - d["skipped"] - 1 and d["held_max"] <= 3,
          f"[vkms-xrgb] every frame not skipped was flipped to ({d['flips']} flips, {d['skipped']} skipped, "
          f"held at most {d['held_max']})")
    rc = consumer_by_name(c, "zcv-display")
    check(rc["path"] == "dmabuf" and rc["end_reason"] == "end of stream",
          f"[vkms-xrgb] producer: zcv-display on the DMA-BUF path, left at end of stream "
          f"(sent {rc['frames_sent']}, skipped {rc['skipped']})")
    check(c["copied_bytes"] == 0 and c["fds_at_start"] == c["fds_at_end"],
          "[vkms-xrgb] producer copied nothing and leaked no fd")

    # what is on screen, from a second run with checksums and the snapshot
    r = Run(env, "vkms-xrgb", card, frames=120)
    d = r.d
    check(d["display_path"] == "zero-copy" and d["copied_bytes"] == 0,
          "[vkms-xrgb] zero-copy again with the snapshot taken")

    # what vkms scanned out == what vivid captured
    check(d["snapshot_source"] == "writeback" and d["snapshot_size"] == f"{W}x{H}",
          "[vkms-xrgb] snapshot through vkms' writeback connector, 1280x720")
    r.check_shown_is_captured()
    w, h, png = read_png(r.png)
    with open(r.raw, "rb") as f:
        raw = f.read()
    check((w, h) == (W, H) and len(raw) == W * H * 4, "[vkms-xrgb] PNG 1280x720, raw frame 1280x720x4")
    check(png == xrgb_to_rgb(raw, W, H, W * 4),
          "[vkms-xrgb] writeback image == captured frame, every pixel (R, G, B)")
    return r


def test_vkms_with_record(env, card):
    """zcv-display and zcv-record on one capture at once, both zero-copy."""
    r = Run(env, "vkms-rec", card, frames=120, record=True)
    d, rec, c = r.d, r.rec, r.cap
    check(d["display_path"] == "zero-copy" and d["copied_bytes"] == 0 and d["flips"] >= 100,
          f"[vkms-rec] zcv-display zero-copy ({d['flips']} flips, copied_bytes 0)")
    check(rec["path"] == "dmabuf" and rec["copied_bytes"] == 0 and rec["frames"] == 120,
          f"[vkms-rec] zcv-record zero-copy too ({rec['frames']} frames, copied_bytes 0)")
    check(c["copied_bytes"] == 0 and {x["name"]: x["path"] for x in c["consumers"]} ==
          {"zcv-display": "dmabuf", "zcv-record": "dmabuf"},
          "[vkms-rec] the producer lent the same DMA-BUFs to both and copied nothing")
    r.check_shown_is_captured()


def test_vkms_nv12_copy(env, card):
    r = Run(env, "vkms-nv12", card, fmt="NV12", frames=120)
    d = r.d
    check(d["display_path"] == "copy" and d["path"] == "copy" and d["stream_path"] == "dmabuf",
          "[vkms-nv12] copy fallback (the stream itself came zero-copy)")
    check("AddFB2" in d["fallback_reason"] and r.err.count("copy path:") == 1,
          f"[vkms-nv12] reason printed once: {d['fallback_reason']!r}")
    check(d["copied_bytes"] >= d["flips"] * W * H * 4 > 0,
          f"[vkms-nv12] copied_bytes {d['copied_bytes']} >= {d['flips']} flips x 1280x720x4")
    check(d["snapshot_source"] == "writeback", "[vkms-nv12] snapshot through writeback")
    r.check_shown_is_captured()
    w, h, png = read_png(r.png)
    with open(r.raw, "rb") as f:
        raw = f.read()
    check((w, h) == (W, H) and len(raw) == W * H * 3 // 2, "[vkms-nv12] PNG 1280x720, raw NV12 frame")
    worst, n = 0, 0
    for y in range(1, H, 7):
        for x in range(3, W, 11):
            ref = nv12_reference(raw, W, H, x, y)
            got = png[(y * W + x) * 3:(y * W + x) * 3 + 3]
            worst = max(worst, max(abs(a - b) for a, b in zip(ref, got)))
            n += 1
    check(worst <= 2, f"[vkms-nv12] scanned-out picture == BT.709 reference conversion of the captured "
                      f"NV12 frame within {worst} (<= 2) at {n} sampled pixels")


def test_vkms_centred(env, card):
    """A 1280x720 frame on a 1920x1080 mode: the plane is placed, not copied."""
    r = Run(env, "vkms-centred", card, frames=60, mode="1920x1080")
    d = r.d
    check(d["display_path"] == "zero-copy" and d["placement"] == "centred" and d["copied_bytes"] == 0,
          f"[vkms-centred] zero-copy, plane placed centred on 1920x1080 (placement {d['placement']})")
    w, h, png = read_png(r.png)
    with open(r.raw, "rb") as f:
        raw = f.read()
    sx, sy, dx, dy, cw, ch = placement(W, H, w, h)
    check((w, h) == (1920, 1080) and crop_rgb(png, w, dx, dy, cw, ch) == xrgb_to_rgb(raw, W, H, W * 4),
          f"[vkms-centred] writeback: the frame at ({dx},{dy}) pixel for pixel")
    border = crop_rgb(png, w, 0, 0, w, dy) + crop_rgb(png, w, 0, dy + ch, w, h - dy - ch)
    check(border == bytes(len(border)), "[vkms-centred] black above and below")


def test_vkms_legacy(env, card):
    """Legacy modesetting (SetCrtc + PageFlip), still zero-copy."""
    r = Run(env, "vkms-legacy", card, frames=60, display_args=("--legacy",))
    d = r.d
    check(d["modeset"] == "legacy" and d["display_path"] == "zero-copy" and d["copied_bytes"] == 0
          and d["flips"] >= 50,
          f"[vkms-legacy] legacy page flips of imported buffers ({d['flips']} flips, copied_bytes 0)")
    check(d["snapshot_source"] == "buffer", "[vkms-legacy] no writeback without atomic: snapshot from the frame")
    r.check_shown_is_captured()
    w, h, png = read_png(r.png)
    with open(r.raw, "rb") as f:
        raw = f.read()
    check((w, h) == (W, H) and png == xrgb_to_rgb(raw, W, H, W * 4), "[vkms-legacy] snapshot == captured frame")


def test_vkms_memfd_and_master(env, card):
    """A test-pattern (memfd) stream cannot be PRIME-imported: copy path. A
    second display on the same card cannot become DRM master."""
    sock = env.path("pat.sock")
    cap = env.start("zcv-capture", "--source", "pattern", "--size", "640x480", "--format", "XRGB8888",
                    "--fps", "30", "--max-hold", "3", "--socket", sock)
    env.wait_socket(sock)
    disp = env.start("zcv-display", "--no-reconnect", "--device", card, "--socket", sock, "--stats-json", env.path("pat.json"))
    end = time.time() + 15
    while "stream 640x480" not in env.text("zcv-display.err") and time.time() < end:
        time.sleep(0.1)
    time.sleep(1)
    second = env.run("zcv-display", "--no-reconnect", "--device", card, "--socket", sock)
    check(second.returncode == 1 and "cannot become DRM master" in second.stderr,
          f"second display on {card}: {second.stderr.strip()!r}")
    cap.send_signal(2)
    check(env.wait(cap, 20) == 0 and env.wait(disp, 20) == 0, "[pattern] producer stopped, display exited 0")
    d = env.json("pat.json")
    err = env.text("zcv-display.err")
    print("  " + stats_line("pattern", d))
    check(d["display_path"] == "copy" and d["stream_path"] == "memfd" and "cannot import" in d["fallback_reason"]
          and d["copied_bytes"] > 0 and d["flips"] > 10,
          f"[pattern] memfd stream shown through the copy path: {d['fallback_reason']!r}")
    check(d["placement"] == "centred" and d["mode"] == "1024x768@60",
          "[pattern] preferred mode 1024x768, 640x480 frame centred")
    check(err.count("copy path:") == 1, "[pattern] the reason was printed once")


def test_zcvsrc_kmssink(env, card):
    """GStreamer's kmssink shows a vivid DMA-BUF stream through zcvsrc with
    no copy: zcvsrc wraps the producer's DMA-BUFs as DMA-BUF memory and
    kmssink imports them (PRIME) instead of copying each frame."""
    plugin = os.path.join(env.build, "gst", "libgstzcv.so")
    if not os.path.exists(plugin) or not shutil.which("gst-launch-1.0"):
        print("  [zcvsrc] skipped: the GStreamer plugin is not built")
        return
    tag, n = "zcvsrc", 120
    sock = env.path(f"{tag}.sock")
    cap = env.start("zcv-capture", "--source", vivid_node(), "--input", "3", "--dv-timings", "1280x720p60",
                    "--format", "XRGB8888", "--frames", str(n), "--wait-consumers", "1", "--buffers", "12",
                    "--max-hold", "6", "--socket", sock, "--stats-json", env.path(f"{tag}.cap.json"))
    env.wait_socket(sock)
    genv = dict(os.environ, GST_PLUGIN_PATH=os.path.dirname(plugin), GST_REGISTRY=env.path("registry.bin"),
                GST_DEBUG_NO_COLOR="1", GST_DEBUG="zcvsrc:4,kmssink:6,GST_PERFORMANCE:5")
    g = subprocess.Popen(["gst-launch-1.0", "zcvsrc", f"socket={sock}", "max-hold=6", "!",
                          "kmssink", "driver-name=vkms", "sync=false"], env=genv, stdout=subprocess.DEVNULL,
                         stderr=open(env.path("gst.err"), "w"))
    g.label = "gst-launch-1.0"
    env.procs.append(g)
    check(env.wait(g, 120) == 0, f"[{tag}] gst-launch zcvsrc ! kmssink exited 0 at the end of the stream")
    check(env.wait(cap, 30) == 0, f"[{tag}] zcv-capture exited 0")
    log = env.text("gst.err")
    c = env.json(f"{tag}.cap.json")
    ci = consumer_by_name(c, "zcvsrc")
    stats = [l for l in log.splitlines() if "stats: frames=" in l]
    print(f"  [{tag}] producer sent {ci['frames_sent']}, path {ci['path']}; {stats[-1].split('stats: ')[-1] if stats else 'no stats'}")
    # how many frames GStreamer takes in time depends on the guest's load
    # (a frame it is still holding when the next comes is skipped, and
    # counted): what is checked is that every frame is accounted for
    frames = int(stats[-1].split("frames=")[1].split()[0]) if stats else -1
    check(ci["path"] == "dmabuf" and ci["frames_sent"] > 0 and frames == ci["frames_sent"]
          and ci["frames_sent"] + ci["skipped"] == c["frames"],
          f"[{tag}] zcvsrc got the stream on the DMA-BUF path: {ci['frames_sent']} frames, "
          f"{ci['skipped']} skipped, of {c['frames']}")
    # zcvsrc copies only when the pipeline fell so far behind that the
    # producer had to skip it with its whole grant held (then one frame in
    # a grant is copied, so the stream never stalls): with no skip, no copy
    copied = int(stats[-1].split("copied_frames=")[1].split()[0]) if stats else -1
    check(copied == 0 or (0 < copied < ci["frames_sent"] and ci["skipped"] > 0),
          f"[{tag}] zcvsrc copied {copied} frames, only while the producer had to skip it "
          f"({ci['skipped']} skips)")
    # kmssink copies a buffer it cannot import: only the frames zcvsrc itself
    # copied into system memory may be among them
    kms_copies = log.count("frame copy")
    check("found these prime ids" in log and (kms_copies == 0 or copied > 0),
          f"[{tag}] kmssink imported the DMA-BUFs (PRIME); it copied ({kms_copies} log lines) "
          f"only if zcvsrc handed it frames in system memory ({copied})")


def test_display_rebind(env, card):
    """zcv-capture --persistent with zcv-display (vkms, PRIME import) and
    zcv-record: vivid unbound and bound again twice mid-stream. Neither
    consumer reconnects or leaves: each is told the source went and came
    back, gets the next pool generation and goes on, the display showing
    frames of the last one. No pool
    size is given: the producer grows vivid's buffers (VIDIOC_CREATE_BUFS)
    to what the display (3), zcv-record (8) and the sample sink (the
    default, 2) ask to hold plus its own 2."""
    from run import parse_print_sink  # noqa: E402
    drv = "/sys/bus/platform/drivers/vivid"
    pdev = [d for d in os.listdir(drv) if d.startswith("vivid.")][0]
    tag = "rebind"
    sock = env.path(f"{tag}.sock")
    cap = env.start("zcv-capture", "--source", vivid_node(), "--persistent", "--input", "3",
                    "--dv-timings", f"{W}x{H}p60", "--format", "XRGB8888", "--wait-consumers", "3",
                    "--require-zero-copy", "--socket", sock, "--stats-json", env.path(f"{tag}.cap.json"))
    env.wait_socket(sock)
    disp = env.start("zcv-display", "--device", card, "--socket", sock,
                     "--snapshot", env.path(f"{tag}.png"), "--stats-json", env.path(f"{tag}.disp.json"))
    rec = env.start("zcv-record", "--raw", "--socket", sock, "-o", "/dev/null",
                    "--stats-json", env.path(f"{tag}.rec.json"))
    sample = env.start("zcv-sample-print", sock, stdout=open(env.path(f"{tag}.print"), "w"))

    def frames():
        return parse_print_sink(env.text(f"{tag}.print"))

    def wait(what, cond, timeout=30):
        end = time.time() + timeout
        while not cond():
            if time.time() > end:
                raise Fail(f"[{tag}] timed out waiting for {what}")
            time.sleep(0.05)

    wait("60 frames", lambda: len(frames()) >= 60)
    before_last = 0
    for i in (1, 2):
        with open(f"{drv}/unbind", "w") as fh:
            fh.write(pdev)
        wait(f"the producer to see the device gone ({i})",
             lambda: env.text("zcv-capture.err").count("is gone") == i, 10)
        before_last = max(s for s, _, _ in frames())
        time.sleep(0.5)
        with open(f"{drv}/bind", "w") as fh:
            fh.write(pdev)
        wait(f"the device back ({i})", lambda: env.text("zcv-capture.err").count("is back") == i, 15)
        n = len(frames())
        wait(f"60 more frames after rebind {i}", lambda: len(frames()) >= n + 60)
        check(disp.poll() is None and rec.poll() is None,
              f"[{tag}] zcv-display and zcv-record still running after rebind {i}")
    cap.send_signal(2)
    check(env.wait(cap, 30) == 0, f"[{tag}] zcv-capture exited 0 on SIGINT")
    check(env.wait(sample, 20) == 0, f"[{tag}] the sample sink exited 0 at the end of the stream")
    # zcv-display and zcv-record reconnect by default: after the producer
    # is gone they wait for the next one, until stopped
    for p in (disp, rec):
        wait(f"{p.label} waiting for the next producer",
             lambda: "waiting to reconnect" in env.text(f"{p.label}.err"), 20)
        check(p.poll() is None, f"[{tag}] {p.label} waits for the next producer")
        p.send_signal(2)
        check(env.wait(p, 20) == 0, f"[{tag}] {p.label} exited 0 on SIGINT")
    c = env.json(f"{tag}.cap.json")
    d = env.json(f"{tag}.disp.json")
    r = env.json(f"{tag}.rec.json")
    derr = env.text("zcv-display.err")
    print(f"  [{tag}] allocation: {c['allocation']}")
    print("  " + stats_line(tag, d))
    m = re.search(r"VIDIOC_CREATE_BUFS: (\d+) driver buffers", c["allocation"])
    check(m and int(m.group(1)) == 15,
          f"[{tag}] the producer grew vivid's buffers to 3 + 8 + 2 + 2 = 15 for the holds asked")
    by = {x["name"]: x for x in c["consumers"]}
    check(set(by) == {"zcv-display", "zcv-record", "print-sink"} and len(c["consumers"]) == 3,
          f"[{tag}] the three consumers stayed on one connection each: {[x['name'] for x in c['consumers']]}")
    check(by["zcv-display"]["max_hold"] == 3 and by["zcv-record"]["max_hold"] == 8,
          f"[{tag}] each was granted the hold it asked for (display {by['zcv-display']['max_hold']}, "
          f"record {by['zcv-record']['max_hold']})")
    check(all(x["end_error"] == 0 for x in c["consumers"]),
          f"[{tag}] nobody was evicted: {[(x['name'], x['end_reason']) for x in c['consumers']]}")
    check(c["source_lost"] == 2 and c["source_returned"] == 2 and c["fds_at_start"] == c["fds_at_end"],
          f"[{tag}] device lost and back twice; producer fds {c['fds_at_start']} at start, {c['fds_at_end']} at end")
    rerr = env.text("zcv-record.err")
    check(derr.count("source gone") == 2 and derr.count("source back") == 2 and
          rerr.count("source gone") == 2 and rerr.count("source back") == 2,
          f"[{tag}] the producer told zcv-display and zcv-record each time the device went and came "
          f"back: {[l for l in derr.splitlines() if 'source' in l]}")
    gens = [int(g) for g in re.findall(r"over dmabuf \(generation (\d+),", derr)]
    check(len(gens) == 3 and gens == sorted(set(gens)) and "reconnected" not in derr,
          f"[{tag}] zcv-display was given 3 generations on its one connection: {gens}")
    check(d["display_path"] == "zero-copy" and d["copied_bytes"] == 0 and
          d["frames"] == by["zcv-display"]["frames_sent"],
          f"[{tag}] zcv-display zero-copy throughout, got all {d['frames']} frames sent to it")
    check(d["snapshot_sequence"] > before_last,
          f"[{tag}] the frame on screen at the end ({d['snapshot_sequence']}) came after the last rebind "
          f"(last frame before it: {before_last})")
    check(r["frames"] == by["zcv-record"]["frames_sent"] and r["copied_bytes"] == 0,
          f"[{tag}] zcv-record got all {r['frames']} frames sent to it, copied_bytes 0")


def test_v4l2src_zcvsink(env, card):
    """GStreamer's v4l2src io-mode=dmabuf into zcvsink, zcv-display on vkms:
    zcvsink registers vivid's DMA-BUFs once (learning them while nobody
    streams, so not one frame is copied) and lends them by index;
    zcv-display PRIME-imports them and never copies. vivid keeps the input
    and DV timings test_zcvsrc_kmssink left (HDMI, 1280x720p60); the caps
    fix no rate, so the webcam input's 1280x720 would do too."""
    plugin = os.path.join(env.build, "gst", "libgstzcv.so")
    if not os.path.exists(plugin) or not shutil.which("gst-launch-1.0"):
        print("  [zcvsink] skipped: the GStreamer plugin is not built")
        return
    tag, n = "zcvsink", 300
    sock = env.path(f"{tag}.sock")
    genv = dict(os.environ, GST_PLUGIN_PATH=os.path.dirname(plugin), GST_REGISTRY=env.path("registry.bin"),
                GST_DEBUG_NO_COLOR="1", GST_DEBUG="zcvsink:4")
    g = subprocess.Popen(["gst-launch-1.0", "v4l2src", f"device={vivid_node()}", "io-mode=dmabuf",
                          f"num-buffers={n}", "!", f"video/x-raw,format=BGRx,width={W},height={H}", "!",
                          "zcvsink", f"socket={sock}", "max-hold=3"], env=genv, stdout=subprocess.DEVNULL,
                         stderr=open(env.path(f"{tag}.gst.err"), "w"))
    g.label = "gst-launch-1.0"
    env.procs.append(g)
    # the display joins once the set is registered: it sees only the
    # DMA-BUF generation (frames before went to nobody and were not copied)
    end = time.time() + 60
    while "registered " not in env.text(f"{tag}.gst.err"):
        if g.poll() is not None or time.time() > end:
            raise Fail(f"[{tag}] zcvsink never registered vivid's buffers: "
                       f"{env.text(f'{tag}.gst.err')[-2000:]!r}")
        time.sleep(0.05)
    disp_json = env.path(f"{tag}.zcv-display.json")
    disp = env.start("zcv-display", "--no-reconnect", "--device", card, "--socket", sock,
                     "--stats-json", disp_json)
    check(env.wait(g, 120) == 0, f"[{tag}] gst-launch v4l2src ! zcvsink exited 0 after {n} frames")
    check(env.wait(disp, 20) == 0, f"[{tag}] zcv-display exited 0 at the end of the stream")
    log = env.text(f"{tag}.gst.err")
    stats = [line for line in log.splitlines() if "stats: frames=" in line]
    check(stats, f"[{tag}] zcvsink printed its stats at stop")
    st = dict(kv.split("=", 1) for kv in stats[-1].split("stats: ")[-1].split())
    print(f"  [{tag}] zcvsink: {stats[-1].split('stats: ')[-1]}")
    d = env.json(disp_json)
    print("  " + stats_line(tag, d))
    # the producer's account of the display, at zcvsink's stop (the display
    # may still be hanging up then)
    acct = re.search(r'consumer stats: \d+ \(zcv-display\) path (\w+) sent (\d+) skipped (\d+) end "([^"]*)"', log)
    check(acct, f"[{tag}] zcvsink logged its account of zcv-display")
    cpath, sent, skipped, reason = acct.group(1), int(acct.group(2)), int(acct.group(3)), acct.group(4)
    nreg = int(re.search(r"registered (\d+) DMA-BUF buffers of upstream", log).group(1))
    check(int(st["copied_bytes"]) == 0 and int(st["copied_frames"]) == 0 and st["path"] == "dmabuf-registered"
          and int(st["relearned"]) == 0,
          f"[{tag}] zcvsink copied 0 bytes: {nreg} DMA-BUFs registered once, path {st['path']}, "
          f"relearned {st['relearned']} times")
    check(int(st["frames"]) == n and int(st["dropped"]) == 0
          and int(st["registered_frames"]) + int(st["unsent"]) == n,
          f"[{tag}] every one of the {n} frames lent by index ({st['registered_frames']}) or, before the "
          f"display joined, sent to nobody ({st['unsent']}); none dropped")
    check(cpath == "dmabuf" and reason in ("", "end of stream") and sent > 0
          and sent + skipped <= int(st["registered_frames"]),
          f"[{tag}] producer: zcv-display on the DMA-BUF path to the end (sent {sent}, skipped {skipped}, "
          f"end {reason!r})")
    check(d["path"] == "dmabuf" and d["display_path"] == "zero-copy" and d["copied_bytes"] == 0
          and d["fallback_reason"] == "" and "copy path" not in env.text("zcv-display.err"),
          f"[{tag}] zcv-display imported the DMA-BUFs (PRIME) and copied nothing")
    check(d["imports"] == nreg, f"[{tag}] one import per registered buffer ({d['imports']} of {nreg})")
    # how many frames the display takes in time depends on the guest's
    # load: every frame sent arrived, and every frame not skipped was shown
    check(d["frames"] == sent and d["flips"] >= d["frames"] - d["skipped"] - 1,
          f"[{tag}] every frame sent arrived ({d['frames']} of {sent}); {d['flips']} flips, "
          f"{d['skipped']} skipped by the display")
    # zcvsink closes exactly its one dup per registered buffer at stop;
    # v4l2src's own fds are open still or already gone (it may stop first)
    fds = re.search(r"registered fds: upstream (\d+), ours before stop (\d+), ours open after stop "
                    r"(\d+), all open after stop (\d+)", log)
    up, ours, ours_after, after = (int(x) for x in fds.groups()) if fds else (-1, -1, -1, -1)
    check(fds and ours == nreg and ours_after == 0 and after <= up,
          f"[{tag}] zcvsink closed its {ours} dups of the {nreg} registered buffers at stop ({ours_after} "
          f"left open; {after} fds open on them after stop, v4l2src's own: {up})")


def test_errors(env, cards):
    def expect(args, text, rc=1, pre=()):
        cmd = [*pre, env.bin("zcv-display"), *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        check(r.returncode == rc and text in r.stderr,
              f"zcv-display {' '.join(args)}{' (no /dev/dri)' if pre else ''} -> exit {r.returncode}: "
              f"{r.stderr.strip()!r}")

    unshare = shutil.which("unshare")
    if unshare:  # an empty /dev/dri in a private mount namespace
        expect([], "no DRM device", pre=(unshare, "-m", "sh", "-c", 'mount -t tmpfs none /dev/dri && exec "$0" "$@"'))
    expect(["--device", "/dev/dri/card9"], "cannot open /dev/dri/card9")
    expect(["--device", "/dev/null"], "is not a DRM device")
    expect(["--device", cards["vgem"]], "has no connected connector")
    expect(["--device", cards["vkms"], "--mode", "123x45"], "has no mode 123x45; it offers: 1024x768@60 (preferred)")
    expect(["--device", cards["vkms"], "--connector", "HDMI-A-7"], "has no connector named HDMI-A-7")
    expect(["--no-reconnect", "--device", cards["vkms"], "--socket", env.path("none.sock")],
           "is zcv-capture running?")
    expect(["--mode", "big"], "--mode needs WIDTHxHEIGHT", rc=2)
    expect(["--frobnicate"], "Usage:", rc=2)


def main_vkms(env):
    cards = drm_cards()
    check("vkms" in cards and "vgem" in cards, f"vkms and vgem cards: {cards}")
    test_vkms_zero_copy(env, cards["vkms"])
    test_vkms_with_record(env, cards["vkms"])
    test_vkms_nv12_copy(env, cards["vkms"])
    test_vkms_centred(env, cards["vkms"])
    test_vkms_legacy(env, cards["vkms"])
    test_vkms_memfd_and_master(env, cards["vkms"])
    test_zcvsrc_kmssink(env, cards["vkms"])
    test_v4l2src_zcvsink(env, cards["vkms"])
    test_display_rebind(env, cards["vkms"])
    test_errors(env, cards)


def main_bochs(env):
    cards = drm_cards()
    check("bochs-drm" in cards, f"bochs card (QEMU -vga std): {cards}")
    card = cards["bochs-drm"]
    r = Run(env, "bochs-xrgb", card, frames=120, mode=None)
    d = r.d
    check(d["driver"] == "bochs-drm", f"[bochs] {d['device']} {d['connector']} {d['mode']} ({d['modeset']})")
    check(d["display_path"] == "copy" and d["path"] == "copy" and "drmPrimeFDToHandle" in d["fallback_reason"]
          and "Invalid argument" in d["fallback_reason"] and r.err.count("copy path:") == 1,
          f"[bochs] PRIME import refused, copy fallback, said once: {d['fallback_reason']!r}")
    check(d["copied_bytes"] >= d["flips"] * W * H * 4 > 0 and d["flips"] >= 30,
          f"[bochs] copied_bytes {d['copied_bytes']} for {d['flips']} flips")
    check(d["snapshot_source"] == "buffer", "[bochs] no writeback: snapshot from the dumb buffer on screen")
    r.check_shown_is_captured()
    w, h, png = read_png(r.png)
    with open(r.raw, "rb") as f:
        raw = f.read()
    sx, sy, dx, dy, cw, ch = placement(W, H, w, h)
    want = crop_rgb(xrgb_to_rgb(raw, W, H, W * 4), W, sx, sy, cw, ch)
    check(crop_rgb(png, w, dx, dy, cw, ch) == want,
          f"[bochs] the {w}x{h} screen shows the captured frame centred, pixel for pixel "
          f"(frame ({sx},{sy}) {cw}x{ch} at ({dx},{dy}))")


def main_demo(env):
    out = os.environ["ZCV_RESULTS_DIR"]
    cards = drm_cards()
    check("vkms" in cards, f"vkms card: {cards}")
    secs = int(os.environ.get("ZCV_DEMO_SECONDS", "5"))
    r = Run(env, "demo", cards["vkms"], frames=60 * secs, record=True, keep=out)
    with open(os.path.join(out, "demo.summary.txt"), "w") as f:
        f.write(stats_line("zcv-display", r.d) + "\n")
        c, rec = r.cap, r.rec
        f.write(f"[zcv-capture] {c['frames']} frames at {c['fps']:.1f} fps from vivid, path {c['path']}, "
                f"copied_bytes {c['copied_bytes']}\n")
        f.write(f"[zcv-record] {rec['frames']} frames, path {rec['path']}, copied_bytes {rec['copied_bytes']}, "
                f"latency p50 {rec['latency_us']['p50'] / 1000:.1f} ms\n")
        f.write(f"snapshot of frame {r.d['snapshot_sequence']} ({r.d['snapshot_source']}): {r.png}\n")
    os.unlink(r.raw)


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "vkms"
    env = Env(os.environ.get("ZCV_BUILD_DIR"))
    ok = False
    t0 = time.time()
    try:
        {"vkms": main_vkms, "bochs": main_bochs, "demo": main_demo}[what](env)
        ok = True
    except Fail as e:
        print(f"FAIL: {e}")
    finally:
        res = os.environ.get("ZCV_RESULTS_DIR")
        if res:  # keep the pictures and stats for a person to look at
            for f in os.listdir(env.tmp):
                if f.endswith((".png", ".json", ".err")):
                    shutil.copy(env.path(f), res)
        env.cleanup(ok)
        print(f"display {what}: {'PASS' if ok else 'FAIL'} in {time.time() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
