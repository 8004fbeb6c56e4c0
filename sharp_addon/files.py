"""Paths as the user sees them: what is at a path, and which file is which.

No bpy. ``path_kind`` names what a path is for messages (a folder given for a photo, a pipe given
for a PLY). ``file_key`` is the one identity a remembered result or check is keyed by: a file is
the same file while its resolved path, size and modification time are, so nothing remembered
about an edited or replaced photo or checkpoint is used for it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FileKey = tuple[str, int, int]


def file_key(path: str | os.PathLike[str]) -> FileKey:
    """(resolved path, size in bytes, modification time in ns); ``OSError`` when it cannot be read."""
    resolved = Path(path).expanduser().resolve()
    stat = resolved.stat()
    return str(resolved), stat.st_size, stat.st_mtime_ns


def path_kind(path: str | os.PathLike[str]) -> str:
    """What is at ``path``, in words for messages: "file", "folder", "missing", "named pipe", "socket",
    "device" or "special file". Symbolic links are followed (a dangling one is "missing"); an
    ``OSError`` other than not-found (no permission to look) is raised.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL in the name
        return "missing"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def umask() -> int:
    """The process's umask, read without changing it where the system tells (Linux), else set and restored."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permissions a new file gets from the umask (a temporary file from mkstemp has 0600)."""
    return 0o666 & ~umask()
