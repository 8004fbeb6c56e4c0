"""Gaussians <-> a Blender splat object, its photo frame and its camera.

What gets made (all or nothing: a failure removes whatever was already created):

    "<name> Photo"   empty, the photo's OpenCV camera frame (x right, y down, z forward), turned
                     so the photo looks along +Y with +Z up; move it to place the whole scene
    ├── "<name>"     the splats: a PointCloud (Blender 5.1+) or a vertices-only mesh, in OpenCV
    │                metres, with the "SHARP Splats" geometry-node modifier
    └── "<name> Camera"  the photo's pinhole camera at the frame's origin (the scene camera)

Attributes follow Blender 5.3's native splats: ``position``, ``scale`` (linear sigma),
``rotation`` (QUATERNION, w x y z), ``radiance:base`` (SH DC in the file's colour encoding, and
opacity), ``radiance:sh_0..`` (higher SH). Ours beside them: ``sharp_color`` (linear RGB and
opacity, what the shading uses and what reads back exactly), ``sharp_lod`` (keep-fraction key),
``sharp_layer`` (SHARP depth layer). Photo metadata lives in custom properties of the data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bpy
import numpy as np

from .. import gaussians as G
from ..errors import GaussiansError
from . import compat, splat_shading

FOCAL_PX = "sharp_focal_px"
IMAGE_SIZE = "sharp_image_size"
COLOR_SPACE = "sharp_color_space"
MODIFIER_NAME = "SHARP Splats"
SENSOR_WIDTH_MM = 36.0
CYCLES_TRANSPARENT_BOUNCES = 256  # each proxy face a ray passes costs one; fewer leave dark holes
PHOTO_FRAME_ROTATION = (-math.pi / 2, 0.0, 0.0)  # OpenCV (x, y, z) -> Blender world (x, z, -y)
CAMERA_IN_FRAME_ROTATION = (math.pi, 0.0, 0.0)  # Blender camera (looks down -z, +y up) in OpenCV axes


def gaussians_to_object(
    gaussians: G.Gaussians,
    name: str,
    collection: bpy.types.Collection | None = None,
    create_camera: bool = True,
    transparency: str = "DITHERED",
    setup_render: bool = True,
) -> bpy.types.Object:
    """A splat object showing ``gaussians`` (see the module docstring), linked into ``collection``.

    ``create_camera`` makes the photo's camera the scene camera and sets the render size to the
    photo's (needs ``focal_px`` and ``image_size``; without them no camera is made).
    ``setup_render`` raises Cycles' transparent bounces and picks the Standard view transform so
    the splats' linear colours come out as in the photo.
    """
    if len(gaussians) == 0:
        raise GaussiansError(f"'{name}' has no splats to show")
    collection = collection or bpy.context.collection or _scene().collection
    with _all_or_nothing():
        data = _new_splat_data(gaussians, name)
        frame = bpy.data.objects.new(f"{name} Photo", None)
        frame.empty_display_type = "PLAIN_AXES"
        frame.empty_display_size = 0.25
        frame.rotation_euler = PHOTO_FRAME_ROTATION
        splats = bpy.data.objects.new(name, data)
        splats.parent = frame
        _add_modifier(splats, transparency)
        collection.objects.link(frame)
        collection.objects.link(splats)
        if create_camera and gaussians.focal_px and gaussians.image_size:
            camera = _new_camera(gaussians, f"{name} Camera")
            camera.parent = frame
            collection.objects.link(camera)
            scene = _scene()
            scene.camera = camera
            scene.render.resolution_x, scene.render.resolution_y = gaussians.image_size
            scene.render.resolution_percentage = 100
            scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
        if setup_render:
            setup_scene_for_splats(_scene())
    view_layer = bpy.context.view_layer
    if view_layer is not None:
        try:
            for obj in view_layer.objects.selected:
                obj.select_set(False)
            splats.select_set(True)
            view_layer.objects.active = splats
        except RuntimeError:  # the collection is excluded from this view layer: nothing to select
            pass
    return splats


def object_to_gaussians(obj: bpy.types.Object) -> G.Gaussians:
    """The Gaussians a splat object holds, in its own (OpenCV photo) frame; exact for our objects.

    Also reads Blender 5.3's native splat point clouds (no ``sharp_color``: colour from
    ``radiance:base``). Raises ``GaussiansError`` for other objects.
    """
    data = obj.data
    if not isinstance(data, (bpy.types.Mesh, bpy.types.PointCloud)):
        raise GaussiansError(f"'{obj.name}' is not a splat object (it is a {obj.type.lower()})")
    attributes: Any = data.attributes
    n = len(data.vertices) if isinstance(data, bpy.types.Mesh) else len(data.points)
    missing = _missing_attributes(attributes)
    if missing:
        raise GaussiansError(f"'{obj.name}' is not a splat object: it has no {missing} attribute")
    color_space = str(data.get(COLOR_SPACE, "srgb"))
    if splat_shading.COLOR_ATTRIBUTE in attributes:
        rgba = _read(attributes, splat_shading.COLOR_ATTRIBUTE, n, 4)
        colors = rgba[:, :3]
    else:  # a native 5.3 splat cloud
        rgba = _read(attributes, "radiance:base", n, 4)
        encoded = G.sh_dc_to_color(rgba[:, :3])
        colors = G.srgb_to_linear(encoded) if color_space == "srgb" else encoded
    sh: list[np.ndarray] = []
    while f"radiance:sh_{len(sh)}" in attributes and len(sh) < 15:
        sh.append(_read(attributes, f"radiance:sh_{len(sh)}", n, 3))
    layers = _read(attributes, splat_shading.LAYER_ATTRIBUTE, n, 1, np.int32)[:, 0] \
        if splat_shading.LAYER_ATTRIBUTE in attributes else None
    size = data.get(IMAGE_SIZE)
    return G.Gaussians(
        means=_read(attributes, "position", n, 3),
        scales=_read(attributes, "scale", n, 3),
        quats=_read(attributes, "rotation", n, 4),
        colors=colors,
        opacities=np.clip(rgba[:, 3], 0.0, 1.0),
        sh_rest=np.stack(sh, axis=1) if len(sh) in G.SH_REST_COUNTS else None,
        focal_px=data.get(FOCAL_PX),
        image_size=None if size is None else (int(size[0]), int(size[1])),
        color_space=color_space,
        layers=layers,
    )


def is_splat_object(obj: bpy.types.Object | None) -> bool:
    """Has the attributes ``object_to_gaussians`` needs (cheap enough for a poll)."""
    if obj is None or not isinstance(obj.data, (bpy.types.Mesh, bpy.types.PointCloud)):
        return False
    return _missing_attributes(obj.data.attributes) is None


def _missing_attributes(attributes: Any) -> str | None:
    """Which attributes a splat object lacks, as words for a message; None when it has them all."""
    missing = [a for a in ("position", "scale", "rotation") if a not in attributes]
    if missing:
        return ", ".join(missing)
    if splat_shading.COLOR_ATTRIBUTE not in attributes and "radiance:base" not in attributes:
        return f"{splat_shading.COLOR_ATTRIBUTE} or radiance:base"
    return None


def splat_modifier(obj: bpy.types.Object) -> Any:
    """The object's SHARP geometry-node modifier (a NodesModifier), or None."""
    return next((m for m in obj.modifiers if isinstance(m, bpy.types.NodesModifier) and m.node_group is not None
                 and m.node_group.get("sharp_role") == splat_shading.NODE_GROUP_NAME), None)


