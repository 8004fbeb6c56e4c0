"""How faithfully Cycles shows the splats: PSNR of Blender's render against the exact 3DGS renderer
on the same splats, from the photo's camera and from a moved one (issue 11's goal: >= 35 dB).

The exact render runs in-process where torch is, else in the worker with the test suite's Python
for Inference (the 3.13 environments have no torch). Small scenes (``tests/fidelity.py``), 64 x 48
pixels, Cycles on the CPU; EEVEE and the full-size scene are in ``bench/fidelity.py``.
"""

from __future__ import annotations

import importlib
import math
import os
from pathlib import Path

import numpy as np
import pytest

from tests import fidelity
from tests.conftest import ADDON_MODULE, HAS_TORCH, ROOT

pytestmark = pytest.mark.blender

CYCLES_GOAL_DB = 35.0
# Below the goal, measured (docs/benchmarks.md, "Fidelity"): where splats of mixed sizes and turns
# overlap closely, a ray meets the cube proxies in the order of their faces, while 3DGS blends in
# the order of the centres' depth (more transparent bounces change nothing past 256). With one
# splat shape it is 32.7 dB, SHARP-shaped layers reach 51 dB. These floors keep it from getting worse.
SHORT_OF_GOAL_DB = {"anisotropic": 28.0, "anisotropic-one-size": 32.5}
# Blender 5.3's native splats: Cycles takes a splat's alpha as a probability per sample, so they
# need many samples (64: 32.6 dB on the isotropic splat, 256: 39.0, 1024: 43.5; 0.6 s at 64 x 48)
# where the proxies are exact in one. Below the goal there, measured: the mixed anisotropic slab.
NATIVE_SAMPLES = 1024
NATIVE_SHORT_OF_GOAL_DB = {"anisotropic": 31.0, "anisotropic-one-size": 31.0}
INFERENCE_PYTHON = (os.environ.get("SHARP_TEST_INFERENCE_PYTHON")
                    or str(ROOT / ".venv" / "blender-5.0" / "bin" / "python"))


def exact_render(g, camera, scratch: Path) -> np.ndarray:
    """The exact renderer's image: in this process with torch, else in a worker with torch."""
    if HAS_TORCH:  # the add-on's own modules: its Camera class is the one camera_from_blender makes
        return importlib.import_module(ADDON_MODULE + ".render").render_gaussians(g, camera)
    if not Path(INFERENCE_PYTHON).exists():
        pytest.skip(f"needs PyTorch for the exact render: none here, and no Python for Inference at {INFERENCE_PYTHON}")
    worker_module = importlib.import_module(ADDON_MODULE + ".worker")
    worker = worker_module.InferenceWorker(python=INFERENCE_PYTHON)
    try:
        worker_module.save_result(g, scratch / "splats.npz")  # the file: g may be another import's Gaussians
        return worker.run(worker_module.RenderJob(str(scratch / "splats.npz"), [camera]))[0]
    finally:
        worker.close()


def cycles_render(bpy, path: Path, samples: int = 4) -> np.ndarray:
    """(H, W, 4) linear premultiplied RGBA, rows top-down, from the scene camera at pixel centres."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.cycles.filter_width = 0.01  # sample pixel centres, as the exact renderer does
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(path))
    try:
        w, h = image.size
        pixels = np.empty(w * h * 4, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(h, w, 4)[::-1]


def move_camera(camera, distance: float = 4.0) -> None:
    """An orbit of 8 degrees sideways and 3 degrees up about the point ``distance`` m ahead (where the
    scenes are), so the splats stay in view whatever the lens, and are seen from a new angle."""
    from mathutils import Matrix

    world = camera.matrix_world.copy()
    pivot = world.translation - world.col[2].xyz * distance  # cameras look down their local -Z
    turn = Matrix.Rotation(math.radians(8), 4, "Z") @ Matrix.Rotation(math.radians(3), 4, world.col[0].xyz)
    moved = Matrix.Translation(pivot) @ turn @ Matrix.Translation(-pivot) @ world
    camera.matrix_world = moved


@pytest.mark.parametrize("name", list(fidelity.SCENES))
def test_cycles_matches_the_exact_renderer_from_the_photo_and_a_moved_camera(name, addon, clean_scene, bpy_session,
                                                                             tmp_path):
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    cams = importlib.import_module(ADDON_MODULE + ".blender.cameras")
    native = importlib.import_module(ADDON_MODULE + ".blender.compat").has_native_splats()
    g = fidelity.SCENES[name]()
    built = so.gaussians_to_object(g, name)
    scene = bpy_session.context.scene
    figures = {}
    for view in ("matched", "moved"):
        if view == "moved":
            move_camera(built.camera)
        bpy_session.context.view_layer.update()  # matrix_world of new and moved objects
        camera = cams.camera_from_blender(scene.camera, scene, built.splats)
        want = exact_render(g, camera, tmp_path)
        got = cycles_render(bpy_session, tmp_path / f"{view}.exr", samples=NATIVE_SAMPLES if native else 4)
        assert got.shape == want.shape
        assert want[..., 3].max() > 0.3, "the scene must be in view for the comparison to mean anything"
        figures[view] = fidelity.psnr(got, want)
    path = "native splats" if native else "proxies"
    print(f"{name}: Cycles ({path}) PSNR matched {figures['matched']:.1f} dB, moved {figures['moved']:.1f} dB")
    floors = NATIVE_SHORT_OF_GOAL_DB if native else SHORT_OF_GOAL_DB
    assert min(figures.values()) >= floors.get(name, CYCLES_GOAL_DB), figures


def test_the_psnr_sees_a_wrong_render():
    """The measure itself: a splat drawn one pixel off, or 10 % too bright, falls below the goal."""
    want = np.zeros((48, 64, 4), np.float32)
    want[20:28, 30:38] = (0.8, 0.5, 0.2, 0.9)
    assert fidelity.psnr(want, want) == float("inf")
    assert fidelity.psnr(np.roll(want, 1, axis=1), want) < CYCLES_GOAL_DB
    assert fidelity.psnr(want * 1.1, want) < CYCLES_GOAL_DB
    assert fidelity.psnr(want * 1.01, want) > CYCLES_GOAL_DB
