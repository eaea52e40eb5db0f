#!/usr/bin/env python3
"""Consumers that outlive their producer (issue 12): reconnect after the
producer is killed and restarted, start before it, and a shutdown that
tells every consumer why. Real zcv processes over real sockets.

Usage: test_reconnect.py TEST --build-dir DIR. Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Env, Fail, check  # noqa: E402
from test_exit_json import text_or_empty  # noqa: E402

# The budget: a consumer streams again within 1 s of the new
# producer's socket appearing.
RESUME_BUDGET_S = 1.0
RESTARTS = 5


def wait_for(what, cond, timeout=20, step=0.005):
    """Waits for something another process writes (a line in its log, a
    file): there is no event to block on across processes here. Returns
    what cond returned (a time stamp, for the resume times), finer grained
    than test_exit_json's."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise Fail(f"timed out waiting for {what}")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def parse_log(text):
    """test-consumer --log: [("format", id, gen, ns) | ("frame", gen, seq, ns)]"""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) == 4 and f[0] == "format":
            out.append(("format", f[1], int(f[2]), int(f[3])))
        elif len(f) == 4 and f[0] == "frame":
            out.append(("frame", int(f[1]), int(f[2]), int(f[3])))
    return out


def start_capture(env, n, *extra):
    return env.start("zcv-capture", "--size", "320x240", "--format", "I420", "--fps", "60",
                     "--socket", env.sock, *extra,
                     stdout=open(env.path(f"cap{n}.out"), "w"))


def socket_appears(env):
    """Monotonic ns at which the socket file (re)appeared, polled every 5 ms."""
    return wait_for("the producer's socket", lambda: os.path.exists(env.sock) and
                    time.monotonic_ns(), timeout=10, step=0.002)


def check_log(log, label):
    """No frame of an old stream after a new format; sequences increase
    within each stream."""
    gen, last, stale, back, streams = None, None, 0, 0, []
    for e in log:
        if e[0] == "format":
            if not streams or streams[-1] != e[1]:
                streams.append(e[1])
                last = None
            gen = e[2]
        else:
            if e[1] != gen:
                stale += 1
            if last is not None and e[2] <= last:
                back += 1
            last = e[2]
    check(stale == 0, f"{label}: no frame of an earlier stream after a new format")
    check(back == 0, f"{label}: sequences increase within each stream")
    return streams


