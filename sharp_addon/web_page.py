"""A web page that shows splats from the photo's camera: a folder any static web host can serve.

No bpy. ``write_web_page`` writes ``index.html``, the scene as SPZ v3 (``scene.spz``: compact, and
read by the vendored viewer) and the viewer itself: Spark (World Labs, MIT) on three.js (MIT), static
files vendored in ``web_viewer/`` with their licences (its README.md; ``tools/vendor_web_viewer.py``
refreshes them). SPZ is in three.js's axes (x right, y up, z back: formats/axes.py), so the photo's
camera is three.js's default camera at the origin, looking down -Z, with the photo's vertical field
of view; the canvas keeps the photo's aspect. The viewer may orbit about the scene's median depth
and dolly, but only as far as our camera moves go (``camera_moves``: sized by the scene's near
depth), where a scene made from one photo still looks right.

Browsers load the page's modules and scene only over http(s): Chromium (150) and Firefox (140 ESR)
refuse them for a page opened as a local file (file://), so there the page says to serve its folder
(``python -m http.server``) instead of staying blank. ``body[data-state]`` says ``ready`` once the
splats are drawn, ``failed`` with the reason shown, or ``file``; tests read it.
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from . import formats
from .camera_moves import PRESETS, SceneDepths, camera_centers, camera_path, scene_depths
from .cameras import Camera
from .errors import CameraError, OutputError
from .files import atomic_output, folder_problem
from .gaussians import Gaussians

VIEWER = Path(__file__).resolve().parent / "web_viewer"
PAGE_TEMPLATE = VIEWER / "index.html"
NOT_COPIED = {"index.html", "README.md"}  # the template and the maintainers' notes (the licences go)
SCENE_NAME = "scene.spz"
DEFAULT_FOV_Y = 50.0  # degrees, for splats without a photo camera
ORBIT_AMPLITUDE = 3.0  # the camera-move panel's largest amplitude (its soft maximum): how far the viewer may go
REACH_FRAMES = 49  # frames sampled per move to find its reach (hits each preset's extremes: u = k/48)
RUB = np.array([1.0, -1.0, -1.0])  # OpenCV (x right, y down, z forward) <-> three.js (x right, y up, z back)


def page_camera(g: Gaussians, camera: Camera | None = None) -> Camera:
    """The camera the page starts at: ``camera``, else the photo's, else a 4:3 one at the origin."""
    if camera is not None:
        return camera
    if g.focal_px is not None and g.image_size is not None:
        return Camera.from_gaussians(g)
    height = 600
    focal = height / 2 / math.tan(math.radians(DEFAULT_FOV_Y) / 2)
    return Camera(focal, focal, 400.0, height / 2, 800, height)


def camera_move_reach(depths: SceneDepths) -> tuple[float, float]:
    """How far our camera moves take the camera from the photo's at ``ORBIT_AMPLITUDE``: the largest
    offset across the view (in the image plane) and the largest forward."""
    centres = np.concatenate([camera_centers(camera_path(preset, REACH_FRAMES, depths, ORBIT_AMPLITUDE, "LINEAR", loop))
                              for preset in PRESETS for loop in (False, True)])
    return float(np.abs(centres[:, :2]).max()), float(centres[:, 2].max())


def view_settings(g: Gaussians, camera: Camera | None = None) -> dict:
    """What the page needs to start at ``camera`` (default: the photo's) and stay near it, in three.js axes.

    The orbit turns about the scene's median depth along the view by at most the angle the farthest
    sideways camera move subtends there, and dollies as far in as a move goes forward and as far out
    as one goes sideways. ``CameraError`` when no splat is in front of the camera.
    """
    cam = page_camera(g, camera)
    rotation, translation = cam.world_to_camera[:3, :3], cam.world_to_camera[:3, 3]
    depths = scene_depths(np.asarray(g.means, np.float64) @ rotation.T + translation, g.opacities)
    reach, forward_reach = camera_move_reach(depths)
    eye, forward, up = cam.position, rotation[2], -rotation[1]  # rows of R: the camera's axes in the world
    return {
        "fovY": math.degrees(2 * math.atan(cam.height / 2 / cam.fy)),
        "aspect": cam.width / cam.height,  # the canvas: the photo's shape
        "cameraAspect": (cam.width / cam.fx) / (cam.height / cam.fy),  # the frustum's (fx != fy)
        "size": [cam.width, cam.height],
        "viewOffset": [cam.width / 2 - cam.cx, cam.height / 2 - cam.cy],  # the principal point off centre
        "position": (eye * RUB).tolist(), "target": ((eye + forward * depths.focus) * RUB).tolist(),
        "up": (up * RUB).tolist(),
        "near": 0.01 * depths.near, "far": 100.0 * depths.focus,
        "orbitDegrees": math.degrees(math.atan(reach / depths.focus)),
        "minDistance": depths.focus - forward_reach, "maxDistance": depths.focus + reach,
    }


def write_web_page(g: Gaussians, folder: str | os.PathLike[str], title: str = "SHARP scene",
                   camera: Camera | None = None) -> Path:
    """Write the page into ``folder`` (created if needed; our files in it are replaced whole, nothing
    else is touched) and return the path of its ``index.html``. ``camera``: where the page starts
    (a pose and intrinsics in the splats' frame); by default the photo's camera."""
    folder = Path(folder)
    problem = folder_problem(folder, create=True)
    if problem:
        raise OutputError.about(folder, f"cannot hold the web page: {problem}", subject="folder")
    try:
        settings = view_settings(g, camera)
    except CameraError:
        raise OutputError.about(folder, "would show nothing: no splat is in front of the page's camera",
                                subject="folder") from None
    page = PAGE_TEMPLATE.read_text(encoding="utf-8")
    page = page.replace("{{TITLE}}", html.escape(title)).replace(
        "{{SETTINGS}}", json.dumps({**settings, "scene": SCENE_NAME}).replace("</", "<\\/"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        formats.write_splats(g, folder / SCENE_NAME, "spz", version=3)
        _copy_viewer(folder / "viewer")
        with atomic_output(folder / "index.html") as temp:
            temp.write_text(page, encoding="utf-8")
    except OSError as e:
        raise OutputError.about(folder, f"cannot hold the web page ({e.strerror or e})", subject="folder") from None
    return folder / "index.html"


def _copy_viewer(target: Path) -> None:
    """The vendored viewer's files with their licences (not the page template), each replaced whole."""
    for source in sorted(VIEWER.rglob("*")):
        relative = source.relative_to(VIEWER)
        if source.is_dir() or relative.as_posix() in NOT_COPIED or source.suffix == ".py":
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(destination) as temp:
            shutil.copyfile(source, temp)
