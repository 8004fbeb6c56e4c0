"""The splat look: one geometry-node group and three materials, made once per file and reused.

Geometry: every kept splat instances a proxy with the Gaussian's visible extent,
k = min(3, sqrt(2 ln(255 o))) standard deviations (beyond it o exp(-r^2/2) < 1/255). In the
viewport a cube, rotated and scaled by the Gaussian: right from every view, and nothing depends on
the camera. In renders (``Face Camera in Renders``) a quad through the centre parallel to the scene
camera's image plane, sized to the ellipsoid's shadow on it: a camera ray then meets the splats in
the order of their centres' depth, the order 3DGS blends them in (cubes are met face first, which
mixes up closely overlapping splats of different shapes: 28 dB against 50 dB, docs/benchmarks.md).
On Blender 5.3+ the cloud renders as native splats unless ``Render as Proxies`` is on.

Material: in the Gaussian's unit frame (its k-sigma ellipsoid the unit sphere: a cube's own
coordinates; a quad stores its axes in that frame, ``PROXY_FRAME_ATTRIBUTES``), for a shading
point l and view direction n the squared Mahalanobis distance of the
closest point of the whole view ray is m^2 = k^2 (|l|^2 - (l.n)^2) (the ray-marginal of
docs/rendering.md, "Ray-marginal opacity"), and alpha = min(0.99, o exp(-m^2 / 2)). Back faces are
transparent so every cube is counted once; the colour is the splat's linear RGB as emission.
There is one splat material per EEVEE transparency method (``TRANSPARENCY_METHODS``), so objects
imported with different methods never change each other; Cycles renders both alike.

The node group reads the attribute names of Blender 5.3's native splats (``position``,
``scale``, ``rotation``) plus ``sharp_color`` (linear RGB, alpha = opacity), ``sharp_lod`` and
``sharp_layer`` written by the splat object.

Layout (what a user sees in the node editor): each stage of a graph is a labelled frame. Frames
stand in columns by their depth in the graph of frames (a frame's column is one right of the
frames feeding it; frames of one column are stacked top to bottom), and inside a frame the nodes
stand in columns by their depth among the frame's own links, stacked without overlap by an
estimated height (``estimated_size``: ``node.dimensions`` is 0 until the editor draws). Every
link therefore runs left to right.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import bpy

from . import compat

NODES_VERSION = 3  # bump when the node group or materials change; old files keep their old copies
NODE_GROUP_NAME = "SHARP Splats"
SPLAT_MATERIAL_NAME = "SHARP Splat"  # dithered transparency
BLENDED_SPLAT_MATERIAL_NAME = "SHARP Splat Blended"
POINT_MATERIAL_NAME = "SHARP Splat Points"
STAMP = "sharp_version"  # custom property on the node group and materials
ROLE = "sharp_role"  # custom property: which of our datablocks it is (its original name)

TRANSPARENCY_METHODS = ("DITHERED", "BLENDED")  # EEVEE: order-free but noisy while moving / smooth
_SPLAT_MATERIAL_ROLES = {"DITHERED": SPLAT_MATERIAL_NAME, "BLENDED": BLENDED_SPLAT_MATERIAL_NAME}

COLOR_ATTRIBUTE = "sharp_color"
LOD_ATTRIBUTE = "sharp_lod"
LAYER_ATTRIBUTE = "sharp_layer"
MAX_ALPHA = 0.99  # as 3DGS rasterisers: a splat never hides everything behind it
MAX_EXTENT = 3.0  # standard deviations
DEPTH_TIE_BREAK = 1e-4  # relative depth spread of the quads by their key: splats never share a plane
NEAR_DEPTH = 0.01  # metres: splats nearer the camera are skipped, as by 3DGS and our exact renderer
# per quad proxy: the quad's x, y, z axes in the Gaussian's unit frame (where its k-sigma ellipsoid is
# the unit sphere), so the material finds the ray-marginal distance whatever the proxy's shape
PROXY_FRAME_ATTRIBUTES = ("sharp_proxy_x", "sharp_proxy_y", "sharp_proxy_z")


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
    Input("Face Camera in Renders", "NodeSocketBool", True,
          "Renders (F12) draw each splat as a flat proxy facing the scene camera, so overlapping splats blend "
          "in 3DGS's depth order; the viewport keeps cubes, which look right from every view"),
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


# Blender 5.3+ only, where the splat object is a native splat cloud
NATIVE_INPUTS = (
    Input("Render as Proxies", "NodeSocketBool", False,
          "Draw SHARP's proxies instead of Blender's native splats: they blend overlapping splats in 3DGS's "
          "depth order and are exact in a few samples, where native splats need hundreds"),
)


def modifier_inputs() -> tuple[Input, ...]:
    """The node group's inputs in this Blender (``NATIVE_INPUTS`` too where splats are native)."""
    return INPUTS + NATIVE_INPUTS if compat.has_native_splats() else INPUTS


