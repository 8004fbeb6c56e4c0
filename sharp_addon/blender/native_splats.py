"""Blender 5.3+ native Gaussian splats: turning a cloud from Blender's own PLY importer into ours.

Blender's importer keeps no trace of the file it read, nor ml-sharp's photo metadata, so the
photo's focal length and size come from the file when the operator is given its path; without
one the splats are adopted without a camera. The imported object is replaced (Ctrl+Z brings it
back), as an artist expects one object per import.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import StringProperty

from ..errors import GaussiansError
from ..gaussians import Gaussians
from . import compat, scene
from .reports import Result, reports_errors


def adopt(obj: bpy.types.Object, ply_path: str = "") -> scene.SplatScene:
    """Rebuild ``obj`` (a native splat cloud) as our splat object; the photo's camera from ``ply_path``'s
    ml-sharp metadata when given. ``obj`` is removed only once ours stands."""
    gaussians = scene.object_to_gaussians(obj)
    if ply_path:
        from ..ply import read_ply

        photo = read_ply(bpy.path.abspath(ply_path))
        if len(photo) != len(gaussians):
            raise GaussiansError.about(obj.name, f"has {len(gaussians):,} splats but {ply_path} holds "
                                       f"{len(photo):,}: give the file it was imported from")
        gaussians = _with_photo(gaussians, photo)
    name = obj.name
    collection = obj.users_collection[0] if obj.users_collection else None
    built = scene.gaussians_to_object(gaussians, name + " SHARP", collection=collection, replacing=obj)
    bpy.data.objects.remove(obj)
    built.splats.name = name
    return built


def _with_photo(gaussians: Gaussians, photo: Gaussians) -> Gaussians:
    """The adopted splats with the file's photo metadata and depth layers."""
    return gaussians.replace(focal_px=photo.focal_px, image_size=photo.image_size, layers=photo.layers)


class SHARP_OT_adopt_splats(bpy.types.Operator):
    """Turn Gaussian splats imported by Blender's PLY importer into SHARP splats (camera, photo frame, modifier)"""

    bl_idname = "sharp.adopt_splats"
    bl_label = "Convert to SHARP Splats"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012

    filepath: StringProperty(  # type: ignore[valid-type]
        name="PLY File", subtype="FILE_PATH",
        description="The ml-sharp file the splats were imported from, for the photo's camera (optional)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        obj = context.active_object
        if not compat.has_native_splats() or obj is None or not scene.is_splat_object(obj):
            cls.poll_message_set("The active object is not a native Gaussian-splat cloud (Blender 5.3+)")
            return False
        if scene.splat_modifier(obj) is not None:
            cls.poll_message_set("The active object is already SHARP splats")
            return False
        return True

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
        obj = context.active_object
        assert obj is not None, "poll() makes sure"
        built = adopt(obj, self.filepath)
        self.report({"INFO"}, built.summary())
        return {"FINISHED"}


classes: tuple[type, ...] = (SHARP_OT_adopt_splats,)


def _menu(self: Any, context: bpy.types.Context) -> None:
    self.layout.operator(SHARP_OT_adopt_splats.bl_idname)


def register() -> None:
    """The operator in the Object menu (where 5.3's splat clouds are)."""
    menu: Any = bpy.types.VIEW3D_MT_object  # the stubs type its draw functions without self
    menu.append(_menu)


def unregister() -> None:
    """Undo register."""
    menu: Any = bpy.types.VIEW3D_MT_object
    menu.remove(_menu)
