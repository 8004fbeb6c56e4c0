"""Batch scenes: one photo's Gaussians as a saved Blender scene (.blend) and its render (.png).

``write_scene`` is the scene writer ``blender -c sharp predict --format blend|both`` hands to
``cli.main`` (the core never imports this layer). Per photo it starts from an empty factory scene,
builds what *Add > SHARP from Image* builds (``scene.gaussians_to_object``: splat object, photo
frame, matched camera, render set-up), adds ``--move``'s camera move (``camera_moves``), and saves
it with relative paths; ``--render`` then renders it in Cycles from the photo's camera, and the move
to NAME_move.mp4. Each file is written under a temporary name and renamed when
complete (``files.atomic_output``).

The same from a script (``blender -b --python-expr``): ``run_from_argv()`` takes the arguments
after ``--``::

    blender -b --python-expr "from bl_ext.user_default.sharp_from_image.blender import batch; batch.run_from_argv()" \\
        -- predict -i photos/ -o scenes/ --format both
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

from ..errors import OutputError
from ..files import atomic_output
from ..gaussians import Gaussians
from . import camera_moves, exact_render
from . import scene as splat_scene
from .render_setup import cycles_on_cpu

if TYPE_CHECKING:
    from ..cli import MoveRequest

# --render: a quick look from the photo's camera, not a final image: Cycles on the CPU in a few
# samples (render_setup), half the photo's resolution, 8-bit RGBA PNG.
RENDER_PERCENTAGE = 50


def write_scene(gaussians: Gaussians, name: str, blend: Path | None, render: Path | None,
                move: MoveRequest | None = None, render_engine: str = "cycles") -> None:
    """The scene for one photo: saved to ``blend`` and rendered to ``render`` (each when given), with
    ``move``'s camera move added (and rendered to its video, when it names one). ``render_engine``
    "exact" renders the splats with the exact 3DGS renderer (in the worker) instead of Cycles.

    Replaces the current file with an empty factory scene first, so it runs only in background
    Blender (``blender -b``), where no one's unsaved work can be lost.
    """
    if not bpy.app.background:
        raise OutputError.about(blend or render or name, "Blender scenes are written only by background Blender "
                                "(blender -b -c sharp predict ...): each photo starts from an empty file")
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    scene: Any = bpy.context.scene  # read_homefile always leaves one; Any: fake-bpy lacks scene.cycles
    made = splat_scene.gaussians_to_object(gaussians, name)
    photo_camera = made.camera
    if move is not None:
        if photo_camera is None:
            raise OutputError.about(blend or render or name, "a camera move needs the photo's camera (its focal "
                                    "length is unknown)")
        camera_moves.add_camera_move(made.splats, move.preset, move.frames, scene=scene)
    if blend is not None:
        with atomic_output(blend) as tmp:
            try:
                bpy.ops.wm.save_as_mainfile(filepath=str(tmp), relative_remap=True, copy=True, check_existing=False)
            except RuntimeError as e:  # the operator's report (disk full, no permission)
                raise OutputError.about(blend, f"cannot be saved ({str(e).strip()})") from None
    if render is not None or (move is not None and move.video is not None):
        cycles_on_cpu(scene, percentage=RENDER_PERCENTAGE)
    if render is not None:
        scene.render.image_settings.file_format = "PNG"
        scene.render.image_settings.color_mode = "RGBA"
        scene.render.image_settings.color_depth = "8"
        move_camera, scene.camera = scene.camera, photo_camera or scene.camera  # the still: the photo's view
        with atomic_output(render) as tmp:
            if render_engine == "exact":
                exact_render.render_exact(scene, made.splats, scene.camera, [scene.frame_current], outputs=[tmp])
            else:
                try:
                    bpy.ops.render.render(write_still=False)
                    bpy.data.images["Render Result"].save_render(filepath=str(tmp), scene=scene)
                except RuntimeError as e:
                    raise OutputError.about(render, f"cannot be rendered or saved ({str(e).strip()})") from None
        scene.camera = move_camera
    if move is not None and move.video is not None:
        camera_moves.render_camera_move(scene, video=move.video,
                                        exact_splats=made.splats if render_engine == "exact" else None)


def cli_main(argv: list[str]) -> int:
    """``cli.main`` with this layer's scene writer (what ``blender -c sharp`` runs)."""
    from .. import cli

    return cli.main(argv, scene_writer=write_scene)


def run_from_argv() -> None:
    """For ``blender -b --python-expr ... -- ARGS``: run ARGS (those after ``--``) and exit with the status."""
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    sys.exit(cli_main(argv))