# ---- the datablocks -------------------------------------------------------------------------------


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
        group = _build_node_group()
        _stamp(group, NODE_GROUP_NAME)
    return group


def ensure_splat_material(transparency: str = "DITHERED") -> bpy.types.Material:
    """The file's splat material for an EEVEE transparency method of ``TRANSPARENCY_METHODS``,
    made on first use ("SHARP Splat" dithered, "SHARP Splat Blended" blended)."""
    if transparency not in _SPLAT_MATERIAL_ROLES:
        raise ValueError(f"transparency must be one of {', '.join(TRANSPARENCY_METHODS)}; got {transparency!r}")
    return _ensure_material(_SPLAT_MATERIAL_ROLES[transparency],
                            lambda m: _build_splat_material(m, transparency))


def ensure_point_material() -> bpy.types.Material:
    """The file's material of the fast point display ("SHARP Splat Points"), made on first use."""
    return _ensure_material(POINT_MATERIAL_NAME, _build_point_material)


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


# ---- node building helpers ------------------------------------------------------------------------

HEADER_HEIGHT = 30.0  # estimated heights (px at UI scale 1), rough upper bounds of what the editor draws
SOCKET_HEIGHT = 22.0
PROPERTY_HEIGHT = 30.0
NODE_GAP = (60.0, 30.0)  # between columns, between nodes of a column
FRAME_GAP = 80.0  # between frames
FRAME_MARGIN = 30.0  # from a frame's edge to its nodes
FRAME_LABEL_HEIGHT = 40.0  # above a frame's nodes, for its label
_BASE_NODE_PROPERTIES = frozenset(p.identifier for p in bpy.types.Node.bl_rna.properties)
_VECTOR_SOCKETS = ("VECTOR", "ROTATION")  # unlinked, these show one row per component under the label


def _visible(socket: Any) -> bool:
    return bool(socket.enabled and not socket.hide)


def estimated_size(node: Any) -> tuple[float, float]:
    """(width, height) of a node as the editor draws it, height estimated from its visible sockets
    and its own properties (each shown as a row, a rough upper bound)."""
    rows = sum(1 for s in node.outputs if _visible(s))
    for s in node.inputs:
        if _visible(s):
            rows += 4 if s.type in _VECTOR_SOCKETS and not s.is_linked and not s.hide_value else 1
    properties = sum(1 for p in node.bl_rna.properties if p.identifier not in _BASE_NODE_PROPERTIES
                     and not p.is_readonly)
    return float(node.width), HEADER_HEIGHT + SOCKET_HEIGHT * rows + PROPERTY_HEIGHT * properties


def absolute_location(node: Any) -> tuple[float, float]:
    """A node's top-left corner in the editor: ``location`` is relative to its frame once parented
    (4.2, 5.0 and 5.2 alike); ``location_absolute`` says so directly where it exists (4.4+)."""
    x, y = node.location
    parent = node.parent
    if parent is not None:
        px, py = absolute_location(parent)
        x, y = x + px, y + py
    return float(x), float(y)


def _set_absolute_location(node: Any, x: float, y: float) -> None:
    if hasattr(node, "location_absolute"):
        node.location_absolute = (x, y)
    else:
        px, py = absolute_location(node.parent) if node.parent is not None else (0.0, 0.0)
        node.location = (x - px, y - py)


