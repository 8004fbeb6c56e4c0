"""File > Import / Export > Gaussian Splats in real Blender: every format, world space, the modifier's
filters applied on export, and Blender 5.3's native splat clouds."""

from __future__ import annotations

import importlib
import importlib.util
import math

import numpy as np
import pytest

from sharp_addon import formats, ply
from sharp_addon import gaussians as G
from tests.conftest import ADDON_MODULE, HAS_TORCH
from tests.support.blender_data import id_names
from tests.support.builders import random_gaussians

pytestmark = pytest.mark.blender
READY = [f.name for f in formats.FORMATS if importlib.util.find_spec(f"sharp_addon.formats.{f.module}")]


def addon_module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def small_scene(sh_degree: int = 3) -> G.Gaussians:
    g = random_gaussians(400, seed=11, sh_degree=sh_degree)
    return g.replace(scales=g.scales * 10, focal_px=60.0, image_size=(64, 48))


def moved(bpy, built) -> None:
    """Turn, scale and move the photo frame (the splats' parent): the viewport shows them elsewhere."""
    built.frame.location = (1.5, -2.0, 0.75)
    built.frame.rotation_euler.z += 0.6
    built.frame.rotation_euler.x += 0.3
    built.frame.scale = (1.7, 1.7, 1.7)
    bpy.context.view_layer.update()


@pytest.mark.torch
@pytest.mark.skipif(not HAS_TORCH, reason="renders with the exact renderer in this Python (needs PyTorch)")
def test_world_space_export_shows_from_the_camera_what_the_viewport_shows(addon, clean_scene, bpy_session,
                                                                          tmp_path):
    """Render the object as the exact renderer sees it through the scene camera, and the exported file
    from that camera's pose in the file's axes: the images agree, SH colour included."""
    bpy = bpy_session
    so, cams = addon_module("blender.scene"), addon_module("blender.cameras")
    render_gaussians, Camera = addon_module("render").render_gaussians, addon_module("cameras").Camera
    g = addon_module("gaussians").Gaussians(**vars(small_scene()))  # the add-on's own class, which it checks
    built = so.gaussians_to_object(g, "s", collection=clean_scene.collection, create_camera=True)
    camera = clean_scene.camera
    camera.parent = None  # the camera stays; only the splats move
    camera.location = (camera.location.x + 0.4, camera.location.y - 0.3, camera.location.z + 0.2)
    moved(bpy, built)
    bpy.context.view_layer.update()
    viewport = cams.camera_from_blender(camera, clean_scene, built.splats)
    scale = cams.splat_scale(built.splats)
    want = render_gaussians(g.transformed(np.eye(3), scale=scale), viewport, device="cpu")

    assert bpy.ops.sharp.export_splats(filepath=str(tmp_path / "world.ply")) == {"FINISHED"}
    exported = addon_module("ply").read_ply(tmp_path / "world.ply")
    file_to_world = np.eye(4)
    file_to_world[:3, :3] = G.OPENCV_TO_BLENDER_WORLD
    camera_to_world = np.array(camera.matrix_world.normalized(), dtype=np.float64)
    to_camera = np.diag([1.0, -1.0, -1.0, 1.0]) @ np.linalg.inv(camera_to_world) @ file_to_world
    got = render_gaussians(exported, Camera(viewport.fx, viewport.fy, viewport.cx, viewport.cy, viewport.width,
                                            viewport.height, to_camera), device="cpu")
    assert want.std() > 0.02, "the camera sees the splats"
    mse = float(np.mean((got - want) ** 2))
    assert 10 * math.log10(1 / max(mse, 1e-12)) > 50
    assert not np.allclose(exported.means, g.means, atol=0.1)  # the transform was applied


def test_export_applies_the_modifier_filters_and_can_leave_them(addon, clean_scene, bpy_session, tmp_path):
    bpy = bpy_session
    so = addon_module("blender.scene")
    g = small_scene(sh_degree=0)
    built = so.gaussians_to_object(g, "s", collection=clean_scene.collection)
    modifier = so.splat_modifier(built.splats)
    so.set_modifier_input(modifier, "Opacity Threshold", 0.5)
    assert bpy.ops.sharp.export_splats(filepath=str(tmp_path / "shown.ply"), world_space=False) == {"FINISHED"}
    assert bpy.ops.sharp.export_splats(filepath=str(tmp_path / "all.ply"), world_space=False,
                                       apply_filters=False) == {"FINISHED"}
    shown, every = ply.read_ply(tmp_path / "shown.ply"), ply.read_ply(tmp_path / "all.ply")
    assert len(every) == len(g) and len(shown) == int(np.count_nonzero(g.opacities >= 0.5)) < len(g)
    np.testing.assert_allclose(shown.means, g.means[g.opacities >= 0.5], atol=1e-6)


