"""Operators: SHARP from Image (splat files are imported and exported by ``splat_files``).

Thin: each reads its properties, calls one function of the layer below (the worker through
``runner``, ``ply``, ``scene``) and reports. SHARP from Image is a ``LongOperator``: the worker's
job is followed modally from the UI and waited for elsewhere. Errors become reports through
``reports``; nothing touches the scene until a result is complete, and building it is
all-or-nothing, so errors and cancels leave ``bpy.data`` as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .. import dependencies
from ..depth_mesh import DEFAULT_CUT_THRESHOLD, DEFAULT_STEP
from ..errors import CheckpointError, DependencyError, ImageError
from ..files import existing_file
from ..gaussians import Gaussians
from ..image import IMAGE_SUFFIXES
from ..work import Finished, Work
from ..worker import PredictRequest
from . import depth_mesh, remembered, runner, scene
from .addon import get_preferences
from .long_operator import LongOperator
from .preferences import DEVICE_ITEMS, PRECISION_ITEMS
from .properties import TRANSPARENCY_ITEMS
from .reports import Result, reports_errors

IMAGE_GLOB = ";".join(f"*{s}" for s in IMAGE_SUFFIXES)
LAYOUT_ITEMS = [
    ("SHARP", "SHARP (ml-sharp)", "The vertex element plus ml-sharp's camera and image metadata"),
    ("3DGS", "3DGS (INRIA)", "The plain vertex element every Gaussian-splat viewer reads"),
]
OUTPUT_ITEMS = [
    ("SPLATS", "Splats", "Gaussian splats (both of SHARP's depth layers)"),
    ("MESH", "Mesh", "A textured depth mesh of the visible layer: the photo draped over SHARP's depths "
     "(exports to glTF and USD)"),
    ("BOTH", "Both", "The splats and the textured depth mesh, lined up"),
]


class SplatSettings:
    """Properties shared by the operators that build a splat object."""

    create_camera: BoolProperty(  # type: ignore[valid-type]
        name="Camera",
        description="Add the photo's camera, make it the scene camera and set the render size to the photo's",
        default=True,
    )
    transparency: EnumProperty(  # type: ignore[valid-type]
        name="EEVEE Transparency", items=TRANSPARENCY_ITEMS, default="DITHERED",
        description="How EEVEE blends this object's splats (Cycles is always exact); other splat objects keep "
        "theirs. Change it later in the object's properties",
    )
    setup_render: BoolProperty(  # type: ignore[valid-type]
        name="Set Up Render",
        description="Standard view transform (the photo's colours, not tone-mapped) and enough Cycles "
        "transparent bounces for splats",
        default=True,
    )

    def build(self, context: bpy.types.Context, gaussians: Gaussians, name: str) -> Result:
        built = scene.gaussians_to_object(gaussians, name, collection=context.collection,
                                          create_camera=self.create_camera, transparency=self.transparency,
                                          setup_render=self.setup_render)
        self.report({"INFO"}, built.summary())  # type: ignore[attr-defined]
        return {"FINISHED"}

    def draw_settings(self, layout: Any) -> None:
        layout.prop(self, "create_camera")
        layout.prop(self, "transparency")
        layout.prop(self, "setup_render")


class SHARP_OT_from_image(SplatSettings, LongOperator, bpy.types.Operator):
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
    output: EnumProperty(name="Output", items=OUTPUT_ITEMS, default="SPLATS")  # type: ignore[valid-type]
    mesh_step: IntProperty(  # type: ignore[valid-type]
        name="Mesh Step", min=1, max=64, default=DEFAULT_STEP,
        description="The depth mesh's resolution: a vertex at every n-th of SHARP's 768 splats per side",
    )
    mesh_cut: FloatProperty(  # type: ignore[valid-type]
        name="Mesh Cut", min=0.0, max=10.0, default=DEFAULT_CUT_THRESHOLD, subtype="FACTOR", precision=3,
        description="Remove the depth mesh's faces whose corners' depths differ by more than this fraction "
        "(the stretched sheets across depth jumps); 0 keeps flat faces only",
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode to add a splat scene")
            return False
        return True

    @reports_errors
    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        prefs = get_preferences(context)
        for name in ("device", "precision"):
            if not self.properties.is_property_set(name):
                setattr(self, name, getattr(prefs, name))
        self._checkpoint(context)  # fail before the file browser when inference cannot start
        if self.filepath:  # dropped on the viewport: no browser needed
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def start_work(self, context: bpy.types.Context) -> Work:
        """The remembered result (the redo panel changed a display option), or SHARP in the worker."""
        self._request = PredictRequest(image=str(self._image()), checkpoint=str(self._checkpoint(context)),
                                       device=self.device.lower(), precision=self.precision.lower(),
                                       focal_35mm=self.focal_length_35mm or None)
        known = remembered.recall(self._request)
        if known is not None:
            return Finished(known)
        return runner.worker().submit(self._request)

    def work_ended(self, context: bpy.types.Context, work: Work) -> None:
        if not isinstance(work, Finished):
            runner.finished_run()

    def finish_work(self, context: bpy.types.Context, gaussians: Gaussians) -> Result:
        result = self._build_output(context, gaussians)
        remembered.remember(self._request, gaussians)
        return result

    def _build_output(self, context: bpy.types.Context, gaussians: Gaussians) -> Result:
        name = Path(self._request.image).stem
        if self.output == "SPLATS":
            return self.build(context, gaussians, name)
        with scene.all_or_nothing():  # the splats go again when the mesh fails
            frame = None
            if self.output == "BOTH":
                self.build(context, gaussians, name)
                frame = context.active_object.parent if context.active_object else None
            mesh = depth_mesh.depth_mesh_object(gaussians, self._request.image, f"{name} Mesh" if frame else name,
                                                step=self.mesh_step, cut_threshold=self.mesh_cut,
                                                collection=context.collection, parent=frame)
        self.report({"INFO"}, f"Added depth mesh '{mesh.name}': {len(mesh.data.vertices):,} vertices, "
                    f"{len(mesh.data.polygons):,} faces")
        return {"FINISHED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "focal_length_35mm")
        layout.prop(self, "device")
        layout.prop(self, "precision")
        layout.prop(self, "output")
        if self.output != "SPLATS":
            layout.prop(self, "mesh_step")
            layout.prop(self, "mesh_cut")
        self.draw_settings(layout)

    def _checkpoint(self, context: bpy.types.Context) -> Path:
        """The checkpoint to use; ``DependencyError`` / ``CheckpointError`` saying what is missing."""
        torch = runner.torch_status()  # where inference runs: Blender's Python, the GPU runtime or another Python
        if not torch.ok:
            raise DependencyError(torch.message)
        chosen = self.checkpoint or get_preferences(context).checkpoint_path
        path = dependencies.find_checkpoint(bpy.path.abspath(chosen) if chosen else None)
        status = dependencies.checkpoint_status(path)
        if not status.ok or path is None:
            raise CheckpointError(status.message + " (set it in Edit > Preferences > Add-ons > SHARP from Image)",
                                  path=path)
        return path

    def _image(self) -> Path:
        if not self.filepath:
            raise ImageError("No image chosen: pick a photo to convert")
        return existing_file(bpy.path.abspath(self.filepath), ImageError, "an image file")


classes = (SHARP_OT_from_image,)
