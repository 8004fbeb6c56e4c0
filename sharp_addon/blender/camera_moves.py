"""SHARP camera moves: animated copies of the matched camera and their renders (issue 12)."""

from __future__ import annotations

classes: tuple[type, ...] = ()


def register() -> None:
    """Menus and other hooks beyond the classes (called after the classes are registered)."""


def unregister() -> None:
    """Undo register."""
