"""The one error family of the extension.

No bpy. Every error a user can act on is a ``SharpError``; its message is meant to be shown
as is (Blender report, stderr), so it states what was expected and what was found.
Operators and the command line catch ``SharpError`` only; anything else is a bug.

Two rules keep the family usable end to end:

- every class is built from its message alone (``cls(message, path=...)``), so an error that
  crosses a process boundary (the inference worker) comes back as the same class with the
  same message (``to_event`` / ``from_event``);
- a message about a file or an object names it one way: ``ImageError.about(path, "problem")``
  gives ``image '<path>': problem`` (the subject word comes from the class).
"""

from __future__ import annotations

import os
import sys
from typing import Any, ClassVar, TypeVar

E = TypeVar("E", bound="SharpError")


class SharpError(Exception):
    """A problem the user can fix (bad input, missing file or dependency)."""

    subject: ClassVar[str] = "file"  # what ``about`` calls the thing it names

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)

    @classmethod
    def about(cls: type[E], path: str | os.PathLike[str], problem: str, *, subject: str | None = None) -> E:
        """The error for ``problem`` with the file (or object) ``path``: "<subject> '<path>': <problem>"."""
        return cls(f"{subject or cls.subject} '{os.fspath(path)}': {problem}", path=path)


class GaussiansError(SharpError, ValueError):
    """Gaussian data that breaks the container's contract (shape, dtype, NaN/Inf, range)."""

    subject = "object"


class SplatFileError(SharpError):
    """A splat file (SPZ, glTF, SOG, .splat, ...) that cannot be read or written, or a format that
    cannot hold what is asked of it; the message names the file."""

    subject = "splat file"


class PLYError(SplatFileError):
    """A PLY file that cannot be read or written as Gaussian splats; the message names the file."""

    subject = "PLY file"


class DependencyError(SharpError):
    """A Python package the requested work needs (torch) is not installed."""


class CheckpointError(SharpError):
    """A file that is not a usable SHARP checkpoint; the message names it and says what is wrong."""

    subject = "checkpoint"


class ImageError(SharpError):
    """An image that cannot be read or used; the message names the file."""

    subject = "image"


class OutputError(SharpError):
    """A place where a result cannot be written (missing folder, a file in the way, no permission)."""

    subject = "output"


class DownloadError(SharpError):
    """A download that failed: the server is unreachable or refuses, the connection broke, or what
    arrived is not a usable checkpoint (then it was removed). The message says which, and what to do."""

    subject = "download"


class CameraError(SharpError, ValueError):
    """A camera with values no renderer can use (bad focal length, size or pose), or a camera move
    that cannot be made as asked."""


class CameraMoveError(CameraError):
    """A camera move that cannot be made or rendered for this object or scene; the message names it."""

    subject = "object"


class Cancelled(SharpError):
    """The user (or a caller's ``cancel()``) stopped the run; nothing was produced."""


class OutOfMemory(SharpError):
    """The device ran out of memory; the message says what to try instead."""


class WorkerCrashed(SharpError):
    """The worker process died or went silent without answering (killed, out of memory, a native crash)."""


class ProtocolError(SharpError):
    """A worker or host sent something the other side does not understand (a bug or a version mix)."""


# ---- across a process boundary ----------------------------------------------------------------------


def to_event(error: SharpError) -> dict[str, Any]:
    """The fields of an ``error`` event that rebuild ``error`` on the other side."""
    return {"type": type(error).__name__, "message": str(error), "path": error.path}


def from_event(event: dict[str, Any]) -> SharpError:
    """The error an ``error`` event describes, as the same class (``SharpError`` for unknown names)."""
    cls = getattr(sys.modules[__name__], str(event.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, SharpError)):
        cls = SharpError
    path = event.get("path")
    return cls(str(event.get("message", "")), path=None if path is None else str(path))

