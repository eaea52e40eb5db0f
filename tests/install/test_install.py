#!/usr/bin/env python3
"""What a third party gets from `cmake --install`: libzcv, the public
headers, pkg-config and CMake package files, the tools, nothing else; a
sink built out of tree against it (pkg-config or find_package(zcv)) runs
and receives frames.

Usage: test_install.py TEST --build-dir DIR. Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from run import Env, Fail, check, parse_print_sink  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PUBLIC_HEADERS = {"common.h", "format.h", "stream.h", "client.h", "producer.h", "sink.h"}
TOOLS = {"zcv-capture", "zcv-display", "zcv-encode", "zcv-record"}


def install(env):
    prefix = env.path("prefix")
    r = subprocess.run(["cmake", "--install", env.build, "--prefix", prefix],
                       capture_output=True, text=True)
    check(r.returncode == 0, "cmake --install into a temporary prefix"
          + ("" if r.returncode == 0 else f": {r.stderr[-500:]}"))
    return prefix


def libdir_of(prefix):
    for d in ("lib", "lib64", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"):
        if os.path.exists(os.path.join(prefix, d, "libzcv.so")):
            return os.path.join(prefix, d)
    raise Fail(f"no libzcv.so under {prefix}")


def run_sink(env, exe, extra_env=None):
    """The sink, with no LD_LIBRARY_PATH, receives what zcv-capture sends."""
    cap = env.start("zcv-capture", "--size", "320x240", "--fps", "30", "--frames", "5",
                    "--wait-consumers", "1", "--socket", env.sock)
    env.wait_socket()
    e = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    e.update(extra_env or {})
    out = subprocess.run([exe, env.sock], capture_output=True, text=True, timeout=30, env=e)
    frames = parse_print_sink(out.stdout)
    check(out.returncode == 0 and [f[0] for f in frames] == list(range(5)),
          f"{os.path.basename(exe)} received frames 0..4 (exit {out.returncode}, "
          f"{len(frames)} frames{'' if out.returncode == 0 else ', ' + out.stderr.strip()[-300:]})")
    check(env.wait(cap, 10) == 0, "zcv-capture exited 0")


def test_files(env):
    prefix = install(env)
    lib = libdir_of(prefix)
    headers = set(os.listdir(os.path.join(prefix, "include", "zcv")))
    check(headers == PUBLIC_HEADERS, f"installed headers are the public ones: {sorted(headers)}")
    tools = set(os.listdir(os.path.join(prefix, "bin")))
    want = TOOLS | ({"zcv-rtsp"} if os.path.exists(os.path.join(env.build, "tools", "zcv-rtsp")) else set())
    check(tools == want, f"installed programs are the tools, no test programs: {sorted(tools)}")
    for f in ("pkgconfig/zcv.pc", "cmake/zcv/zcvConfig.cmake", "cmake/zcv/zcvConfigVersion.cmake",
              "cmake/zcv/zcvTargets.cmake"):
        check(os.path.exists(os.path.join(lib, f)), f"{f} installed")
    # every public header stands alone under the strictest flags
    for h in sorted(headers):
        r = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                            "-fsyntax-only", "-I", os.path.join(prefix, "include"), "-x", "c", "-"],
                           input=f"#include <zcv/{h}>\n", capture_output=True, text=True)
        check(r.returncode == 0, f"<zcv/{h}> compiles on its own with -std=c11 -pedantic"
              + ("" if r.returncode == 0 else f": {r.stderr[-400:]}"))


def test_pkgconfig(env):
    """README's pkg-config recipe: rpath to the prefix's libdir."""
    prefix = install(env)
    penv = {**os.environ, "PKG_CONFIG_PATH": os.path.join(libdir_of(prefix), "pkgconfig")}
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "zcv"], capture_output=True, text=True,
                        env=penv)
    libdir = subprocess.run(["pkg-config", "--variable=libdir", "zcv"], capture_output=True,
                            text=True, env=penv).stdout.strip()
    check(pc.returncode == 0 and prefix in pc.stdout, f"pkg-config finds zcv: {pc.stdout.strip()}")
    check(os.path.realpath(libdir) == os.path.realpath(libdir_of(prefix)),
          f"pkg-config's libdir is the prefix's: {libdir}")
    exe = env.path("print-sink")
    cc = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror",
                         *os.environ.get("ZCV_TEST_CFLAGS", "").split(), "-o", exe,
                         os.path.join(SRC, "samples", "print-sink.c"), *pc.stdout.split(),
                         f"-Wl,-rpath,{libdir}"], capture_output=True, text=True)
    check(cc.returncode == 0, "samples/print-sink.c builds with pkg-config -Wall -Wextra -Werror"
          + ("" if cc.returncode == 0 else f": {cc.stderr[-800:]}"))
    run_sink(env, exe)
    # and without the rpath, LD_LIBRARY_PATH finds it (README's other way)
    cc = subprocess.run(["cc", "-std=c11", *os.environ.get("ZCV_TEST_CFLAGS", "").split(), "-o",
                         exe + "-norpath", os.path.join(SRC, "samples", "print-sink.c"),
                         *pc.stdout.split()], capture_output=True, text=True)
    check(cc.returncode == 0, "built again without rpath")
    r = subprocess.run([exe + "-norpath", env.sock], capture_output=True, text=True, timeout=10,
                       env={k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"})
    check(r.returncode != 0 and "libzcv.so" in r.stderr,
          "without rpath or LD_LIBRARY_PATH the loader says libzcv.so is missing")
    run_sink(env, exe + "-norpath", {"LD_LIBRARY_PATH": libdir})


def test_cmake(env):
    """README's CMake recipe: samples/ is a project of its own that finds
    an installed zcv with find_package(zcv) and links zcv::zcv."""
    prefix = install(env)
    bdir = env.path("sample-build")
    flags = os.environ.get("ZCV_TEST_CFLAGS", "")
    r = subprocess.run(["cmake", "-S", os.path.join(SRC, "samples"), "-B", bdir,
                        f"-DCMAKE_PREFIX_PATH={prefix}", f"-DCMAKE_C_FLAGS=-Werror {flags}",
                        f"-DCMAKE_EXE_LINKER_FLAGS={flags}"], capture_output=True, text=True)
    check(r.returncode == 0, "cmake -S samples finds the installed zcv"
          + ("" if r.returncode == 0 else f": {r.stdout[-400:]} {r.stderr[-800:]}"))
    r = subprocess.run(["cmake", "--build", bdir], capture_output=True, text=True)
    check(r.returncode == 0, "the sample builds against zcv::zcv"
          + ("" if r.returncode == 0 else f": {r.stdout[-800:]}"))
    exe = os.path.join(bdir, "zcv-sample-print")
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True).stdout
    check(libdir_of(prefix) in ldd, "it loads libzcv.so from the prefix (rpath from CMake)")
    run_sink(env, exe)


def test_symbols(env):
    """libzcv exports exactly tests/install/libzcv.symbols: the ZCV_EXPORT
    functions of the public headers, versioned ZCV_0. Update the list on
    purpose when the API changes (and bump what an incompatible change
    needs)."""
    lib = os.path.join(env.build, "libzcv.so")
    nm = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
    check(nm.returncode == 0, "nm -D libzcv.so")
    got = sorted(line.split()[-1] for line in nm.stdout.splitlines()
                 if line.split() and line.split()[-2] in ("T", "D", "B", "R", "W"))
    with open(os.path.join(SRC, "tests", "install", "libzcv.symbols")) as f:
        want = sorted(line.strip() for line in f if line.strip() and not line.startswith("#"))
    extra = sorted(set(got) - set(want))
    missing = sorted(set(want) - set(got))
    check(not extra, f"no symbol exported beyond the list: {extra}")
    check(not missing, f"every listed symbol is exported: {missing}")
    check(all(s.startswith("zcv_") and s.endswith("@@ZCV_0") for s in got),
          "every exported symbol is zcv_*, version ZCV_0")
    # the public headers declare them (nothing exported by accident)
    decl = ""
    for h in PUBLIC_HEADERS:
        for d in ("core", "ipc", "capture", "sinks"):
            p = os.path.join(SRC, d, "include", "zcv", h)
            if os.path.exists(p):
                decl += open(p).read()
    undeclared = [s for s in got if s.split("@")[0] + "(" not in decl]
    check(not undeclared, f"each exported symbol is declared in a public header: {undeclared}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test")
    ap.add_argument("--build-dir", required=True)
    a = ap.parse_args()
    fn = globals().get(f"test_{a.test}")
    if not fn:
        print(f"unknown test {a.test}", file=sys.stderr)
        return 2
    env = Env(os.path.abspath(a.build_dir))
    ok = False
    try:
        print(f"{a.test}:")
        fn(env)
        ok = True
        return 0
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        env.cleanup(ok)

if __name__ == "__main__":
    sys.exit(main())
