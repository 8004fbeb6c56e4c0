"""The render proxies of the splat node group: a quad per splat facing the scene camera.

Every camera ray then meets the splats in the order of their centres' camera depth, the order
3DGS blends them in (cubes are met in the order of their faces, which mixes up closely overlapping
splats of different shapes: 28 dB against 50 dB, docs/benchmarks.md). A point u of the k-sigma
ellipsoid about centre (x, y, z) (camera frame, z the depth) is seen on the quad's plane at
offset z / (z + u_z) (u_x - u_z x / z, u_y - u_z y / z); its largest value along the camera's
right axis is k |S R^-1 w| with w = right + (x / z) back (likewise up), times z / (z - k sigma_z)
at most: the quad's half-sizes (at least k |S R^-1 right|, an orthographic camera's bound).
The quads store the map from their own coordinates to the Gaussian's unit frame
(``PROXY_FRAME_ATTRIBUTES``) for the material's ray-marginal falloff.

Splats at exactly one depth would give coplanar quads, which hide each other from Cycles'
transparent rays (a flat wall of them: 9 dB); each moves along its own camera ray by a relative
``DEPTH_TIE_BREAK`` times its keep-fraction key, which leaves where it projects unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .node_builder import NodeBuilder
from .splat_interface import PROXY_FRAME_ATTRIBUTES

DEPTH_TIE_BREAK = 1e-4  # relative depth spread of the quads by their key: splats never share a plane
NEAR_DEPTH = 0.01  # metres: splats nearer the camera are skipped, as by 3DGS and our exact renderer


class SplatFields(NamedTuple):
    """The splats as the node group's proxies are built from them (sockets of the group)."""

    geometry: Any  # the splat object's points
    selection: Any  # bool: shown by the modifier's filters
    position: Any
    rotation: Any
    sigma: Any  # standard deviations per axis, never 0
    extent: Any  # k times the modifier's Splat Size
    key: Any  # the keep-fraction key (``sharp_lod``)


class _SceneCamera(NamedTuple):
    rotation: Any
    location: Any
    right: Any  # its axes in the splats' frame
    up: Any
    back: Any  # it looks down -back
    offset: Any  # splat centre - camera


class _CameraDepth(NamedTuple):
    in_front: Any  # bool: z > NEAR_DEPTH
    safe_depth: Any  # z, at least NEAR_DEPTH
    x_over_z: Any
    y_over_z: Any


class _QuadShape(NamedTuple):
    to_splat: Any  # the splat's inverse rotation
    half_x: Any
    half_y: Any
    half_sizes: Any  # (half_x, half_y, 1): the quad's scale


def camera_facing_quads(b: NodeBuilder, splats: SplatFields, material: Any) -> Any:
    """Instances of a quad through each shown splat's centre, parallel to the scene camera's image
    plane, with ``material``."""
    camera = _scene_camera(b, splats.position)
    moved = _break_depth_ties(b, splats.geometry, camera, splats.key)
    depth = _camera_depth(b, camera)
    shape = _quad_sizes(b, splats, camera, depth)
    stored = _store_quad_frames(b, moved, splats, camera, shape)
    with b.stage("Camera-facing quads"):
        quad = b.node("GeometryNodeMeshGrid", {"Size X": 2.0, "Size Y": 2.0, "Vertices X": 2, "Vertices Y": 2},
                      "Quad [-1, 1]²")
        proxy = b.node("GeometryNodeSetMaterial", {"Geometry": b.out(quad, "Mesh"), "Material": material},
                       "Splat Material")
        quads = b.node("GeometryNodeInstanceOnPoints", {
            "Points": stored,
            "Selection": b.and_(splats.selection, depth.in_front, "Shown and in front"),
            "Instance": b.out(proxy, "Geometry"),
            "Rotation": camera.rotation,
            "Scale": shape.half_sizes,
        }, "Quads facing the camera")
    return b.out(quads, "Instances")


def _rotated(b: NodeBuilder, vector: Any, rotation: Any, label: str) -> Any:
    return b.out(b.node("FunctionNodeRotateVector", {"Vector": vector, "Rotation": rotation}, label), "Vector")


def _scene_camera(b: NodeBuilder, position: Any) -> _SceneCamera:
    with b.stage("Scene camera, in the splats' frame"):
        camera = b.out(b.node("GeometryNodeInputActiveCamera"), "Active Camera")
        info = b.node("GeometryNodeObjectInfo", {"Object": camera}, "Scene camera", transform_space="RELATIVE")
        rotation = b.out(info, "Rotation")
        right, up, back = (_rotated(b, (1.0, 0.0, 0.0), rotation, "Camera right"),
                           _rotated(b, (0.0, 1.0, 0.0), rotation, "Camera up"),
                           _rotated(b, (0.0, 0.0, 1.0), rotation, "Camera back (it looks down -Z)"))
        offset = b.vmath("SUBTRACT", position, b.out(info, "Location"), label="Centre - camera")
    return _SceneCamera(rotation, b.out(info, "Location"), right, up, back, offset)


