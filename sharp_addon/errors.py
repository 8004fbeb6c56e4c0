"""The one error family of the extension.

No bpy. Every error a user can act on is a ``SharpError``; its message is meant to be shown
as is (Blender report, stderr), so it states what was expected and what was found.
Operators and the command line catch ``SharpError`` only; anything else is a bug.
"""

from __future__ import annotations


class SharpError(Exception):
    """A problem the user can fix (bad input, missing file or dependency)."""


class GaussiansError(SharpError, ValueError):
    """Gaussian data that breaks the container's contract (shape, dtype, NaN/Inf, range)."""


class PLYError(SharpError):
    """A PLY file that cannot be read as Gaussian splats; the message names the file."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"PLY file '{source}': {problem}")
        self.source = source
        self.problem = problem


class DependencyError(SharpError):
    """A Python package the requested work needs (torch) is not installed."""


class CheckpointError(SharpError):
    """A file that is not a usable SHARP checkpoint; the message names it and says what is wrong."""


class ImageError(SharpError):
    """An image that cannot be read or used; the message names the file."""


class Cancelled(SharpError):
    """The user (or a caller's ``cancel()``) stopped the run; nothing was produced."""


class OutOfMemory(SharpError):
    """The device ran out of memory; the message says what to try instead."""
