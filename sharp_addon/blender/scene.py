"""The Blender layer's public module: Gaussians <-> a splat object, its photo frame and its camera.

    from bl_ext.user_default.sharp_from_image.blender.scene import gaussians_to_object, object_to_gaussians

What gets made (all or nothing: a failure removes whatever was already created):

    "<name> Photo"   empty, the photo's OpenCV camera frame (x right, y down, z forward), turned
                     so the photo looks along +Y with +Z up, at the 3D cursor or beside what would
                     hide the splats there (``place_photo_frame``); move it to place the whole scene
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

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from .. import gaussians as G
from ..errors import GaussiansError
from . import compat, splat_shading
from .photo_camera import add_photo_camera, check_camera_fits
from .placement import Placement, place_photo_frame
from .render_setup import setup_scene_for_splats
from .splat_attributes import COLOR_SPACE, FOCAL_PX, IMAGE_SIZE, check_edits, missing_attributes, new_splat_data
from .splat_attributes import read as read_attribute

MODIFIER_NAME = "SHARP Splats"
# the photo frame turns OpenCV axes into Blender's world (looking along +Y, +Z up); the camera in
# that frame is a Blender camera (looking down its -Z, +Y up) expressed in OpenCV axes
PHOTO_FRAME_ROTATION = Matrix(G.OPENCV_TO_BLENDER_WORLD.tolist()).to_euler()


@dataclass
class SplatScene:
    """What ``gaussians_to_object`` made and changed."""

    splats: bpy.types.Object  # the splat object (point cloud or mesh) with the SHARP modifier
    frame: bpy.types.Object  # its parent empty, the photo's camera frame
    camera: bpy.types.Object | None  # the photo's camera (the scene camera), if one was made
    render_changes: list[str] = field(default_factory=list)  # render settings changed, in words
    placement: Placement | None = None  # where the frame went and why

    def summary(self) -> str:
        """One line for the user's report."""
        camera = " with its camera" if self.camera is not None else ""
        placed = self.placement.words() if self.placement is not None else ""
        changed = f" (set {'; '.join(self.render_changes)})" if self.render_changes else ""
        return f"Added '{self.splats.name}'{camera}: {splat_count(self.splats):,} splats{placed}{changed}"


def gaussians_to_object(
    gaussians: G.Gaussians,
    name: str,
    collection: bpy.types.Collection | None = None,
    create_camera: bool = True,
    transparency: str = "DITHERED",
    setup_render: bool = True,
    replacing: bpy.types.Object | None = None,
) -> SplatScene:
    """A splat object showing ``gaussians`` (see the module docstring), linked into ``collection``.

    ``create_camera`` makes the photo's camera the scene camera and sets the render size to the
    photo's (needs ``focal_px`` and ``image_size``; without them no camera is made).
    ``transparency`` is how EEVEE blends this object's splats (``DITHERED`` or ``BLENDED``; other
    splat objects keep theirs). ``setup_render`` raises Cycles' transparent bounces and picks the
    Standard view transform so the splats' linear colours come out as in the photo.
    The photo frame goes where ``place_photo_frame`` says (``replacing``: an object the new scene
    replaces, never in its way). Raises ``GaussiansError`` (nothing made) for splats Blender cannot
    show as asked.
    """
    if len(gaussians) == 0:
        raise GaussiansError.about(name, "has no splats to show")
    if transparency not in splat_shading.TRANSPARENCY_METHODS:
        raise GaussiansError.about(name, f"unknown EEVEE transparency {transparency!r} "
                                   f"(one of {', '.join(splat_shading.TRANSPARENCY_METHODS)})")
    with_camera = bool(create_camera and gaussians.focal_px and gaussians.image_size)
    if with_camera:
        check_camera_fits(gaussians, name)
    collection = collection or bpy.context.collection or _scene().collection
    placement = place_photo_frame(gaussians, () if replacing is None else (replacing,))
    camera = None
    with all_or_nothing():
        data = new_splat_data(gaussians, name)
        frame = bpy.data.objects.new(f"{name} Photo", None)
        frame.empty_display_type = "PLAIN_AXES"
        frame.empty_display_size = 0.25
        frame.rotation_euler = PHOTO_FRAME_ROTATION
        frame.location = placement.location
        splats = bpy.data.objects.new(name, data)
        splats.parent = frame
        # the splats are the photo's light, emitted: they cast no shadow (a proxy's would have its
        # shape, and EEVEE would redraw every proxy into its shadow maps whenever the camera moves)
        splats.visible_shadow = False
        _add_modifier(splats, transparency)
        collection.objects.link(frame)
        collection.objects.link(splats)
        if with_camera:
            camera = add_photo_camera(gaussians, f"{name} Camera", splats, collection, _scene())
        changes = setup_scene_for_splats(_scene()) if setup_render else []
    view_layer = bpy.context.view_layer
    if view_layer is not None:
        try:
            for obj in view_layer.objects.selected:
                obj.select_set(False)
            splats.select_set(True)
            view_layer.objects.active = splats
        except RuntimeError:  # the collection is excluded from this view layer: nothing to select
            pass
    return SplatScene(splats, frame, camera, changes, placement)