class _Builder:
    """Terse node creation and linking by socket name (never by index: indices move between versions),
    every node made inside a ``stage`` frame; ``arrange`` lays the graph out once it is complete."""

    def __init__(self, tree: Any) -> None:
        self.tree: Any = tree
        self.stages: list[tuple[Any, list[Any]]] = []  # (frame, its nodes in creation order)
        self._in_stage = False

    @contextmanager
    def stage(self, label: str) -> Iterator[None]:
        """Nodes made inside go into a new frame labelled ``label``."""
        frame = self.tree.nodes.new("NodeFrame")
        frame.name = frame.label = label
        self.stages.append((frame, []))
        self._in_stage = True
        try:
            yield
        finally:
            self._in_stage = False

    def node(self, idname: str, inputs: dict[str | tuple[str, int], Any] | None = None, label: str = "",
             **props: Any) -> Any:
        assert self._in_stage, "every node is made inside a stage (its frame)"
        node = self.tree.nodes.new(idname)
        self.stages[-1][1].append(node)
        if label:
            node.label = label
            node.width = max(node.width, min(260.0, 7.0 * len(label) + 40.0))  # the header shows it whole
        for prop, value in props.items():
            setattr(node, prop, value)
        for key, value in (inputs or {}).items():
            self.feed(node, key, value)
        return node

    @staticmethod
    def socket(sockets: Any, key: str | tuple[str, int]) -> Any:
        """The socket ``name`` or the n-th socket ``(name, n)`` of that name among the enabled ones
        (several nodes keep one hidden socket per data type, and 5.2 has only the active one)."""
        name, nth = (key, 0) if isinstance(key, str) else key
        enabled = [s for s in sockets if s.name == name and s.enabled]
        if nth < len(enabled):
            return enabled[nth]
        if nth == 0:
            return sockets[name]
        raise KeyError(f"no enabled socket {key!r}")

    def feed(self, node: Any, key: str | tuple[str, int], value: Any) -> None:
        """Link a socket into an input, or set the input's value."""
        socket = self.socket(node.inputs, key)
        if isinstance(value, bpy.types.NodeSocket):
            self.tree.links.new(value, socket)
        else:
            socket.default_value = value

    def link(self, output: Any, node: Any, key: str | tuple[str, int]) -> None:
        self.tree.links.new(output, self.socket(node.inputs, key))

    def out(self, node: Any, name: str) -> bpy.types.NodeSocket:
        return self.socket(node.outputs, name)

    # -- arithmetic

    def math(self, operation: str, a: Any, b: Any = None, label: str = "") -> bpy.types.NodeSocket:
        node = self.node("ShaderNodeMath", {"Value": a}, label, operation=operation)
        if b is not None:
            self.feed(node, ("Value", 1), b)
        return self.out(node, "Value")

    def vmath(self, operation: str, a: Any, b: Any = None, scale: Any = None, label: str = "") -> bpy.types.NodeSocket:
        node = self.node("ShaderNodeVectorMath", {"Vector": a}, label, operation=operation)
        if b is not None:
            self.feed(node, ("Vector", 1), b)
        if scale is not None:
            self.feed(node, "Scale", scale)
        return self.out(node, "Value" if operation in ("DOT_PRODUCT", "LENGTH", "DISTANCE") else "Vector")

    def extent_squared(self, opacity: Any) -> bpy.types.NodeSocket:
        """k^2 = min(9, 2 ln(255 o)): the squared extent in standard deviations where o e^(-r^2/2) = 1/255."""
        log = self.math("LOGARITHM", self.math("MULTIPLY", opacity, 255.0, "255 o"), 2.718281828459045,
                        "ln(255 o)")
        twice = self.math("MULTIPLY", log, 2.0, "2 ln(255 o)")
        return self.math("MINIMUM", self.math("MAXIMUM", twice, 0.0, "max(0, 2 ln(255 o))"), MAX_EXTENT**2,
                         "k² = min(9, 2 ln(255 o))")

    # -- logic: the only ways the graphs combine booleans

    def compare(self, a: Any, b: Any, operation: str, data_type: str = "FLOAT", label: str = "") -> Any:
        """``a <operation> b``; vectors compare element-wise (true when every component does)."""
        node = self.node("FunctionNodeCompare", None, label, data_type=data_type, operation=operation)
        if data_type == "VECTOR":
            node.mode = "ELEMENT"
        self.feed(node, "A", a)
        self.feed(node, "B", b)
        return self.out(node, "Result")

    def _boolean(self, operation: str, operands: tuple[Any, ...], label: str) -> Any:
        node = self.node("FunctionNodeBooleanMath", None, label, operation=operation)
        for n, operand in enumerate(operands):
            self.feed(node, ("Boolean", n), operand)
        return self.out(node, "Boolean")

    def and_(self, a: Any, b: Any, label: str = "") -> Any:
        return self._boolean("AND", (a, b), label)

    def or_(self, a: Any, b: Any, label: str = "") -> Any:
        return self._boolean("OR", (a, b), label)

    def not_(self, a: Any, label: str = "") -> Any:
        return self._boolean("NOT", (a,), label)

    # -- layout

    def arrange(self) -> None:
        """Frames in columns by their depth among frames, nodes in columns by their depth inside their
        frame, top-aligned and stacked by estimated height; then each node is parented to its frame."""
        owner = {node.as_pointer(): i for i, (_, nodes) in enumerate(self.stages) for node in nodes}
        inner: dict[int, list[Any]] = {}  # node -> the nodes of its own frame that feed it
        outer: list[set[int]] = [set() for _ in self.stages]  # frame -> the frames that feed it
        for link in self.tree.links:
            source, target = owner[link.from_node.as_pointer()], owner[link.to_node.as_pointer()]
            if source == target:
                inner.setdefault(link.to_node.as_pointer(), []).append(link.from_node)
            else:
                outer[target].add(source)
        frame_columns = _depths(len(self.stages), lambda i: outer[i])
        layouts = [_layout_frame(nodes, inner) for _, nodes in self.stages]  # (offsets, width, height)

        lefts, _ = _column_lefts(frame_columns, [width for _, width, _ in layouts], 0.0, FRAME_GAP)
        tops = dict.fromkeys(lefts, 0.0)
        for i, (frame, nodes) in enumerate(self.stages):
            offsets, width, height = layouts[i]
            column = frame_columns[i]
            left, top = lefts[column], tops[column]
            tops[column] = top - height - FRAME_GAP
            frame.location = (left, top)
            frame.width, frame.height = width, height  # the editor refits them (shrink) to what it draws
            for node, (dx, dy) in zip(nodes, offsets):
                node.parent = frame
                _set_absolute_location(node, left + dx, top + dy)


