"""SHARP camera moves: animated copies of the matched camera and their renders.

``add_camera_move`` keyframes a copy of a splat object's photo camera along a preset of
``camera_moves`` (the core sizes it by the scene's depth); ``render_camera_move`` renders the
scene camera's animation with the scene's engine to PNG frames and/or an H.264 MP4 written by
Blender's own FFmpeg output. Frames render one at a time into a scratch folder beside the
outputs, so Esc (or any failure) leaves no partial output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from .. import camera_moves as moves
from ..errors import CameraMoveError, OutputError
from ..files import path_kind
from ..work import Steps, Work
from . import exact_render, reports
from . import scene as splat_scene
from .long_operator import LongOperator
from .photo_camera import PHOTO_CAMERA_OF

MOVE_OF = "sharp_camera_move_of"  # on a move camera: the name of the splat object it moves through
FLIP = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV camera axes <-> Blender camera axes
FRAME_NAME = "frame_{:04d}.png"
EDGES_NOTE = "Sideways moves show the photo's edges (the splats end at its frame); keep the amplitude small"


def matched_camera(splat_obj: bpy.types.Object) -> bpy.types.Object:
    """The photo camera ``gaussians_to_object`` made for ``splat_obj``: the camera that names it as its
    splat object (renamed or moved, it still does); in files from before that mark, a camera beside
    it under its photo frame that is not a move (the one named "<name> Camera" first)."""
    if not splat_scene.is_splat_object(splat_obj):
        raise CameraMoveError.about(getattr(splat_obj, "name", "(none)"), "is not a SHARP splat object")
    marked = [o for o in bpy.data.objects if o.type == "CAMERA" and o.get(PHOTO_CAMERA_OF) == splat_obj
              and MOVE_OF not in o.keys()]
    if marked:
        return marked[0]
    frame = splat_obj.parent
    candidates = [o for o in (frame.children if frame is not None else ())
                  if o.type == "CAMERA" and MOVE_OF not in o.keys()]
    candidates.sort(key=lambda o: o.name != f"{splat_obj.name} Camera")
    if not candidates:
        raise CameraMoveError.about(splat_obj.name, "has no photo camera beside it under its photo frame "
                                    "(SHARP from Image makes one when the photo's focal length is known)")
    return candidates[0]


def add_camera_move(splat_obj: bpy.types.Object, preset: str = "DOLLY_IN", frames: int = 48,
                    amplitude: float = 1.0, easing: str = "EASE_IN_OUT", loop: bool = False,
                    scene: bpy.types.Scene | None = None) -> bpy.types.Object:
    """A keyframed copy of ``splat_obj``'s photo camera along ``preset`` (frames 1..``frames``), made the
    scene camera, with the scene's frame range set; replaces an earlier move of the same object.
    Raises ``CameraMoveError`` (or ``CameraError`` for bad move arguments) with nothing changed."""
    scene = scene or bpy.context.scene
    camera = matched_camera(splat_obj)
    g = splat_scene.object_to_gaussians(splat_obj)
    poses = moves.camera_path(preset, frames, moves.scene_depths(g.means, g.opacities), amplitude, easing, loop)
    start = np.array(camera.matrix_basis)
    for old in [o for o in splat_obj.parent.children if o.get(MOVE_OF) == splat_obj.name]:
        _remove(old)
    move = bpy.data.objects.new(f"{splat_obj.name} Move", camera.data.copy())
    move[MOVE_OF] = splat_obj.name
    move.parent = splat_obj.parent
    move.rotation_mode = "QUATERNION"
    for collection in camera.users_collection:
        collection.objects.link(move)
    previous = None
    for frame, pose in enumerate(poses, start=1):  # one keyframe per frame: the path, not Blender's curve
        move.matrix_basis = Matrix((start @ FLIP @ np.linalg.inv(pose) @ FLIP).tolist())
        q = move.rotation_quaternion.copy()
        if previous is not None and q.dot(previous) < 0:  # the same turn, no flip between frames
            q.negate()
            move.rotation_quaternion = q
        previous = move.rotation_quaternion.copy()
        move.keyframe_insert("location", frame=frame)
        move.keyframe_insert("rotation_quaternion", frame=frame)
    scene.frame_start, scene.frame_end = 1, int(frames)
    scene.frame_set(1)
    scene.camera = move
    return move


def _remove(obj: bpy.types.Object) -> None:
    data, action = obj.data, obj.animation_data.action if obj.animation_data else None
    bpy.data.objects.remove(obj)
    if isinstance(data, bpy.types.Camera) and data.users == 0:
        bpy.data.cameras.remove(data)
    if action is not None and action.users == 0:
        bpy.data.actions.remove(action)


def render_steps(scene: bpy.types.Scene, frames_dir: Path | None = None, video: Path | None = None,
                 exact_splats: bpy.types.Object | None = None) -> Generator[tuple[int, int], None, None]:
    """Render the scene camera's frames (the scene's range, its engine); yields (done, total) after each.

    With ``exact_splats`` each frame is that splat object through the exact 3DGS renderer
    (``exact_render.render_exact``, in the worker) instead of the scene's engine. The frames go to
    ``frames_dir`` (PNG, ``frame_0001.png``...) and/or ``video`` (H.264 MP4); both appear only when
    everything is rendered. Closing the generator early (Esc) removes the scratch. Between steps the
    scene and the splats are found again by name (an undo meanwhile makes new ones of them).
    """
    targets = _outputs(scene, frames_dir, video)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".sharp-", suffix=".tmp", dir=targets[0].parent))
    except OSError as e:
        raise OutputError.about(targets[0], f"cannot be written ({e.strerror or e})") from None
    name, splats = scene.name, None if exact_splats is None else exact_splats.name
    saved = (scene.render.filepath, scene.render.image_settings.file_format, scene.frame_current)
    frames = range(scene.frame_start, scene.frame_end + 1)
    try:
        for done, frame in enumerate(frames, start=1):
            _render_frame(_scene_named(name), frame, scratch / FRAME_NAME.format(done), splats)
            yield done, len(frames)
        _publish(_scene_named(name), scratch, len(frames), frames_dir, video)
    finally:
        live = bpy.data.scenes.get(name)
        if live is not None:
            live.render.filepath, live.render.image_settings.file_format = saved[0], saved[1]
            live.frame_set(saved[2])
        shutil.rmtree(scratch, ignore_errors=True)


def _outputs(scene: bpy.types.Scene, frames_dir: Path | None, video: Path | None) -> list[Path]:
    """The outputs asked for; ``CameraMoveError`` / ``OutputError`` when they cannot be made."""
    if frames_dir is None and video is None:
        raise CameraMoveError.about(scene.name, "a render needs a frames folder or a video file")
    if scene.camera is None:
        raise CameraMoveError.about(scene.name, "has no scene camera to render")
    targets = [p for p in (frames_dir, video) if p is not None]
    for target in targets:
        if path_kind(target.parent) != "folder":
            raise OutputError.about(target, "cannot be written (its folder does not exist)")
    return targets


def _scene_named(name: str) -> bpy.types.Scene:
    scene = bpy.data.scenes.get(name)
    if scene is None:
        raise CameraMoveError.about(name, "is gone (deleted or undone) while its move was rendered", subject="scene")
    return scene


def _render_frame(scene: bpy.types.Scene, frame: int, path: Path, splats: str | None) -> None:
    """One frame of the scene camera to ``path`` (PNG): the scene's engine, or the named splat object exactly."""
    scene.frame_set(frame)
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(path)
    if splats is not None:
        obj = bpy.data.objects.get(splats)
        if obj is None:
            raise CameraMoveError.about(splats, "is gone (deleted or undone) while its move was rendered")
        exact_render.render_exact(scene, obj, scene.camera, [frame], outputs=[path])
        return
    try:  # saved by save_render, not write_still: no "Saved:" line names a scratch file (a farm
        # worker takes such lines as the task's latest image, which would be gone by then)
        bpy.ops.render.render(write_still=False, scene=scene.name)
        bpy.data.images["Render Result"].save_render(filepath=str(path), scene=scene)
    except (RuntimeError, KeyError) as e:
        raise OutputError.about(path, f"cannot be rendered ({str(e).strip()})") from None


