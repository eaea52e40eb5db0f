#!/usr/bin/env python3
"""Stats JSON that peers cannot forge, terminals they cannot drive, and exit
codes that say how a stream ended: real zcv processes over real sockets.

Usage: test_exit_json.py TEST --build-dir DIR. Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import glob
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import SKIP, Env, Fail, check, consumer_by_name, parse_print_sink  # noqa: E402

# closes the string, the array and the object it sits in, then forges a
# top-level field; a newline and an ANSI escape for the terminal
HOSTILE = '"}],"dropped":999,"x":"' + "\n\x1b[31m"
STRUCTURAL = '"}],"dropped":999,"x":"'


def wait_for(what, cond, timeout=20):
    """Waits for something another process writes (a line in its log, a
    file): there is no event to block on across processes here."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.02)
    raise Fail(f"timed out waiting for {what}")


def text_or_empty(env, name):
    try:
        return env.text(name)
    except FileNotFoundError:
        return ""


def server_form(name):
    """What a server that replaces control bytes by '?' at receipt keeps."""
    return "".join("?" if ord(ch) < 0x20 or ord(ch) >= 0x7f else ch for ch in name)


def error_lines(err):
    return [line for line in err.splitlines() if "the stream ended with an error" in line]


def check_one_line(err, label, must=None):
    lines = error_lines(err)
    check(len(lines) == 1, f"{label} says why in one line: {lines!r}")
    if must:
        check(must in lines[0], f"{label}'s line names the cause ({must!r})")
    check("\x1b" not in err, f"{label}'s stderr holds no ESC byte")


def test_hostile_name(env):
    """A consumer named to forge the producer's stats and drive its terminal."""
    cap = env.start("zcv-capture", "--size", "320x240", "--fps", "100", "--frames", "30",
                    "--wait-consumers", "1", "--socket", env.sock,
                    "--stats-json", env.path("cap.json"))
    env.wait_socket()
    tc = env.run("test-consumer", "--socket", env.sock, "--name", HOSTILE,
                 "--stats-json", env.path("tc.json"))
    check(tc.returncode == 0, f"the hostile-named consumer ran to the end (exit {tc.returncode})")
    check(env.wait(cap, 20) == 0, "zcv-capture exited 0")
    with open(env.path("cap.json")) as f:
        raw = f.read()
    c = json.loads(raw)  # raises (fails the test) on invalid JSON
    check(True, "the producer's stats JSON parses")
    check(c["dropped"] == c["source_dropped"] and c["dropped"] != 999,
          f"top-level dropped is the real value ({c['dropped']}), not the forged 999")
    check("x" not in c, "no forged top-level member")
    names = [k["name"] for k in c["consumers"]]
    check(len(names) == 1, f"exactly one consumer listed: {names!r}")
    # the structural characters must come back exactly; the control bytes
    # either exactly (escaped in the JSON) or as '?' if the server
    # replaced them at receipt
    check(names[0] in (HOSTILE, server_form(HOSTILE)),
          f"the name round-trips: {names[0]!r}")
    check(names[0].startswith(STRUCTURAL), "quotes, brackets and colons kept as data")
    # json.loads refuses raw control bytes inside strings: parsing proved
    # the newline was escaped; ESC must not be in the file either
    check("\x1b" not in raw, "no raw ESC byte in the file")
    err = env.text("zcv-capture.err")
    check("\x1b" not in err, "the producer's stderr holds no ESC byte")
    mentions = [line for line in err.splitlines() if "dropped" in line]
    check(mentions and all("[31m" in line for line in mentions),
          f"the name stays on its own line in the producer's stderr: {mentions!r}")
    check(not any(line.startswith("[31m") for line in err.splitlines()),
          "no line of stderr starts with the name's tail")