def _depths(count: int, preceding: Callable[[int], Any]) -> list[int]:
    """Each item's column: 0 without predecessors, else one more than its deepest predecessor."""
    depth: dict[int, int] = {}
    visiting: set[int] = set()

    def visit(i: int) -> int:
        if i not in depth:
            if i in visiting:
                raise ValueError("the stages feed each other in a cycle; they cannot read left to right")
            visiting.add(i)
            depth[i] = 1 + max((visit(j) for j in preceding(i)), default=-1)
            visiting.discard(i)
        return depth[i]

    return [visit(i) for i in range(count)]


def _column_lefts(columns: list[int], widths: list[float], start: float, gap: float) -> tuple[dict[int, float], float]:
    """Left edge of each column (as wide as its widest item, ``gap`` apart from ``start``) and the right
    edge of the last."""
    column_widths: dict[int, float] = {}
    for column, width in zip(columns, widths):
        column_widths[column] = max(column_widths.get(column, 0.0), width)
    lefts, x = {}, start
    for column in sorted(column_widths):
        lefts[column], x = x, x + column_widths[column] + gap
    return lefts, x - gap


def _layout_frame(nodes: list[Any], inner: dict[int, list[Any]]) -> tuple[list[tuple[float, float]], float, float]:
    """Offsets of ``nodes`` from their frame's top-left corner, and the frame's width and height.

    A node's column is one right of the frame's nodes feeding it; a node fed only from outside
    the frame stands one left of its leftmost consumer in the frame (so constants sit by their use)."""
    index = {node.as_pointer(): i for i, node in enumerate(nodes)}
    feeders = [[index[f.as_pointer()] for f in inner.get(node.as_pointer(), [])] for node in nodes]
    columns = _depths(len(nodes), lambda i: feeders[i])
    consumers: list[list[int]] = [[] for _ in nodes]
    for i, sources in enumerate(feeders):
        for j in sources:
            consumers[j].append(i)
    for i in range(len(nodes)):
        if not feeders[i] and consumers[i]:
            columns[i] = min(columns[j] for j in consumers[i]) - 1
    sizes = [estimated_size(node) for node in nodes]
    lefts, right = _column_lefts(columns, [width for width, _ in sizes], FRAME_MARGIN, NODE_GAP[0])
    next_tops = dict.fromkeys(lefts, -FRAME_LABEL_HEIGHT)
    offsets, bottom = [], 0.0
    for column, (_, height) in zip(columns, sizes):
        top = next_tops[column]
        offsets.append((lefts[column], top))
        next_tops[column] = top - height - NODE_GAP[1]
        bottom = min(bottom, top - height)
    return offsets, right + FRAME_MARGIN, FRAME_MARGIN - bottom


# ---- geometry nodes -------------------------------------------------------------------------------


