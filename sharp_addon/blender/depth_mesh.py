"""The textured depth mesh of SHARP's visible layer (issue 12)."""

from __future__ import annotations

classes: tuple[type, ...] = ()


def register() -> None:
    """Menus and other hooks beyond the classes (called after the classes are registered)."""


def unregister() -> None:
    """Undo register."""
