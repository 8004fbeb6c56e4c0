"""Properties the add-on adds to Blender's own types: per-object splat settings.

``Object.sharp_transparency`` is how EEVEE blends one splat object's splats. It is not stored:
it reads and switches the object's splat material (one shared material per method), so it can
never disagree with what renders, and changing it on one object leaves every other one alone.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import EnumProperty

from . import scene

TRANSPARENCY_ITEMS = [
    ("DITHERED", "Dithered", "EEVEE: order-independent, converges as samples add up (noisy while moving)"),
    ("BLENDED", "Blended", "EEVEE: smooth alpha blending, sorted per splat (slower with many splats)"),
]
_METHODS = [identifier for identifier, _, _ in TRANSPARENCY_ITEMS]


def _get_transparency(obj: Any) -> int:
    method = scene.transparency(obj)
    return _METHODS.index(method) if method in _METHODS else 0


def _set_transparency(obj: Any, value: int) -> None:
    if scene.splat_modifier(obj) is not None:
        scene.set_transparency(obj, _METHODS[value])


def register() -> None:
    bpy.types.Object.sharp_transparency = EnumProperty(  # type: ignore[attr-defined]
        name="EEVEE Transparency", items=TRANSPARENCY_ITEMS, get=_get_transparency, set=_set_transparency,
        description="How EEVEE blends this object's splats (Cycles is always exact); other splat objects keep theirs",
    )


def unregister() -> None:
    del bpy.types.Object.sharp_transparency  # type: ignore[attr-defined]