def test_restart(env):
    """zcv-capture killed (SIGKILL) and restarted 5 times under zcv-record
    (reconnect by default) and test-consumer --reconnect: each resumes
    within 1 s of the new socket, no stale frame, fds back to baseline."""
    cap = start_capture(env, 0)
    socket_appears(env)
    rec = env.start("zcv-record", "--socket", env.sock, "-o", env.path("out.y4m"),
                    "--max-hold", "16", "--stats-json", env.path("rec.json"))
    tc = env.start("test-consumer", "--socket", env.sock, "--reconnect", "--verify",
                   "--pattern", "bars", "--log", env.path("tc.log"),
                   "--stats-json", env.path("tc.json"))
    log = lambda: parse_log(text_or_empty(env, "tc.log"))  # noqa: E731
    wait_for("test-consumer's first frames", lambda: sum(e[0] == "frame" for e in log()) >= 10)
    wait_for("zcv-record's first frames", lambda: os.path.exists(env.path("out.y4m")) and
             os.path.getsize(env.path("out.y4m")) > 0)
    base = {"zcv-record": fd_count(rec.pid), "test-consumer": fd_count(tc.pid)}
    print(f"  fds at the first stream: {base}")
    resumes_tc, resumes_rec = [], []
    for i in range(1, RESTARTS + 1):
        cap.send_signal(signal.SIGKILL)
        cap.wait()
        for name in ("zcv-record", "test-consumer"):
            wait_for(f"{name} to see producer {i - 1} gone",
                     lambda: text_or_empty(env, f"{name}.err").count("producer gone") == i)
        formats_before = sum(e[0] == "format" for e in log())
        cap = start_capture(env, i)
        t_sock = socket_appears(env)

        def first_frame_ns():
            seen = 0
            for e in log():
                seen += e[0] == "format"
                if seen > formats_before and e[0] == "frame":
                    return e[3]
            return None
        t_frame = wait_for(f"test-consumer's first frame from producer {i}", first_frame_ns)
        t_rec = wait_for(f"zcv-record to reconnect to producer {i}",
                         lambda: text_or_empty(env, "zcv-record.err").count("reconnected:") == i
                         and time.monotonic_ns())
        resumes_tc.append((t_frame - t_sock) / 1e9)
        resumes_rec.append((t_rec - t_sock) / 1e9)
    print("  test-consumer: socket to first frame of the new stream: "
          + ", ".join(f"{x * 1000:.0f} ms" for x in resumes_tc))
    print("  zcv-record: socket to its 'reconnected' line: "
          + ", ".join(f"{x * 1000:.0f} ms" for x in resumes_rec))
    check(max(resumes_tc) < RESUME_BUDGET_S, f"test-consumer resumed within {RESUME_BUDGET_S} s each time")
    check(max(resumes_rec) < RESUME_BUDGET_S, f"zcv-record resumed within {RESUME_BUDGET_S} s each time")
    wait_for("frames of the last stream", lambda: sum(e[0] == "frame" for e in log()) > 0 and
             log()[-1][0] == "frame")
    now = {"zcv-record": fd_count(rec.pid), "test-consumer": fd_count(tc.pid)}
    check(now == base, f"consumers' fds back to baseline after {RESTARTS} restarts ({now}, {base})")
    streams = check_log(log(), "test-consumer")
    check(len(streams) == RESTARTS + 1 and len(set(streams)) == RESTARTS + 1,
          f"test-consumer saw {RESTARTS + 1} streams, each with its own id")
    for p in (tc, rec):
        p.send_signal(signal.SIGTERM)
    check(env.wait(tc, 10) == 0, "test-consumer exits 0 on SIGTERM")
    check(env.wait(rec, 10) == 0, "zcv-record exits 0 on SIGTERM")
    t = env.json("tc.json")
    check(t["stale"] == 0 and t["out_of_order"] == 0 and t["mismatches"] == 0,
          f"test-consumer: stale {t['stale']}, out of order {t['out_of_order']}, "
          f"mismatches {t['mismatches']}")
    r = env.json("rec.json")
    check(r["frames"] > 0 and r["copied_bytes"] == 0, f"zcv-record wrote {r['frames']} frames")
    for name in ("zcv-record", "test-consumer"):
        err = env.text(f"{name}.err")
        check(err.count("producer gone") == RESTARTS and err.count("reconnected:") == RESTARTS,
              f"{name} printed one line per disconnect and per reconnect")
    cap.send_signal(signal.SIGINT)
    check(env.wait(cap, 10) == 0, "the last zcv-capture exits 0")


def test_wait(env):
    """Consumers started 2 s before the producer get frames: zcv-record
    (reconnect implies waiting) and test-consumer --wait --no-reconnect."""
    rec = env.start("zcv-record", "--socket", env.sock, "-o", env.path("out.y4m"),
                    "--frames", "30")
    tc = env.start("test-consumer", "--socket", env.sock, "--wait", "--frames", "30",
                   "--verify", "--stats-json", env.path("tc.json"))
    # the scenario, not a synchronisation: the producer comes 2 s later
    time.sleep(2)
    check(rec.poll() is None and tc.poll() is None, "both consumers wait for the producer")
    cap = start_capture(env, 0, "--stats-json", env.path("cap.json"))
    check(env.wait(tc, 20) == 0, "test-consumer --wait got its 30 frames, exit 0")
    check(env.wait(rec, 20) == 0, "zcv-record got its 30 frames, exit 0")
    t = env.json("tc.json")
    check(t["frames"] == 30 and t["mismatches"] == 0, "test-consumer: 30 frames, content verified")
    # without --wait and without reconnect: exits at once, as before
    r = env.run("test-consumer", "--socket", env.path("nobody.sock"), "--frames", "1")
    check(r.returncode == 1 and "is zcv-capture running?" in r.stderr,
          "test-consumer without --wait exits 1 when there is no producer")
    r = env.run("zcv-record", "--no-reconnect", "--socket", env.path("nobody.sock"), "-o",
                env.path("x.y4m"))
    check(r.returncode == 1 and "is zcv-capture running?" in r.stderr,
          "zcv-record --no-reconnect exits 1 when there is no producer")
    cap.send_signal(signal.SIGINT)
    check(env.wait(cap, 10) == 0, "zcv-capture exits 0")


