"""Operators: SHARP from Image, and Gaussian-splat PLY import / export.

Thin: they gather settings, call the worker (``runner``), ``ply`` and ``splat_object``, and turn
every ``SharpError`` into a report. Nothing touches the scene until a result is complete, and
building it is all-or-nothing, so errors and cancels leave ``bpy.data`` as it was.

SHARP from Image runs two ways (shared/blender/NOTES.md, section 3):
- interactive (invoked from the UI): the worker runs while a modal handler polls it on a timer;
  progress in the status bar, Esc cancels at once (the worker is killed);
- synchronous (background Blender, or ``bpy.ops.sharp.from_image(...)`` from a script): waits
  and returns with the object built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from .. import dependencies
from ..errors import Cancelled, SharpError
from ..image import IMAGE_SUFFIXES
from ..worker import Job
from . import runner, splat_object
from .preferences import DEVICE_ITEMS, PRECISION_ITEMS, get_preferences

IMAGE_GLOB = ";".join(f"*{s}" for s in IMAGE_SUFFIXES)
TRANSPARENCY_ITEMS = [
    ("DITHERED", "Dithered", "EEVEE: order-independent, converges as samples add up (noisy while moving)"),
    ("BLENDED", "Blended", "EEVEE: smooth alpha blending, sorted per splat (slower with many splats)"),
]
LAYOUT_ITEMS = [
    ("SHARP", "SHARP (ml-sharp)", "The vertex element plus ml-sharp's camera and image metadata"),
    ("3DGS", "3DGS (INRIA)", "The plain vertex element every Gaussian-splat viewer reads"),
]
# share of the whole run per stage reported by the worker, for one progress bar
STAGES = {"starting": (0.0, 0.02), "loading": (0.02, 0.1), "prepare": (0.1, 0.12), "encoder": (0.12, 0.7),
          "depth": (0.7, 0.8), "gaussians": (0.8, 0.95), "unproject": (0.95, 1.0), "done": (1.0, 1.0)}
POLL_SECONDS = 0.1

Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


def overall_fraction(stage: str, fraction: float) -> float:
    start, end = STAGES.get(stage, (0.0, 0.0))
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


class SplatSettings:
    """Properties shared by the operators that build a splat object."""

    create_camera: BoolProperty(  # type: ignore[valid-type]
        name="Camera",
        description="Add the photo's camera, make it the scene camera and set the render size to the photo's",
        default=True,
    )
    transparency: EnumProperty(  # type: ignore[valid-type]
        name="EEVEE Transparency", items=TRANSPARENCY_ITEMS, default="DITHERED",
        description="How EEVEE blends the splats (Cycles is always exact)",
    )
    setup_render: BoolProperty(  # type: ignore[valid-type]
        name="Set Up Render",
        description="Standard view transform (the photo's colours, not tone-mapped) and enough Cycles "
        "transparent bounces for splats",
        default=True,
    )

    def build(self, context: bpy.types.Context, gaussians: Any, name: str) -> bpy.types.Object:
        obj = splat_object.gaussians_to_object(
            gaussians, name, collection=context.collection, create_camera=self.create_camera,
            transparency=self.transparency, setup_render=False,
        )
        scene = context.scene
        assert scene is not None, "operators run in a scene"
        changed = splat_object.setup_scene_for_splats(scene) if self.setup_render else []
        camera = " with its camera" if obj.parent and any(c.type == "CAMERA" for c in obj.parent.children) else ""
        self.report({"INFO"}, f"Added '{obj.name}'{camera}: {len(gaussians):,} splats"  # type: ignore[attr-defined]
                    + (f" (set {'; '.join(changed)})" if changed else ""))
        return obj

    def draw_settings(self, layout: Any) -> None:
        layout.prop(self, "create_camera")
        layout.prop(self, "transparency")
        layout.prop(self, "setup_render")


class SHARP_OT_from_image(SplatSettings, bpy.types.Operator):
    """Turn a photo into a 3D Gaussian-splat scene with Apple's SHARP, seen through the photo's camera"""

    bl_idname = "sharp.from_image"
    bl_label = "SHARP from Image"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 - Blender reads it as a class attribute

    filepath: StringProperty(  # type: ignore[valid-type]
        name="Image", subtype="FILE_PATH", options={"SKIP_SAVE"}, description="The photo to convert",
    )
    filter_glob: StringProperty(default=IMAGE_GLOB, options={"HIDDEN"})  # type: ignore[valid-type]
    focal_length_35mm: FloatProperty(  # type: ignore[valid-type]
        name="Focal Length (35 mm)", min=0.0, max=2000.0, default=0.0, unit="CAMERA",
        description="The photo's focal length as a 35 mm equivalent; 0 reads it from the EXIF data "
        "(30 mm when the photo has none)",
    )
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="AUTO")  # type: ignore[valid-type]
    precision: EnumProperty(name="Precision", items=PRECISION_ITEMS, default="AUTO")  # type: ignore[valid-type]
    checkpoint: StringProperty(  # type: ignore[valid-type]
        name="Checkpoint", subtype="FILE_PATH", default="",
        description="SHARP weights to use; empty: the one set in the add-on preferences",
    )

    _job: Job | None = None
    _timer: Any = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode to add a splat scene")
            return False
        return True

    # ---- entry points -------------------------------------------------------------------------

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        prefs = get_preferences(context)
        for name in ("device", "precision"):
            if not self.properties.is_property_set(name):
                setattr(self, name, getattr(prefs, name))
        problem = self._missing(context)
        if problem:
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        if self.filepath:  # dropped on the viewport: no browser needed
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        problem = self._missing(context) or self._bad_image()
        if problem:
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        job = Job(image=str(Path(bpy.path.abspath(self.filepath))), checkpoint=str(self._checkpoint(context)),
                  device=self.device.lower(), precision=self.precision.lower(),
                  focal_35mm=self.focal_length_35mm or None)
        remembered = runner.recall(job)
        if remembered is not None:  # the redo panel changed only how it is shown
            return self._build_or_report(context, remembered, job)
        if bpy.app.background or not self.options.is_invoke:
            return self._run_blocking(context, job)
        return self._start_modal(context, job)

    def _build_or_report(self, context: bpy.types.Context, gaussians: Any, job: Job) -> Result:
        try:
            self.build(context, gaussians, Path(job.image).stem)
        except SharpError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        runner.remember(job, gaussians)
        return {"FINISHED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "focal_length_35mm")
        layout.prop(self, "device")
        layout.prop(self, "precision")
        self.draw_settings(layout)

    # ---- checks -------------------------------------------------------------------------------

    def _checkpoint(self, context: bpy.types.Context) -> Path | None:
        chosen = self.checkpoint or get_preferences(context).checkpoint_path
        return dependencies.find_checkpoint(bpy.path.abspath(chosen) if chosen else None)

    def _missing(self, context: bpy.types.Context) -> str | None:
        """What stops inference from starting, as advice; None when all is there."""
        torch = dependencies.torch_status()
        if not torch.ok:
            return torch.message
        status = dependencies.checkpoint_status(self._checkpoint(context))
        if not status.ok:
            return status.message + " (set it in Edit > Preferences > Add-ons > SHARP from Image)"
        return None

    def _bad_image(self) -> str | None:
        if not self.filepath:
            return "No image chosen: pick a photo to convert"
        path = Path(bpy.path.abspath(self.filepath))
        if not path.is_file():
            return f"Image not found: {path}"
        return None

    # ---- synchronous ---------------------------------------------------------------------------

    def _run_blocking(self, context: bpy.types.Context, job: Job) -> Result:
        try:
            gaussians = runner.worker().run(job)
        except SharpError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        finally:
            runner.finished_run(get_preferences(context).keep_loaded)
        return self._build_or_report(context, gaussians, job)

    # ---- interactive ---------------------------------------------------------------------------

    def _start_modal(self, context: bpy.types.Context, job: Job) -> Result:
        try:
            self._job = runner.worker().submit(job)
        except SharpError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_SECONDS, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        self._status(context, "starting")
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        if event.type == "ESC":
            runner.worker().cancel()
            self._finish(context)
            self.report({"INFO"}, "SHARP cancelled: nothing was added")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        job = runner.worker().poll()
        if job is None or job is not self._job:
            self._finish(context)
            return {"CANCELLED"}
        if not job.finished:
            context.window_manager.progress_update(int(100 * overall_fraction(job.stage, job.fraction)))
            self._status(context, job.stage, job.fraction)
            return {"PASS_THROUGH"}
        self._finish(context)
        if job.error is not None:
            self.report({"INFO"} if isinstance(job.error, Cancelled) else {"ERROR"}, str(job.error))
            return {"CANCELLED"}
        return self._build_or_report(context, job.result, job)

    def _status(self, context: bpy.types.Context, stage: str, fraction: float = 0.0) -> None:
        if context.workspace is not None:
            context.workspace.status_text_set(
                f"SHARP: {stage} {100 * overall_fraction(stage, fraction):.0f}%   Esc: cancel")

    def _finish(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        runner.finished_run(get_preferences(context).keep_loaded)


class SHARP_OT_import_ply(ImportHelper, SplatSettings, bpy.types.Operator):  # type: ignore[misc]  # stub mismatch
    """Import Gaussian splats from a PLY file (ml-sharp or 3DGS layout) as a splat object"""

    bl_idname = "sharp.import_ply"
    bl_label = "Import Gaussian Splats"
    bl_options = {"REGISTER", "UNDO", "PRESET"}  # noqa: RUF012

    filename_ext = ".ply"
    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE", "HIDDEN"})  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.ply", options={"HIDDEN"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> Result:
        from ..ply import read_ply

        try:
            gaussians = read_ply(self.filepath)
            self.build(context, gaussians, Path(self.filepath).stem)
        except SharpError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}

    def draw(self, context: bpy.types.Context) -> None:
        self.draw_settings(self.layout)


class SHARP_OT_export_ply(ExportHelper, bpy.types.Operator):  # type: ignore[misc]  # stub mismatch
    """Export the active splat object as a Gaussian-splat PLY file"""

    bl_idname = "sharp.export_ply"
    bl_label = "Export Gaussian Splats"
    bl_options = {"REGISTER"}  # noqa: RUF012

    filename_ext = ".ply"
    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE", "HIDDEN"})  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.ply", options={"HIDDEN"})  # type: ignore[valid-type]
    layout: EnumProperty(name="Layout", items=LAYOUT_ITEMS, default="SHARP")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not splat_object.is_splat_object(context.active_object):
            cls.poll_message_set("The active object is not a Gaussian-splat object")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> Result:
        from ..ply import write_ply

        obj = context.active_object
        assert obj is not None, "poll() makes sure"
        try:
            gaussians = splat_object.object_to_gaussians(obj)
            path = write_ply(gaussians, bpy.path.abspath(self.filepath), layout=self.layout.lower())
        except SharpError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        except OSError as e:
            self.report({"ERROR"}, f"Cannot write '{self.filepath}': {e.strerror or e}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {len(gaussians):,} splats of '{obj.name}' to {path}")
        return {"FINISHED"}


classes = (SHARP_OT_from_image, SHARP_OT_import_ply, SHARP_OT_export_ply)
