"""Is this file the SHARP checkpoint? The one check for a download and for a file the user picks.

No bpy; torch only inside ``torch_weights_check`` (where it is installed). The checks, cheapest
first: the size (what the server announced; at least / exactly what is expected), the SHA-256 when
one is given, every CRC-32 of the checkpoint's zip archive (this is what finds corrupted bytes:
torch's loader reads only the index of a memory-mapped file), then every key and shape
(``api.validate_checkpoint``, when torch is installed here).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import dependencies
from ..errors import Cancelled, CheckpointError, SharpError
from ..files import existing_file, size_text

CHUNK_BYTES = 1 << 20

Progress = Callable[[str, int, int | None], None]  # (stage, bytes done, bytes in all or None)
Cancel = Callable[[], bool]
WeightsCheck = Callable[[Path], str | None]  # a summary, None when it could not run; CheckpointError if bad


@dataclass(frozen=True)
class Expected:
    """What a checkpoint file must be before it is used: at least ``min_bytes``, and exactly ``size``
    bytes and this ``sha256`` (hex) where they are known."""

    min_bytes: int = 0
    size: int | None = None
    sha256: str | None = None


OFFICIAL = Expected(min_bytes=dependencies.CHECKPOINT_BYTES_MIN)  # Apple publishes no size or hash to pin


def expected_for(path: str | os.PathLike[str]) -> Expected:
    """The official file's expectations for a file of its name, none for another name."""
    return OFFICIAL if Path(path).name == dependencies.CHECKPOINT_NAME else Expected()


@dataclass(frozen=True)
class Installed:
    """A checkpoint file that passed ``verify``."""

    path: Path
    size: int
    summary: str  # what the check found, one line
    resumed_from: int = 0  # bytes an earlier, interrupted attempt had already fetched
    downloaded: bool = True  # False: the file was already there (or was only checked)


def torch_weights_check(path: Path) -> str | None:
    """``api.validate_checkpoint`` (every key and shape) where torch is installed, else None."""
    if not dependencies.torch_status().ok:
        return None
    from ..api import validate_checkpoint

    return validate_checkpoint(path)



def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0



class Rejected(Exception):
    """A file that fails a check: ``problem`` reads after "the file received" or "checkpoint '<path>':"."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def verify(path: str | os.PathLike[str], expected: Expected | None = None, *, total: int | None = None,
           progress: Progress | None = None, cancel: Cancel | None = None,
           check_weights: WeightsCheck | None = torch_weights_check) -> str:
    """One line saying what was checked, or ``CheckpointError`` naming ``path`` and what is wrong.

    ``total``: the size the server announced. ``expected`` defaults to ``expected_for(path)``. The
    checks, cheapest first: size, SHA-256 (when expected), every CRC-32 of the zip archive torch
    writes, then ``check_weights`` (every key and shape; None: not checked).
    """
    path = Path(path).expanduser()
    try:
        return check(path, expected or expected_for(path), total, progress, cancel, check_weights)
    except Rejected as e:
        raise CheckpointError.about(path, e.problem) from None


def verify_file(path: str | os.PathLike[str], expected: Expected | None = None, *,
                progress: Progress | None = None, cancel: Cancel | None = None,
                check_weights: WeightsCheck | None = torch_weights_check) -> Installed:
    """``verify`` for a file downloaded elsewhere (the user picked it): its ``Installed`` record."""
    path = existing_file(Path(path).expanduser(), CheckpointError, "a checkpoint file")
    summary = verify(path, expected, progress=progress, cancel=cancel, check_weights=check_weights)
    return Installed(path, file_size(path), summary, downloaded=False)


def check(path: Path, expected: Expected, total: int | None, progress: Progress | None, cancel: Cancel | None,
            check_weights: WeightsCheck | None) -> str:
    size = file_size(path)
    if total is not None and size != total:
        raise Rejected(f"holds {size} bytes, not the {total} the server announced")
    if expected.size is not None and size != expected.size:
        raise Rejected(f"holds {size} bytes, not the {expected.size} expected")
    if size < expected.min_bytes:
        raise Rejected(f"is too small to be the official checkpoint ({size_text(size)}; it has at least "
                        f"{size_text(expected.min_bytes)}): cut short, or another file")
    if expected.sha256:
        digest = _sha256(path, progress, cancel)
        if digest != expected.sha256.lower():
            raise Rejected(f"is corrupted: its SHA-256 is {digest}, not the expected {expected.sha256.lower()}")
    entries = _check_archive(path, progress, cancel)
    weights = None
    if check_weights is not None:
        if progress is not None:
            progress("check", 0, None)
        weights = check_weights(path)
    checked = f"{size_text(size)}, every checksum of its {entries} archive entries intact"
    if weights is None:
        return f"{checked}; keys and shapes not checked here (PyTorch is not installed)"
    return f"{weights}; {checked}"


def _sha256(path: Path, progress: Progress | None, cancel: Cancel | None) -> str:
    digest, done, total = hashlib.sha256(), 0, file_size(path)
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            digest.update(block)
            done += len(block)
            _tick("hash", done, total, progress, cancel)
    return digest.hexdigest()


def _check_archive(path: Path, progress: Progress | None, cancel: Cancel | None) -> int:
    """Read every entry of the checkpoint's zip archive (zipfile checks each CRC-32); the entry count."""
    try:
        if not zipfile.is_zipfile(path):
            raise Rejected("is not a PyTorch checkpoint archive (a zip file): it is cut short, damaged, or "
                            "another kind of file")
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if not any(i.filename == "data.pkl" or i.filename.endswith("/data.pkl") for i in infos):
                raise Rejected("is a zip archive but not a PyTorch checkpoint (it has no data.pkl)")
            total, done = sum(i.file_size for i in infos), 0
            for info in infos:
                with archive.open(info) as member:
                    while block := member.read(CHUNK_BYTES):
                        done += len(block)
                        _tick("verify", done, total, progress, cancel)
    except zipfile.BadZipFile as e:
        text = str(e)
        if text.startswith("Bad CRC-32 for file "):
            raise Rejected(f"is corrupted: its archive entry {text.removeprefix('Bad CRC-32 for file ')} fails its "
                            "CRC-32 checksum") from None
        raise Rejected(f"is corrupted ({text})") from None
    except (OSError, EOFError, zlib.error, NotImplementedError, ValueError) as e:
        raise Rejected(f"cannot be read as an archive ({e})") from None
    return len(infos)


def _tick(stage: str, done: int, total: int, progress: Progress | None, cancel: Cancel | None) -> None:
    if progress is not None:
        progress(stage, done, total)
    if cancel is not None and cancel():
        raise Cancelled("cancelled while checking the file")


def problem_of(error: SharpError) -> str:
    """An error's message without its "checkpoint '<path>': " prefix (when the path is a temporary one)."""
    text = str(error)
    prefix = f"{CheckpointError.subject} '{error.path}': " if error.path else ""
    return text.removeprefix(prefix) if prefix else text

