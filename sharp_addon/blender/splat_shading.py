"""The splat look: one geometry-node group and two materials, made once per file and reused.

Geometry: every kept splat instances a cube whose half-edge is the Gaussian's visible extent,
k = min(3, sqrt(2 ln(255 o))) standard deviations (beyond it o exp(-r^2/2) < 1/255), rotated and
scaled by the Gaussian. Nothing depends on the camera, so moving the view costs no evaluation.

Material: in the cube's own (instance) coordinates the Gaussian is the unit sphere scaled by
1/k, so for a shading point l and view direction n the squared Mahalanobis distance of the
closest point of the whole view ray is m^2 = k^2 (|l|^2 - (l.n)^2) (the ray-marginal of
shared/blender/NOTES.md, section 6), and alpha = min(0.99, o exp(-m^2 / 2)). Back faces are
transparent so every cube is counted once; the colour is the splat's linear RGB as emission.

The node group reads the attribute names of Blender 5.3's native splats (``position``,
``scale``, ``rotation``) plus ``sharp_color`` (linear RGB, alpha = opacity), ``sharp_lod`` and
``sharp_layer`` written by ``splat_object``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bpy

from . import compat

NODES_VERSION = 1  # bump when the node group or materials change; old files keep their old copies
NODE_GROUP_NAME = "SHARP Splats"
SPLAT_MATERIAL_NAME = "SHARP Splat"
POINT_MATERIAL_NAME = "SHARP Splat Points"
STAMP = "sharp_version"  # custom property on the node group and materials

COLOR_ATTRIBUTE = "sharp_color"
LOD_ATTRIBUTE = "sharp_lod"
LAYER_ATTRIBUTE = "sharp_layer"
MAX_ALPHA = 0.99  # as 3DGS rasterisers: a splat never hides everything behind it
MAX_EXTENT = 3.0  # standard deviations


@dataclass(frozen=True)
class Input:
    """One modifier input of the node group."""

    name: str
    socket_type: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    subtype: str = "NONE"


INPUTS = (
    Input("Show as Points", "NodeSocketBool", False,
          "Fast display: one round point per splat instead of the exact Gaussian falloff"),
    Input("Points in Viewport", "NodeSocketBool", False,
          "Points in the viewport only; renders (F12) still draw the exact Gaussians"),
    Input("Splat Size", "NodeSocketFloat", 1.0, "Scale every Gaussian by this factor", 0.0, 100.0),
    Input("Opacity Threshold", "NodeSocketFloat", 1 / 255, "Hide splats less opaque than this", 0.0, 1.0,
          "FACTOR"),
    Input("Keep Fraction", "NodeSocketFloat", 1.0,
          "Show this fraction of the splats, always the same ones (a light viewport)", 0.0, 1.0, "FACTOR"),
    Input("Visible Layer", "NodeSocketBool", True, "Show SHARP's first depth layer (the visible surfaces)"),
    Input("Occluded Layer", "NodeSocketBool", True, "Show SHARP's second depth layer (what lies behind)"),
    Input("Use Crop Box", "NodeSocketBool", False, "Hide splats whose centre lies outside the crop box"),
    Input("Crop Min", "NodeSocketVector", (-1000.0, -1000.0, 0.0),
          "Lower corner of the crop box, in the photo's camera frame (x right, y down, z depth; metres)"),
    Input("Crop Max", "NodeSocketVector", (1000.0, 1000.0, 1000.0), "Upper corner of the crop box"),
    Input("Splat Material", "NodeSocketMaterial", None, "Material of the Gaussian proxies"),
    Input("Point Material", "NodeSocketMaterial", None, "Material of the fast point display"),
)  # fmt: skip


def _stamped(collection: Any, name: str) -> Any | None:
    """The datablock this version of the add-on made (by stamp, so users may rename it)."""
    return next((d for d in collection if d.get(STAMP) == NODES_VERSION and d.get("sharp_role") == name), None)


def _stamp(datablock: Any, role: str) -> None:
    datablock[STAMP] = NODES_VERSION
    datablock["sharp_role"] = role


def ensure_splat_node_group() -> Any:
    """The file's splat node group of this version, made on first use."""
    group = _stamped(bpy.data.node_groups, NODE_GROUP_NAME)
    if group is None:
        group = _build_node_group()
        _stamp(group, NODE_GROUP_NAME)
    return group


def ensure_materials() -> tuple[bpy.types.Material, bpy.types.Material]:
    """The file's (splat, point) materials of this version, made on first use."""
    return (_ensure_material(SPLAT_MATERIAL_NAME, _build_splat_material),
            _ensure_material(POINT_MATERIAL_NAME, _build_point_material))


