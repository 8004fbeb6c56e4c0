"""File > Import / Export > Gaussian Splats: every format of ``formats``, for our splat objects and
Blender 5.3's native splat clouds alike.

Thin: the formats, path checks and atomic writes are ``formats``; the object's splats come from
``scene``. Export is "what you see": by default the object's world transform is applied (SH colour
turned with it, scales scaled) and the SHARP Splats modifier's filters too, so another tool shows
what the viewport shows. World coordinates are written in the photo frame's axes (x right, y down,
z forward: Blender's world turned back by the photo frame's rotation), the axes SHARP's own files
use, so a freshly made scene exports the numbers SHARP predicted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from .. import formats
from ..errors import OutputError
from ..gaussians import OPENCV_TO_BLENDER_WORLD, Gaussians
from . import scene
from .operators import LAYOUT_ITEMS, SplatSettings
from .reports import Result, reports_errors

READ_GLOB = ";".join(f"*{ext}" for f in formats.FORMATS for ext in f.extensions)
FORMAT_ITEMS = [("AUTO", "By Extension", "The format the file name's extension names (.ply if none)")] + [
    (f.name, f"{f.label} ({f.extension})", f"{f.label}: SH up to degree {f.sh_degree}"
     + (", quantised" if f.lossy else ", exact")) for f in formats.FORMATS]
SPZ_VERSION_ITEMS = [("3", "3 (gzip)", "Read by most web viewers (default)"),
                     ("4", "4 (zstd)", "Smaller and faster; newer readers only"),
                     ("2", "2 (gzip)", "For old readers")]


def world_to_photo_axes() -> np.ndarray:
    """4x4: Blender world -> the photo frame's axes (the inverse of the photo frame's rotation)."""
    m = np.eye(4)
    m[:3, :3] = OPENCV_TO_BLENDER_WORLD.T
    return m


def exported_gaussians(obj: bpy.types.Object, world_space: bool = True, apply_filters: bool = True) -> Gaussians:
    """The splats of ``obj`` as an export writes them: filtered as its modifier shows them, and in
    world space (photo-frame axes), when asked."""
    g = scene.shown_gaussians(obj) if apply_filters else scene.object_to_gaussians(obj)
    if world_space:
        g = g.transformed_by(world_to_photo_axes() @ np.array(obj.matrix_world, dtype=np.float64))
    return g


def active_splat_object(operator: Any, context: bpy.types.Context) -> bool:
    """An export's poll: the active object holds splats (else Blender says why the entry is grey)."""
    if not scene.is_splat_object(context.active_object):
        operator.poll_message_set("The active object is not a Gaussian-splat object")
        return False
    return True


class SplatImport(ImportHelper, SplatSettings, bpy.types.Operator):  # type: ignore[misc]  # stub mismatch
    """What the import operators share (never registered itself: Blender registers no subclass of a
    registered operator)."""

    bl_label = "Import Gaussian Splats"
    bl_options = {"REGISTER", "UNDO", "PRESET"}  # noqa: RUF012

    filename_ext = ".ply"
    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE", "HIDDEN"})  # type: ignore[valid-type]
    filter_glob: StringProperty(default=READ_GLOB, options={"HIDDEN"})  # type: ignore[valid-type]

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
        path = bpy.path.abspath(self.filepath)
        name = Path(path).name
        for ext in formats.format_for(path).extensions:
            name = name[: -len(ext)] if name.lower().endswith(ext) else name
        return self.build(context, formats.read_splats(path), name or Path(path).stem)

    def draw(self, context: bpy.types.Context) -> None:
        self.draw_settings(self.layout)


class SHARP_OT_import_splats(SplatImport):
    """Import Gaussian splats (PLY, compressed PLY, SPZ, glTF/GLB, SOG, .splat) as a splat object"""

    bl_idname = "sharp.import_splats"