def _build_node_group() -> Any:
    group: Any = bpy.data.node_groups.new(NODE_GROUP_NAME, "GeometryNodeTree")
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
    b = _Builder(group)

    with b.stage("Modifier inputs"):
        gin = b.node("NodeGroupInput")

    def inputs(name: str) -> Any:
        return b.out(gin, name)

    geometry = inputs("Geometry")

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
        selection = b.and_(b.and_(opaque, kept, "Opaque and kept"), b.and_(layer_ok, crop_ok, "Layer and crop"),
                           "Shown")

    with b.stage("Size: k sigma"):
        # proxy size: k sigma, times the user's splat size; never exactly 0 (the shader inverts it)
        k = b.math("SQRT", b.extent_squared(opacity), label="k")
        extent = b.math("MULTIPLY", k, inputs("Splat Size"), "k × Splat Size")
        sigma = b.vmath("MAXIMUM", scale, (1e-9, 1e-9, 1e-9), label="Sigma, never 0")

    native = compat.has_native_splats()
    if native:
        with b.stage("Native Gaussian splats"):  # Blender 5.3+: the filtered cloud, rendered as splats
            shown = b.node("GeometryNodeDeleteGeometry", {"Geometry": geometry,
                                                          "Selection": b.not_(selection, "Not shown")},
                           "Drop splats not shown", domain="POINT")
            splats = b.node("GeometryNodePointsSetType", {"Points": b.out(shown, "Geometry")}, "As Gaussian splats")
            splats.inputs["Type"].default_value = "3D Gaussian Splat"  # the menu item names
            native_splats = b.out(splats, "Points")
    with b.stage("Gaussian proxies"):
        cube = b.node("GeometryNodeMeshCube", {"Size": (2.0, 2.0, 2.0)}, "Cube [-1, 1]³")
        proxy = b.node("GeometryNodeSetMaterial", {"Geometry": b.out(cube, "Mesh"),
                                                   "Material": inputs("Splat Material")}, "Splat Material")
        cubes = b.node("GeometryNodeInstanceOnPoints", {
            "Points": geometry,
            "Selection": selection,
            "Instance": b.out(proxy, "Geometry"),
            "Rotation": rotation,
            "Scale": b.vmath("SCALE", sigma, scale=extent, label="Half-edges k sigma"),
        }, "Cubes (any view)")
    quads = _camera_facing_proxies(b, geometry, selection, position, rotation, sigma, extent, lod,
                                   inputs("Splat Material"))
    with b.stage("Proxies for this view"):
        in_viewport = b.out(b.node("GeometryNodeIsViewport"), "Is Viewport")
        facing = b.and_(inputs("Face Camera in Renders"), b.not_(in_viewport, "Rendering"), "Quads here")
        switch = b.node("GeometryNodeSwitch", {"Switch": facing, "False": b.out(cubes, "Instances"),
                                               "True": quads}, "Cubes or camera-facing quads", input_type="GEOMETRY")
        gaussians = b.out(switch, "Output")
    if native:
        with b.stage("Native splats or proxies"):
            switch = b.node("GeometryNodeSwitch", {"Switch": inputs("Render as Proxies"), "False": native_splats,
                                                   "True": gaussians}, "Native splats or proxies",
                            input_type="GEOMETRY")
            gaussians = b.out(switch, "Output")

    with b.stage("Fast points"):
        # the mesh's vertices (Blender < 5.1) or the point cloud itself, radius k sigma_max
        xyz = b.node("ShaderNodeSeparateXYZ", {"Vector": sigma}, "Sigma x, y, z")
        sigma_max = b.math("MAXIMUM", b.math("MAXIMUM", b.out(xyz, "X"), b.out(xyz, "Y"), "max(x, y)"),
                           b.out(xyz, "Z"), "Largest sigma")
        radius = b.math("MULTIPLY", extent, sigma_max, "Radius k sigma_max")
        parts = b.node("GeometryNodeSeparateComponents", {"Geometry": geometry})
        from_mesh = b.node("GeometryNodeMeshToPoints", {"Mesh": b.out(parts, "Mesh"), "Selection": selection,
                                                        "Radius": radius}, "Mesh vertices to points", mode="VERTICES")
        cloud = b.node("GeometryNodeDeleteGeometry", {"Geometry": b.out(parts, "Point Cloud"),
                                                      "Selection": b.not_(selection, "Hidden")},
                       "Drop hidden points", domain="POINT")
        cloud = b.node("GeometryNodeSetPointRadius", {"Points": b.out(cloud, "Geometry"), "Radius": radius})
        if native:  # the data is a splat cloud: these are to be drawn as plain points
            cloud = b.node("GeometryNodePointsSetType", {"Points": b.out(cloud, "Points")}, "As plain points")
            cloud.inputs["Type"].default_value = "Points"
        join = b.node("GeometryNodeJoinGeometry")
        b.link(b.out(cloud, "Points"), join, "Geometry")
        b.link(b.out(from_mesh, "Points"), join, "Geometry")
        points = b.node("GeometryNodeSetMaterial", {"Geometry": b.out(join, "Geometry"),
                                                    "Material": inputs("Point Material")}, "Point Material")

    with b.stage("Output"):
        in_viewport = b.out(b.node("GeometryNodeIsViewport"), "Is Viewport")
        use_points = b.or_(inputs("Show as Points"), b.and_(inputs("Points in Viewport"), in_viewport,
                                                            "Points here (viewport)"), "Show points")
        switch = b.node("GeometryNodeSwitch", {"Switch": use_points, "False": gaussians,
                                               "True": b.out(points, "Geometry")}, "Gaussians or points",
                        input_type="GEOMETRY")
        gout = b.node("NodeGroupOutput")
        b.link(b.out(switch, "Output"), gout, "Geometry")
    b.arrange()
    return group