def _ensure_material(name: str, build: Callable[[bpy.types.Material], None]) -> bpy.types.Material:
    material = _stamped(bpy.data.materials, name)
    if material is None:
        material = bpy.data.materials.new(name)
        build(material)
        _stamp(material, name)
    return material


def set_transparency(material: bpy.types.Material, method: str) -> None:
    """EEVEE transparency: ``DITHERED`` (order-free, noisy while moving) or ``BLENDED`` (smooth)."""
    if method not in ("DITHERED", "BLENDED"):
        raise ValueError(f"transparency must be DITHERED or BLENDED; got {method!r}")
    setattr(material, "surface_render_method", method)  # noqa: B010 - the stubs type it as a Literal
    compat.set_if_present(material, "use_transparency_overlap", True)


# ---- node building helpers ------------------------------------------------------------------------


class _Builder:
    """Terse node creation and linking by socket name (never by index: indices move between versions)."""

    def __init__(self, tree: Any) -> None:
        self.tree: Any = tree
        self.x = 0

    def node(self, idname: str, inputs: dict[str | int, Any] | None = None, **props: Any) -> Any:
        node = self.tree.nodes.new(idname)
        node.location = (self.x, 0)
        self.x += 60
        for prop, value in props.items():
            setattr(node, prop, value)
        for socket, value in (inputs or {}).items():
            self.feed(node, socket, value)
        return node

    def feed(self, node: Any, key: str | int, value: Any) -> None:
        """Link or set an input given by index or by name (the first enabled one of that name: several
        nodes keep one hidden socket per data type, and 5.2 has only the active one)."""
        if isinstance(key, str):
            socket = next((s for s in node.inputs if s.name == key and s.enabled), None) or node.inputs[key]
        else:
            socket = node.inputs[key]
        if isinstance(value, bpy.types.NodeSocket):
            self.tree.links.new(value, socket)
        else:
            socket.default_value = value

    def math(self, operation: str, a: Any, b: Any = 0.0) -> bpy.types.NodeSocket:
        node = self.node("ShaderNodeMath", operation=operation)
        self.feed(node, 0, a)
        self.feed(node, 1, b)
        return node.outputs[0]

    def vmath(self, operation: str, a: Any, b: Any = None, scale: Any = None) -> bpy.types.NodeSocket:
        node = self.node("ShaderNodeVectorMath", operation=operation)
        self.feed(node, 0, a)
        if b is not None:
            self.feed(node, 1, b)
        if scale is not None:
            self.feed(node, "Scale", scale)
        return node.outputs["Value" if operation in ("DOT_PRODUCT", "LENGTH", "DISTANCE") else "Vector"]

    def extent_squared(self, opacity: Any) -> bpy.types.NodeSocket:
        """k^2 = min(9, 2 ln(255 o)): the squared extent in standard deviations where o e^(-r^2/2) = 1/255."""
        log = self.math("LOGARITHM", self.math("MULTIPLY", opacity, 255.0), 2.718281828459045)
        return self.math("MINIMUM", self.math("MAXIMUM", self.math("MULTIPLY", log, 2.0), 0.0), MAX_EXTENT**2)


# ---- geometry nodes -------------------------------------------------------------------------------


