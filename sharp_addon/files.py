"""Files as the user sees them: what is at a path, which file is which, and writing one whole.

No bpy. ``path_kind`` names what a path is for messages (a folder given for a photo, a pipe given
for a PLY). ``file_key`` is the one identity a remembered result or check is keyed by: a file is
the same file while its resolved path, size and modification time are, so nothing remembered
about an edited or replaced photo or checkpoint is used for it. ``atomic_output`` is the one way
every writer of this package makes a file appear only when it is complete; ``size_text`` the one
way messages give a size.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .errors import OutputError, SharpError

E = TypeVar("E", bound=SharpError)

TEMP_PREFIX = ".sharp-"  # temporary names: hidden, and ending in .tmp, never in .ply/.blend/.png
TEMP_SUFFIX = ".tmp"

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


def existing_file(path: str | os.PathLike[str], error: type[E], what: str = "file") -> Path:
    """``path`` when it is a file; else ``error`` naming it: "no such file", or "is a folder, not <what>"."""
    kind = path_kind(path)
    if kind == "missing":
        raise error.about(path, "no such file")
    if kind != "file":
        raise error.about(path, f"is a {kind}, not {what}")
    return Path(path)


def writable_folder(folder: str | os.PathLike[str], hint: str = "") -> Path:
    """``folder`` when files can be written in it; else ``OutputError`` naming it (and ``hint``, what to do)."""
    kind = path_kind(folder)
    end = f": {hint}" if hint else ""
    if kind != "folder":
        why = "no such folder" if kind == "missing" else f"is a {kind}, not a folder"
        raise OutputError.about(folder, f"{why}{end}", subject="folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError.about(folder, f"cannot be written (no permission){end}", subject="folder")
    return Path(folder)


def target_problem(path: Path, text: str, what: str = "the file") -> str | None:
    """Why a file cannot be written at ``path`` (None: nothing known against it); ``text`` is the name
    as the user gave it, ``what`` the kind of file asked for ("the .ply file")."""
    if text.endswith(("/", os.sep)):
        return f"the name ends in a path separator; give the name of {what}"
    try:
        kind = path_kind(path)
        if kind == "folder":
            return f"it is a folder; give the name of {what} to write in it"
        if kind not in ("file", "missing"):
            return f"it is a {kind}, not a file"
        return folder_problem(path.parent, create=False)
    except OSError as e:
        return e.strerror or str(e)


def folder_problem(folder: Path, create: bool) -> str | None:
    """Why files cannot be written in ``folder`` (None: they can, as far as can be told beforehand).

    ``create``: a missing folder is fine as long as it can be made (its nearest existing parent
    is a writable folder). ``OSError`` (no permission to look) is raised.
    """
    existing, kind = nearest_existing(folder)
    if kind != "folder":
        return f"'{existing}' is a {kind}, not a folder"
    if existing != folder and not create:
        return f"folder '{folder}' does not exist"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"no permission to write in folder '{existing}'"
    return None


def nearest_existing(path: Path) -> tuple[Path, str]:
    """``path`` or its nearest parent that exists, and what it is (see ``path_kind``)."""
    while (kind := path_kind(path)) == "missing" and path.parent != path:
        path = path.parent
    return path, kind


def readable_file(path: str | os.PathLike[str], error: type[E]) -> Path:
    """``path`` when it is a file to read; else ``error`` naming it: no such file (or which part of the
    path is not a folder), a folder, or a pipe or device (which would block or never end)."""
    path = Path(path)
    try:
        kind = path_kind(path)
        if kind == "missing":
            existing, kind = nearest_existing(path)
            if kind != "folder":  # "a.ply/b.ply": the path runs through a file
                raise error.about(str(path), f"cannot be read: '{existing}' is a {kind}, not a folder")
            raise error.about(str(path), "no such file")
        if kind != "file":
            raise error.about(str(path), f"is a {kind}, not a file")
    except OSError as e:
        raise error.about(str(path), f"cannot be read ({e.strerror or e})") from None
    return path


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


def size_text(n: int | None) -> str:
    """A size in bytes for messages: "2.81 GB", "66.1 MB", "4096 bytes" ("an unknown size" for None)."""
    if n is None:
        return "an unknown size"
    if n >= 100_000_000:
        return f"{n / 1e9:.2f} GB"
    if n >= 100_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n} bytes"


def is_temporary(name: str) -> bool:
    """Is this a name our writers use while a file is unfinished (``.sharp-XXXX.tmp``)?"""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


@contextmanager
def atomic_output(final: Path, *, temp: Path | None = None) -> Iterator[Path]:
    """A temporary path to write ``final``'s content to; on success it is renamed to ``final``.

    The temporary file (``unfinished.tmp``: the writer must not rely on its suffix) lies in a private
    folder ``.sharp-XXXXXXXX.tmp`` beside ``final``, so the rename stays within one file system and
    programs that keep a backup of a file they overwrite (Blender) find nothing there to back up.
    ``temp`` names the temporary file instead, for a writer whose caller must be able to remove it
    after killing the writer mid-write. Another process writing the same ``final`` at the same time
    never mixes with this one: the later rename wins, whole. On any failure, Ctrl+C included, the
    temporary file is removed and ``final`` is left as it was; a killed process leaves only the
    temporary file. Raises ``OutputError`` when the writer produced nothing or the file cannot be
    moved into place. Finished files get the permissions the umask gives new files.
    """
    final = Path(final)
    scratch = None
    try:
        if temp is None:
            scratch = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=final.parent))
            temp = scratch / ("unfinished" + TEMP_SUFFIX)  # no final suffix: no search for *.blend finds it
    except OSError as e:
        raise OutputError.about(final, f"cannot be written ({e.strerror or e})") from None
    try:
        yield temp
        if path_kind(temp) != "file":
            raise OutputError.about(final, "was not written (the writer produced no file)")
        os.chmod(temp, new_file_mode())
        os.replace(temp, final)
    except OSError as e:
        raise OutputError.about(final, f"cannot be written ({e.strerror or e})") from None
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
