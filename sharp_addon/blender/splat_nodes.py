"""The splat node group: which splats to show, and a proxy per shown Gaussian or a fast point.

Every kept splat instances a proxy with the Gaussian's visible extent, k standard deviations
(``splat_interface``). In the viewport a cube, rotated and scaled by the Gaussian: right from
every view, and nothing depends on the camera. In renders (``Face Camera in Renders``) a quad
through the centre facing the scene camera (``splat_quads``). On Blender 5.3+ the cloud renders
as native splats unless ``Render as Proxies`` is on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import bpy

from . import compat
from .node_builder import NodeBuilder
from .splat_interface import COLOR_ATTRIBUTE, LAYER_ATTRIBUTE, LOD_ATTRIBUTE, extent_squared, modifier_inputs
from .splat_quads import SplatFields, camera_facing_quads

ModifierInput = Callable[[str], Any]  # a modifier input's socket by its name


def build_node_group(name: str) -> Any:
    """A new geometry-node group ``name`` with the modifier inputs of ``modifier_inputs()``."""
    group = _new_modifier_group(name)
    b = NodeBuilder(group)
    with b.stage("Modifier inputs"):
        inputs: ModifierInput = functools.partial(b.out, b.node("NodeGroupInput"))
    splats = _shown_splats(b, inputs)
    native = compat.has_native_splats()
    native_splats = _native_splats(b, splats) if native else None
    cubes = _cube_proxies(b, splats, inputs("Splat Material"))
    quads = camera_facing_quads(b, splats, inputs("Splat Material"))
    with b.stage("Proxies for this view"):
        in_viewport = b.out(b.node("GeometryNodeIsViewport"), "Is Viewport")
        facing = b.and_(inputs("Face Camera in Renders"), b.not_(in_viewport, "Rendering"), "Quads here")
        switch = b.node("GeometryNodeSwitch", {"Switch": facing, "False": cubes, "True": quads},
                        "Cubes or camera-facing quads", input_type="GEOMETRY")
        gaussians = b.out(switch, "Output")
    if native_splats is not None:
        with b.stage("Native splats or proxies"):
            switch = b.node("GeometryNodeSwitch", {"Switch": inputs("Render as Proxies"), "False": native_splats,
                                                   "True": gaussians}, "Native splats or proxies",
                            input_type="GEOMETRY")
            gaussians = b.out(switch, "Output")
    points = _fast_points(b, splats, native, inputs("Point Material"))
    with b.stage("Output"):
        in_viewport = b.out(b.node("GeometryNodeIsViewport"), "Is Viewport")
        use_points = b.or_(inputs("Show as Points"), b.and_(inputs("Points in Viewport"), in_viewport,
                                                            "Points here (viewport)"), "Show points")
        switch = b.node("GeometryNodeSwitch", {"Switch": use_points, "False": gaussians, "True": points},
                        "Gaussians or points", input_type="GEOMETRY")
        b.link(b.out(switch, "Output"), b.node("NodeGroupOutput"), "Geometry")
    b.arrange()
    return group


def _new_modifier_group(name: str) -> Any:
    group: Any = bpy.data.node_groups.new(name, "GeometryNodeTree")
    group.is_modifier = True
    group.description = "SHARP Gaussian splats: a proxy per Gaussian with the exact falloff, or fast points"
    group.interface.new_socket(name="Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket(name="Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    for spec in modifier_inputs():
        socket = group.interface.new_socket(name=spec.name, in_out="INPUT", socket_type=spec.socket_type)
        socket.description = spec.description
        if spec.default is not None:
            socket.default_value = spec.default
        if spec.min is not None:
            socket.min_value, socket.max_value = spec.min, spec.max
        if spec.subtype != "NONE":
            socket.subtype = spec.subtype
    return group


def _shown_splats(b: NodeBuilder, inputs: ModifierInput) -> SplatFields:
    """The splat object's attributes, which splats the modifier shows, and their size."""
    with b.stage("Attributes"):
        def named(name: str, data_type: str, label: str) -> Any:
            node = b.node("GeometryNodeInputNamedAttribute", {"Name": name}, label, data_type=data_type)
            return b.out(node, "Attribute")

        color = b.node("FunctionNodeSeparateColor", {"Color": named(COLOR_ATTRIBUTE, "FLOAT_COLOR", "Colour")},
                       "Opacity (alpha)")
        opacity = b.out(color, "Alpha")
        lod = named(LOD_ATTRIBUTE, "FLOAT", "Keep-fraction key")
        layer = named(LAYER_ATTRIBUTE, "INT", "Depth layer")
        position = b.out(b.node("GeometryNodeInputPosition"), "Position")
        scale = named("scale", "FLOAT_VECTOR", "Sigma (scale)")
        rotation = named("rotation", "QUATERNION", "Rotation")
    selection = _which_splats_to_show(b, inputs, opacity, lod, layer, position)
    with b.stage("Size: k sigma"):
        # proxy size: k sigma, times the user's splat size; never exactly 0 (the shader inverts it)
        k = b.math("SQRT", extent_squared(b, opacity), label="k")
        extent = b.math("MULTIPLY", k, inputs("Splat Size"), "k × Splat Size")
        sigma = b.vmath("MAXIMUM", scale, (1e-9, 1e-9, 1e-9), label="Sigma, never 0")
    return SplatFields(inputs("Geometry"), selection, position, rotation, sigma, extent, lod)