def test_shutdown(env):
    """SIGINT with consumers still connected (one holding frames): every
    consumer's end_reason is filled; a consumer's own clean end (--frames)
    is logged by the producer as "consumer closed", not as a reset."""
    cap = start_capture(env, 0, "--stats-json", env.path("cap.json"), "--max-hold", "3")
    socket_appears(env)
    holder = env.start("test-consumer", "--socket", env.sock, "--name", "holder",
                       "--hold-ms", "400", "--max-hold", "2")
    plain = env.start("zcv-record", "--no-reconnect", "--socket", env.sock, "--name", "rec",
                      "-o", env.path("out.y4m"))
    # consumers that end on their own, several times
    for i in range(5):
        r = env.run("test-consumer", "--socket", env.sock, "--name", f"short{i}", "--frames", "3")
        check(r.returncode == 0, f"test-consumer --frames 3 (#{i}) exits 0")
        r = env.run("zcv-record", "--socket", env.sock, "--name", f"rshort{i}", "--frames", "3",
                    "-o", env.path(f"short{i}.y4m"))
        check(r.returncode == 0, f"zcv-record --frames 3 (#{i}) exits 0")
    wait_for("the holder and zcv-record to join",
             lambda: text_or_empty(env, "zcv-capture.err").count("joined") >= 12)
    # the short ones' goodbyes read before the end (else "producer stopped"
    # is what the producer last had to say to them: that is not the point)
    wait_for("the producer to see the short consumers go",
             lambda: text_or_empty(env, "zcv-capture.err").count("left:") >= 10)
    cap.send_signal(signal.SIGINT)
    check(env.wait(cap, 15) == 0, "zcv-capture exits 0 on SIGINT")
    for p in (holder, plain):
        check(env.wait(p, 10) == 0, f"{p.label} exits 0 at the producer's end")
    c = env.json("cap.json")
    reasons = {k["name"]: k["end_reason"] for k in c["consumers"]}
    print(f"  end reasons: {reasons}")
    check(all(reasons.values()), "every consumer in the producer's stats has an end_reason")
    for i in range(5):
        for n in (f"short{i}", f"rshort{i}"):
            check(reasons.get(n) == "consumer closed", f"{n}'s own end: 'consumer closed'")
    err = env.text("zcv-capture.err")
    check("reset by peer" not in err, "the producer logged no connection reset")


