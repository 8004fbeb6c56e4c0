"""Keep freed memory in the process while SHARP runs on the CPU (glibc only).

Why: glibc hands every allocation above 32 MB straight to ``mmap`` and gives it back with
``munmap`` when freed. One CPU inference allocates thousands of such activation buffers
(113 MB for one ViT MLP output), so the kernel zeroes and maps each page anew: 9.6 million
page faults and 23 s of system time per image on the 2-core reference machine. Serving them
from the heap instead, and not trimming it, reuses the same pages: 1 million faults, 6 s of
system time, 10 % less wall time (docs/benchmarks.md). After each run the freed heap is given
back (``release_freed_memory``), or a kept model would hold its last run's activations too.

The setting is process-wide, so it is applied only in processes that exist to run SHARP (the
worker, the command line, scripts using the API), never inside Blender itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of freed heap for reuse

_applied = False
_libc: ctypes.CDLL | None = None


def keep_freed_memory() -> bool:
    """Make glibc reuse large freed blocks; True when applied (now or before), False where not possible."""
    global _applied, _libc
    if _applied:
        return True
    if not sys.platform.startswith("linux") or "bpy" in sys.modules:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    _applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _libc = libc if _applied else None
    return _applied


def release_freed_memory() -> None:
    """Give the freed heap back to the system (after a run): the kept blocks serve one run's
    reuse, and a model kept loaded between images should not also keep their activations."""
    if _libc is not None:
        _libc.malloc_trim(0)
