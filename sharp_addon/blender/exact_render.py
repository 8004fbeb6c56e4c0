"""Render Splats (Exact): the exact 3DGS renderer seen through a Blender camera.

The splats are rendered by ``render.render_gaussians`` in the worker process (where torch is:
Blender's own Python may have none), through the scene camera expressed in the splat object's data
frame (``cameras.camera_from_blender``), for the current frame or the animation range. What is
rendered is what the SHARP Splats modifier shows (``scene.shown_gaussians``: opacity threshold,
keep fraction, layers, crop box, Splat Size). The render is followed like all long work
(``long_operator``): modally from the UI, synchronously from scripts (``render_exact``).

Results: the float image "SHARP Exact Render" (linear, premultiplied as Blender keeps float
images, rows bottom-up), and for an animation (or ``write_files``) one file per frame at the scene's output
path in its output format, saved as Blender saves renders (its colour management), each written
whole under its name (``files.atomic_output``). An error or a cancel removes the files this run
wrote and leaves the scene's image, frame and data as they were.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from bpy.props import BoolProperty

from ..errors import Cancelled, OutputError, SharpError
from ..files import atomic_output, writable_folder
from ..work import Work, wait
from ..worker import RenderRequest, WorkerJob
from . import runner, scene
from .addon import preference
from .cameras import camera_from_blender, splat_scale
from .long_operator import LongOperator
from .reports import Result

IMAGE_NAME = "SHARP Exact Render"
SCRATCH_IMAGE_NAME = "SHARP Exact Render (saving)"


# ---- images -----------------------------------------------------------------------------------


def rows_bottom_up(premultiplied: np.ndarray) -> np.ndarray:
    """The renderer's (H, W, 4) premultiplied RGBA, top row first, as a Blender float image holds it:
    rows bottom-up and premultiplied (Blender keeps float buffers premultiplied and divides by alpha
    when it saves a straight-alpha file such as PNG; straight values would come out too bright
    wherever a splat is translucent)."""
    return np.ascontiguousarray(premultiplied[::-1], dtype=np.float32)


def fill_image(image: bpy.types.Image, premultiplied: np.ndarray) -> None:
    height, width = premultiplied.shape[:2]
    if tuple(image.size) != (width, height):  # type: ignore[arg-type]
        image.scale(width, height)
    image.pixels.foreach_set(rows_bottom_up(premultiplied).ravel())  # type: ignore[arg-type]
    image.update()


def new_float_image(name: str, width: int, height: int) -> bpy.types.Image:
    image = bpy.data.images.new(name, width, height, alpha=True, float_buffer=True)
    image.alpha_mode = "PREMUL"
    return image


def show_image(context: Any, premultiplied: np.ndarray) -> bpy.types.Image:
    """The result image (made or reused), shown in every open Image Editor."""
    height, width = premultiplied.shape[:2]
    image = bpy.data.images.get(IMAGE_NAME) or new_float_image(IMAGE_NAME, width, height)
    fill_image(image, premultiplied)
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen is not None else ():
        if area.type == "IMAGE_EDITOR":
            area.spaces.active.image = image
    return image


# ---- what to render -----------------------------------------------------------------------------


def splat_object_to_render(context: Any) -> bpy.types.Object:
    """The active splat object, else the only splat object in the scene; ``SharpError`` otherwise."""
    active = context.active_object
    if scene.is_splat_object(active):
        return active
    found = [obj for obj in context.scene.objects if scene.is_splat_object(obj)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SharpError(f"Scene '{context.scene.name}' has no splat object to render")
    raise SharpError(f"Scene '{context.scene.name}' has {len(found)} splat objects: make the one to render active")


def frame_outputs(bl_scene: bpy.types.Scene, frames: Sequence[int]) -> list[Path]:
    """The scene's output file of each frame; ``OutputError`` when a folder cannot take them."""
    paths = [Path(bpy.path.abspath(bl_scene.render.frame_path(frame=frame))) for frame in frames]
    for folder in sorted({p.parent for p in paths}):
        writable_folder(folder, "set an existing folder you can write to as the output path")
    return paths


def cameras_for_frames(bl_scene: bpy.types.Scene, splat_obj: bpy.types.Object, camera_obj: bpy.types.Object | None,
                       frames: Sequence[int]) -> list[Any]:
    """The camera of each frame (the scene is stepped through them and set back)."""
    current, subframe = bl_scene.frame_current, bl_scene.frame_subframe
    try:
        cameras = []
        for frame in frames:
            if frame != bl_scene.frame_current:
                bl_scene.frame_set(frame)
            cameras.append(camera_from_blender(camera_obj, bl_scene, splat_obj))
        return cameras
    finally:
        if (bl_scene.frame_current, bl_scene.frame_subframe) != (current, subframe):
            bl_scene.frame_set(current, subframe=subframe)