def object_to_gaussians(obj: bpy.types.Object) -> G.Gaussians:
    """The Gaussians a splat object holds, in its own (OpenCV photo) frame; exact for our objects.

    Also reads Blender 5.3's native splat point clouds (no ``sharp_color``: colour from
    ``radiance:base``). Raises ``GaussiansError`` for other objects.
    """
    data = obj.data
    if not isinstance(data, (bpy.types.Mesh, bpy.types.PointCloud)):
        raise GaussiansError.about(obj.name, f"is not a splat object (its type is {obj.type.title()})")
    attributes: Any = data.attributes
    n = splat_count(obj)
    missing = missing_attributes(attributes)
    if missing:
        raise GaussiansError.about(obj.name, f"is not a splat object: it has no {missing} attribute")
    if n == 0:
        raise GaussiansError.about(obj.name, "has no splats (all were deleted)")
    color_space = str(data.get(COLOR_SPACE, "srgb"))
    focal_px, image_size = _photo_metadata(obj)

    def read(name: str, width: int, dtype: Any = np.float32) -> np.ndarray:
        return read_attribute(attributes, name, n, width, dtype, owner=obj.name)

    if splat_shading.COLOR_ATTRIBUTE in attributes:
        rgba = read(splat_shading.COLOR_ATTRIBUTE, 4)
        colors = rgba[:, :3]
    else:  # a native 5.3 splat cloud
        rgba = read("radiance:base", 4)
        encoded = G.sh_dc_to_color(rgba[:, :3])
        colors = G.srgb_to_linear(encoded) if color_space == "srgb" else encoded
    sh: list[np.ndarray] = []
    while f"radiance:sh_{len(sh)}" in attributes and len(sh) < 15:
        sh.append(read(f"radiance:sh_{len(sh)}", 3))
    layers = read(splat_shading.LAYER_ATTRIBUTE, 1, np.int32)[:, 0] \
        if splat_shading.LAYER_ATTRIBUTE in attributes else None
    arrays = {"position": read("position", 3), "scale": read("scale", 3), "rotation": read("rotation", 4),
              "colour": colors, "opacity": rgba[:, 3:]}
    check_edits(obj.name, arrays)
    try:
        return G.Gaussians(
            means=arrays["position"],
            scales=arrays["scale"],
            quats=arrays["rotation"],
            colors=colors,
            opacities=np.clip(rgba[:, 3], 0.0, 1.0),
            sh_rest=np.stack(sh, axis=1) if len(sh) in G.SH_REST_COUNTS else None,
            focal_px=focal_px,
            image_size=image_size,
            color_space=color_space,
            layers=layers,
        )
    except GaussiansError as e:
        raise GaussiansError.about(obj.name, f"holds splat data that cannot be used ({e})") from None


def shown_gaussians(obj: bpy.types.Object) -> G.Gaussians:
    """The Gaussians the object's SHARP Splats modifier shows: ``object_to_gaussians`` through the
    modifier's filters (opacity threshold, keep fraction, layers, crop box) and Splat Size, as the
    node group applies them (missing ``sharp_lod`` / ``sharp_layer`` read as 0 there too). What the
    exact renderer draws, so it renders what Cycles and EEVEE show. All of them without the modifier."""
    g = object_to_gaussians(obj)
    modifier = splat_modifier(obj)
    if modifier is None:
        return g

    present = {i.name for i in modifier.node_group.interface.items_tree if i.item_type == "SOCKET"}
    defaults = {spec.name: spec.default for spec in splat_shading.INPUTS}

    def value(name: str) -> Any:  # a group from an older add-on may lack an input: its default then
        return modifier_input(modifier, name) if name in present else defaults[name]

    attributes: Any = obj.data.attributes
    n = len(g)
    lod = read_attribute(attributes, splat_shading.LOD_ATTRIBUTE, n, 1, owner=obj.name)[:, 0] \
        if splat_shading.LOD_ATTRIBUTE in attributes else np.zeros(n, np.float32)
    first = g.layers == 0 if g.layers is not None else np.ones(n, bool)
    shown = (g.opacities >= np.float32(value("Opacity Threshold"))) & (lod < np.float32(value("Keep Fraction")))
    shown &= (first & bool(value("Visible Layer"))) | (~first & bool(value("Occluded Layer")))
    if value("Use Crop Box"):
        lo, hi = (np.asarray(tuple(value(name)), np.float32) for name in ("Crop Min", "Crop Max"))
        shown &= np.all((g.means >= lo) & (g.means <= hi), axis=1)
    if not shown.any():
        raise GaussiansError.about(obj.name, "shows no splats: its SHARP Splats modifier hides them all "
                                   "(opacity threshold, keep fraction, layers or crop box)")
    g = g.subset(shown) if not shown.all() else g
    size = float(value("Splat Size"))
    return g if size == 1.0 else g.replace(scales=(g.scales * max(size, 1e-9)).astype(np.float32))


def splat_count(obj: bpy.types.Object) -> int:
    """How many splats (points) a splat object holds."""
    data = obj.data
    return len(data.vertices) if isinstance(data, bpy.types.Mesh) else len(data.points)


