"""Render Splats (Exact): the exact 3DGS renderer seen through a Blender camera (issue 11)."""

from __future__ import annotations

classes: tuple[type, ...] = ()


def register() -> None:
    """Menus and other hooks beyond the classes (called after the classes are registered)."""


def unregister() -> None:
    """Undo register."""
