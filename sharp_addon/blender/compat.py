"""What differs between the supported Blender versions (4.2 LTS to 5.3), in one place.

Every version switch of the Blender layer asks here, by feature where Blender lets us test for
it and by version only where it does not.
"""

from __future__ import annotations

from typing import Any

import bpy


def enum_ids(struct: Any, prop: str) -> list[str]:
    """The identifiers an RNA enum property accepts in this Blender."""
    rna: Any = struct.bl_rna
    return [item.identifier for item in rna.properties[prop].enum_items]


def can_size_pointclouds() -> bool:
    """``PointCloud.resize`` (5.1+) lets Python make a point cloud of N points; earlier we use a mesh."""
    rna: Any = bpy.types.PointCloud.bl_rna
    return "resize" in rna.functions


def has_native_splats() -> bool:
    """Blender 5.3+ renders point clouds of ``type`` ``GAUSSIAN_SPLAT`` natively (no proxies needed)."""
    rna: Any = bpy.types.PointCloud.bl_rna
    return "type" in rna.properties


def float4_attribute_type() -> str:
    """The 4-float attribute type for ``radiance:base``: ``FLOAT4`` from 5.2, ``FLOAT_COLOR`` before."""
    items = enum_ids(bpy.types.Attribute, "data_type")
    return "FLOAT4" if "FLOAT4" in items else "FLOAT_COLOR"


def attribute_value_key(data_type: str) -> str:
    """The ``foreach_set`` key of an attribute's data items."""
    if data_type in ("FLOAT_VECTOR", "FLOAT2", "FLOAT4"):
        return "vector"
    if data_type in ("FLOAT_COLOR", "BYTE_COLOR"):
        return "color"
    return "value"


def ensure_node_tree(material: bpy.types.Material) -> bpy.types.NodeTree:
    """The material's node tree; ``use_nodes`` is set only where there is none (deprecated in 5.0)."""
    if material.node_tree is None:
        material.use_nodes = True
    tree = material.node_tree
    assert tree is not None
    return tree


def set_if_present(owner: Any, name: str, value: Any) -> bool:
    """Set a property that only some versions have; True when it was there."""
    if hasattr(owner, name):
        setattr(owner, name, value)
        return True
    return False


def set_modifier_value(modifier: Any, identifier: str, value: Any) -> None:
    """A geometry-node modifier input: ``modifier.properties.inputs.<id>.value`` in 5.2+, an ID property before."""
    inputs = getattr(getattr(modifier, "properties", None), "inputs", None)
    if inputs is not None:
        getattr(inputs, identifier).value = value
    else:
        modifier[identifier] = value


def get_modifier_value(modifier: Any, identifier: str) -> Any:
    """A geometry-node modifier input's value (see ``set_modifier_value``)."""
    inputs = getattr(getattr(modifier, "properties", None), "inputs", None)
    return getattr(inputs, identifier).value if inputs is not None else modifier[identifier]
