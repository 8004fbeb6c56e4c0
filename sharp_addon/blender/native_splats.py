"""Blender 5.3+ native Gaussian-splat point clouds: adopting splats imported by Blender's own PLY importer (issue 11)."""

from __future__ import annotations

classes: tuple[type, ...] = ()


def register() -> None:
    """Menus and other hooks beyond the classes (called after the classes are registered)."""


def unregister() -> None:
    """Undo register."""
