"""Render Splats (Exact): the exact 3DGS renderer seen through a Blender camera (issue 11).

The splats are rendered by ``render.render_gaussians`` in the worker process (where torch is:
Blender's own Python may have none), through the scene camera expressed in the splat object's data
frame (``cameras.camera_from_blender``), for the current frame or the animation range. What is
rendered is ``scene.object_to_gaussians``: the object's splats as stored, without the SHARP
modifier's display filters (opacity threshold, keep fraction, layers, crop), since no function
applies those outside the node tree yet (Export writes the stored splats too).

Results: the float image "SHARP Exact Render" (linear, premultiplied as Blender keeps float
images, rows bottom-up), and for an animation (or ``write_files``) one file per frame at the scene's output
path in its output format, saved as Blender saves renders (its colour management), each written
whole under its name (``batch.atomic_output``). An error or a cancel removes the files this run
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

from ..batch import atomic_output
from ..errors import Cancelled, OutputError, SharpError
from ..files import path_kind
from ..worker import RenderJob
from . import jobs, runner, scene
from .cameras import camera_from_blender, splat_scale
from .preferences import get_preferences
from .reports import Result, report_error, reports_errors

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
        kind = path_kind(folder)
        if kind != "folder":
            why = "no such folder" if kind == "missing" else f"is a {kind}, not a folder"
            raise OutputError.about(folder, f"{why}: set an existing folder as the output path", subject="folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError.about(folder, "cannot be written (no permission)", subject="folder")
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
    """One render: its worker job, and the frames' files written as the worker finishes them.

    Files go to ``outputs`` (one per frame, or None for none); ``abandon`` removes those written."""

    def __init__(self, bl_scene: bpy.types.Scene, splat_obj: bpy.types.Object, camera_obj: bpy.types.Object | None,
                 frames: Sequence[int], outputs: Sequence[os.PathLike[str] | str] | None = None,
                 device: str = "cpu", eps2d: float = 0.0) -> None:
        if not frames:
            raise SharpError("No frames to render")
        if outputs is not None and len(outputs) != len(frames):
            raise SharpError(f"{len(frames)} frames to render but {len(outputs)} output files")
        self.scene, self.frames = bl_scene, list(frames)
        self.outputs = None if outputs is None else [Path(p) for p in outputs]
        gaussians = scene.shown_gaussians(splat_obj)
        scale = splat_scale(splat_obj)
        if abs(scale - 1.0) > 1e-7:
            gaussians = gaussians.transformed(np.eye(3), scale=scale)
        cameras = cameras_for_frames(bl_scene, splat_obj, camera_obj, self.frames)
        self.job = RenderJob(gaussians, cameras, device=device, eps2d=eps2d, on_frame=self._save_frame)
        self.written: list[Path] = []
        self.save_error: SharpError | None = None
        self._scratch: bpy.types.Image | None = None

    def _save_frame(self, index: int, path: Path) -> None:
        """A frame is complete: write its file (in poll, on Blender's main thread)."""
        if self.outputs is None or self.save_error is not None:
            return
        try:
            premultiplied = np.load(path, allow_pickle=False)
            height, width = premultiplied.shape[:2]
            if self._scratch is None:
                self._scratch = new_float_image(SCRATCH_IMAGE_NAME, width, height)
            fill_image(self._scratch, premultiplied)
            final = self.outputs[index]
            with atomic_output(final) as tmp:
                try:
                    self._scratch.save_render(str(tmp), scene=self.scene)
                except RuntimeError as e:
                    raise OutputError.about(final, f"cannot be saved ({e})") from None
            self.written.append(final)
        except (OSError, ValueError) as e:
            self.save_error = OutputError.about(path, f"frame {self.frames[index]} cannot be read back ({e})")
        except SharpError as e:
            self.save_error = e
        if self.save_error is not None:
            runner.worker().cancel()

    def done(self) -> None:
        """After the job ended (whatever the outcome): no scratch image left."""
        if self._scratch is not None:
            bpy.data.images.remove(self._scratch)
            self._scratch = None

    def abandon(self) -> None:
        """An error or a cancel: the files this run wrote go."""
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()
        self.done()

    def outcome_error(self) -> SharpError | None:
        """Why the finished job gives no images (a save error wins over the cancel it caused)."""
        return self.save_error or self.job.error


def render_exact(bl_scene: bpy.types.Scene, splat_obj: bpy.types.Object, camera_obj: bpy.types.Object | None,
                 frames: Sequence[int], outputs: Sequence[os.PathLike[str] | str] | None = None,
                 progress: Callable[[str, float], None] | None = None, cancel: Callable[[], bool] | None = None,
                 device: str | None = None, eps2d: float = 0.0) -> list[np.ndarray]:
    """Render ``splat_obj`` exactly through ``camera_obj`` at each of ``frames`` (synchronous).

    Returns each frame's (H, W, 4) float32 linear premultiplied RGBA, top row first; with
    ``outputs`` also writes each frame's image file as the scene's output format says. Raises
    ``SharpError`` (``Cancelled`` when ``cancel()`` said so), with no file of this run left.
    """
    plan = ExactRender(bl_scene, splat_obj, camera_obj, frames, outputs,
                       device=device or preferred_device(bpy.context), eps2d=eps2d)
    return run_blocking(plan, progress, cancel)


def run_blocking(plan: ExactRender, progress: Callable[[str, float], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> list[np.ndarray]:
    """Run ``plan`` in the worker and wait; on any failure no file of it is left."""
    try:
        images: list[np.ndarray] = runner.worker().run(plan.job, progress=progress, cancel=cancel)
    except SharpError as e:
        plan.abandon()
        raise plan.save_error or e from None
    finally:
        runner.finished_run(keep_loaded(bpy.context))
    if plan.save_error is not None:
        plan.abandon()
        raise plan.save_error
    plan.done()
    return images


def preferred_device(context: Any) -> str:
    try:
        return str(get_preferences(context).device).lower()
    except (KeyError, AttributeError):
        return "auto"


def keep_loaded(context: Any) -> bool:
    try:
        return bool(get_preferences(context).keep_loaded)
    except (KeyError, AttributeError):
        return True


# ---- the operator -------------------------------------------------------------------------------


class ModalRender(jobs.ModalFollower):
    """An exact render followed modally: frames are saved as they come, the image built at the end."""

    def __init__(self, operator: Any, plan: ExactRender) -> None:
        super().__init__(operator)
        self.plan = plan
        self._cancelled = False

    def start(self, context: bpy.types.Context) -> Result:
        try:
            runner.worker().submit(self.plan.job)
        except SharpError as e:
            self.plan.abandon()
            return report_error(self.operator, e)
        return super().start(context)

    def poll(self) -> bool:
        job = runner.worker().poll()
        return self._cancelled or job is not self.plan.job or self.plan.job.finished

    def fraction(self) -> float:
        return self.plan.job.fraction

    def status(self) -> str:
        job, count = self.plan.job, len(self.plan.frames)
        frame = min(len(job.frames_done) + 1, count)
        how = f" ({job.detail})" if job.detail else ""
        return f"Exact render: frame {frame}/{count} {100 * job.fraction:.0f}%{how}"

    def cancel(self) -> None:
        runner.worker().cancel()
        self._cancelled = True

    def end(self, context: bpy.types.Context) -> None:
        super().end(context)
        runner.finished_run(keep_loaded(context))

    def conclude(self, context: bpy.types.Context) -> Result:
        plan = self.plan
        if plan.save_error is not None:
            plan.abandon()
            return report_error(self.operator, plan.save_error)
        if self._cancelled:
            plan.abandon()
            return report_error(self.operator, Cancelled("Exact render cancelled: no files were left"))
        if plan.job.error is not None or plan.job.result is None:
            plan.abandon()
            return report_error(self.operator, plan.job.error or Cancelled("Exact render stopped"))
        plan.done()
        return finish(self.operator, context, plan, plan.job.result)


def finish(operator: Any, context: Any, plan: ExactRender, images: list[np.ndarray]) -> Result:
    """Show the last frame's image and say what was made."""
    image = show_image(context, images[-1])
    files = f"; {len(plan.written)} file{'s' if len(plan.written) != 1 else ''} in {plan.written[0].parent}" \
        if plan.written else ""
    operator.report({"INFO"}, f"Rendered {len(images)} frame{'s' if len(images) != 1 else ''} exactly into "
                    f"'{image.name}'{files}")
    return {"FINISHED"}


class SHARP_OT_render_exact(bpy.types.Operator):
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
    modal_render: ModalRender | None = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if context.scene is None:
            return False
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode to render splats")
            return False
        return True

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
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
        plan = ExactRender(bl_scene, splat_obj, bl_scene.camera, frames, outputs,
                           device=preferred_device(context))
        if bpy.app.background or not self.options.is_invoke:
            images = run_blocking(plan)
            return finish(self, context, plan, images)
        self.modal_render = ModalRender(self, plan)
        return self.modal_render.start(context)

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        assert self.modal_render is not None, "modal() runs only after execute started a modal render"
        return self.modal_render.handle(context, event.type)


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
