"""How faithfully Cycles shows the splats: PSNR of Blender's render against the exact 3DGS renderer
on the same splats, from the photo's camera and from a moved one (the goal: >= 35 dB).

The exact render runs in-process where torch is, else in the worker with the test suite's Python
for Inference (the 3.13 environments have no torch). Small scenes (``tests/support/fidelity.py``), 64 x 48
pixels, Cycles on the CPU; EEVEE and the full-size scene are in ``bench/fidelity.py``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ADDON_MODULE, HAS_TORCH, ROOT
from tests.support import fidelity
from tests.support.renders import move_camera, render_rgba

pytestmark = pytest.mark.blender

CYCLES_GOAL_DB = 35.0
# Blender 5.3's native splats: Cycles takes a splat's alpha as a probability per sample, so they
# need many samples (64: 32.6 dB on the isotropic splat, 256: 39.0, 1024: 43.5; 0.6 s at 64 x 48)
# where the proxies are exact in a few. Below the goal there, measured: the mixed anisotropic slab
# (docs/benchmarks.md, "Fidelity"); the modifier's Render as Proxies reaches the goal on 5.3 too.
NATIVE_SAMPLES = 1024
PROXY_SAMPLES = 4
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
        return worker.run(worker_module.RenderRequest(str(scratch / "splats.npz"), [camera.to_dict()]))[0]
    finally:
        worker.close()


def cycles_render(bpy, path: Path, samples: int = 4) -> np.ndarray:
    """(H, W, 4) linear premultiplied RGBA, rows top-down, from the scene camera at pixel centres."""
    return render_rgba(bpy, "CYCLES", path, samples)


def blender_paths() -> list[str]:
    """The ways this Blender draws our splats: proxies, and on 5.3+ native splats first."""
    import bpy

    return ["native", "proxies"] if hasattr(bpy.types, "GeometryNodePointsSetType") else ["proxies"]


def render_both_views(bpy, addon_module: str, name: str, path: str, tmp_path: Path,
                      face_camera: bool = True, degrees: float = 8.0) -> dict[str, float]:
    """PSNR of Cycles against the exact renderer from the photo's camera and from a moved one."""
    so = importlib.import_module(addon_module + ".blender.scene")
    cams = importlib.import_module(addon_module + ".blender.cameras")
    g = fidelity.SCENES[name]()
    built = so.gaussians_to_object(g, name)
    modifier = so.splat_modifier(built.splats)
    if path == "proxies" and importlib.import_module(addon_module + ".blender.compat").has_native_splats():
        so.set_modifier_input(modifier, "Render as Proxies", True)
    so.set_modifier_input(modifier, "Face Camera in Renders", face_camera)
    scene = bpy.context.scene
    figures = {}
    for view in ("matched", "moved"):
        if view == "moved":
            move_camera(built.camera, degrees=degrees)
        bpy.context.view_layer.update()  # matrix_world of new and moved objects
        camera = cams.camera_from_blender(scene.camera, scene, built.splats)
        want = exact_render(g, camera, tmp_path)
        samples = NATIVE_SAMPLES if path == "native" else PROXY_SAMPLES
        got = cycles_render(bpy, tmp_path / f"{view}.exr", samples=samples)
        assert got.shape == want.shape
        assert want[..., 3].max() > 0.3, "the scene must be in view for the comparison to mean anything"
        figures[view] = fidelity.psnr(got, want)
    print(f"{name}: Cycles ({path}) PSNR matched {figures['matched']:.1f} dB, moved {figures['moved']:.1f} dB")
    return figures


@pytest.mark.parametrize("path", blender_paths())
@pytest.mark.parametrize("name", list(fidelity.SCENES))
@pytest.mark.slow
def test_cycles_matches_the_exact_renderer_from_the_photo_and_a_moved_camera(name, path, addon, clean_scene,
                                                                             bpy_session, tmp_path):
    figures = render_both_views(bpy_session, ADDON_MODULE, name, path, tmp_path)
    floor = NATIVE_SHORT_OF_GOAL_DB.get(name, CYCLES_GOAL_DB) if path == "native" else CYCLES_GOAL_DB
    assert min(figures.values()) >= floor, figures


