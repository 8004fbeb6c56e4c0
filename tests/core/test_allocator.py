"""The CPU allocator setting: large freed buffers are reused instead of re-faulted, never in Blender."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = """
import ctypes, resource, sys
sys.path.insert(0, {root!r})
from sharp_addon.model.allocator import keep_freed_memory
applied = keep_freed_memory() if {apply} else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def faults_touching_a_fresh_buffer():  # as torch allocates a CPU tensor: plain malloc, no huge pages
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    size = 200 * 2**20
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_touching_a_fresh_buffer()
print(applied, faults_touching_a_fresh_buffer())
"""


def probe(apply: bool) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), apply=apply)], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_freed_large_buffers_are_reused_without_page_faults():
    applied, faults = probe(apply=True)
    _, default_faults = probe(apply=False)
    assert applied == "True"
    assert default_faults > 40_000  # 200 MB of fresh 4 KiB pages by default
    assert faults < default_faults / 20


def test_never_applied_inside_blender(monkeypatch):
    from sharp_addon.model import allocator

    monkeypatch.setitem(sys.modules, "bpy", object())
    monkeypatch.setattr(allocator, "_applied", False)
    assert allocator.keep_freed_memory() is False
