"""The CPU allocator setting: applied in processes that run SHARP on Linux/glibc, never in Blender.

What it saves (page faults of large fresh buffers) is measured by bench/allocator.py, not here.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# in a child process: the setting is process-wide and must not change the test process
PROBE = """
import sys
sys.path.insert(0, {root!r})
from sharp_addon.model.allocator import keep_freed_memory, release_freed_memory
release_freed_memory()  # before: nothing to give back yet
first, again = keep_freed_memory(), keep_freed_memory()
block = bytearray(64 << 20)  # a large block served and freed under the setting
del block
release_freed_memory()
release_freed_memory()
block = bytearray(64 << 20)  # and the heap still serves after giving the freed part back
print(first, again, len(block))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc's mallopt is Linux/glibc-only")
def test_applied_on_linux_glibc_outside_blender_and_release_is_safe_around_it():
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT))], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", str(64 << 20)]


def test_never_applied_inside_blender(monkeypatch):
    from sharp_addon.model import allocator

    monkeypatch.setitem(sys.modules, "bpy", object())
    monkeypatch.setattr(allocator, "_applied", False)
    monkeypatch.setattr(allocator, "_libc", None)
    assert allocator.keep_freed_memory() is False
    allocator.release_freed_memory()  # a no-op where the setting was not applied