def _break_depth_ties(b: NodeBuilder, geometry: Any, camera: _SceneCamera, key: Any) -> Any:
    """``geometry`` with each point moved along its camera ray by a relative 1e-4 (key - 1/2)."""
    with b.stage("Depth tie-break"):
        stretch = b.math("MULTIPLY_ADD", b.math("SUBTRACT", key, 0.5, "key - 1/2"), DEPTH_TIE_BREAK,
                         label="1 + 1e-4 (key - 1/2)")
        b.feed(stretch.node, ("Value", 2), 1.0)  # (key - 1/2) 1e-4 + 1
        along_ray = b.vmath("ADD", camera.location, b.vmath("SCALE", camera.offset, scale=stretch, label="Stretched"),
                            label="Moved along its ray")
        return b.out(b.node("GeometryNodeSetPosition", {"Geometry": geometry, "Position": along_ray},
                            "Ties in depth broken"), "Geometry")


def _camera_depth(b: NodeBuilder, camera: _SceneCamera) -> _CameraDepth:
    with b.stage("Camera depth"):  # evaluated on the moved points from here on
        offset = camera.offset
        depth = b.math("MULTIPLY", b.vmath("DOT_PRODUCT", offset, camera.back, label="Along back"), -1.0, "Depth z")
        in_front = b.compare(depth, NEAR_DEPTH, "GREATER_THAN", label="In front (z > 0.01 m)")
        safe_depth = b.math("MAXIMUM", depth, NEAR_DEPTH, "z, at least 0.01 m")
        x_over_z = b.math("DIVIDE", b.vmath("DOT_PRODUCT", offset, camera.right, label="x"), safe_depth, "x / z")
        y_over_z = b.math("DIVIDE", b.vmath("DOT_PRODUCT", offset, camera.up, label="y"), safe_depth, "y / z")
    return _CameraDepth(in_front, safe_depth, x_over_z, y_over_z)


def _spread(b: NodeBuilder, splats: SplatFields, to_splat: Any, vector: Any, label: str) -> Any:
    """k |S R^-1 w|: how far the splat's k-sigma ellipsoid reaches along ``vector``."""
    in_splat = _rotated(b, vector, to_splat, f"{label} in splat")
    stretched = b.vmath("MULTIPLY", splats.sigma, in_splat, label=f"S R⁻¹ {label}")
    return b.math("MULTIPLY", b.vmath("LENGTH", stretched, label=f"|S R⁻¹ {label}|"), splats.extent,
                  f"k |S R⁻¹ {label}|")


def _quad_sizes(b: NodeBuilder, splats: SplatFields, camera: _SceneCamera, depth: _CameraDepth) -> _QuadShape:
    with b.stage("Quad sizes"):
        to_splat = b.out(b.node("FunctionNodeInvertRotation", {"Rotation": splats.rotation}, "Splat rotation⁻¹"),
                         "Rotation")
        right, up, back, z = camera.right, camera.up, camera.back, depth.safe_depth
        right_w = b.vmath("ADD", right, b.vmath("SCALE", back, scale=depth.x_over_z, label="(x / z) back"),
                          label="w right")
        up_w = b.vmath("ADD", up, b.vmath("SCALE", back, scale=depth.y_over_z, label="(y / z) back"), label="w up")
        near_side = b.math("SUBTRACT", z, _spread(b, splats, to_splat, back, "back"), "z - k sigma_z")
        nearest = b.math("MAXIMUM", near_side, b.math("MULTIPLY", z, 0.25, "z / 4"), "Nearest depth, ≥ z / 4")
        perspective = b.math("DIVIDE", z, nearest, "Perspective margin (≤ 4)")
        # the larger of the perspective bound and the orthographic one (k |S R^-1 right|): either camera
        seen_x = b.math("MULTIPLY", _spread(b, splats, to_splat, right_w, "w right"), perspective,
                        "Perspective half-width")
        seen_y = b.math("MULTIPLY", _spread(b, splats, to_splat, up_w, "w up"), perspective, "Perspective half-height")
        half_x = b.math("MAXIMUM", seen_x, _spread(b, splats, to_splat, right, "right"), "Half-width")
        half_y = b.math("MAXIMUM", seen_y, _spread(b, splats, to_splat, up, "up"), "Half-height")
        half_sizes = b.out(b.node("ShaderNodeCombineXYZ", {"X": half_x, "Y": half_y, "Z": 1.0}, "Quad scale"), "Vector")
    return _QuadShape(to_splat, half_x, half_y, half_sizes)


def _store_quad_frames(b: NodeBuilder, geometry: Any, splats: SplatFields, camera: _SceneCamera,
                       shape: _QuadShape) -> Any:
    """``geometry`` with each quad's axes in the Gaussian's unit frame (``PROXY_FRAME_ATTRIBUTES``)."""
    with b.stage("Quad to Gaussian frame"):
        inverse_sigma = b.vmath("DIVIDE", (1.0, 1.0, 1.0), b.vmath("SCALE", splats.sigma, scale=splats.extent,
                                                                   label="k sigma"), label="1 / (k sigma)")
        columns = (b.vmath("SCALE", _rotated(b, camera.right, shape.to_splat, "right in splat"), scale=shape.half_x,
                           label="Half-width right"),
                   b.vmath("SCALE", _rotated(b, camera.up, shape.to_splat, "up in splat"), scale=shape.half_y,
                           label="Half-height up"),
                   _rotated(b, camera.back, shape.to_splat, "back in splat"))
        for name, column in zip(PROXY_FRAME_ATTRIBUTES, columns):
            value = b.vmath("MULTIPLY", inverse_sigma, column, label=f"{name} (Gaussian units)")
            node = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": geometry, "Name": name}, f"Store {name}",
                          data_type="FLOAT_VECTOR", domain="POINT")
            b.feed(node, "Value", value)
            geometry = b.out(node, "Geometry")
    return geometry