def _camera_facing_proxies(b: _Builder, geometry: Any, selection: Any, position: Any, rotation: Any, sigma: Any,
                           extent: Any, key: Any, material: Any) -> Any:
    """Instances of a quad through each splat's centre, parallel to the scene camera's image plane.

    Every camera ray then meets the splats in the order of their centres' camera depth, the order
    3DGS blends them in (cubes are met in the order of their faces). A point u of the k-sigma
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
    with b.stage("Scene camera, in the splats' frame"):
        camera = b.out(b.node("GeometryNodeInputActiveCamera"), "Active Camera")
        info = b.node("GeometryNodeObjectInfo", {"Object": camera}, "Scene camera", transform_space="RELATIVE")
        camera_rotation = b.out(info, "Rotation")

        def camera_axis(axis: tuple[float, float, float], label: str) -> Any:
            node = b.node("FunctionNodeRotateVector", {"Vector": axis, "Rotation": camera_rotation}, label)
            return b.out(node, "Vector")

        right, up, back = (camera_axis((1.0, 0.0, 0.0), "Camera right"), camera_axis((0.0, 1.0, 0.0), "Camera up"),
                           camera_axis((0.0, 0.0, 1.0), "Camera back (it looks down -Z)"))
        offset = b.vmath("SUBTRACT", position, b.out(info, "Location"), label="Centre - camera")
    with b.stage("Depth tie-break"):
        stretch = b.math("MULTIPLY_ADD", b.math("SUBTRACT", key, 0.5, "key - 1/2"), DEPTH_TIE_BREAK,
                         label="1 + 1e-4 (key - 1/2)")
        b.feed(stretch.node, ("Value", 2), 1.0)  # (key - 1/2) 1e-4 + 1
        along_ray = b.vmath("ADD", b.out(info, "Location"), b.vmath("SCALE", offset, scale=stretch, label="Stretched"),
                            label="Moved along its ray")
        geometry = b.out(b.node("GeometryNodeSetPosition", {"Geometry": geometry, "Position": along_ray},
                                "Ties in depth broken"), "Geometry")
    with b.stage("Camera depth"):  # evaluated on the moved points from here on
        depth = b.math("MULTIPLY", b.vmath("DOT_PRODUCT", offset, back, label="Along back"), -1.0, "Depth z")
        in_front = b.compare(depth, NEAR_DEPTH, "GREATER_THAN", label="In front (z > 0.01 m)")
        safe_depth = b.math("MAXIMUM", depth, NEAR_DEPTH, "z, at least 0.01 m")
        x_over_z = b.math("DIVIDE", b.vmath("DOT_PRODUCT", offset, right, label="x"), safe_depth, "x / z")
        y_over_z = b.math("DIVIDE", b.vmath("DOT_PRODUCT", offset, up, label="y"), safe_depth, "y / z")
    with b.stage("Quad sizes"):
        to_splat = b.out(b.node("FunctionNodeInvertRotation", {"Rotation": rotation}, "Splat rotation⁻¹"),
                         "Rotation")

        def in_splat(vector: Any, label: str) -> Any:
            node = b.node("FunctionNodeRotateVector", {"Vector": vector, "Rotation": to_splat}, label)
            return b.out(node, "Vector")

        def spread(vector: Any, label: str) -> Any:  # k |S R^-1 w|
            stretched = b.vmath("MULTIPLY", sigma, in_splat(vector, f"{label} in splat"), label=f"S R⁻¹ {label}")
            return b.math("MULTIPLY", b.vmath("LENGTH", stretched, label=f"|S R⁻¹ {label}|"), extent,
                          f"k |S R⁻¹ {label}|")

        right_w = b.vmath("ADD", right, b.vmath("SCALE", back, scale=x_over_z, label="(x / z) back"), label="w right")
        up_w = b.vmath("ADD", up, b.vmath("SCALE", back, scale=y_over_z, label="(y / z) back"), label="w up")
        near_side = b.math("SUBTRACT", safe_depth, spread(back, "back"), "z - k sigma_z")
        nearest = b.math("MAXIMUM", near_side, b.math("MULTIPLY", safe_depth, 0.25, "z / 4"), "Nearest depth, ≥ z / 4")
        perspective = b.math("DIVIDE", safe_depth, nearest, "Perspective margin (≤ 4)")
        # the larger of the perspective bound and the orthographic one (k |S R^-1 right|): either camera
        seen_x = b.math("MULTIPLY", spread(right_w, "w right"), perspective, "Perspective half-width")
        seen_y = b.math("MULTIPLY", spread(up_w, "w up"), perspective, "Perspective half-height")
        half_x = b.math("MAXIMUM", seen_x, spread(right, "right"), "Half-width")
        half_y = b.math("MAXIMUM", seen_y, spread(up, "up"), "Half-height")
        half_sizes = b.out(b.node("ShaderNodeCombineXYZ", {"X": half_x, "Y": half_y, "Z": 1.0}, "Quad scale"), "Vector")
    with b.stage("Quad to Gaussian frame"):
        inverse_sigma = b.vmath("DIVIDE", (1.0, 1.0, 1.0), b.vmath("SCALE", sigma, scale=extent, label="k sigma"),
                                label="1 / (k sigma)")
        columns = (b.vmath("SCALE", in_splat(right, "right in splat"), scale=half_x, label="Half-width right"),
                   b.vmath("SCALE", in_splat(up, "up in splat"), scale=half_y, label="Half-height up"),
                   in_splat(back, "back in splat"))
        stored = geometry
        for name, column in zip(PROXY_FRAME_ATTRIBUTES, columns):
            value = b.vmath("MULTIPLY", inverse_sigma, column, label=f"{name} (Gaussian units)")
            node = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": stored, "Name": name}, f"Store {name}",
                          data_type="FLOAT_VECTOR", domain="POINT")
            b.feed(node, "Value", value)
            stored = b.out(node, "Geometry")
    with b.stage("Camera-facing quads"):
        quad = b.node("GeometryNodeMeshGrid", {"Size X": 2.0, "Size Y": 2.0, "Vertices X": 2, "Vertices Y": 2},
                      "Quad [-1, 1]²")
        proxy = b.node("GeometryNodeSetMaterial", {"Geometry": b.out(quad, "Mesh"), "Material": material},
                       "Splat Material")
        quads = b.node("GeometryNodeInstanceOnPoints", {
            "Points": stored,
            "Selection": b.and_(selection, in_front, "Shown and in front"),
            "Instance": b.out(proxy, "Geometry"),
            "Rotation": camera_rotation,
            "Scale": half_sizes,
        }, "Quads facing the camera")
    return b.out(quads, "Instances")


# ---- materials ------------------------------------------------------------------------------------


def _new_material_tree(material: bpy.types.Material, transparency: str) -> _Builder:
    tree = compat.ensure_node_tree(material)
    tree.nodes.clear()
    setattr(material, "surface_render_method", transparency)  # noqa: B010 - the stubs type it as a Literal
    compat.set_if_present(material, "use_transparency_overlap", True)
    compat.set_if_present(material, "use_backface_culling", False)
    return _Builder(tree)


def _gaussian_alpha(b: _Builder, opacity: Any, m2_unit: Any, backfacing: Any) -> Any:
    """min(0.99, o exp(-k^2 m2_unit / 2)) on front faces, 0 on back faces (each splat counts once)."""
    m2 = b.math("MULTIPLY", m2_unit, b.extent_squared(opacity), "m² = k² m²(unit)")
    falloff = b.math("EXPONENT", b.math("MULTIPLY", m2, -0.5, "-m² / 2"), label="exp(-m² / 2)")
    front = b.math("SUBTRACT", 1.0, backfacing, "Front face")
    alpha = b.math("MINIMUM", b.math("MULTIPLY", opacity, falloff, "o exp(-m² / 2)"), MAX_ALPHA, "Alpha ≤ 0.99")
    return b.math("MULTIPLY", alpha, front, "Alpha, front faces only")


def _finish(b: _Builder, color: Any, alpha: Any) -> None:
    """Straight-alpha 'over': emission of the linear colour mixed with transparency by alpha."""
    with b.stage("Shading"):
        emission = b.node("ShaderNodeEmission", {"Color": color, "Strength": 1.0})
        clear = b.node("ShaderNodeBsdfTransparent")
        mix = b.node("ShaderNodeMixShader", {"Fac": alpha, ("Shader", 0): b.out(clear, "BSDF"),
                                             ("Shader", 1): b.out(emission, "Emission")}, "Colour over by alpha")
        output = b.node("ShaderNodeOutputMaterial")
        b.link(b.out(mix, "Shader"), output, "Surface")
    b.arrange()


def _build_splat_material(material: bpy.types.Material, transparency: str) -> None:
    b = _new_material_tree(material, transparency)
    with b.stage("Splat attributes"):
        attribute = b.node("ShaderNodeAttribute", None, "Splat colour, opacity", attribute_type="INSTANCER",
                           attribute_name=COLOR_ATTRIBUTE)
        opacity = b.out(attribute, "Alpha")
        local = b.out(b.node("ShaderNodeTexCoord", None, "Point in the proxy"), "Object")
        geometry = b.node("ShaderNodeNewGeometry")
        frame = [b.out(b.node("ShaderNodeAttribute", None, f"Quad axis {'xyz'[n]} (Gaussian units)",
                              attribute_type="INSTANCER", attribute_name=name), "Vector")
                 for n, name in enumerate(PROXY_FRAME_ATTRIBUTES)]
    with b.stage("Into the Gaussian's unit frame"):
        # cubes are the unit frame already; quads carry their axes in it (none stored on cubes: 0)
        is_quad = b.math("GREATER_THAN", b.vmath("LENGTH", frame[2], label="|z axis|"), 0.0, "A quad proxy")

        def to_unit(vector: Any, label: str) -> Any:
            parts = b.node("ShaderNodeSeparateXYZ", {"Vector": vector}, f"{label} x, y, z")
            mapped = None
            for axis, column in zip("XYZ", frame):
                term = b.vmath("SCALE", column, scale=b.out(parts, axis), label=f"{label} {axis.lower()} × axis")
                mapped = term if mapped is None else b.vmath("ADD", mapped, term, label=f"{label} in Gaussian units")
            mix = b.node("ShaderNodeMix", {"Factor": is_quad, "A": vector, "B": mapped}, f"{label} (quad or cube)",
                         data_type="VECTOR")
            return b.out(mix, "Result")

        to_object = b.node("ShaderNodeVectorTransform", {"Vector": b.out(geometry, "Incoming")},
                           "View direction in the proxy", vector_type="VECTOR", convert_from="WORLD",
                           convert_to="OBJECT")
        point = to_unit(local, "Point")
        direction = to_unit(b.out(to_object, "Vector"), "View")
    with b.stage("Ray-marginal distance"):
        direction = b.vmath("NORMALIZE", direction, label="n")
        along = b.vmath("DOT_PRODUCT", point, direction, label="l·n")
        m2_unit = b.math("SUBTRACT", b.vmath("DOT_PRODUCT", point, point, label="|l|²"),
                         b.math("MULTIPLY", along, along, "(l·n)²"), "m²(unit) = |l|² - (l·n)²")
    with b.stage("Gaussian alpha"):
        alpha = _gaussian_alpha(b, opacity, m2_unit, b.out(geometry, "Backfacing"))
        inside = b.math("LESS_THAN", m2_unit, 1.0, "Ray within the extent")
        alpha = b.math("MULTIPLY", alpha, inside, "Alpha")
    _finish(b, b.out(attribute, "Color"), alpha)


def _build_point_material(material: bpy.types.Material) -> None:
    """Points render as spheres of radius k sigma_max: alpha falls off towards the silhouette."""
    b = _new_material_tree(material, "DITHERED")
    with b.stage("Splat attributes"):
        attribute = b.node("ShaderNodeAttribute", None, "Splat colour, opacity", attribute_type="GEOMETRY",
                           attribute_name=COLOR_ATTRIBUTE)
        geometry = b.node("ShaderNodeNewGeometry")
    with b.stage("Ray-marginal distance"):
        # a sphere point at impact parameter b = r sqrt(1 - (N.I)^2), r = k sigma: m^2 = k^2 (1 - (N.I)^2)
        facing = b.vmath("DOT_PRODUCT", b.out(geometry, "Normal"), b.out(geometry, "Incoming"), label="N·I")
        m2_unit = b.math("SUBTRACT", 1.0, b.math("MULTIPLY", facing, facing, "(N·I)²"), "m²(unit) = 1 - (N·I)²")
    with b.stage("Gaussian alpha"):
        alpha = _gaussian_alpha(b, b.out(attribute, "Alpha"), m2_unit, b.out(geometry, "Backfacing"))
    _finish(b, b.out(attribute, "Color"), alpha)