def set_modifier_input(modifier: bpy.types.NodesModifier, name: str, value: Any) -> None:
    """Set a modifier input by its name in the node group's interface."""
    group = modifier.node_group
    assert group is not None
    item = next(i for i in group.interface.items_tree if i.item_type == "SOCKET" and i.in_out == "INPUT"
                and i.name == name)
    compat.set_modifier_value(modifier, item.identifier, value)
    modifier.id_data.update_tag()


def setup_scene_for_splats(scene: bpy.types.Scene) -> list[str]:
    """Render settings splats need; returns what was changed, for the user's report."""
    changed = []
    cycles = getattr(scene, "cycles", None)
    if cycles is not None and cycles.transparent_max_bounces < CYCLES_TRANSPARENT_BOUNCES:
        cycles.transparent_max_bounces = CYCLES_TRANSPARENT_BOUNCES
        changed.append(f"Cycles transparent bounces {CYCLES_TRANSPARENT_BOUNCES}")
    # Russian roulette on transparent bounces turns the many faint splats a ray crosses into
    # noise (4x too dark at 1 sample, speckled at 16); without it splats converge in one sample
    if cycles is not None and cycles.min_transparent_bounces < cycles.transparent_max_bounces:
        cycles.min_transparent_bounces = cycles.transparent_max_bounces
        changed.append("no Russian roulette on transparent bounces")
    if scene.view_settings.view_transform != "Standard":
        scene.view_settings.view_transform = "Standard"
        changed.append("view transform Standard (the photo's colours, not tone-mapped)")
    return changed


# ---- building blocks ------------------------------------------------------------------------------


def _scene() -> bpy.types.Scene:
    scene = bpy.context.scene
    assert scene is not None, "Blender always has a current scene where operators run"
    return scene


_ID_COLLECTIONS = ("objects", "meshes", "pointclouds", "cameras", "materials", "node_groups")