def test_pause(env):
    """The producer stopped for 3 s (SIGSTOP, as a host stall looks): a
    consumer that keeps its latest frame on screen, as a display does, and
    says so is not evicted, nor is zcv-record, which gives frames back at
    once. (Whether a holder that does not say so is evicted after a stall
    depends on which the producer sees first when it runs again, its
    timer or the release of the frame it just sent; test_slow shows the
    flag's difference on a stream that is slow while the producer runs.)
    (After the pause the pattern source is 3 s late and renders back to
    back: consumers are skipped then, and count it; that is not tested.)"""
    cap = start_capture(env, 0, "--fps", "30", "--wait-consumers", "2", "--buffers", "12",
                        "--max-hold", "3", "--stats-json", env.path("cap.json"))
    env.wait_socket()
    kept = env.start("test-consumer", "--socket", env.sock, "--name", "keeps-latest",
                     "--keep-latest", "--stats-json", env.path("kept.json"))
    rec = env.start("zcv-record", "--no-reconnect", "--socket", env.sock, "-o", "/dev/null",
                    "--raw", "--stats-json", env.path("rec.json"))
    wait_for("the consumers streaming", lambda: text_or_empty(env, "zcv-capture.err").count(
        "joined") == 2, timeout=20)
    time.sleep(1)  # a second of stream, then the pause
    cap.send_signal(signal.SIGSTOP)
    time.sleep(3)
    cap.send_signal(signal.SIGCONT)
    time.sleep(2)  # longer than the hold timeout, after it
    cap.send_signal(signal.SIGINT)
    check(env.wait(cap, 20) == 0, "zcv-capture exited 0")
    for p in (kept, rec):
        check(env.wait(p, 20) == 0, f"{p.label} exited 0")
    c = json.load(open(env.path("cap.json")))
    by = {x["name"]: x for x in c["consumers"]}
    check(by["keeps-latest"]["end_error"] == 0,
          f"the keeps-latest consumer was not evicted across the 3 s pause: {by['keeps-latest']['end_reason']!r}")
    check(by["zcv-record"]["end_error"] == 0,
          f"zcv-record was not evicted: {by['zcv-record']['end_reason']!r}")
    k = json.load(open(env.path("kept.json")))
    r = json.load(open(env.path("rec.json")))
    check(k["frames"] == by["keeps-latest"]["frames_sent"] and k["frames"] >= 45,
          f"the keeps-latest consumer got its {k['frames']} frames, before and after the pause")
    check(r["frames"] == by["zcv-record"]["frames_sent"],
          f"zcv-record got all {r['frames']} frames the producer sent it")


def test_slow(env):
    """A stream slower than the hold timeout (one frame every 3 s; the
    timeout is 1 s) while the producer runs: a consumer that keeps its
    latest frame and says so stays; the same consumer without saying so
    is evicted for holding a frame more than 1 s, which is what the flag
    is for; zcv-record stays."""
    cap = start_capture(env, 0, "--fps", "1/3", "--wait-consumers", "3", "--buffers", "12",
                        "--max-hold", "3", "--stats-json", env.path("cap.json"))
    env.wait_socket()
    kept = env.start("test-consumer", "--socket", env.sock, "--name", "keeps-latest",
                     "--keep-latest", "--stats-json", env.path("kept.json"),
                     "--log", env.path("kept.log"))
    untold = env.start("test-consumer", "--socket", env.sock, "--name", "untold",
                       "--keep-latest-untold", "--stats-json", env.path("untold.json"))
    rec = env.start("zcv-record", "--no-reconnect", "--socket", env.sock, "-o", "/dev/null",
                    "--raw", "--stats-json", env.path("rec.json"))
    # The eviction is the producer's own timer, 1 s after the first frame
    # while the next is 3 s away: no race with a release.
    wait_for("the untold holder evicted", lambda: "'untold' left" in text_or_empty(
        env, "zcv-capture.err"), timeout=20)
    check(env.wait(untold, 20) != 0, "the holder that did not say it keeps its latest frame exited 1")
    wait_for("a second frame at the keeps-latest consumer", lambda: text_or_empty(
        env, "kept.log").count("frame ") >= 2, timeout=20, step=0.05)
    cap.send_signal(signal.SIGINT)
    check(env.wait(cap, 20) == 0, "zcv-capture exited 0")
    for p in (kept, rec):
        check(env.wait(p, 20) == 0, f"{p.label} exited 0")
    c = json.load(open(env.path("cap.json")))
    by = {x["name"]: x for x in c["consumers"]}
    check(by["untold"]["end_error"] == -110 and "held frame" in by["untold"]["end_reason"],
          f"the holder without the flag was evicted: {by['untold']['end_reason']!r}")
    check(by["keeps-latest"]["end_error"] == 0,
          f"the keeps-latest consumer stayed: {by['keeps-latest']['end_reason']!r}")
    check(by["zcv-record"]["end_error"] == 0,
          f"zcv-record stayed: {by['zcv-record']['end_reason']!r}")
    k = json.load(open(env.path("kept.json")))
    check(k["frames"] == by["keeps-latest"]["frames_sent"] and k["frames"] >= 2,
          f"the keeps-latest consumer got all {k['frames']} frames sent to it")


