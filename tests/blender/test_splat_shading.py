"""The splat node group and materials on real Blender: a graph a user can read in the node editor,
one material per EEVEE transparency method, and the modifier interface other code reads by name.

Built through ``splat_shading`` alone (no splat object), so these hold whatever makes the objects.
"""

from __future__ import annotations

import importlib

import pytest

from tests.conftest import ADDON_MODULE

pytestmark = pytest.mark.blender

# what the modifier shows and other code reads by name: (name, socket type, default)
EXPECTED_INPUTS = [
    ("Show as Points", "NodeSocketBool", False),
    ("Points in Viewport", "NodeSocketBool", False),
    ("Face Camera in Renders", "NodeSocketBool", True),
    ("Splat Size", "NodeSocketFloat", 1.0),
    ("Opacity Threshold", "NodeSocketFloat", 1 / 255),
    ("Keep Fraction", "NodeSocketFloat", 1.0),
    ("Visible Layer", "NodeSocketBool", True),
    ("Occluded Layer", "NodeSocketBool", True),
    ("Use Crop Box", "NodeSocketBool", False),
    ("Crop Min", "NodeSocketVector", (-1000.0, -1000.0, 0.0)),
    ("Crop Max", "NodeSocketVector", (1000.0, 1000.0, 1000.0)),
    ("Splat Material", "NodeSocketMaterial", None),
    ("Point Material", "NodeSocketMaterial", None),
]
NATIVE_ONLY_INPUTS = [("Render as Proxies", "NodeSocketBool", False)]  # Blender 5.3+
PROXY_STAGES = ["Gaussian proxies", "Scene camera, in the splats' frame", "Depth tie-break", "Camera depth",
                "Quad sizes", "Quad to Gaussian frame",
                "Camera-facing quads", "Proxies for this view"]
FRAME_LABELS = {
    "node group": ["Modifier inputs", "Attributes", "Which splats to show", "Size: k sigma", *PROXY_STAGES,
                   "Fast points", "Output"],
    "splat material": ["Splat attributes", "Into the Gaussian's unit frame", "Ray-marginal distance",
                       "Gaussian alpha", "Shading"],
    "blended splat material": ["Splat attributes", "Into the Gaussian's unit frame", "Ray-marginal distance",
                               "Gaussian alpha", "Shading"],
    "point material": ["Splat attributes", "Ray-marginal distance", "Gaussian alpha", "Shading"],
}
UNTELLING_NODES = ("ShaderNodeMath", "ShaderNodeVectorMath", "FunctionNodeCompare", "FunctionNodeBooleanMath")


@pytest.fixture
def ss(addon):
    return importlib.import_module(ADDON_MODULE + ".blender.splat_shading")


def node_layout():
    return importlib.import_module(ADDON_MODULE + ".blender.node_layout")


def native(ss) -> bool:
    return importlib.import_module(ADDON_MODULE + ".blender.compat").has_native_splats()


def expected_inputs(ss) -> list:
    return EXPECTED_INPUTS + (NATIVE_ONLY_INPUTS if native(ss) else [])


def tree_of(ss, kind: str):
    if kind == "node group":
        return ss.ensure_splat_node_group()
    material = {"splat material": lambda: ss.ensure_splat_material("DITHERED"),
                "blended splat material": lambda: ss.ensure_splat_material("BLENDED"),
                "point material": ss.ensure_point_material}[kind]()
    return material.node_tree


def absolute(node) -> tuple[float, float]:
    """Top-left corner in the editor: a parented node's ``location`` is relative to its frame (checked
    against ``location_absolute`` where Blender has it)."""
    x, y = node.location
    if node.parent is not None:
        px, py = absolute(node.parent)
        x, y = x + px, y + py
    if hasattr(node, "location_absolute"):
        assert tuple(node.location_absolute) == pytest.approx((x, y)), node.name
    return x, y


def rectangle(ss, node) -> tuple[float, float, float, float]:
    """(left, bottom, right, top); a node's height estimated (``dimensions`` is 0 without an editor)."""
    x, y = absolute(node)
    w, h = (node.width, node.height) if node.type == "FRAME" else node_layout().estimated_size(node)
    assert w > 0 and h > 0, node.name
    return x, y - h, x + w, y


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(a, b) -> bool:
    return b[0] <= a[0] and a[2] <= b[2] and b[1] <= a[1] and a[3] <= b[3]