def _ids() -> dict[int, Any]:
    return {block.as_pointer(): block for name in _ID_COLLECTIONS for block in getattr(bpy.data, name)}


@contextmanager
def _all_or_nothing() -> Iterator[None]:
    """On any error inside, removes every datablock made meanwhile (objects, data, node group,
    materials) and re-raises, so a failed build leaves ``bpy.data`` as it was."""
    before = set(_ids())
    try:
        yield
    except BaseException:
        bpy.data.batch_remove([block for key, block in _ids().items() if key not in before])
        raise


def _new_splat_data(g: G.Gaussians, name: str) -> bpy.types.Mesh | bpy.types.PointCloud:
    n = len(g)
    data: bpy.types.Mesh | bpy.types.PointCloud
    if compat.can_size_pointclouds():
        data = bpy.data.pointclouds.new(name)
        data.resize(n)  # n > 0: gaussians_to_object refuses empty sets
    else:
        data = bpy.data.meshes.new(name)
        data.vertices.add(n)
    _fill_attributes(data, g)
    data.update_tag()
    return data


def _fill_attributes(data: bpy.types.Mesh | bpy.types.PointCloud, g: G.Gaussians) -> None:
    attributes = data.attributes
    _write(attributes, "position", "FLOAT_VECTOR", g.means)
    _write(attributes, "scale", "FLOAT_VECTOR", g.scales)
    _write(attributes, "rotation", "QUATERNION", g.quats)
    encoded = G.linear_to_srgb(g.colors) if g.color_space == "srgb" else g.colors
    base = np.concatenate([G.color_to_sh_dc(encoded), g.opacities[:, None]], axis=1)
    _write(attributes, "radiance:base", compat.float4_attribute_type(), base)
    if g.sh_rest is not None:
        for k in range(g.sh_rest.shape[1]):
            _write(attributes, f"radiance:sh_{k}", "FLOAT_VECTOR", g.sh_rest[:, k])
    _write(attributes, splat_shading.COLOR_ATTRIBUTE, "FLOAT_COLOR",
           np.concatenate([g.colors, g.opacities[:, None]], axis=1))
    _write(attributes, splat_shading.LOD_ATTRIBUTE, "FLOAT", G.lod_keys(len(g)))
    if g.layers is not None:
        _write(attributes, splat_shading.LAYER_ATTRIBUTE, "INT8", g.layers)
    if g.focal_px is not None:
        data[FOCAL_PX] = float(g.focal_px)
    if g.image_size is not None:
        data[IMAGE_SIZE] = list(g.image_size)
    data[COLOR_SPACE] = g.color_space


def _write(attributes: Any, name: str, data_type: str, values: np.ndarray) -> None:
    attribute = attributes.get(name)
    if attribute is None:
        attribute = attributes.new(name, data_type, "POINT")
    dtype = np.int32 if data_type in ("INT", "INT8") else np.float32
    flat = np.ascontiguousarray(values, dtype=dtype).reshape(-1)
    attribute.data.foreach_set(compat.attribute_value_key(data_type), flat)


def _read(attributes: Any, name: str, n: int, width: int, dtype: Any = np.float32) -> np.ndarray:
    attribute = attributes[name]
    out = np.empty(n * width, dtype=dtype)
    attribute.data.foreach_get(compat.attribute_value_key(attribute.data_type), out)
    return out.reshape(n, width)


def _add_modifier(obj: bpy.types.Object, transparency: str) -> bpy.types.NodesModifier:
    group = splat_shading.ensure_splat_node_group()
    splat_material, point_material = splat_shading.ensure_materials()
    splat_shading.set_transparency(splat_material, transparency)
    modifier = obj.modifiers.new(MODIFIER_NAME, "NODES")
    assert isinstance(modifier, bpy.types.NodesModifier)
    modifier.node_group = group
    set_modifier_input(modifier, "Splat Material", splat_material)
    set_modifier_input(modifier, "Point Material", point_material)
    # materials on the data too, so the Material tab and exporters see them
    obj.data.materials.append(splat_material)
    return modifier


def _new_camera(g: G.Gaussians, name: str) -> bpy.types.Object:
    """The photo's pinhole: horizontal sensor fit, lens from focal_px, principal point centred."""
    assert g.focal_px is not None and g.image_size is not None
    width, _ = g.image_size
    camera = bpy.data.cameras.new(name)
    camera.sensor_fit = "HORIZONTAL"
    camera.sensor_width = SENSOR_WIDTH_MM
    camera.lens = g.focal_px * SENSOR_WIDTH_MM / width
    camera.clip_start = 0.01
    camera.clip_end = max(100.0, 2.0 * float(g.means[:, 2].max()))
    obj = bpy.data.objects.new(name, camera)
    obj.rotation_euler = CAMERA_IN_FRAME_ROTATION
    return obj