def test_many_consumers(env):
    """100 consumers come and go: the stats JSON stays valid and lists the
    last 64 the server remembers, every name intact."""
    n = 100
    cap = env.start("zcv-capture", "--size", "160x120", "--fps", "200", "--socket", env.sock,
                    "--stats-json", env.path("cap.json"))
    env.wait_socket()
    sent = []
    for i in range(n):
        name = f'c{i:03d}"}}],\n\x1b[0m'
        sent.append(name)
        r = env.run("test-consumer", "--socket", env.sock, "--name", name, "--frames", "1")
        if r.returncode != 0:
            raise Fail(f"consumer {i} failed: {r.stderr!r}")
    check(True, f"{n} consumers each got a frame and left")
    cap.send_signal(signal.SIGTERM)
    check(env.wait(cap, 10) == 0, "zcv-capture exited 0 on SIGTERM")
    c = env.json("cap.json")
    check(True, "the producer's stats JSON parses")
    got = [k["name"] for k in c["consumers"]]
    check(len(got) == 64, f"it lists the 64 the server remembers ({len(got)})")
    want = sent[-64:]
    check(all(g in (w, server_form(w)) for g, w in zip(got, want)),
          f"they are the last 64, oldest first, names intact (first {got[0]!r})")
    check(all(k["frames_sent"] >= 1 for k in c["consumers"]), "each was sent a frame")
    check(c["fds_at_start"] == c["fds_at_end"],
          f"no fd leaked in the producer ({c['fds_at_start']} at start, {c['fds_at_end']} at end)")


# --- exit codes -------------------------------------------------------------

def consumer_cmd(env, tool, extra=(), frames=None):
    """Start a consumer tool; returns (process, stdout name, how to tell it is streaming)."""
    if tool == "zcv-record":
        out = env.path("rec.y4m")
        args = ["--no-reconnect", "--socket", env.sock, "-o", out, "--stats-json",
                env.path("rec.json"), *extra]
        if frames:
            args += ["--frames", str(frames)]
        p = env.start(tool, *args)
        return p, lambda: os.path.exists(out) and os.path.getsize(out) > 0
    if tool == "zcv-sample-print":
        args = [env.sock] + ([str(frames)] if frames else [])
        p = env.start(tool, *args)
        return p, lambda: "frame " in text_or_empty(env, "zcv-sample-print.out")
    if tool == "test-consumer":
        args = ["--socket", env.sock, "--stats-json", env.path("tc.json"), *extra]
        if frames:
            args += ["--frames", str(frames)]
        p = env.start(tool, *args)
        return p, lambda: "joined" in text_or_empty(env, "zcv-capture.err")
    if tool == "zcv-display":
        args = ["--no-reconnect", "--socket", env.sock, *extra] + (["--frames", str(frames)] if frames else [])
        p = env.start(tool, *args)
        return p, lambda: "joined" in text_or_empty(env, "zcv-capture.err")
    raise Fail(f"no consumer {tool}")


def display_runs():
    return bool(glob.glob("/dev/dri/card*"))


CONSUMERS = ["zcv-record", "zcv-sample-print", "test-consumer", "zcv-display"]


def for_each_consumer(env, fn):
    ran = 0
    for tool in CONSUMERS:
        if tool == "zcv-display" and not display_runs():
            print("  skip: zcv-display needs a KMS device (/dev/dri/card*); none here")
            continue
        print(f" {tool}:")
        sub = Env(env.build)
        env.subs.append(sub)
        try:
            fn(sub, tool)
        finally:
            for p in sub.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        ran += 1
    return None if ran else SKIP