def _which_splats_to_show(b: NodeBuilder, inputs: ModifierInput, opacity: Any, lod: Any, layer: Any,
                          position: Any) -> Any:
    """The modifier's filters: opacity, keep fraction, depth layers and crop box."""
    with b.stage("Which splats to show"):
        opaque = b.compare(opacity, inputs("Opacity Threshold"), "GREATER_EQUAL", label="Opaque enough")
        kept = b.compare(lod, inputs("Keep Fraction"), "LESS_THAN", label="Kept by Keep Fraction")
        is_first = b.compare(layer, 0, "EQUAL", "INT", label="First layer")
        is_later = b.not_(is_first, "Later layer")
        layer_ok = b.or_(b.and_(is_first, inputs("Visible Layer"), "First layer shown"),
                         b.and_(is_later, inputs("Occluded Layer"), "Later layer shown"), "Layer shown")
        in_box = b.and_(b.compare(position, inputs("Crop Min"), "GREATER_EQUAL", "VECTOR", label="Above Crop Min"),
                        b.compare(position, inputs("Crop Max"), "LESS_EQUAL", "VECTOR", label="Below Crop Max"),
                        "Inside the crop box")
        crop_ok = b.or_(b.not_(inputs("Use Crop Box"), "No crop box"), in_box, "Not cropped")
        return b.and_(b.and_(opaque, kept, "Opaque and kept"), b.and_(layer_ok, crop_ok, "Layer and crop"), "Shown")


def _native_splats(b: NodeBuilder, splats: SplatFields) -> Any:
    """Blender 5.3+: the shown part of the cloud, rendered as Blender's own Gaussian splats."""
    with b.stage("Native Gaussian splats"):
        shown = b.node("GeometryNodeDeleteGeometry", {"Geometry": splats.geometry,
                                                      "Selection": b.not_(splats.selection, "Not shown")},
                       "Drop splats not shown", domain="POINT")
        native = b.node("GeometryNodePointsSetType", {"Points": b.out(shown, "Geometry")}, "As Gaussian splats")
        native.inputs["Type"].default_value = "3D Gaussian Splat"  # the menu item names
        return b.out(native, "Points")


def _cube_proxies(b: NodeBuilder, splats: SplatFields, material: Any) -> Any:
    """A cube [-1, 1]³ per shown splat, rotated and scaled to k sigma: right from any view."""
    with b.stage("Gaussian proxies"):
        cube = b.node("GeometryNodeMeshCube", {"Size": (2.0, 2.0, 2.0)}, "Cube [-1, 1]³")
        proxy = b.node("GeometryNodeSetMaterial", {"Geometry": b.out(cube, "Mesh"), "Material": material},
                       "Splat Material")
        cubes = b.node("GeometryNodeInstanceOnPoints", {
            "Points": splats.geometry,
            "Selection": splats.selection,
            "Instance": b.out(proxy, "Geometry"),
            "Rotation": splats.rotation,
            "Scale": b.vmath("SCALE", splats.sigma, scale=splats.extent, label="Half-edges k sigma"),
        }, "Cubes (any view)")
        return b.out(cubes, "Instances")


def _fast_points(b: NodeBuilder, splats: SplatFields, native: bool, material: Any) -> Any:
    """A round point of radius k sigma_max per shown splat: the mesh's vertices (Blender < 5.1) or
    the point cloud itself (on 5.3+ set to plain points, as the cloud is a splat cloud)."""
    with b.stage("Fast points"):
        selection = splats.selection
        xyz = b.node("ShaderNodeSeparateXYZ", {"Vector": splats.sigma}, "Sigma x, y, z")
        sigma_max = b.math("MAXIMUM", b.math("MAXIMUM", b.out(xyz, "X"), b.out(xyz, "Y"), "max(x, y)"),
                           b.out(xyz, "Z"), "Largest sigma")
        radius = b.math("MULTIPLY", splats.extent, sigma_max, "Radius k sigma_max")
        parts = b.node("GeometryNodeSeparateComponents", {"Geometry": splats.geometry})
        from_mesh = b.node("GeometryNodeMeshToPoints", {"Mesh": b.out(parts, "Mesh"), "Selection": selection,
                                                        "Radius": radius}, "Mesh vertices to points", mode="VERTICES")
        cloud = b.node("GeometryNodeDeleteGeometry", {"Geometry": b.out(parts, "Point Cloud"),
                                                      "Selection": b.not_(selection, "Hidden")},
                       "Drop hidden points", domain="POINT")
        cloud = b.node("GeometryNodeSetPointRadius", {"Points": b.out(cloud, "Geometry"), "Radius": radius})
        if native:
            cloud = b.node("GeometryNodePointsSetType", {"Points": b.out(cloud, "Points")}, "As plain points")
            cloud.inputs["Type"].default_value = "Points"
        join = b.node("GeometryNodeJoinGeometry")
        b.link(b.out(cloud, "Points"), join, "Geometry")
        b.link(b.out(from_mesh, "Points"), join, "Geometry")
        points = b.node("GeometryNodeSetMaterial", {"Geometry": b.out(join, "Geometry"), "Material": material},
                        "Point Material")
        return b.out(points, "Geometry")
