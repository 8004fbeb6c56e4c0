"""Blender 5.3's own *Import SPZ* (``wm.spz_import``) puts our SPZ files exactly where our splat object
is: position, rotation, scale, opacity and colour (SH turned with the splats), within SPZ's quantisation.

Blender's importer takes SPZ's axes as the specification names them (RUB: x right, y up, z back) and
maps a position to Blender's (x, -z, y); our writer turns the photo frame's RDF into RUB, so a splat
lands at OPENCV_TO_BLENDER_WORLD @ mean, where our photo frame (at the origin) shows it. Bounds: the
quantisation of each attribute, derived in ``tests/core/test_format_spz.py``.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from sharp_addon import formats
from sharp_addon.gaussians import OPENCV_TO_BLENDER_WORLD, Gaussians, file_sh_dc, rotation_matrices
from sharp_addon.sh_rotation import rotate_sh
from tests.conftest import ADDON_MODULE
from tests.support.builders import random_gaussians

pytestmark = pytest.mark.blender

POSITION_ERROR = 2.0**-13 + 1e-5  # + float32 rounding of world coordinates a few metres out
SCALE_ERROR = np.expm1(1 / 32) + 1e-5
OPACITY_ERROR = 0.5 / 255 + 1e-6
F_DC_ERROR = 0.5 / (0.15 * 255) + 1e-5
SH_ERRORS = ((0.5 + 4) / 128 + 1e-5, (0.5 + 8) / 128 + 1e-5)  # per coefficient: degree 1, degrees 2-3
ANGLE_ERROR = {2: 0.24, 3: 0.005, 4: 0.005}


@pytest.fixture
def bpy(bpy_session):
    if bpy_session.app.version < (5, 3, 0):
        pytest.skip(f"Blender {bpy_session.app.version_string} has no SPZ import (5.3 has)")
    return bpy_session


def our_object(bpy, collection, sh_degree: int = 3):
    """Our splat object of SHARP-like splats (the add-on's own Gaussians class, which it checks)."""
    so = importlib.import_module(f"{ADDON_MODULE}.blender.scene")
    g = random_gaussians(400, seed=5, sh_degree=sh_degree)
    g = importlib.import_module(f"{ADDON_MODULE}.gaussians").Gaussians(**vars(g))
    return g, so.gaussians_to_object(g, "ours", collection=collection, create_camera=False, setup_render=False)


def in_world(g, matrix) -> dict[str, np.ndarray]:
    """Each splat of ``g`` as an object with world ``matrix`` (a uniform scale at most) shows it."""
    m = np.array(matrix, dtype=np.float64)
    scale = np.cbrt(np.linalg.det(m[:3, :3]))
    turn = m[:3, :3] / scale
    return {"position": g.means @ m[:3, :3].T + m[:3, 3], "rotation": turn @ rotation_matrices(g.quats),
            "scale": g.scales * scale, "sh": None if g.sh_rest is None else rotate_sh(g.sh_rest, turn)}


def imported(bpy, path) -> dict[str, np.ndarray]:
    """What Blender's own SPZ import made of ``path``, in world space."""
    before = set(bpy.data.objects)
    assert bpy.ops.wm.spz_import(filepath=str(path)) == {"FINISHED"}
    (obj,) = set(bpy.data.objects) - before
    assert obj.type == "POINTCLOUD"
    attributes = obj.data.attributes

    def read(name: str, width: int, field: str) -> np.ndarray:
        out = np.empty(len(attributes[name].data) * width, dtype=np.float32)
        attributes[name].data.foreach_get(field, out)
        return out.reshape(-1, width)

    g = Gaussians(means=read("position", 3, "vector"), scales=read("scale", 3, "vector"),
                  quats=read("rotation", 4, "value"), colors=np.zeros((len(obj.data.points), 3), np.float32),
                  opacities=np.zeros(len(obj.data.points), np.float32))
    sh = [name for name in attributes.keys() if name.startswith("radiance:sh_")]
    world = in_world(g, obj.matrix_world)
    world["sh"] = np.stack([read(f"radiance:sh_{k}", 3, "vector") for k in range(len(sh))], axis=1) if sh else None
    world["base"] = read("radiance:base", 4, "vector")  # f_dc as the file holds it, and the opacity
    return world


def assert_same_splats(got: dict, want: dict, g, version: int) -> None:
    assert got["position"].shape == want["position"].shape
    assert np.abs(got["position"] - want["position"]).max() <= POSITION_ERROR
    turn = np.einsum("nji,njk->nik", got["rotation"], want["rotation"])  # R_got^T R_want: the error turn
    angle = np.arccos(np.clip((np.trace(turn, axis1=1, axis2=2) - 1) / 2, -1, 1))
    assert angle.max() <= ANGLE_ERROR[version]
    assert np.abs(got["scale"] / want["scale"] - 1).max() <= SCALE_ERROR
    assert np.abs(got["base"][:, 3] - g.opacities).max() <= OPACITY_ERROR
    assert np.abs(got["base"][:, :3] - file_sh_dc(g)).max() <= F_DC_ERROR
    for degree, band in ((1, slice(0, 3)), (2, slice(3, 8)), (3, slice(8, 15))):
        # turning a band mixes its 2l + 1 coefficients orthogonally: the band's error norm is kept
        error = np.linalg.norm(got["sh"][:, band] - want["sh"][:, band], axis=1)
        assert error.max() <= np.sqrt(2 * degree + 1) * SH_ERRORS[degree > 1]


@pytest.mark.parametrize("version", [2, 3, 4])
def test_blenders_spz_import_puts_our_file_where_our_object_is(addon, bpy, clean_scene, tmp_path, version):
    g, built = our_object(bpy, clean_scene.collection)
    bpy.context.view_layer.update()
    assert np.allclose(np.array(built.frame.matrix_world)[:3, 3], 0), "an empty scene: the photo frame at the origin"
    path = formats.write_splats(g, tmp_path / "ours.spz", version=version)
    assert_same_splats(imported(bpy, path), in_world(g, built.splats.matrix_world), g, version)


def test_a_world_space_export_of_a_moved_object_lands_where_the_viewport_shows_it(addon, bpy, clean_scene, tmp_path):
    """Our SPZ export (world space, the default) of an object whose photo frame was moved, turned and
    scaled, read by Blender's own importer: the splats are where they were."""
    g, built = our_object(bpy, clean_scene.collection)
    built.frame.location = (1.5, -2.0, 0.75)
    built.frame.rotation_euler.z += 0.6
    built.frame.rotation_euler.x += 0.3
    built.frame.scale = (1.7, 1.7, 1.7)
    bpy.context.view_layer.update()
    path = tmp_path / "moved.spz"
    assert bpy.ops.sharp.export_splats(filepath=str(path), apply_filters=False) == {"FINISHED"}
    assert_same_splats(imported(bpy, path), in_world(g, built.splats.matrix_world), g, 3)


def test_far_splats_stored_at_a_coarser_step_land_where_they_belong(bpy, clean_scene, tmp_path):
    """Beyond +-2048 m our writer keeps fewer fractional bits (the header says how many); Blender reads them."""
    g = random_gaussians(200, seed=6)
    far = g.replace(means=g.means * np.float32(1000))  # up to 6 km: 10 fractional bits, steps of 1/1024 m
    got = imported(bpy, formats.write_splats(far, tmp_path / "far.spz"))
    want = far.means @ OPENCV_TO_BLENDER_WORLD.T
    assert np.abs(got["position"] - want).max() <= 2.0**-11 + 1e-6