@pytest.mark.parametrize("name", READY)
def test_every_format_exports_from_blender_and_imports_back(addon, clean_scene, bpy_session, tmp_path, name):
    bpy = bpy_session
    so = addon_module("blender.scene")
    fmt = formats.format_named(name)
    g = small_scene(sh_degree=min(fmt.sh_degree, 1))
    so.gaussians_to_object(g, "s", collection=clean_scene.collection)
    path = tmp_path / f"scene{fmt.extension}"
    assert bpy.ops.sharp.export_splats(filepath=str(path)) == {"FINISHED"}
    assert formats.format_for(path) == fmt
    assert bpy.ops.sharp.import_splats(filepath=str(path)) == {"FINISHED"}
    back = so.object_to_gaussians(bpy.context.active_object)
    assert bpy.context.active_object.name == "scene" and len(back) == len(g)
    nearest = np.argmin(((back.means[:, None] - g.means[None]) ** 2).sum(-1), axis=1)  # .splat sorts its splats
    assert len(set(nearest.tolist())) == len(g)
    np.testing.assert_allclose(back.means, g.means[nearest], atol=0.01 * float(np.abs(g.means).max()))
    np.testing.assert_allclose(back.opacities, g.opacities[nearest], atol=0.02)


def test_an_extension_that_names_no_format_is_reported_and_writes_nothing(addon, clean_scene, bpy_session,
                                                                          tmp_path):
    bpy = bpy_session
    addon_module("blender.scene").gaussians_to_object(small_scene(0), "s", collection=clean_scene.collection)
    before = id_names(bpy)
    with pytest.raises(RuntimeError, match=r"out\.xyz'.*names no splat format"):
        bpy.ops.sharp.export_splats(filepath=str(tmp_path / "out.xyz"))
    with pytest.raises(RuntimeError, match=r"names no splat format"):
        bpy.ops.sharp.import_splats(filepath=str(tmp_path / "in.xyz"))
    assert list(tmp_path.iterdir()) == [] and id_names(bpy) == before


def test_the_menus_offer_every_format(addon, bpy_session):
    ui = addon_module("blender.ui")
    for ext in (".ply", ".spz", ".glb", ".sog", ".splat"):
        assert ext in ui.EXTENSIONS and ext in ui.SHARP_FH_ply.bl_file_extensions
    export = addon_module("blender.splat_files").SHARP_OT_export_splats
    names = {item[0] for item in addon_module("blender.splat_files").FORMAT_ITEMS}
    assert names == {"AUTO", *formats.NAMES} and export.bl_idname == "sharp.export_splats"


@pytest.mark.parametrize("name", READY)
def test_a_native_cloud_from_blenders_own_importer_exports_to_every_format(addon, clean_scene, bpy_session,
                                                                         tmp_path, name):
    """Blender 5.3's PLY importer makes a native splat cloud (no SHARP modifier, identity transform);
    exporting it in world space writes the world the viewport shows, in the photo frame's axes."""
    bpy = bpy_session
    if not addon_module("blender.compat").has_native_splats():
        pytest.skip(f"Blender {bpy.app.version_string} has no native Gaussian splats (5.3+)")
    fmt = formats.format_named(name)
    g = small_scene(sh_degree=min(fmt.sh_degree, 3)).replace(focal_px=None, image_size=None)
    ply.write_ply(g, tmp_path / "source.ply", layout="3dgs")
    bpy.ops.wm.ply_import(filepath=str(tmp_path / "source.ply"))
    cloud = bpy.context.active_object
    assert cloud.data.type == "GAUSSIAN_SPLAT" and addon_module("blender.scene").splat_modifier(cloud) is None
    cloud.location = (0.5, 1.0, -2.0)
    bpy.context.view_layer.update()
    path = tmp_path / f"out{fmt.extension}"
    assert bpy.ops.sharp.export_splats(filepath=str(path)) == {"FINISHED"}
    back = formats.read_splats(path)
    world = g.means @ np.eye(3).T + [0.5, 1.0, -2.0]  # Blender's importer converts nothing: data = world
    want = world @ G.OPENCV_TO_BLENDER_WORLD  # world -> photo-frame axes: W^T p, row-wise p W
    nearest = np.argmin(((back.means[:, None] - want[None]) ** 2).sum(-1), axis=1)
    assert len(set(nearest.tolist())) == len(g)
    np.testing.assert_allclose(back.means, want[nearest], atol=0.01 * float(np.abs(want).max()))
    np.testing.assert_allclose(back.colors, g.colors[nearest], atol=0.05)


def test_export_web_page_writes_the_folder_of_what_the_modifier_shows(addon, clean_scene, bpy_session, tmp_path):
    bpy = bpy_session
    so = addon_module("blender.scene")
    g = small_scene(sh_degree=0)
    built = so.gaussians_to_object(g, "room", collection=clean_scene.collection)
    so.set_modifier_input(so.splat_modifier(built.splats), "Opacity Threshold", 0.5)
    assert bpy.ops.sharp.export_web_page(directory=str(tmp_path / "site")) == {"FINISHED"}
    assert "<title>room</title>" in (tmp_path / "site" / "index.html").read_text()
    assert len(formats.read_splats(tmp_path / "site" / "scene.spz")) == int(np.count_nonzero(g.opacities >= 0.5))