def _publish(scene: bpy.types.Scene, scratch: Path, count: int, frames_dir: Path | None, video: Path | None) -> None:
    """The rendered frames to their folder and/or encoded to the video, each appearing whole."""
    pngs = sorted(scratch.glob("frame_*.png"))
    target = frames_dir or video
    assert target is not None
    if len(pngs) != count:
        raise OutputError.about(target, f"only {len(pngs)} of {count} frames were written")
    try:
        if video is not None:
            encoded = scratch / "video.mp4"
            encode_video(pngs, encoded, scene.render.fps, scene.render.fps_base)
            os.replace(encoded, video)
        if frames_dir is not None:
            if frames_dir.is_dir():
                shutil.rmtree(frames_dir)
            _move_frames(pngs, frames_dir)
    except OSError as e:
        raise OutputError.about(target, f"cannot be written ({e.strerror or e})") from None


def _move_frames(pngs: list[Path], folder: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".sharp-", suffix=".tmp", dir=folder.parent))
    for png in pngs:
        os.replace(png, staging / png.name)
    staging.rename(folder)


def encode_video(pngs: list[Path], video: Path, fps: int, fps_base: float = 1.0) -> None:
    """``pngs`` as an H.264 MP4 through Blender's FFmpeg output (a scratch scene's sequencer strip)."""
    first = bpy.data.images.load(str(pngs[0]), check_existing=False)
    size: Any = first.size
    width, height = int(size[0]), int(size[1])
    bpy.data.images.remove(first)
    scene = bpy.data.scenes.new(".sharp-encode")
    try:
        editor = scene.sequence_editor_create()
        strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # type: ignore[attr-defined]  # 5.x renamed sequences
        strip = strips.new_image("frames", str(pngs[0]), 1, 1)
        for png in pngs[1:]:
            strip.elements.append(png.name)
        r = scene.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = width + width % 2, height + height % 2, 100
        r.fps, r.fps_base = fps, fps_base
        scene.frame_start, scene.frame_end = 1, len(pngs)
        scene.view_settings.view_transform = "Standard"
        settings = r.image_settings
        if hasattr(settings, "media_type"):  # Blender 5.x: a movie is its own media type
            settings.media_type = "VIDEO"
        settings.file_format = "FFMPEG"
        r.ffmpeg.format, r.ffmpeg.codec = "MPEG4", "H264"
        r.ffmpeg.constant_rate_factor = "HIGH"
        r.use_file_extension = False
        r.filepath = str(video)
        try:
            bpy.ops.render.render(animation=True, scene=scene.name)
        except RuntimeError as e:
            raise OutputError.about(video, f"cannot be encoded ({str(e).strip()})") from None
        if not video.is_file() or video.stat().st_size == 0:
            raise OutputError.about(video, "was not written (Blender's FFmpeg output produced nothing)")
    finally:
        bpy.data.scenes.remove(scene)