def _build_node_group() -> Any:
    group: Any = bpy.data.node_groups.new(NODE_GROUP_NAME, "GeometryNodeTree")
    group.is_modifier = True
    group.description = "SHARP Gaussian splats: a proxy per Gaussian with the exact falloff, or fast points"
    group.interface.new_socket(name="Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket(name="Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    for spec in INPUTS:
        socket = group.interface.new_socket(name=spec.name, in_out="INPUT", socket_type=spec.socket_type)
        socket.description = spec.description
        if spec.default is not None:
            socket.default_value = spec.default
        if spec.min is not None:
            socket.min_value, socket.max_value = spec.min, spec.max
        if spec.subtype != "NONE":
            socket.subtype = spec.subtype
    b = _Builder(group)
    gin = b.node("NodeGroupInput")
    gout = b.node("NodeGroupOutput")
    geometry = gin.outputs["Geometry"]

    def named(name: str, data_type: str) -> bpy.types.NodeSocket:
        return b.node("GeometryNodeInputNamedAttribute", {"Name": name}, data_type=data_type).outputs["Attribute"]

    color = b.node("FunctionNodeSeparateColor", {"Color": named(COLOR_ATTRIBUTE, "FLOAT_COLOR")})
    opacity = color.outputs["Alpha"]

    # which splats to show
    def both(a: Any, c: Any) -> bpy.types.NodeSocket:
        return b.node("FunctionNodeBooleanMath", {0: a, 1: c}, operation="AND").outputs[0]

    def compare(a: Any, c: Any, operation: str, data_type: str = "FLOAT") -> bpy.types.NodeSocket:
        node = b.node("FunctionNodeCompare", data_type=data_type, operation=operation)
        if data_type == "VECTOR":
            node.mode = "ELEMENT"
        b.feed(node, "A", a)
        b.feed(node, "B", c)
        return node.outputs["Result"]

    opaque = compare(opacity, gin.outputs["Opacity Threshold"], "GREATER_EQUAL")
    kept = compare(named(LOD_ATTRIBUTE, "FLOAT"), gin.outputs["Keep Fraction"], "LESS_THAN")
    is_first = compare(named(LAYER_ATTRIBUTE, "INT"), 0, "EQUAL", "INT")
    is_later = b.node("FunctionNodeBooleanMath", {0: is_first}, operation="NOT").outputs[0]
    layer_ok = b.node("FunctionNodeBooleanMath", {
        0: both(is_first, gin.outputs["Visible Layer"]),
        1: both(is_later, gin.outputs["Occluded Layer"]),
    }, operation="OR").outputs[0]
    position = b.node("GeometryNodeInputPosition").outputs["Position"]
    in_box = both(compare(position, gin.outputs["Crop Min"], "GREATER_EQUAL", "VECTOR"),
                  compare(position, gin.outputs["Crop Max"], "LESS_EQUAL", "VECTOR"))
    crop_ok = b.node("FunctionNodeBooleanMath", {0: b.node("FunctionNodeBooleanMath", {
        0: gin.outputs["Use Crop Box"]}, operation="NOT").outputs[0], 1: in_box}, operation="OR").outputs[0]
    selection = both(both(opaque, kept), both(layer_ok, crop_ok))

    # proxy size: k sigma, times the user's splat size; never exactly 0 (the shader inverts it)
    extent = b.math("MULTIPLY", b.math("SQRT", b.extent_squared(opacity)), gin.outputs["Splat Size"])
    sigma = b.vmath("MAXIMUM", named("scale", "FLOAT_VECTOR"), (1e-9, 1e-9, 1e-9))
    cube = b.node("GeometryNodeMeshCube", {"Size": (2.0, 2.0, 2.0)})
    proxy = b.node("GeometryNodeSetMaterial", {"Geometry": cube.outputs["Mesh"],
                                               "Material": gin.outputs["Splat Material"]})
    splats = b.node("GeometryNodeInstanceOnPoints", {
        "Points": geometry,
        "Selection": selection,
        "Instance": proxy.outputs["Geometry"],
        "Rotation": named("rotation", "QUATERNION"),
        "Scale": b.vmath("SCALE", sigma, scale=extent),
    })

    # fast points: the mesh's vertices (Blender < 5.1) or the point cloud itself, radius k sigma_max
    xyz = b.node("ShaderNodeSeparateXYZ", {"Vector": sigma})
    radius = b.math("MULTIPLY", extent, b.math("MAXIMUM", b.math("MAXIMUM", xyz.outputs["X"], xyz.outputs["Y"]),
                                                xyz.outputs["Z"]))
    parts = b.node("GeometryNodeSeparateComponents", {"Geometry": geometry})
    from_mesh = b.node("GeometryNodeMeshToPoints", {"Mesh": parts.outputs["Mesh"], "Selection": selection,
                                                    "Radius": radius}, mode="VERTICES")
    not_selected = b.node("FunctionNodeBooleanMath", {0: selection}, operation="NOT").outputs[0]
    cloud = b.node("GeometryNodeDeleteGeometry", {"Geometry": parts.outputs["Point Cloud"],
                                                  "Selection": not_selected}, domain="POINT")
    cloud = b.node("GeometryNodeSetPointRadius", {"Points": cloud.outputs["Geometry"], "Radius": radius})
    join = b.node("GeometryNodeJoinGeometry")
    group.links.new(cloud.outputs["Points"], join.inputs["Geometry"])
    group.links.new(from_mesh.outputs["Points"], join.inputs["Geometry"])
    points = b.node("GeometryNodeSetMaterial", {"Geometry": join.outputs["Geometry"],
                                                "Material": gin.outputs["Point Material"]})

    viewport_points = both(gin.outputs["Points in Viewport"], b.node("GeometryNodeIsViewport").outputs[0])
    use_points = b.node("FunctionNodeBooleanMath", {0: gin.outputs["Show as Points"], 1: viewport_points},
                        operation="OR").outputs[0]
    switch = b.node("GeometryNodeSwitch", input_type="GEOMETRY")
    b.feed(switch, "Switch", use_points)
    b.feed(switch, "False", splats.outputs["Instances"])
    b.feed(switch, "True", points.outputs["Geometry"])
    group.links.new(switch.outputs["Output"], gout.inputs["Geometry"])
    return group


# ---- materials ------------------------------------------------------------------------------------


def _new_material_tree(material: bpy.types.Material) -> tuple[_Builder, Any]:
    tree = compat.ensure_node_tree(material)
    tree.nodes.clear()
    set_transparency(material, "DITHERED")
    compat.set_if_present(material, "use_backface_culling", False)
    b = _Builder(tree)
    return b, b.node("ShaderNodeOutputMaterial")


def _gaussian_alpha(b: _Builder, opacity: Any, m2_unit: Any, backfacing: Any) -> Any:
    """min(0.99, o exp(-k^2 m2_unit / 2)) on front faces, 0 on back faces (each splat counts once)."""
    falloff = b.math("EXPONENT", b.math("MULTIPLY", b.math("MULTIPLY", m2_unit, b.extent_squared(opacity)), -0.5))
    front = b.math("SUBTRACT", 1.0, backfacing)
    return b.math("MULTIPLY", b.math("MINIMUM", b.math("MULTIPLY", opacity, falloff), MAX_ALPHA), front)


def _finish(b: _Builder, output: Any, color: Any, alpha: Any) -> None:
    """Straight-alpha 'over': emission of the linear colour mixed with transparency by alpha."""
    emission = b.node("ShaderNodeEmission", {"Color": color, "Strength": 1.0})
    mix = b.node("ShaderNodeMixShader", {"Fac": alpha})
    b.tree.links.new(b.node("ShaderNodeBsdfTransparent").outputs[0], mix.inputs[1])
    b.tree.links.new(emission.outputs[0], mix.inputs[2])
    b.tree.links.new(mix.outputs[0], output.inputs["Surface"])


def _build_splat_material(material: bpy.types.Material) -> None:
    b, output = _new_material_tree(material)
    attribute = b.node("ShaderNodeAttribute", attribute_type="INSTANCER", attribute_name=COLOR_ATTRIBUTE)
    opacity = attribute.outputs["Alpha"]
    local = b.node("ShaderNodeTexCoord").outputs["Object"]  # the instance's own frame: cube in [-1, 1]^3
    geometry = b.node("ShaderNodeNewGeometry")
    to_object = b.node("ShaderNodeVectorTransform", {"Vector": geometry.outputs["Incoming"]},
                       vector_type="VECTOR", convert_from="WORLD", convert_to="OBJECT")
    direction = b.vmath("NORMALIZE", to_object.outputs["Vector"])
    along = b.vmath("DOT_PRODUCT", local, direction)
    m2_unit = b.math("SUBTRACT", b.vmath("DOT_PRODUCT", local, local), b.math("MULTIPLY", along, along))
    alpha = _gaussian_alpha(b, opacity, m2_unit, geometry.outputs["Backfacing"])
    inside = b.math("LESS_THAN", m2_unit, 1.0)  # the ray passes within the extent
    _finish(b, output, attribute.outputs["Color"], b.math("MULTIPLY", alpha, inside))


def _build_point_material(material: bpy.types.Material) -> None:
    """Points render as spheres of radius k sigma_max: alpha falls off towards the silhouette."""
    b, output = _new_material_tree(material)
    attribute = b.node("ShaderNodeAttribute", attribute_type="GEOMETRY", attribute_name=COLOR_ATTRIBUTE)
    geometry = b.node("ShaderNodeNewGeometry")
    facing = b.vmath("DOT_PRODUCT", geometry.outputs["Normal"], geometry.outputs["Incoming"])
    # a sphere point at impact parameter b = r sqrt(1 - (N.I)^2), r = k sigma: m^2 = k^2 (1 - (N.I)^2)
    m2_unit = b.math("SUBTRACT", 1.0, b.math("MULTIPLY", facing, facing))
    alpha = _gaussian_alpha(b, attribute.outputs["Alpha"], m2_unit, geometry.outputs["Backfacing"])
    _finish(b, output, attribute.outputs["Color"], alpha)