def test_slow_writer(env):
    """zcv-record writes to a pipe its reader drains in bursts, stalling
    for 200 ms (6 frame periods at 30 fps) every 30 frames, as a slow disk
    does. It asks for a hold of 16; the producer, with no pool size given,
    grows its pool to 16 + its reserve of 2 and grants it all, so the
    stall, within the hold, loses no frame: every frame reaches the file,
    in order, equal to the pattern."""
    frames, w, h = 150, 320, 240
    fifo = env.path("out.fifo")
    os.mkfifo(fifo)
    cap = start_capture(env, 0, "--fps", "30", "--wait-consumers", "1",
                        "--frames", str(frames), "--stats-json", env.path("cap.json"))
    env.wait_socket()
    rec = env.start("zcv-record", "--no-reconnect", "--socket", env.sock, "-o", fifo, "--raw",
                    "--max-hold", "16", "--stats-json", env.path("rec.json"))
    size = w * h * 3 // 2
    data = bytearray()
    stalls = 0
    with open(fifo, "rb") as f:
        while True:
            chunk = f.read(size)  # one frame's worth; blocks until zcv-record wrote it
            if not chunk:
                break
            data += chunk
            if len(data) % size == 0 and (len(data) // size) % 30 == 0:
                time.sleep(0.2)
                stalls += 1
    check(env.wait(rec, 20) == 0, "zcv-record exited 0")
    check(env.wait(cap, 20) == 0, "zcv-capture exited 0")
    c = json.load(open(env.path("cap.json")))
    r = json.load(open(env.path("rec.json")))
    rc = c["consumers"][0]
    print(f"  {stalls} stalls of 200 ms; granted hold {rc['max_hold']} (asked {rc['asked_hold']}); "
          f"producer: {env.text('zcv-capture.err').count('reallocated')} reallocation")
    check(rc["asked_hold"] == 16 and rc["max_hold"] == 16,
          f"zcv-record was granted the 16 frames it asked for (got {rc['max_hold']})")
    check("reallocated: 18 memfd buffers" in env.text("zcv-capture.err"),
          "the producer grew its pool to 18 buffers (16 held + 2 its own)")
    check("lets us hold 16 frames" in env.text("zcv-record.err"),
          "zcv-record said what it was granted")
    check(rc["skipped"] == 0 and rc["frames_sent"] == frames,
          f"the producer sent zcv-record every frame and skipped it {rc['skipped']} times")
    check(r["frames"] == frames and r["dropped"] == 0,
          f"zcv-record wrote {r['frames']} frames, {r['dropped']} dropped")
    check(len(data) == frames * size, f"the pipe carried {len(data)} bytes = {frames} frames")
    ref = env.path("ref.i420")
    g = env.run("pattern-ref", "i420", f"{w}x{h}", "0", str(frames), ref, timeout=120)
    check(g.returncode == 0, "pattern-ref wrote the reference frames")
    with open(ref, "rb") as f:
        want = f.read()
    bad = [i for i in range(frames) if data[i * size:(i + 1) * size] != want[i * size:(i + 1) * size]]
    check(not bad, f"every frame equals the pattern's (bad: {bad[:5]})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test")
    ap.add_argument("--build-dir", required=True)
    a = ap.parse_args()
    fn = globals().get(f"test_{a.test}")
    if not fn:
        print(f"unknown test {a.test}")
        return 2
    env = Env(os.path.abspath(a.build_dir))
    ok = False
    try:
        print(f"{a.test}: {fn.__doc__.strip() if fn.__doc__ else ''}")
        rc = fn(env)
        ok = True
        return rc if rc is not None else 0
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        env.cleanup(ok)


if __name__ == "__main__":
    sys.exit(main())
