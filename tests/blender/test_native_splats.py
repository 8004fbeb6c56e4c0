"""Blender 5.3's native Gaussian splats: our splat object is a native splat cloud that renders in
Cycles as the Gaussians say, keeps the SHARP Splats filters, survives save and reopen, and goes
through Blender's own PLY importer and back."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from sharp_addon import gaussians as G
from sharp_addon import ply
from tests.conftest import ADDON_MODULE
from tests.support.reference_render import FOCAL, H, W, expected_image, known_scene
from tests.support.renders import render

pytestmark = pytest.mark.blender
# Cycles treats a native splat's alpha as a probability per sample: 64 samples (0.15 s at 64 x 48)
# reach 40 dB, 4 samples only 23 dB
SAMPLES = 64


@pytest.fixture
def so(addon, clean_scene, bpy_session):
    compat = importlib.import_module(ADDON_MODULE + ".blender.compat")
    if not compat.has_native_splats():
        pytest.skip(f"Blender {bpy_session.app.version_string} has no native Gaussian splats (5.3+)")
    return importlib.import_module(ADDON_MODULE + ".blender.scene")


def psnr(got: np.ndarray, want: np.ndarray) -> float:
    mse = float(np.mean((got - want) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def evaluated_points(bpy, obj) -> int:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    depsgraph.update()
    return len(obj.evaluated_get(depsgraph).data.points)


def test_the_splat_object_is_a_native_splat_cloud(so, bpy_session):
    g = known_scene()
    obj = so.gaussians_to_object(g, "known").splats
    assert obj.data.type == "GAUSSIAN_SPLAT"
    attributes = obj.data.attributes
    assert attributes["rotation"].data_type == "QUATERNION"
    base = np.empty(len(g) * 4, np.float32)
    attributes["radiance:base"].data.foreach_get("vector", base)
    base = base.reshape(-1, 4)
    np.testing.assert_allclose(base[:, :3], G.color_to_sh_dc(G.linear_to_srgb(g.colors)), atol=1e-6)
    np.testing.assert_allclose(base[:, 3], g.opacities, atol=1e-7)
    depsgraph = bpy_session.context.evaluated_depsgraph_get()
    depsgraph.update()
    evaluated = obj.evaluated_get(depsgraph).data
    assert evaluated.type == "GAUSSIAN_SPLAT" and len(evaluated.points) == len(g)
    assert not any(i.is_instance and i.object.type == "MESH" for i in depsgraph.object_instances)  # no proxies
    back = so.object_to_gaussians(obj)
    np.testing.assert_allclose(back.colors, g.colors, atol=1e-6)
    np.testing.assert_allclose(back.scales, g.scales, atol=1e-7)


def test_cycles_renders_the_native_splats_as_the_gaussians(so, bpy_session, tmp_path):
    """Also the colour encoding: 5.3 decodes radiance:base as the SH DC of sRGB-encoded colours
    (written as linear f_dc, the same scene renders 25-40 % too dark, about 34 dB)."""
    g = known_scene()
    so.gaussians_to_object(g, "known")
    got = render(bpy_session, "CYCLES", tmp_path / "native.exr", samples=SAMPLES)
    figure = psnr(got, expected_image(g))
    assert figure >= 35.0, f"Cycles native splats {figure:.1f} dB against the reference"


def test_filters_change_the_evaluated_cloud_and_the_render(so, bpy_session, tmp_path):
    g = known_scene()
    obj = so.gaussians_to_object(g, "known").splats
    modifier = so.splat_modifier(obj)
    full = render(bpy_session, "CYCLES", tmp_path / "full.exr", samples=SAMPLES)
    so.set_modifier_input(modifier, "Opacity Threshold", 0.85)  # drops the red splat (0.8)
    assert evaluated_points(bpy_session, obj) == 2
    g_without_red = G.Gaussians(means=g.means[1:], scales=g.scales[1:], quats=g.quats[1:], colors=g.colors[1:],
                                opacities=g.opacities[1:], focal_px=FOCAL, image_size=(W, H))
    got = render(bpy_session, "CYCLES", tmp_path / "no-red.exr", samples=SAMPLES)
    assert psnr(got, expected_image(g_without_red)) >= 35.0
    assert np.abs(got - full).max() > 0.3
    so.set_modifier_input(modifier, "Opacity Threshold", 0.0)
    so.set_modifier_input(modifier, "Keep Fraction", 0.0)
    assert evaluated_points(bpy_session, obj) == 0


def test_a_saved_file_reopens_the_same(so, bpy_session, tmp_path):
    g = known_scene()
    so.gaussians_to_object(g, "known")
    before = render(bpy_session, "CYCLES", tmp_path / "before.exr", samples=SAMPLES)
    path = tmp_path / "native.blend"
    bpy_session.ops.wm.save_as_mainfile(filepath=str(path))
    bpy_session.ops.wm.open_mainfile(filepath=str(path))
    obj = bpy_session.data.objects["known"]
    assert obj.data.type == "GAUSSIAN_SPLAT" and so.splat_modifier(obj) is not None
    back = so.object_to_gaussians(obj)
    np.testing.assert_allclose(back.means, g.means, atol=1e-7)
    np.testing.assert_allclose(back.colors, g.colors, atol=1e-6)
    np.testing.assert_array_equal(render(bpy_session, "CYCLES", tmp_path / "after.exr", samples=SAMPLES), before)


def test_our_file_through_blenders_importer_reads_back_the_same_gaussians(so, bpy_session, tmp_path):
    g = known_scene()
    path = tmp_path / "known.ply"
    ply.write_ply(g, path)
    bpy_session.ops.wm.ply_import(filepath=str(path))
    imported = bpy_session.context.active_object
    assert imported.data.type == "GAUSSIAN_SPLAT"
    back = so.object_to_gaussians(imported)
    np.testing.assert_allclose(back.means, g.means, atol=1e-6)
    np.testing.assert_allclose(back.scales, g.scales, rtol=1e-5)
    np.testing.assert_allclose(np.abs(np.einsum("ij,ij->i", back.quats, g.quats)), 1.0, atol=1e-5)
    np.testing.assert_allclose(back.colors, g.colors, atol=1e-5)
    np.testing.assert_allclose(back.opacities, g.opacities, atol=1e-5)


def test_convert_to_sharp_splats_adopts_an_imported_cloud_with_the_files_camera(so, bpy_session, tmp_path):
    g = known_scene()
    path = tmp_path / "known.ply"
    ply.write_ply(g, path)
    bpy_session.ops.wm.ply_import(filepath=str(path))
    name = bpy_session.context.active_object.name
    assert bpy_session.ops.sharp.adopt_splats(filepath=str(path)) == {"FINISHED"}
    obj = bpy_session.data.objects[name]
    assert so.splat_modifier(obj) is not None and obj.parent.name.endswith("Photo")
    assert len([o for o in bpy_session.data.objects if o.type == "POINTCLOUD"]) == 1  # the import is replaced
    back = so.object_to_gaussians(obj)
    assert (back.focal_px, back.image_size) == (FOCAL, (W, H))
    np.testing.assert_allclose(back.means, g.means, atol=1e-6)
    np.testing.assert_allclose(back.scales, g.scales, rtol=1e-5)
    np.testing.assert_allclose(back.colors, g.colors, atol=1e-5)
    np.testing.assert_allclose(back.opacities, g.opacities, atol=1e-5)
    figure = psnr(render(bpy_session, "CYCLES", tmp_path / "adopted.exr", samples=SAMPLES), expected_image(g))
    assert figure >= 35.0, f"{figure:.1f} dB"


def test_convert_with_another_file_reports_and_changes_nothing(so, bpy_session, tmp_path):
    g = known_scene()
    ply.write_ply(g, tmp_path / "known.ply")
    ply.write_ply(g.replace(means=g.means[:2], scales=g.scales[:2], quats=g.quats[:2], colors=g.colors[:2],
                            opacities=g.opacities[:2]), tmp_path / "other.ply")
    bpy_session.ops.wm.ply_import(filepath=str(tmp_path / "known.ply"))
    names = sorted(o.name for o in bpy_session.data.objects)
    with pytest.raises(RuntimeError, match=r"but .* holds 2"):
        bpy_session.ops.sharp.adopt_splats(filepath=str(tmp_path / "other.ply"))
    assert sorted(o.name for o in bpy_session.data.objects) == names


def test_our_export_imports_in_blender_with_the_same_values(so, bpy_session, tmp_path):
    g = known_scene()
    so.gaussians_to_object(g, "known")
    out = tmp_path / "exported.ply"
    assert bpy_session.ops.sharp.export_ply(filepath=str(out)) == {"FINISHED"}
    bpy_session.ops.wm.ply_import(filepath=str(out))
    imported = bpy_session.context.active_object
    assert imported.name != "known" and imported.data.type == "GAUSSIAN_SPLAT"
    back = so.object_to_gaussians(imported)
    np.testing.assert_allclose(back.means, g.means, atol=1e-6)
    np.testing.assert_allclose(back.scales, g.scales, rtol=1e-5)
    np.testing.assert_allclose(back.colors, g.colors, atol=1e-5)
    np.testing.assert_allclose(back.opacities, g.opacities, atol=1e-5)


@pytest.mark.slow
def test_eevee_renders_the_native_splats(so, bpy_session, tmp_path):
    """EEVEE (software GL here: about a minute) within the 30 dB goal; it measured 34.6 dB, about
    13 % brighter than the reference and Cycles."""
    g = known_scene()
    so.gaussians_to_object(g, "known")
    figure = psnr(render(bpy_session, "BLENDER_EEVEE", tmp_path / "eevee.exr", samples=16), expected_image(g))
    assert figure >= 30.0, f"EEVEE native splats {figure:.1f} dB against the reference"
