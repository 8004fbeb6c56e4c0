"""Files as the package writes them (``files``): whole or not at all, and sizes in words."""

from __future__ import annotations

import os

import pytest

from sharp_addon.errors import OutputError
from sharp_addon.files import atomic_output, is_temporary, size_text


def test_atomic_output_appears_whole_with_the_umask_permissions_or_not_at_all(tmp_path):
    final = tmp_path / "scene.blend"
    old = os.umask(0o027)
    try:
        with atomic_output(final) as tmp:
            assert is_temporary(tmp.parent.name) and tmp.parent.parent == tmp_path
            assert tmp.suffix == ".tmp"  # not the final suffix: a recursive search for *.blend misses it
            tmp.write_bytes(b"complete")
            assert not final.exists()
    finally:
        os.umask(old)
    assert final.read_bytes() == b"complete" and final.stat().st_mode & 0o777 == 0o640
    with pytest.raises(RuntimeError), atomic_output(final) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed midway")
    assert final.read_bytes() == b"complete"
    with pytest.raises(OutputError, match="was not written"), atomic_output(tmp_path / "none.png"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.blend"]  # no temporary folder left


def test_atomic_output_to_a_named_temporary_file_leaves_it_removed_on_failure(tmp_path):
    """A writer whose caller may kill it mid-write names the temporary file itself (the worker's frames)."""
    final, temp = tmp_path / "frame.npy", tmp_path / ".frame.npy.partial"
    with atomic_output(final, temp=temp) as tmp:
        assert tmp == temp
        tmp.write_bytes(b"frame")
    assert final.read_bytes() == b"frame" and not temp.exists()
    with pytest.raises(RuntimeError), atomic_output(final, temp=temp) as tmp:
        tmp.write_bytes(b"half a fr")
        raise RuntimeError("killed midway")
    assert final.read_bytes() == b"frame" and sorted(p.name for p in tmp_path.iterdir()) == ["frame.npy"]


def test_sizes_read_as_people_write_them():
    assert [size_text(n) for n in (None, 4096, 66_100_000, 2_810_000_000)] == [
        "an unknown size", "4096 bytes", "66.1 MB", "2.81 GB"]