def is_splat_object(obj: bpy.types.Object | None) -> bool:
    """Has the attributes ``object_to_gaussians`` needs (cheap enough for a poll)."""
    if obj is None or not isinstance(obj.data, (bpy.types.Mesh, bpy.types.PointCloud)):
        return False
    return missing_attributes(obj.data.attributes) is None


def splat_modifier(obj: bpy.types.Object) -> Any:
    """The object's SHARP geometry-node modifier (a NodesModifier), or None."""
    return next((m for m in obj.modifiers if isinstance(m, bpy.types.NodesModifier) and m.node_group is not None
                 and m.node_group.get("sharp_role") == splat_shading.NODE_GROUP_NAME), None)


def set_modifier_input(modifier: bpy.types.NodesModifier, name: str, value: Any) -> None:
    """Set a modifier input by its name in the node group's interface."""
    compat.set_modifier_value(modifier, _input_identifier(modifier, name), value)
    modifier.id_data.update_tag()


def modifier_input(modifier: bpy.types.NodesModifier, name: str) -> Any:
    """A modifier input's value by its name in the node group's interface."""
    return compat.get_modifier_value(modifier, _input_identifier(modifier, name))


def _input_identifier(modifier: bpy.types.NodesModifier, name: str) -> str:
    group = modifier.node_group
    assert group is not None
    return next(i.identifier for i in group.interface.items_tree
                if i.item_type == "SOCKET" and i.in_out == "INPUT" and i.name == name)


# ---- building blocks ------------------------------------------------------------------------------


def _scene() -> bpy.types.Scene:
    scene = bpy.context.scene
    assert scene is not None, "Blender always has a current scene where operators run"
    return scene


_ID_COLLECTIONS = ("objects", "meshes", "pointclouds", "cameras", "materials", "images", "node_groups")


def _ids() -> dict[int, Any]:
    return {block.as_pointer(): block for name in _ID_COLLECTIONS for block in getattr(bpy.data, name)}


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """On any error inside, removes every datablock made meanwhile (objects, data, node group,
    materials, images) and re-raises, so a failed build leaves ``bpy.data`` as it was."""
    before = set(_ids())
    try:
        yield
    except BaseException:
        bpy.data.batch_remove([block for key, block in _ids().items() if key not in before])
        raise


def _photo_metadata(obj: bpy.types.Object) -> tuple[float | None, tuple[int, int] | None]:
    """The photo's focal length and size from the data's custom properties, checked (they can be edited)."""
    data: Any = obj.data
    focal, size = data.get(FOCAL_PX), data.get(IMAGE_SIZE)
    if focal is not None and (isinstance(focal, (str, bytes)) or not isinstance(focal, (int, float))):
        raise GaussiansError.about(obj.name, f"has a '{FOCAL_PX}' property of {focal!r}; it must be the photo's "
                                   "focal length in pixels (a number), or absent")
    if size is not None:
        values = list(size) if hasattr(size, "__len__") and not isinstance(size, (str, bytes)) else None
        if values is None or len(values) != 2 or not all(isinstance(v, (int, float)) and float(v).is_integer()
                                                          for v in values):
            raise GaussiansError.about(obj.name, f"has a '{IMAGE_SIZE}' property of {size!r}; it must be the "
                                       "photo's width and height in pixels (two whole numbers), or absent")
        return (None if focal is None else float(focal)), (int(values[0]), int(values[1]))
    return (None if focal is None else float(focal)), None


def _add_modifier(obj: bpy.types.Object, transparency: str) -> bpy.types.NodesModifier:
    modifier = obj.modifiers.new(MODIFIER_NAME, "NODES")
    assert isinstance(modifier, bpy.types.NodesModifier)
    modifier.node_group = splat_shading.ensure_splat_node_group()
    set_modifier_input(modifier, "Point Material", splat_shading.ensure_point_material())
    set_transparency(obj, transparency)
    return modifier


def transparency(obj: bpy.types.Object) -> str | None:
    """How EEVEE blends this splat object (``DITHERED`` or ``BLENDED``); None when not ours to say."""
    modifier = splat_modifier(obj)
    return None if modifier is None else splat_shading.splat_material_transparency(
        modifier_input(modifier, "Splat Material"))


def set_transparency(obj: bpy.types.Object, method: str) -> None:
    """Blend this splat object's splats in EEVEE by ``method``; other splat objects keep theirs.

    Each method has its own shared material, so switching one object swaps its material and
    changes nothing else.
    """
    modifier = splat_modifier(obj)
    if modifier is None:
        raise GaussiansError.about(obj.name, "has no SHARP Splats modifier")
    material = splat_shading.ensure_splat_material(method)
    set_modifier_input(modifier, "Splat Material", material)
    if compat.has_native_splats():
        # 5.3's native splats shade with the data's material when it has one: our proxy
        # material there makes them transparent (a black render); without one they emit their colour
        return
    # the material on the data too, so the Material tab and exporters see it
    materials: Any = obj.data.materials
    if len(materials) == 0:
        materials.append(material)
    else:
        materials[0] = material