def test_exit_evicted(env):
    """Each consumer tool, stopped while it holds frames, is evicted by the
    producer's hold timeout: it exits non-zero with one line."""
    def one(sub, tool):
        cap = sub.start("zcv-capture", "--size", "320x240", "--fps", "60",
                        "--hold-timeout-ms", "200", "--socket", sub.sock)
        sub.wait_socket()
        p, streaming = consumer_cmd(sub, tool)
        wait_for(f"{tool} to stream", streaming)
        # a stopped process holds what it was sent: the hold timeout evicts it
        p.send_signal(signal.SIGSTOP)
        wait_for("the producer to evict it",
                 lambda: "left: held frame" in text_or_empty(sub, "zcv-capture.err"))
        p.send_signal(signal.SIGCONT)
        rc = sub.wait(p, 20)
        check(rc != 0, f"{tool} exits non-zero when evicted (exit {rc})")
        check_one_line(sub.text(f"{tool}.err"), tool, "held frame")
        check(cap.poll() is None, "the producer streams on")
        cap.send_signal(signal.SIGTERM)
        check(sub.wait(cap, 10) == 0, "zcv-capture exited 0")
        if tool == "zcv-record":
            r = sub.json("rec.json")
            check(r["end_error"] == -110, f"zcv-record's stats say ETIMEDOUT ({r['end_error']})")

    return for_each_consumer(env, one)


def test_exit_producer_killed(env):
    """The producer is killed with SIGKILL mid-stream: every consumer tool
    exits non-zero with one line."""
    def one(sub, tool):
        cap = sub.start("zcv-capture", "--size", "320x240", "--fps", "60", "--socket", sub.sock)
        sub.wait_socket()
        p, streaming = consumer_cmd(sub, tool)
        wait_for(f"{tool} to stream", streaming)
        cap.send_signal(signal.SIGKILL)
        cap.wait()
        rc = sub.wait(p, 20)
        check(rc != 0, f"{tool} exits non-zero when the producer vanishes (exit {rc})")
        check_one_line(sub.text(f"{tool}.err"), tool)

    return for_each_consumer(env, one)


def test_exit_clean(env):
    """A clean end of stream, and a consumer's own --frames, exit 0 with no
    error line."""
    def one(sub, tool):
        cap = sub.start("zcv-capture", "--size", "320x240", "--fps", "120", "--frames", "20",
                        "--wait-consumers", "1", "--socket", sub.sock)
        sub.wait_socket()
        p, _ = consumer_cmd(sub, tool)
        rc = sub.wait(p, 20)
        check(rc == 0, f"{tool} exits 0 at the end of stream (exit {rc})")
        check(not error_lines(sub.text(f"{tool}.err")), f"{tool} reports no error")
        check(sub.wait(cap, 10) == 0, "zcv-capture exited 0")
        if tool == "zcv-sample-print":
            seqs = [f[0] for f in parse_print_sink(sub.text("zcv-sample-print.out"))]
            check(seqs == list(range(20)), "the sample sink got all 20 frames")

        # own --frames against an endless producer
        cap = sub.start("zcv-capture", "--size", "320x240", "--fps", "120", "--socket",
                        sub.sock)
        sub.wait_socket()
        p, _ = consumer_cmd(sub, tool, frames=10)
        rc = sub.wait(p, 20)
        check(rc == 0, f"{tool} exits 0 after its own --frames (exit {rc})")
        check(not error_lines(sub.text(f"{tool}.err")), f"{tool} reports no error")
        check(cap.poll() is None, "the producer streams on")
        cap.send_signal(signal.SIGTERM)
        check(sub.wait(cap, 10) == 0, "zcv-capture exited 0")

    return for_each_consumer(env, one)


def test_capture_source_fails(env):
    """zcv-capture whose source cannot be opened exits non-zero with one line."""
    r = env.run("zcv-capture", "--source", "/dev/video-nonexistent", "--socket", env.sock)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    check(r.returncode != 0, f"zcv-capture exits non-zero (exit {r.returncode})")
    check(len(lines) == 1 and "video-nonexistent" in lines[0],
          f"with one line naming the device: {lines!r}")
    check(not os.path.exists(env.sock), "and leaves no socket behind")


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
    env.subs = []  # one Env per consumer tool in the exit tests
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
        cleanup(env, ok)


def cleanup(env, ok):
    for s in env.subs:
        s.cleanup(ok)
    env.cleanup(ok)


if __name__ == "__main__":
    sys.exit(main())