class ExactRender:
    """One exact render followed as work (``work.Work``): the worker's job, and each frame's file
    written as the worker finishes it. ``start`` submits it; ``end`` (after it ended, whatever the
    outcome) removes the scratch image, the files of a failed or cancelled render, and lets the
    worker go unless *Keep Model Loaded*."""

    def __init__(self, bl_scene: bpy.types.Scene, splat_obj: bpy.types.Object, camera_obj: bpy.types.Object | None,
                 frames: Sequence[int], outputs: Sequence[os.PathLike[str] | str] | None = None,
                 device: str = "cpu", eps2d: float = 0.0, progress: Callable[[str, float], None] | None = None,
                 keep_images: bool = True) -> None:
        if not frames:
            raise SharpError("No frames to render")
        if outputs is not None and len(outputs) != len(frames):
            raise SharpError(f"{len(frames)} frames to render but {len(outputs)} output files")
        self.scene_name, self.frames = bl_scene.name, list(frames)  # by name: an undo makes a new scene
        self.outputs = None if outputs is None else [Path(p) for p in outputs]
        gaussians = scene.shown_gaussians(splat_obj)
        scale = splat_scale(splat_obj)
        if abs(scale - 1.0) > 1e-7:
            gaussians = gaussians.transformed(np.eye(3), scale=scale)
        cameras = cameras_for_frames(bl_scene, splat_obj, camera_obj, self.frames)
        self.request = RenderRequest(gaussians, cameras, device=device, eps2d=eps2d, keep_images=keep_images)
        self.progress = progress
        self.job: WorkerJob | None = None
        self.written: list[Path] = []
        self.save_error: SharpError | None = None
        self._cancelled = False
        self._scratch: str | None = None  # the image frames are saved through, by name (undo)

    def start(self) -> ExactRender:
        self.job = runner.worker().submit(self.request, on_progress=self.progress, on_frame=self._save_frame)
        return self

    # ---- followed as work -----------------------------------------------------------------------

    @property
    def error(self) -> SharpError | None:
        """Why the render gives no images (a save error wins over the cancel it caused)."""
        if self.save_error is not None:
            return self.save_error
        if self._cancelled:
            return Cancelled("Exact render cancelled: no files were left")
        return self.job.error if self.job is not None else None

    @property
    def result(self) -> list[np.ndarray] | None:
        return self.job.result if self.job is not None and self.error is None else None

    @property
    def fraction(self) -> float:
        return self.job.fraction if self.job is not None else 0.0

    def poll(self) -> bool:
        assert self.job is not None, "start() first"
        return self.job.poll()

    def status_text(self) -> str:
        return self.job.status_text() if self.job is not None else "Exact render: starting"

    def cancel(self) -> None:
        if self.job is not None and not self.job.finished:
            self._cancelled = True
            self.job.cancel()

    def end(self) -> None:
        """After the job ended: no scratch image, no file of a failed render; the worker as the user keeps it."""
        if self.error is not None:
            for path in self.written:
                path.unlink(missing_ok=True)
            self.written.clear()
        scratch = bpy.data.images.get(self._scratch) if self._scratch is not None else None
        if scratch is not None:
            bpy.data.images.remove(scratch)
        self._scratch = None
        runner.finished_run()

    def _save_frame(self, index: int, path: Path) -> None:
        """A frame is complete: write its file (in poll, on Blender's main thread)."""
        if self.outputs is None or self.save_error is not None:
            return
        final = self.outputs[index]
        try:
            premultiplied = np.load(path, allow_pickle=False)
            height, width = premultiplied.shape[:2]
            scene = bpy.data.scenes.get(self.scene_name)
            if scene is None:
                raise OutputError.about(final, f"cannot be saved: scene '{self.scene_name}' is gone (deleted or "
                                        "undone)")
            image = bpy.data.images.get(self._scratch) if self._scratch is not None else None
            if image is None:
                image = new_float_image(SCRATCH_IMAGE_NAME, width, height)
                self._scratch = image.name
            fill_image(image, premultiplied)
            with atomic_output(final) as tmp:
                try:
                    image.save_render(str(tmp), scene=scene)
                except RuntimeError as e:
                    raise OutputError.about(final, f"cannot be saved ({e})") from None
            self.written.append(final)
        except (OSError, ValueError) as e:
            self.save_error = OutputError.about(path, f"frame {self.frames[index]} cannot be read back ({e})")
        except SharpError as e:
            self.save_error = e
        if self.save_error is not None and self.job is not None:
            self.job.cancel()


