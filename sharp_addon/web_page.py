"""A web page that shows splats from the photo's camera: a folder any static web host can serve.

No bpy. ``write_web_page`` writes ``index.html``, the scene as SPZ v3 (``scene.spz``: compact, and
read by the vendored viewer) and the viewer itself: Spark (World Labs, MIT) on three.js (MIT), static
files vendored in ``web_viewer/`` with their licences (``tools/vendor_web_viewer.py`` refreshes them).
SPZ is in three.js's axes (x right, y up, z back), so the photo's camera is three.js's default camera
at the origin, looking down -Z, with the photo's vertical field of view; the canvas keeps the photo's
aspect. The viewer may orbit near that view, about the scene's median depth, within the reach of
our camera moves (``camera_moves.scene_depths``), where a single photo's scene still looks right.

Browsers load the page's modules and scene only over http(s): Chromium refuses them from a page
opened as a local file (file://), so there the page says to serve its folder (``python -m
http.server``) instead of staying blank. ``body[data-state]`` says ``ready`` once the splats are
drawn, or ``failed`` with the reason shown; tests read it.
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
from .camera_moves import scene_depths
from .errors import OutputError
from .files import atomic_output, folder_problem
from .gaussians import Gaussians

VIEWER = Path(__file__).resolve().parent / "web_viewer"
PAGE_TEMPLATE = VIEWER / "index.html"
SCENE_NAME = "scene.spz"
DEFAULT_FOV_Y = 50.0  # degrees, for splats without a photo camera
ORBIT_DEGREES = 20.0  # how far the viewer may turn about the focus, either way


def view_settings(g: Gaussians) -> dict:
    """What the page needs to start at the photo's camera and stay near it."""
    if g.focal_px is not None and g.image_size is not None:
        width, height = g.image_size
        fov_y = math.degrees(2 * math.atan(height / 2 / g.focal_px))
    else:
        width, height, fov_y = 4, 3, DEFAULT_FOV_Y
    depths = scene_depths(g.means, g.opacities)
    return {"fovY": round(fov_y, 6), "aspect": width / height, "focus": float(depths.focus),
            "near": float(depths.near), "orbitDegrees": ORBIT_DEGREES,
            "minDistance": float(depths.focus - 0.8 * depths.near), "maxDistance": float(depths.focus * 1.25)}


def write_web_page(g: Gaussians, folder: str | os.PathLike[str], title: str = "SHARP scene") -> Path:
    """Write the page into ``folder`` (created if needed; our files in it are replaced whole, nothing
    else is touched) and return the path of its ``index.html``."""
    folder = Path(folder)
    problem = folder_problem(folder, create=True)
    if problem:
        raise OutputError.about(folder, f"cannot hold the web page: {problem}", subject="folder")
    if not np.isfinite(g.means).all() or len(g) == 0:
        raise OutputError.about(folder, "has no splats to show", subject="folder")
    settings = view_settings(g)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        formats.write_splats(g, folder / SCENE_NAME, "spz", version=3)
        _copy_viewer(folder / "viewer")
        page = PAGE_TEMPLATE.read_text(encoding="utf-8")
        page = page.replace("{{TITLE}}", html.escape(title)).replace(
            "{{SETTINGS}}", json.dumps({**settings, "scene": SCENE_NAME}).replace("</", "<\\/"))
        with atomic_output(folder / "index.html") as temp:
            temp.write_text(page, encoding="utf-8")
    except OSError as e:
        raise OutputError.about(folder, f"cannot hold the web page ({e.strerror or e})", subject="folder") from None
    return folder / "index.html"


def _copy_viewer(target: Path) -> None:
    """The vendored viewer's files (not the page template), each replaced whole."""
    for source in sorted(VIEWER.rglob("*")):
        relative = source.relative_to(VIEWER)
        if source.is_dir() or relative == Path(PAGE_TEMPLATE.name) or source.suffix == ".py":
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(destination) as temp:
            shutil.copyfile(source, temp)