@pytest.mark.slow
def test_cubes_blend_in_face_order_where_camera_facing_quads_blend_by_depth(addon, clean_scene, bpy_session,
                                                                            tmp_path):
    """What the quads bought: with Face Camera in Renders off, renders draw the viewport's cubes, which
    a ray meets in the order of their faces; closely overlapping splats of mixed shapes then fall well
    short of the goal (28 dB measured) while the quads reach it (50 dB)."""
    cubes = render_both_views(bpy_session, ADDON_MODULE, "anisotropic", "proxies", tmp_path, face_camera=False)
    assert max(cubes.values()) < CYCLES_GOAL_DB - 3, cubes


@pytest.mark.parametrize("name", ["edge-on", "anisotropic"])
def test_the_quads_turn_with_the_camera(name, addon, clean_scene, bpy_session, tmp_path):
    """Seen from 50 degrees aside, quads made for the photo's camera would show edge-on; they follow
    the scene camera, so the render still matches."""
    figures = render_both_views(bpy_session, ADDON_MODULE, name, "proxies", tmp_path, degrees=50.0)
    assert min(figures.values()) >= CYCLES_GOAL_DB, figures


def test_splats_at_one_depth_are_all_drawn(addon, clean_scene, bpy_session, tmp_path):
    """A flat wall: 40 overlapping splats at exactly 4 m. Their quads would be coplanar and hide each
    other from Cycles' transparent rays (9 dB); each moves along its own ray by a relative 1e-4 times
    (key - 1/2), which decides their order where 3DGS's is a tie (the exact renderer breaks ties by
    index: 21 dB from this order), so the reference is the exact render of the splats so moved."""
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    cams = importlib.import_module(ADDON_MODULE + ".blender.cameras")
    ss = importlib.import_module(ADDON_MODULE + ".blender.splat_shading")
    G = importlib.import_module(ADDON_MODULE + ".gaussians")
    rng = np.random.default_rng(0)
    n = 40
    means = np.column_stack([rng.uniform(-0.6, 0.6, n), rng.uniform(-0.4, 0.4, n), np.full(n, 4.0)])
    g = fidelity.make_scene(means, np.full((n, 3), 0.15), np.tile([1.0, 0, 0, 0], (n, 1)), rng.uniform(0, 1, (n, 3)),
                        np.full(n, 0.7))
    built = so.gaussians_to_object(g, "wall")
    if importlib.import_module(ADDON_MODULE + ".blender.compat").has_native_splats():  # 5.3: our quads
        so.set_modifier_input(so.splat_modifier(built.splats), "Render as Proxies", True)
    bpy_session.context.view_layer.update()
    camera = cams.camera_from_blender(built.camera, bpy_session.context.scene, built.splats)
    moved = g.replace(means=g.means * (1 + ss.DEPTH_TIE_BREAK * (G.lod_keys(n)[:, None] - 0.5)))
    got = cycles_render(bpy_session, tmp_path / "wall.exr", samples=PROXY_SAMPLES)
    assert fidelity.psnr(got, exact_render(moved, camera, tmp_path)) >= CYCLES_GOAL_DB


def test_the_psnr_sees_a_wrong_render():
    """The measure itself: a splat drawn one pixel off, or 10 % too bright, falls below the goal."""
    want = np.zeros((48, 64, 4), np.float32)
    want[20:28, 30:38] = (0.8, 0.5, 0.2, 0.9)
    assert fidelity.psnr(want, want) == float("inf")
    assert fidelity.psnr(np.roll(want, 1, axis=1), want) < CYCLES_GOAL_DB
    assert fidelity.psnr(want * 1.1, want) < CYCLES_GOAL_DB
    assert fidelity.psnr(want * 1.01, want) > CYCLES_GOAL_DB