def render_exact(bl_scene: bpy.types.Scene, splat_obj: bpy.types.Object, camera_obj: bpy.types.Object | None,
                 frames: Sequence[int], outputs: Sequence[os.PathLike[str] | str] | None = None,
                 progress: Callable[[str, float], None] | None = None, cancel: Callable[[], bool] | None = None,
                 device: str | None = None, eps2d: float = 0.0) -> list[np.ndarray]:
    """Render ``splat_obj`` exactly through ``camera_obj`` at each of ``frames`` (synchronous).

    Returns each frame's (H, W, 4) float32 linear premultiplied RGBA, top row first; with
    ``outputs`` also writes each frame's image file as the scene's output format says. Raises
    ``SharpError`` (``Cancelled`` when ``cancel()`` said so), with no file of this run left.
    """
    plan = ExactRender(bl_scene, splat_obj, camera_obj, frames, outputs, device=device or preferred_device(),
                       eps2d=eps2d, progress=progress).start()
    try:
        images: list[np.ndarray] = wait(plan, cancel=cancel)
    finally:
        plan.end()
    return images


def preferred_device() -> str:
    return str(preference("device", "AUTO")).lower()


# ---- the operator -------------------------------------------------------------------------------


def report_rendered(operator: Any, context: Any, plan: ExactRender, images: list[np.ndarray]) -> Result:
    """Show the last frame's image and say what was made."""
    image = show_image(context, images[-1])
    files = f"; {len(plan.written)} file{'s' if len(plan.written) != 1 else ''} in {plan.written[0].parent}" \
        if plan.written else ""
    count = len(plan.frames)
    operator.report({"INFO"}, f"Rendered {count} frame{'s' if count != 1 else ''} exactly into '{image.name}'{files}")
    return {"FINISHED"}


class SHARP_OT_render_exact(LongOperator, bpy.types.Operator):
    """Render the splat object through the scene camera with the exact 3D Gaussian-splatting renderer"""

    bl_idname = "sharp.render_exact"
    bl_label = "Render Splats (Exact)"
    bl_options = {"REGISTER"}  # noqa: RUF012 - Blender reads it as a class attribute

    animation: BoolProperty(  # type: ignore[valid-type]
        name="Animation", default=False,
        description="Render every frame of the scene's frame range to files at its output path",
    )
    write_files: BoolProperty(  # type: ignore[valid-type]
        name="Write Files", default=False,
        description="Also save the frame to the scene's output path, in its output format",
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if context.scene is None:
            return False
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode to render splats")
            return False
        return True

    def start_work(self, context: bpy.types.Context) -> Work:
        bl_scene = context.scene
        assert bl_scene is not None, "poll() makes sure"
        splat_obj = splat_object_to_render(context)
        if self.animation:
            frames = list(range(bl_scene.frame_start, bl_scene.frame_end + 1, max(1, bl_scene.frame_step)))
        else:
            frames = [bl_scene.frame_current]
        if bl_scene.camera is None:
            raise SharpError(f"Scene '{bl_scene.name}' has no camera to render through; add one and make it the "
                             "scene camera")
        outputs = frame_outputs(bl_scene, frames) if self.animation or self.write_files else None
        # the operator shows the last frame and writes the others as they come: it keeps no other in memory
        self._plan = ExactRender(bl_scene, splat_obj, bl_scene.camera, frames, outputs, device=preferred_device(),
                                 keep_images=False)
        return self._plan.start()

    def work_ended(self, context: bpy.types.Context, work: Work) -> None:
        self._plan.end()

    def finish_work(self, context: bpy.types.Context, images: list[np.ndarray]) -> Result:
        return report_rendered(self, context, self._plan, images)


classes: tuple[type, ...] = (SHARP_OT_render_exact,)


def draw_render_menu(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    layout = self.layout
    layout.separator()
    layout.operator_context = "INVOKE_DEFAULT"
    layout.operator(SHARP_OT_render_exact.bl_idname, text="Render Splats (Exact)", icon="RENDER_STILL")
    layout.operator(SHARP_OT_render_exact.bl_idname, text="Render Splat Animation (Exact)",
                    icon="RENDER_ANIMATION").animation = True


def draw_panel_button(self: bpy.types.Panel, context: bpy.types.Context) -> None:
    self.layout.operator(SHARP_OT_render_exact.bl_idname, text="Render Splats (Exact)", icon="RENDER_STILL")


def _hooks() -> list[tuple[Any, Callable[..., None]]]:
    """(menu or panel, draw function) pairs: the Render menu, and the object's SHARP Splats panel."""
    found: list[tuple[Any, Callable[..., None]]] = [(bpy.types.TOPBAR_MT_render, draw_render_menu)]
    panel = getattr(bpy.types, "SHARP_PT_splat_object", None)  # ui.py's; registered before the features
    if panel is not None:
        found.append((panel, draw_panel_button))
    return found


def register() -> None:
    """Menus and other hooks beyond the classes (called after the classes are registered)."""
    for owner, draw in _hooks():
        owner.append(draw)


def unregister() -> None:
    """Undo register."""
    for owner, draw in _hooks():
        owner.remove(draw)
