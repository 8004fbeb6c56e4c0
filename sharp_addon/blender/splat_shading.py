"""The splat look: one geometry-node group and three materials, made once per file and reused.

The node group (``splat_nodes``) shows the splats the modifier keeps as proxies with the
Gaussian's visible extent: cubes in the viewport, quads facing the scene camera in renders
(``splat_quads``), native splats on Blender 5.3+ unless ``Render as Proxies`` is on, or fast
points. The materials (``splat_materials``) shade each proxy with its Gaussian's falloff along the
whole view ray. There is one splat material per EEVEE transparency method
(``TRANSPARENCY_METHODS``), so objects imported with different methods never change each other;
Cycles renders both alike. What the splat object stores and the modifier shows is in
``splat_interface``; each graph is laid out for the node editor by ``node_layout``.

The datablocks carry a version stamp (``NODES_VERSION``): a file keeps the copies an older add-on
made, and new objects get a current copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bpy

from .splat_interface import COLOR_ATTRIBUTE, INPUTS, LAYER_ATTRIBUTE, LOD_ATTRIBUTE, Input, modifier_inputs
from .splat_materials import build_point_material, build_splat_material
from .splat_nodes import build_node_group
from .splat_quads import DEPTH_TIE_BREAK

__all__ = [  # what the rest of the add-on and its tests read from here (some defined in the modules below)
    "BLENDED_SPLAT_MATERIAL_NAME", "COLOR_ATTRIBUTE", "DEPTH_TIE_BREAK", "INPUTS", "LAYER_ATTRIBUTE",
    "LOD_ATTRIBUTE", "NODES_VERSION", "NODE_GROUP_NAME", "POINT_MATERIAL_NAME", "ROLE", "SPLAT_MATERIAL_NAME",
    "STAMP", "TRANSPARENCY_METHODS", "Input", "ensure_point_material", "ensure_splat_material",
    "ensure_splat_node_group", "modifier_inputs", "splat_material_transparency",
]  # fmt: skip

NODES_VERSION = 3  # bump when the node group or materials change; old files keep their old copies
NODE_GROUP_NAME = "SHARP Splats"
SPLAT_MATERIAL_NAME = "SHARP Splat"  # dithered transparency
BLENDED_SPLAT_MATERIAL_NAME = "SHARP Splat Blended"
POINT_MATERIAL_NAME = "SHARP Splat Points"
STAMP = "sharp_version"  # custom property on the node group and materials
ROLE = "sharp_role"  # custom property: which of our datablocks it is (its original name)

TRANSPARENCY_METHODS = ("DITHERED", "BLENDED")  # EEVEE: order-free but noisy while moving / smooth
_SPLAT_MATERIAL_ROLES = {"DITHERED": SPLAT_MATERIAL_NAME, "BLENDED": BLENDED_SPLAT_MATERIAL_NAME}


def _stamped(collection: Any, role: str) -> Any | None:
    """The datablock this version of the add-on made (by stamp, so users may rename it)."""
    return next((d for d in collection if d.get(STAMP) == NODES_VERSION and d.get(ROLE) == role), None)


def _stamp(datablock: Any, role: str) -> None:
    datablock[STAMP] = NODES_VERSION
    datablock[ROLE] = role


def ensure_splat_node_group() -> Any:
    """The file's splat node group of this version, made on first use."""
    group = _stamped(bpy.data.node_groups, NODE_GROUP_NAME)
    if group is None:
        group = build_node_group(NODE_GROUP_NAME)
        _stamp(group, NODE_GROUP_NAME)
    return group


def ensure_splat_material(transparency: str = "DITHERED") -> bpy.types.Material:
    """The file's splat material for an EEVEE transparency method of ``TRANSPARENCY_METHODS``,
    made on first use ("SHARP Splat" dithered, "SHARP Splat Blended" blended)."""
    if transparency not in _SPLAT_MATERIAL_ROLES:
        raise ValueError(f"transparency must be one of {', '.join(TRANSPARENCY_METHODS)}; got {transparency!r}")
    return _ensure_material(_SPLAT_MATERIAL_ROLES[transparency],
                            lambda m: build_splat_material(m, transparency))


def ensure_point_material() -> bpy.types.Material:
    """The file's material of the fast point display ("SHARP Splat Points"), made on first use."""
    return _ensure_material(POINT_MATERIAL_NAME, build_point_material)


def splat_material_transparency(material: Any) -> str | None:
    """``DITHERED`` or ``BLENDED`` for one of our splat materials (read from its stamp and role, so
    a renamed one still counts), None for any other material. Version-1 files had one splat
    material for both methods: there its render method tells."""
    version, role = (material.get(STAMP), material.get(ROLE)) if material is not None else (None, None)
    if not isinstance(version, int):
        return None
    if version < 2 and role == SPLAT_MATERIAL_NAME:
        method = getattr(material, "surface_render_method", "DITHERED")
        return method if method in TRANSPARENCY_METHODS else "DITHERED"
    return next((method for method, name in _SPLAT_MATERIAL_ROLES.items() if role == name), None)


def _ensure_material(role: str, build: Callable[[bpy.types.Material], None]) -> bpy.types.Material:
    material = _stamped(bpy.data.materials, role)
    if material is None:
        material = bpy.data.materials.new(role)
        build(material)
        _stamp(material, role)
    return material
