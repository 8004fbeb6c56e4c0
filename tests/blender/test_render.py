"""Renders of known Gaussians from the matched camera: the splats land where the projection says,
with the falloff, colour and blending of the Gaussian model (pixel checks against numpy)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from sharp_addon import gaussians as G
from tests.conftest import ADDON_MODULE
from tests.support.reference_render import FOCAL, H, W, expected_image, known_scene
from tests.support.renders import eevee_id, render

pytestmark = pytest.mark.blender


def use_proxies(obj) -> None:
    """These tests hold the proxies to exactness in a few samples: on Blender 5.3+, whose native
    splats are random per Cycles sample (measured in test_native_splats.py and test_fidelity.py),
    through the modifier's Render as Proxies."""
    if importlib.import_module(ADDON_MODULE + ".blender.compat").has_native_splats():
        so = importlib.import_module(ADDON_MODULE + ".blender.scene")
        so.set_modifier_input(so.splat_modifier(obj), "Render as Proxies", True)


def test_cycles_render_from_the_matched_camera_matches_the_gaussians(addon, clean_scene, bpy_session, tmp_path):
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    g = known_scene()
    use_proxies(so.gaussians_to_object(g, "known").splats)
    got = render(bpy_session, "CYCLES", tmp_path / "cycles.exr", samples=4)
    want = expected_image(g)
    # each splat's centre is where the pinhole projection puts it, in its own colour
    for i in (0, 1):
        u, v = (FOCAL * g.means[i, :2] / g.means[i, 2] + (W / 2, H / 2)).astype(int)
        assert int(np.argmax(got[v, u])) == int(np.argmax(g.colors[i]))
        np.testing.assert_allclose(got[v, u], want[v, u], atol=0.01)
    assert np.abs(got - want).max() < 0.005, f"largest pixel error {np.abs(got - want).max():.3f}"
    assert got[0, 0].max() < 1e-4 and got[-1, 0].max() < 1e-4  # nothing where no splat reaches
    # the blue splat shows only where the red one in front lets it through
    overlap = (FOCAL * np.float32([0.25, 0.1]) / 5.0 + (W / 2, H / 2)).astype(int)
    assert got[overlap[1], overlap[0], 0] > 0.3 and got[overlap[1], overlap[0], 2] > 0.05


def test_points_in_the_viewport_leave_the_render_exact(addon, clean_scene, bpy_session, tmp_path):
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    g = known_scene()
    obj = so.gaussians_to_object(g, "known").splats
    use_proxies(obj)
    exact = render(bpy_session, "CYCLES", tmp_path / "exact.exr", samples=1)
    so.set_modifier_input(so.splat_modifier(obj), "Points in Viewport", True)
    depsgraph = bpy_session.context.evaluated_depsgraph_get()
    depsgraph.update()
    assert not any(i.is_instance and i.object.type == "MESH" for i in depsgraph.object_instances)  # points
    np.testing.assert_array_equal(render(bpy_session, "CYCLES", tmp_path / "same.exr", samples=1), exact)


def test_cycles_blends_thousands_of_overlapping_splats_exactly_in_one_sample(addon, clean_scene, bpy_session,
                                                                           tmp_path):
    """A 2 m deep slab of 3000 splats (about 13 overlap at every pixel): no noise, no darkening.

    One size and opacity, depths far apart compared with a proxy: every ray then meets the splats
    in the order of their centres, as the reference blends them (close, mixed-size splats are
    ordered per ray by a ray tracer, by centre depth in 3DGS)."""
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    rng = np.random.default_rng(1)
    n = 3000
    g = G.Gaussians(
        means=np.column_stack([rng.uniform(-2.5, 2.5, n), rng.uniform(-2, 2, n), rng.uniform(3.0, 5.0, n)]),
        scales=np.full((n, 3), 0.05), quats=np.tile([1.0, 0, 0, 0], (n, 1)),
        colors=rng.uniform(0.1, 0.9, (n, 3)), opacities=np.full(n, 0.8), focal_px=FOCAL, image_size=(W, H),
    )
    use_proxies(so.gaussians_to_object(g, "wall").splats)
    error = np.abs(render(bpy_session, "CYCLES", tmp_path / "wall.exr", samples=1) - expected_image(g))
    assert error.mean() < 0.001 and np.percentile(error, 99) < 0.01, (error.mean(), np.percentile(error, 99))


@pytest.mark.slow
def test_eevee_render_shows_the_same_splats(addon, clean_scene, bpy_session, tmp_path):
    """EEVEE (software OpenGL here: slow, one test) with blended transparency."""
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    g = known_scene()
    use_proxies(so.gaussians_to_object(g, "known", transparency="BLENDED").splats)
    got = render(bpy_session, eevee_id(bpy_session), tmp_path / "eevee.exr", samples=4)
    want = expected_image(g)
    for i in (0, 1):
        u, v = (FOCAL * g.means[i, :2] / g.means[i, 2] + (W / 2, H / 2)).astype(int)
        np.testing.assert_allclose(got[v, u], want[v, u], atol=0.05)
    assert np.abs(got - want).max() < 0.01, f"largest pixel error {np.abs(got - want).max():.3f}"