class SplatExport(ExportHelper, bpy.types.Operator):  # type: ignore[misc]  # stub mismatch
    """What the export operators share (never registered itself)."""

    bl_label = "Export Gaussian Splats"
    bl_options = {"REGISTER"}  # noqa: RUF012

    filename_ext: StringProperty(default=".ply", options={"HIDDEN"})  # type: ignore[valid-type]
    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE", "HIDDEN"})  # type: ignore[valid-type]
    filter_glob: StringProperty(default=READ_GLOB, options={"HIDDEN"})  # type: ignore[valid-type]
    file_format: EnumProperty(name="Format", items=FORMAT_ITEMS, default="AUTO")  # type: ignore[valid-type]
    # plain 3DGS by default: many viewers reject ml-sharp's extra elements
    layout: EnumProperty(name="PLY Layout", items=LAYOUT_ITEMS, default="3DGS")  # type: ignore[valid-type]
    spz_version: EnumProperty(name="SPZ Version", items=SPZ_VERSION_ITEMS, default="3")  # type: ignore[valid-type]
    world_space: BoolProperty(  # type: ignore[valid-type]
        name="World Space", default=True,
        description="Apply the object's transform (location, rotation, scale; SH colour turns with it), so other "
        "tools show the splats where the viewport does. Off: the splats' own photo-frame coordinates")
    apply_filters: BoolProperty(  # type: ignore[valid-type]
        name="Apply Modifier Filters", default=True,
        description="Export only what the SHARP Splats modifier shows (opacity threshold, keep fraction, layers, "
        "crop box) at its Splat Size. Off: every splat the object holds")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_splat_object(cls, context)

    def target_format(self) -> formats.SplatFormat:
        if self.file_format != "AUTO":
            return formats.format_named(self.file_format)
        try:
            return formats.format_for(self.filepath)
        except formats.SplatFileError:
            return formats.FORMATS[0]

    def check(self, context: bpy.types.Context) -> bool:
        self.filename_ext = self.target_format().extension
        return bool(super().check(context))

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
        obj = context.active_object
        assert obj is not None, "poll() makes sure"
        if not self.filepath.strip():
            raise OutputError.about(obj.name, "no file name given to export to; choose where to save its splats",
                                    subject="object")
        fmt = formats.format_for(self.filepath, None if self.file_format == "AUTO" else self.file_format)
        g = exported_gaussians(obj, self.world_space, self.apply_filters)
        options: dict[str, Any] = {}
        if fmt.name == "ply":
            options["layout"] = self.layout.lower()
            if self.layout == "SHARP" and (g.focal_px is None or g.image_size is None):
                raise OutputError.about(obj.name, "has no photo camera (focal length and size), which the SHARP "
                                        "layout records; export with the 3DGS layout instead", subject="object")
        elif fmt.name == "spz":
            options["version"] = int(self.spz_version)
        path = formats.write_splats(g, bpy.path.abspath(self.filepath), fmt.name, **options)
        for dropped in formats.what_is_dropped(g, fmt):
            self.report({"WARNING"}, f"{fmt.label} does not keep {dropped}")
        self.report({"INFO"}, f"Exported {len(g):,} splats of '{obj.name}' to {path} ({fmt.label})")
        return {"FINISHED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "file_format")
        fmt = self.target_format()
        if fmt.name == "ply":
            layout.prop(self, "layout")
        elif fmt.name == "spz":
            layout.prop(self, "spz_version")
        layout.prop(self, "world_space")
        layout.prop(self, "apply_filters")


class SHARP_OT_export_splats(SplatExport):
    """Export the active splat object (ours or Blender's native splats) as Gaussian splats in any format"""

    bl_idname = "sharp.export_splats"


class SHARP_OT_import_ply(SplatImport):
    """Import Gaussian splats from a PLY file (ml-sharp or 3DGS layout) as a splat object"""

    bl_idname = "sharp.import_ply"  # the first operator's name, kept for scripts
    filter_glob: StringProperty(default="*.ply", options={"HIDDEN"})  # type: ignore[valid-type]


class SHARP_OT_export_ply(SplatExport):
    """Export the active splat object's own splats as a Gaussian-splat PLY file"""

    bl_idname = "sharp.export_ply"  # the first operator's name, kept for scripts: PLY, the object's own data
    file_format: EnumProperty(name="Format", items=FORMAT_ITEMS, default="ply")  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.ply", options={"HIDDEN"})  # type: ignore[valid-type]
    world_space: BoolProperty(name="World Space", default=False)  # type: ignore[valid-type]
    apply_filters: BoolProperty(name="Apply Modifier Filters", default=False)  # type: ignore[valid-type]


class SHARP_OT_export_web_page(bpy.types.Operator):
    """Write a web page that shows the active splat object from its photo's camera: a folder with
    index.html, the scene and a web splat viewer, for any static web host"""

    bl_idname = "sharp.export_web_page"
    bl_label = "Export Splat Web Page"
    bl_options = {"REGISTER"}  # noqa: RUF012

    directory: StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE", "HIDDEN"})  # type: ignore[valid-type]
    apply_filters: BoolProperty(  # type: ignore[valid-type]
        name="Apply Modifier Filters", default=True,
        description="Show only what the SHARP Splats modifier shows (opacity threshold, keep fraction, layers, "
        "crop box); Keep Fraction makes a lighter page")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_splat_object(cls, context)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
        from ..web_page import write_web_page

        obj = context.active_object
        assert obj is not None, "poll() makes sure"
        if not self.directory.strip():
            raise OutputError.about(obj.name, "no folder given for its web page", subject="object")
        g = exported_gaussians(obj, world_space=False, apply_filters=self.apply_filters)
        page = write_web_page(g, bpy.path.abspath(self.directory), title=obj.name)
        self.report({"INFO"}, f"Wrote a web page of {len(g):,} splats of '{obj.name}': {page} (serve its folder "
                    "from a web server; browsers block pages opened as local files from loading the scene)")
        return {"FINISHED"}


classes = (SHARP_OT_import_splats, SHARP_OT_export_splats, SHARP_OT_import_ply, SHARP_OT_export_ply,
           SHARP_OT_export_web_page)