def render_camera_move(scene: bpy.types.Scene, frames_dir: Path | None = None, video: Path | None = None,
                       exact_splats: bpy.types.Object | None = None) -> None:
    """``render_steps`` to the end (headless, synchronous)."""
    for _ in render_steps(scene, frames_dir, video, exact_splats):
        pass


ENGINE_ITEMS = [
    ("SCENE", "Scene's Engine", "Render with the scene's engine (Cycles, EEVEE) and its settings"),
    ("EXACT", "Exact (SHARP)", "Render the active splat object with the exact 3DGS renderer, in the worker"),
]


PRESET_ITEMS = [(p, p.replace("_", " ").title(), f"{p.replace('_', ' ').title()} camera move") for p in moves.PRESETS]
EASING_ITEMS = [("LINEAR", "Linear", "Constant speed"), ("EASE_IN_OUT", "Ease In-Out", "Slow at both ends")]


class SHARP_OT_add_camera_move(bpy.types.Operator):
    """Animate a copy of the active splat object's photo camera along a preset move sized by the scene's depth"""

    bl_idname = "sharp.add_camera_move"
    bl_label = "Add SHARP Camera Move"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 - Blender reads it as a class attribute

    preset: bpy.props.EnumProperty(name="Move", items=PRESET_ITEMS, default="DOLLY_IN")  # type: ignore[valid-type]
    frames: bpy.props.IntProperty(name="Frames", default=48, min=2, soft_max=480)  # type: ignore[valid-type]
    amplitude: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Amplitude", default=1.0, min=0.01, soft_max=3.0,
        description="Scales the move; 1 is sized by the scene's near depth to stay inside the photo")
    easing: bpy.props.EnumProperty(name="Easing", items=EASING_ITEMS, default="EASE_IN_OUT")  # type: ignore[valid-type]
    loop: bpy.props.BoolProperty(name="Loop", default=False,  # type: ignore[valid-type]
                                 description="End where the move started (orbit always does)")

    def draw(self, context: Any) -> None:
        layout = self.layout
        for name in ("preset", "frames", "amplitude", "easing", "loop"):
            layout.prop(self, name)
        if moves.shows_edges(self.preset):
            layout.label(text=EDGES_NOTE, icon="INFO")

    @reports.reports_errors
    def execute(self, context: Any) -> Any:
        obj = context.active_object
        if obj is None or not splat_scene.is_splat_object(obj):
            return reports.report_error(self, CameraMoveError("select a SHARP splat object to add a camera move"))
        move = add_camera_move(obj, self.preset, self.frames, self.amplitude, self.easing, self.loop, context.scene)
        self.report({"INFO"}, f"Added '{move.name}': {self.frames} frames")
        return {"FINISHED"}


