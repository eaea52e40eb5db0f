#!/usr/bin/env python3
"""Hostile consumer: frames are read-only for consumers (issue 15).

writer-consumer tries, on every frame it gets, to write into the frame's
memory every way a process holding its fds can (see writer-consumer.c).
It runs beside a good consumer against a real zcv-capture; every attempt
must fail, and the good consumer's checksums must equal the producer's
(taken as captured) for every frame.

Scenarios: the memfd path (pattern source), and the writer on the copy
tier. --capture-args replaces the pattern source (e.g. a V4L2 device in
the guest: "--source /dev/video0 --require-zero-copy"), --expect-path
the path the writer must get there ("dmabuf"); then only that scenario
runs.

Usage: test_readonly.py --build-dir DIR [--capture-args ARGS --expect-path P]
Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from run import Env, Fail, check, consumer_by_name  # noqa: E402

FRAMES = 100
# Attacks: each must fail every time it is tried. reopen_open (the open
# itself) and dmabuf_sync_write are not attacks on their own: what they
# could lead to is checked by the others and by the checksums.
ATTACKS = ("map_direct_write", "mprotect_write", "mmap_shared_write", "write", "pwrite",
           "reopen_write", "reopen_mmap_write", "ftruncate", "punch_hole")


class HostileEnv(Env):
    def bin(self, name):
        p = os.path.join(self.build, "tests", "hostile", name)
        return p if os.path.exists(p) else super().bin(name)


def read_checksums(path):
    sums = {}
    with open(path) as f:
        for line in f:
            seq, value = line.split()
            sums[int(seq)] = value
    return sums


def scenario(env, tag, capture_args, writer_args, expect_writer_path, expect_good_path):
    print(f"-- {tag}")
    sock = env.path(f"{tag}.sock")
    cap_sums, good_sums = env.path(f"{tag}-cap.sums"), env.path(f"{tag}-good.sums")
    cap = env.start("zcv-capture", *capture_args, "--frames", str(FRAMES), "--max-hold", "4",
                    "--buffers", "12", "--wait-consumers", "2", "--socket", sock,
                    "--checksums", cap_sums, "--stats-json", env.path(f"{tag}-cap.json"),
                    "--quiet")
    env.wait_socket(sock)
    # the writer first: on the wire it gets each frame before the good one
    writer = env.start("writer-consumer", "--socket", sock, "--name", "writer",
                       "--json", env.path(f"{tag}-writer.json"), *writer_args)
    good = env.start("test-consumer", "--socket", sock, "--name", "good", "--checksums",
                     good_sums, "--stats-json", env.path(f"{tag}-good.json"))
    check(env.wait(cap, 120) == 0, "zcv-capture exited 0")
    check(env.wait(writer, 20) == 0, "writer-consumer saw the stream end cleanly")
    check(env.wait(good, 20) == 0, "the good consumer exited 0")

    w = env.json(f"{tag}-writer.json")
    c = env.json(f"{tag}-cap.json")
    g = env.json(f"{tag}-good.json")
    check(w["path"] == expect_writer_path, f"writer on the {w['path']} path")
    check(consumer_by_name(c, "writer")["path"] == expect_writer_path,
          "the producer agrees on the writer's path")
    check(g["path"] == expect_good_path, f"good consumer on the {g['path']} path")
    check(w["frames"] > 0, f"writer got {w['frames']} frames")
    check(w["distinct_fds"] >= w["n_buffers"] > 0,
          f"writer attacked {w['distinct_fds']} buffer fds, all of its {w['n_buffers']}-buffer pool")
    for a in ATTACKS:
        o = w["attempts"][a]
        check(o["tried"] > 0 and o["succeeded"] == 0,
              f"{a}: tried {o['tried']} times, succeeded {o['succeeded']} ({o['last_errno']})")
    for a in ("reopen_open", "dmabuf_sync_write"):
        o = w["attempts"][a]
        print(f"  (for the record: {a} tried {o['tried']}, succeeded {o['succeeded']})")

    cap_s, good_s = read_checksums(cap_sums), read_checksums(good_sums)
    check(len(cap_s) == FRAMES, f"the producer checksummed all {FRAMES} frames")
    check(len(good_s) == FRAMES, f"the good consumer got all {FRAMES} frames ({len(good_s)})")
    bad = [s for s, v in good_s.items() if cap_s.get(s) != v]
    check(not bad, f"the good consumer's checksums equal the producer's for every frame (bad: {bad[:5]})")
    check(c["fds_at_start"] == c["fds_at_end"], "no fd leaked in the producer")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--capture-args", help="source arguments replacing the pattern source")
    ap.add_argument("--expect-path", default="dmabuf", help="the writer's path with --capture-args")
    a = ap.parse_args()
    env = HostileEnv(os.path.abspath(a.build_dir))
    ok = False
    try:
        if a.capture_args:
            scenario(env, "given", shlex.split(a.capture_args), [], a.expect_path, a.expect_path)
        else:
            pattern = ["--source", "pattern", "--size", "320x240", "--format", "I420",
                       "--fps", "60"]
            scenario(env, "memfd", pattern, [], "memfd", "memfd")
            scenario(env, "copy", pattern, ["--needs-copy"], "copy", "memfd")
        ok = True
        return 0
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        env.cleanup(ok)


if __name__ == "__main__":
    sys.exit(main())