KINDS = list(FRAME_LABELS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_node_stands_in_a_labelled_frame_and_nothing_overlaps(ss, clean_scene, kind):
    tree = tree_of(ss, kind)
    frames = [n for n in tree.nodes if n.type == "FRAME"]
    nodes = [n for n in tree.nodes if n.type != "FRAME"]
    labels = FRAME_LABELS[kind]
    if kind == "node group" and native(ss):  # 5.3: native splats first, proxies on request
        at = labels.index("Fast points")
        labels = [*labels[:4], "Native Gaussian splats", *PROXY_STAGES, "Native splats or proxies", *labels[at:]]
    assert [f.label for f in frames] == labels
    assert all(f.parent is None for f in frames)
    for node in nodes:
        assert node.parent in frames, f"{node.name} is in no frame"
        assert inside(rectangle(ss, node), rectangle(ss, node.parent)), f"{node.name} sticks out of its frame"
    for group in (frames, nodes):
        rectangles = [(n.name, rectangle(ss, n)) for n in group]
        for i, (a, ra) in enumerate(rectangles):
            for b, rb in rectangles[i + 1:]:
                assert not overlap(ra, rb), f"{a} overlaps {b}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_link_runs_left_to_right(ss, clean_scene, kind):
    tree = tree_of(ss, kind)
    assert len(tree.links) > 10
    for link in tree.links:
        source, target = rectangle(ss, link.from_node), rectangle(ss, link.to_node)
        assert source[2] < target[0], f"{link.from_node.name} -> {link.to_node.name} runs backwards"


@pytest.mark.parametrize("kind", KINDS)
def test_arithmetic_and_logic_nodes_say_what_they_compute(ss, clean_scene, kind):
    unlabelled = [n.name for n in tree_of(ss, kind).nodes if n.bl_idname in UNTELLING_NODES and not n.label]
    assert unlabelled == []


def test_one_material_per_transparency_method_found_again_after_renaming(ss, clean_scene, bpy_session):
    bpy = bpy_session
    assert ss.TRANSPARENCY_METHODS == ("DITHERED", "BLENDED")
    dithered = ss.ensure_splat_material()
    blended = ss.ensure_splat_material("BLENDED")
    points = ss.ensure_point_material()
    assert len({dithered.name, blended.name, points.name}) == 3
    assert (dithered.name, blended.name, points.name) == ("SHARP Splat", "SHARP Splat Blended", "SHARP Splat Points")
    # making the blended one left the dithered one as it was
    assert (dithered.surface_render_method, blended.surface_render_method) == ("DITHERED", "BLENDED")
    if hasattr(blended, "use_transparency_overlap"):
        assert blended.use_transparency_overlap
    dithered.name, blended.name, points.name = "my splats", "my smooth splats", "my points"
    assert ss.ensure_splat_material("DITHERED") == dithered and ss.ensure_splat_material("BLENDED") == blended
    assert ss.ensure_point_material() == points and len(bpy.data.materials) == 3
    assert ss.splat_material_transparency(dithered) == "DITHERED"
    assert ss.splat_material_transparency(blended) == "BLENDED"
    assert ss.splat_material_transparency(points) is None
    assert ss.splat_material_transparency(bpy.data.materials.new("SHARP Splat Blended")) is None  # not by name
    assert ss.splat_material_transparency(None) is None
    with pytest.raises(ValueError, match="DITHERED, BLENDED"):
        ss.ensure_splat_material("OPAQUE")


def test_older_files_keep_their_shading_and_new_objects_get_a_current_copy(ss, clean_scene, bpy_session):
    bpy = bpy_session
    group, material = ss.ensure_splat_node_group(), ss.ensure_splat_material()
    assert ss.NODES_VERSION == 3 and group["sharp_version"] == material["sharp_version"] == 3
    assert ss.ensure_splat_node_group() == group and len(bpy.data.node_groups) == 1
    # a version-1 file: one splat material served both methods; its render method tells which it is
    group["sharp_version"] = material["sharp_version"] = 1
    material.surface_render_method = "BLENDED"
    assert ss.splat_material_transparency(material) == "BLENDED"
    assert ss.ensure_splat_node_group() != group and len(bpy.data.node_groups) == 2
    assert ss.ensure_splat_material() not in (material, ss.ensure_splat_material("BLENDED"))
    assert len(bpy.data.materials) == 3


def test_the_modifier_interface_is_the_inputs_table(ss, clean_scene):
    group = ss.ensure_splat_node_group()
    sockets = [i for i in group.interface.items_tree if i.item_type == "SOCKET"]
    outputs = [(i.name, i.socket_type) for i in sockets if i.in_out == "OUTPUT"]
    inputs = [i for i in sockets if i.in_out == "INPUT"]
    assert outputs == [("Geometry", "NodeSocketGeometry")]
    expected = expected_inputs(ss)
    assert [(i.name, i.socket_type) for i in inputs] == [("Geometry", "NodeSocketGeometry")] + [
        (name, socket_type) for name, socket_type, _ in expected]
    specs = ss.modifier_inputs()
    assert [(s.name, s.socket_type) for s in specs] == [(name, t) for name, t, _ in expected]
    for item, spec, (_, _, default) in zip(inputs[1:], specs, expected, strict=True):
        value = item.default_value
        if default is None:
            assert value is None, item.name
        else:
            assert (tuple(value) if isinstance(default, tuple) else value) == pytest.approx(default), item.name
        assert item.description == spec.description
        if spec.min is not None:
            assert (item.min_value, item.max_value) == pytest.approx((spec.min, spec.max)), item.name
        if spec.subtype != "NONE":
            assert item.subtype == spec.subtype, item.name
