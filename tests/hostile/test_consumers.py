#!/usr/bin/env python3
"""Hostile consumers against a real zcv-capture (pattern source), each with
one good consumer (the sample print sink) beside it.

Every case asserts: the producer is alive and its fd count is back where it
was before the attack (and fds_at_start == fds_at_end in its stats), its RSS
did not grow beyond a bound, the attacker was dropped with the expected
reason (or, when it played by the rules, was not dropped at all), and the
good consumer got every frame, in order, with no gap between two frames
longer than the hold timeout (1 s: a bound chosen by design, well below
the 5 s a lingering close blocked the producer for before).

Usage: test_consumers.py --build-dir DIR [--case NAME ...]
Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from run import Env, Fail, check  # noqa: E402

SKIP = 77
# 30 fps and a hold of 4 for the good consumer (--max-hold 4; 8 buffers, a
# budget of 6): it must be scheduled once every 133 ms to never be at its
# limit when a frame comes, which holds even on a loaded 2-core machine
FPS = 30
CAP_ARGS = ("--buffers", "8", "--max-hold", "4")
HOLD_TIMEOUT_S = 1.0   # zcv-capture's default
RSS_BOUND_KB = 32 * 1024  # what an attack may leave behind, at most
EPROTO, EBUSY, ETIMEDOUT, ECONNRESET, ENOBUFS = -71, -16, -110, -104, -105


class HostileEnv(Env):
    def bin(self, name):
        p = os.path.join(self.build, "tests", "hostile", name)
        return p if os.path.exists(p) else super().bin(name)


def count_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Fail(f"no VmRSS for pid {pid}")


class GoodConsumer:
    """The sample print sink, its lines timestamped as they arrive."""

    def __init__(self, env, sock):
        self.p = subprocess.Popen([env.bin("zcv-sample-print"), sock], stdout=subprocess.PIPE,
                                  stderr=open(env.path("good.err"), "w"), text=True, bufsize=1)
        self.p.label = "good consumer"
        env.procs.append(self.p)
        self.frames = []   # (seq, arrival time)
        self.path = None
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            now = time.monotonic()
            if line.startswith("frame "):
                kv = dict(x.split("=") for x in line.split()[1:])
                with self.lock:
                    self.frames.append((int(kv["seq"]), now))
            elif line.startswith("format "):
                self.path = line.split("path=")[1].strip()

    def count(self):
        with self.lock:
            return len(self.frames)

    def wait_frames(self, n, timeout=10):
        end = time.time() + timeout
        while self.count() < n and time.time() < end:
            time.sleep(0.01)
        if self.count() < n:
            raise Fail(f"good consumer got {self.count()} frames, waited for {n}")

    def max_gap(self):
        with self.lock:
            ts = [t for _, t in self.frames]
        return max((b - a for a, b in zip(ts, ts[1:])), default=0.0)


class Case:
    def __init__(self, env, name, cap_args=(), skips_ok=None):
        self.env, self.name = env, name
        self.skips_ok = skips_ok
        self.sock = env.path(f"{name}.sock")
        self.cap_json = env.path(f"{name}-cap.json")
        self.cap = env.start("zcv-capture", "--source", "pattern", "--size", "320x240",
                             "--fps", str(FPS), "--wait-consumers", "1", "--socket", self.sock,
                             "--stats-json", self.cap_json, *CAP_ARGS, *cap_args)
        self.cap.label = f"zcv-capture ({name})"
        env.wait_socket(self.sock)
        self.good = GoodConsumer(env, self.sock)
        self.good.wait_frames(10)
        self.pid = self.cap.pid
        self.fds0, self.rss0 = count_fds(self.pid), rss_kb(self.pid)
        self.attackers = []

    def attack(self, mode, *args, name=None, timeout=30):
        """Runs one attacker to its end; returns its pid and output."""
        name = name or f"hostile-{mode}"
        p = subprocess.run([self.env.bin("hostile-consumer"), mode, "--socket", self.sock,
                            "--name", name, *args], capture_output=True, text=True,
                           timeout=timeout)
        check(p.returncode == 0, f"attacker {mode} carried out its attack"
              + ("" if p.returncode == 0 else f" (exit {p.returncode}: {p.stderr.strip()})"))
        return p

    def start_attacker(self, mode, *args, name=None):
        name = name or f"hostile-{mode}"
        p = subprocess.Popen([self.env.bin("hostile-consumer"), mode, "--socket", self.sock,
                              "--name", name, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, bufsize=1)
        p.label = f"attacker {mode}"
        self.env.procs.append(p)
        return p

    def finish(self, check_attackers):
        """Checks the producer after the attack, stops it, checks the rest."""
        env = self.env
        check(self.cap.poll() is None, "the producer is alive")
        # its fds come back once it has dropped the attackers and the
        # closer thread has closed what they sent: wait for that
        end = time.time() + 5
        while count_fds(self.pid) != self.fds0 and time.time() < end:
            time.sleep(0.02)
        fds1, rss1 = count_fds(self.pid), rss_kb(self.pid)
        n_before = self.good.count()
        self.good.wait_frames(n_before + 10)
        self.cap.send_signal(signal.SIGTERM)
        check(env.wait(self.cap, 10) == 0, "zcv-capture exited 0 on SIGTERM")
        env.wait(self.good.p, 10)
        self.good.t.join(5)
        c = env.json(os.path.basename(self.cap_json))
        check(fds1 == self.fds0, f"producer fds back to {self.fds0} after the attack (now {fds1})")
        check(c["fds_at_start"] == c["fds_at_end"],
              f"producer fds at start {c['fds_at_start']} == at end {c['fds_at_end']}")
        check(rss1 - self.rss0 < RSS_BOUND_KB,
              f"producer RSS {self.rss0} kB -> {rss1} kB (bound +{RSS_BOUND_KB} kB)")
        check_attackers(c)
        good = next(x for x in c["consumers"] if x["name"] == "print-sink")
        seqs = [s for s, _ in self.good.frames]
        lost = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs)) if seqs else []
        check(seqs == sorted(seqs), "good consumer: frames in order")
        gap = self.good.max_gap()
        check(gap < HOLD_TIMEOUT_S, f"longest gap between two frames {gap * 1000:.0f} ms "
              f"< the hold timeout ({HOLD_TIMEOUT_S * 1000:.0f} ms): the loop never stalled")
        # skips are counted drops for the good consumer, never silent: allowed
        # only where the case says why, and bounded
        if self.skips_ok:
            bound, why = self.skips_ok
            check(good["skipped"] <= bound and len(lost) == good["skipped"],
                  f"good consumer: {good['skipped']} frames skipped (<= {bound}: {why}), "
                  f"exactly its {len(lost)} lost frames")
        else:
            check(good["skipped"] == 0, f"the producer never skipped the good consumer "
                  f"({good['skipped']} skips)")
            check(not lost, f"good consumer got every frame {seqs[0]}..{seqs[-1]} "
                  f"(lost {len(lost)}: {lost[:10]})")
        check(len(seqs) == good["frames_sent"],
              f"good consumer got all {good['frames_sent']} frames the producer sent it")
        print(f"SUMMARY {self.name}: producer fds {self.fds0} -> {fds1} (stats "
              f"{c['fds_at_start']}/{c['fds_at_end']}), RSS {self.rss0} -> {rss1} kB, good "
              f"consumer {len(seqs)} frames, {len(lost)} lost, {good['skipped']} skipped, "
              f"max gap {gap * 1000:.0f} ms, path {self.good.path}")


def attackers_by_pid(c, pids):
    return [x for x in c["consumers"] if x["pid"] in pids]


def expect_dropped(pids, error, reason, count=None):
    """A check_attackers function: every entry of these pids ended with
    error and a reason containing the given text."""
    def f(c):
        mine = attackers_by_pid(c, pids)
        n = count if count is not None else len(pids)
        check(len(mine) >= n, f"the producer lists the attacker ({len(mine)} entries)")
        bad = [a for a in mine if a["end_error"] != error or reason not in a["end_reason"]]
        check(not bad, f"attacker dropped: {mine[0]['end_error']} {mine[0]['end_reason']!r}"
              + (f" ({len(mine)} like it)" if len(mine) > 1 else "")
              + (f"; but {[(a['end_error'], a['end_reason']) for a in bad[:3]]}" if bad else ""))
    return f


def run_attacker(k, mode, error, reason, *args):
    p = k.start_attacker(mode, *args)
    out, err = p.communicate(timeout=30)
    check(p.returncode == 0, f"attacker {mode} carried out its attack"
          + ("" if p.returncode == 0 else f" (exit {p.returncode}: {err.strip()})"))
    for line in out.splitlines():
        if line.startswith("bye") or line.startswith("sent "):
            print(f"  attacker: {line}")
    return expect_dropped({p.pid}, error, reason)


def case_garbage(k):
    return run_attacker(k, "garbage", EPROTO, "malformed message")


def case_lying_size(k):
    return run_attacker(k, "lying-size", EPROTO, "malformed message")


def case_short_release(k):
    return run_attacker(k, "short-release", EPROTO, "malformed message")


def case_release_not_held(k):
    return run_attacker(k, "release-not-held", EPROTO, "it does not hold")


def case_release_twice(k):
    return run_attacker(k, "release-twice", EPROTO, "it does not hold")


def case_release_old_gen(k):
    return run_attacker(k, "release-old-gen", EPROTO, "it does not hold")


def case_fd_memfd(k):
    return run_attacker(k, "fd-memfd", EPROTO, "malformed message")


def case_fd_pipe(k):
    return run_attacker(k, "fd-pipe", EPROTO, "malformed message")


def case_fd_many(k):
    return run_attacker(k, "fd-many", EPROTO, "malformed message")


def case_fd_linger_hello(k):
    return run_attacker(k, "fd-linger-hello", EPROTO, "malformed message", "--linger-s", "5")


def case_fd_linger_release(k):
    return run_attacker(k, "fd-linger-release", EPROTO, "malformed message", "--linger-s", "5")


def case_fd_linger_nested(k):
    return run_attacker(k, "fd-linger-nested", EPROTO, "malformed message", "--linger-s", "5")


def case_flood(k):
    return run_attacker(k, "flood", EPROTO, "")


def case_never_read(k):
    # it never releases either: the hold timeout (or a full socket) ends it
    p = k.start_attacker("never-read", "--duration-ms", "4000")
    p.communicate(timeout=30)

    def f(c):
        mine = attackers_by_pid(c, {p.pid})
        check(len(mine) == 1, "the producer lists the attacker")
        a = mine[0]
        check(a["end_error"] in (ETIMEDOUT, ENOBUFS),
              f"attacker dropped for holding too long or not reading: {a['end_error']} "
              f"{a['end_reason']!r}")
    return f


def case_keeps_latest_abuse(k):
    # claims to keep only its latest frame (every HELLO flag set, unknown
    # ones too) and then holds everything for ever: the exemption covers
    # its newest frame only while nothing newer is published, so with the
    # stream flowing it is evicted like any holder
    p = k.start_attacker("hold", "--hello-flags", "0xffffffff", "--max-hold", "4",
                         "--duration-ms", "4000")
    p.communicate(timeout=30)

    def f(c):
        mine = attackers_by_pid(c, {p.pid})
        check(len(mine) == 1, "the producer lists the attacker")
        a = mine[0]
        check(a["end_error"] == ETIMEDOUT and "held frame" in a["end_reason"],
              f"a keeps-latest consumer that holds on is still evicted: {a['end_error']} "
              f"{a['end_reason']!r}")
    return f


def case_never_hello(k):
    p = k.start_attacker("never-hello", "--count", "20", "--duration-ms", "2500")
    # meanwhile another good consumer gets in at once
    t0 = time.time()
    late = k.env.run("zcv-sample-print", k.sock, "5", timeout=20)
    took = time.time() - t0
    check(late.returncode == 0 and late.stdout.count("frame ") == 5,
          f"with 20 connections that never say HELLO, a new consumer got 5 frames "
          f"({took * 1000:.0f} ms, the handshake timeout is 1000 ms)")
    out, _ = p.communicate(timeout=30)
    print("  attacker: " + " / ".join(l for l in out.splitlines() if l.startswith("dropped")))
    check("dropped 20 of 20" in out, "all 20 idle connections were dropped")

    def f(c):
        mine = attackers_by_pid(c, {p.pid})
        check(len(mine) == 20, f"the producer lists the 20 idle connections ({len(mine)})")
        reasons = {}
        for a in mine:
            reasons[a["end_error"]] = reasons.get(a["end_error"], 0) + 1
        bad = [a for a in mine
               if a["end_error"] not in (EBUSY, ETIMEDOUT) or "HELLO" not in a["end_reason"]]
        check(not bad, f"every idle connection was dropped for saying no HELLO "
              f"(e.g. {mine[0]['end_reason']!r}){'; but ' + str(bad[:3]) if bad else ''}")
        print(f"  idle connections: {reasons.get(EBUSY, 0)} replaced by newer ones (quota 4), "
              f"{reasons.get(ETIMEDOUT, 0)} timed out")
    return f


def case_hold_all(k):
    # three consumers hold everything they are granted, each frame for 600 ms
    # (within the 1 s hold timeout: within the rules)
    ps = [k.start_attacker("hold", "--max-hold", "32", "--hold-ms", "600",
                           "--duration-ms", "3500", name=f"holder{i}") for i in range(3)]
    grants = {}
    for p in ps:
        line = p.stdout.readline()
        while line and not line.startswith("welcome"):
            line = p.stdout.readline()
        check(line.startswith("welcome"), f"holder pid {p.pid}: {line.strip()}")
        grants[p.pid] = dict(x.split("=") for x in line.split()[1:])
    for p in ps:  # they hold for 3.5 s, then leave by themselves
        p.communicate(timeout=30)
        check(p.returncode == 0, f"holder pid {p.pid} held to the end")

    def f(c):
        mine = attackers_by_pid(c, {p.pid for p in ps})
        check(len(mine) == 3, "the producer lists the three holders")
        # grants as WELCOME told them: path 3 is the copy tier
        total = sum(int(g["max_hold"]) for g in grants.values() if g["path"] != "3")
        good = next(x for x in c["consumers"] if x["name"] == "print-sink")
        if "max_hold" not in good:
            raise Fail("zcv-capture's stats JSON lists no max_hold (the grant) per consumer")
        for a in mine:
            g = grants[a["pid"]]
            print(f"  {a['name']}: path {a['path']}, granted {g['max_hold']}, sent "
                  f"{a['frames_sent']}, skipped {a['skipped']}, {a['path_reason']!r}")
            check(a["end_error"] == 0 and a["end_reason"] == "holder done",
                  f"{a['name']} played by the rules: never dropped, left by itself "
                  f"({a['end_error']} {a['end_reason']!r})")
        check(total + good["max_hold"] <= 8 - 2,
              f"zero-copy grants {total} + {good['max_hold']} (good) fit the budget of 6")
        check(any("budget is exhausted" in a["path_reason"] for a in mine),
              "a holder that found the budget exhausted got the copy tier")
    return f


def case_sigkill(k):
    pids = set()
    for i in range(100):
        p = k.start_attacker("hold", name=f"victim{i}")
        line = p.stdout.readline()
        while line and not line.startswith("frame"):
            line = p.stdout.readline()
        check(line.startswith("frame"), f"victim {i} got a frame before the kill") if i % 25 == 0 \
            else None
        if not line.startswith("frame"):
            raise Fail(f"victim {i} got no frame: {p.stderr.read()}")
        p.send_signal(signal.SIGKILL)
        p.wait()
        pids.add(p.pid)
    check(True, "100 consumers killed with SIGKILL each while holding a frame")
    return expect_dropped(pids, ECONNRESET, "hung up", count=64 - 2)


def linger_control(env):
    """The attack is real: a close of such a socket blocks for the linger time."""
    r = subprocess.run([env.bin("hostile-consumer"), "linger-check", "--linger-s", "2"],
                       capture_output=True, text=True, timeout=30)
    took = float(r.stdout.split("took")[1].split()[0]) if "took" in r.stdout else 0
    check(r.returncode == 0 and took >= 1.5,
          f"control: closing a lingering TCP socket (linger 2 s) blocks the closer for {took:.1f} s")


CASES = [
    ("garbage", case_garbage),
    ("lying_size", case_lying_size),
    ("short_release", case_short_release),
    ("release_not_held", case_release_not_held),
    ("release_twice", case_release_twice),
    ("release_old_gen", case_release_old_gen),
    ("fd_memfd", case_fd_memfd),
    ("fd_pipe", case_fd_pipe),
    ("fd_many", case_fd_many),
    ("fd_linger_hello", case_fd_linger_hello),
    ("fd_linger_release", case_fd_linger_release),
    ("fd_linger_nested", case_fd_linger_nested),
    ("flood", case_flood),
    ("never_read", case_never_read),
    ("never_hello", case_never_hello),
    ("keeps_latest_abuse", case_keeps_latest_abuse),
    ("hold_all", case_hold_all),
    ("sigkill", case_sigkill),
]


CASE_ARGS = {
    # 100 processes started and killed on a 2-core machine: the good
    # consumer is not always scheduled within its hold of 4 frames (133 ms)
    # and is then at its limit when a frame is published: a skip, counted
    # on both sides. At most 2% of the frames.
    "sigkill": ((), (FPS * 20 // 50, "the good consumer not scheduled in time while 100 "
                                     "processes start and die")),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--case", action="append")
    a = ap.parse_args()
    env = HostileEnv(os.path.abspath(a.build_dir))
    ok = False
    failed = []
    try:
        linger_control(env)
        for name, fn in CASES:
            if a.case and name not in a.case:
                continue
            print(f"case {name}:")
            k = None
            try:
                k = Case(env, name, *CASE_ARGS.get(name, ()))
                k.finish(fn(k))
            except (Fail, subprocess.TimeoutExpired, StopIteration, KeyError) as e:
                print(f"FAIL {name}: {e}")
                failed.append(name)
                if k and k.cap.poll() is None:
                    k.cap.kill()
        ok = not failed
        if failed:
            print(f"FAILED cases: {' '.join(failed)}")
        return 0 if ok else 1
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        env.cleanup(ok)


if __name__ == "__main__":
    sys.exit(main())