class SHARP_OT_render_camera_move(LongOperator, bpy.types.Operator):
    """Render the scene camera's animation to PNG frames and/or an MP4 video (Esc cancels, nothing left)"""

    bl_idname = "sharp.render_camera_move"
    bl_label = "Render Camera Move"

    directory: bpy.props.StringProperty(name="Folder", subtype="DIR_PATH")  # type: ignore[valid-type]
    name: bpy.props.StringProperty(name="Name", default="move")  # type: ignore[valid-type]
    frames: bpy.props.BoolProperty(name="PNG Frames", default=True)  # type: ignore[valid-type]
    video: bpy.props.BoolProperty(name="MP4 Video", default=True)  # type: ignore[valid-type]
    engine: bpy.props.EnumProperty(name="Engine", items=ENGINE_ITEMS, default="SCENE")  # type: ignore[valid-type]

    def start_work(self, context: Any) -> Work:
        """One frame per step on Blender's main thread (renders must run there)."""
        folder = Path(bpy.path.abspath(self.directory or "//"))
        frames_dir = folder / self.name if self.frames else None
        video = folder / f"{self.name}.mp4" if self.video else None
        exact_splats = exact_render.splat_object_to_render(context) if self.engine == "EXACT" else None
        steps = render_steps(context.scene, frames_dir, video, exact_splats)
        return Steps(steps, lambda done, total: f"Rendering camera move: frame {done} of {total}",
                     cancelled="camera move render cancelled: nothing was written")

    def finish_work(self, context: Any, result: Any) -> Any:
        self.report({"INFO"}, "Rendered the camera move")
        return {"FINISHED"}


def draw_camera_menu(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    self.layout.operator(SHARP_OT_add_camera_move.bl_idname, icon="CAMERA_DATA")
    self.layout.operator(SHARP_OT_render_camera_move.bl_idname, icon="RENDER_ANIMATION")


classes: tuple[type, ...] = (SHARP_OT_add_camera_move, SHARP_OT_render_camera_move)


def register() -> None:
    """Menus and other hooks beyond the classes (called after the classes are registered)."""
    menu: Any = bpy.types.VIEW3D_MT_object
    menu.append(draw_camera_menu)


def unregister() -> None:
    """Undo register."""
    menu: Any = bpy.types.VIEW3D_MT_object
    menu.remove(draw_camera_menu)
