"""Which file is which: the one identity a remembered result or check is keyed by.

No bpy. A file is the same file while its resolved path, size and modification time are: an
edited or replaced photo or checkpoint gets a new key, so nothing remembered about the old one
is used for it.
"""

from __future__ import annotations

import os
from pathlib import Path

FileKey = tuple[str, int, int]


def file_key(path: str | os.PathLike[str]) -> FileKey:
    """(resolved path, size in bytes, modification time in ns); ``OSError`` when it cannot be read."""
    resolved = Path(path).expanduser().resolve()
    stat = resolved.stat()
    return str(resolved), stat.st_size, stat.st_mtime_ns
