#!/usr/bin/env python3
"""Page faults of touching a fresh large buffer, with and without ``keep_freed_memory()``.

    .venv/blender-5.0/bin/python bench/allocator.py [--runs 5] [--mb 200]

Each run is a fresh child process per setting (the setting is process-wide): it allocates, touches
and frees a buffer of --mb megabytes once (the first touch always faults), then counts the minor
page faults (ru_minflt) of doing it again, as torch allocates a CPU tensor: plain malloc, no huge
pages. By default glibc serves such a block with mmap and faults in every 4 KiB page anew; with
``keep_freed_memory()`` the freed block is reused from the heap. Prints the median of --runs
children per setting (Linux with glibc only).
"""

from __future__ import annotations

import argparse
import ctypes
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def faults_touching_a_fresh_buffer(libc: ctypes.CDLL, size: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def child(args: argparse.Namespace) -> None:
    from sharp_addon.model.allocator import keep_freed_memory

    applied = keep_freed_memory() if args.keep else False
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = args.mb * 2**20
    faults_touching_a_fresh_buffer(libc, size)
    print(f"RESULT {applied} {faults_touching_a_fresh_buffer(libc, size)}")


def run_child(args: argparse.Namespace, keep: bool) -> tuple[bool, int]:
    cmd = [sys.executable, __file__, "--child", "--mb", str(args.mb)] + (["--keep"] if keep else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    applied, faults = line.split()[1:]
    return applied == "True", int(faults)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=int, default=200, help="buffer size in MiB")
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    if not sys.platform.startswith("linux"):
        print("glibc's mallopt is Linux-only")
        return 1
    pages = args.mb * 2**20 // resource.getpagesize()
    print(f"page faults touching a fresh {args.mb} MiB buffer ({pages} pages), median of {args.runs} runs:")
    for keep, label in ((False, "default"), (True, "keep_freed_memory()")):
        results = [run_child(args, keep) for _ in range(args.runs)]
        applied = {a for a, _ in results}
        faults = [f for _, f in results]
        note = "" if not keep or applied == {True} else "  (not applied: not glibc?)"
        print(f"  {label:<20} {statistics.median(faults):>10.0f}  ({', '.join(map(str, faults))}){note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
