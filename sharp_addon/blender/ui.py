"""Where the add-on appears: Add menu, File > Import / Export, drag and drop, the object's properties."""

from __future__ import annotations

import bpy

from .. import formats
from ..image import IMAGE_SUFFIXES
from . import scene
from .operators import SHARP_OT_from_image
from .splat_files import SHARP_OT_export_splats, SHARP_OT_export_web_page, SHARP_OT_import_splats

EXTENSIONS = ", ".join(f.extension for f in formats.FORMATS if f.extension != ".compressed.ply")


def draw_add_menu(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    self.layout.separator()
    self.layout.operator_context = "INVOKE_DEFAULT"
    self.layout.operator(SHARP_OT_from_image.bl_idname, text="SHARP from Image", icon="IMAGE_DATA")


def draw_import_menu(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    self.layout.operator(SHARP_OT_import_splats.bl_idname, text=f"Gaussian Splats ({EXTENSIONS})")


def draw_export_menu(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    self.layout.operator(SHARP_OT_export_splats.bl_idname, text=f"Gaussian Splats ({EXTENSIONS})")
    self.layout.operator(SHARP_OT_export_web_page.bl_idname, text="Splat Web Page")


def _in_3d_viewport(context: bpy.types.Context | None) -> bool:
    return context is not None and context.area is not None and context.area.type == "VIEW_3D"


class SHARP_FH_image(bpy.types.FileHandler):
    """A photo dropped on the 3D viewport offers SHARP from Image."""

    bl_idname = "SHARP_FH_image"
    bl_label = "SHARP from Image"
    bl_import_operator = SHARP_OT_from_image.bl_idname
    bl_file_extensions = ";".join(IMAGE_SUFFIXES)

    @classmethod
    def poll_drop(cls, context: bpy.types.Context | None) -> bool:
        return _in_3d_viewport(context)


class SHARP_FH_ply(bpy.types.FileHandler):
    """A splat file (PLY, SPZ, GLB, SOG, .splat) dropped on the 3D viewport offers the splat import."""

    bl_idname = "SHARP_FH_ply"
    bl_label = "Gaussian Splats"
    bl_import_operator = SHARP_OT_import_splats.bl_idname
    bl_file_extensions = ";".join(sorted({f.extensions[-1] for f in formats.FORMATS}))

    @classmethod
    def poll_drop(cls, context: bpy.types.Context | None) -> bool:
        return _in_3d_viewport(context)


class SHARP_PT_splat_object(bpy.types.Panel):
    """Properties > Object: the settings of this splat object (what differs from object to object)."""

    bl_idname = "SHARP_PT_splat_object"
    bl_label = "SHARP Splats"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "object"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.object is not None and scene.splat_modifier(context.object) is not None

    def draw(self, context: bpy.types.Context) -> None:
        obj = context.object
        assert obj is not None
        layout = self.layout
        layout.use_property_split = True
        layout.prop(obj, "sharp_transparency")
        layout.label(text=f"{scene.splat_count(obj):,} splats; display filters are on the SHARP Splats modifier",
                     icon="INFO")


classes = (SHARP_FH_image, SHARP_FH_ply, SHARP_PT_splat_object)
MENUS = (
    ("VIEW3D_MT_add", draw_add_menu),
    ("TOPBAR_MT_file_import", draw_import_menu),
    ("TOPBAR_MT_file_export", draw_export_menu),
)


def register_menus() -> None:
    for menu, draw in MENUS:
        getattr(bpy.types, menu).append(draw)


def unregister_menus() -> None:
    for menu, draw in MENUS:
        getattr(bpy.types, menu).remove(draw)
