"""Blender 5.3's own USD import (``wm.usd_import``) of our ``.usda`` makes a native Gaussian-splat cloud whose
splats are, in world space, exactly where and what our splat object of the same Gaussians shows; and
Blender 5.3's own USD export of a splat cloud is no particle field (we say so when asked to read one).

Our file is a Y-up stage in the photo frame's RUB axes; Blender's import turns a Y-up stage to Z-up
(the object gets +90 degrees about X), which is OPENCV_TO_BLENDER_WORLD from the photo frame: where our
photo frame at the origin puts the splats. Bounds: float32 rounding only (the text holds every float32
exactly; the world transforms are products of float32 matrices).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from sharp_addon.errors import SplatFileError
from sharp_addon.formats import usd
from sharp_addon.gaussians import rotation_matrices
from sharp_addon.sh_rotation import rotate_sh
from tests.conftest import ADDON_MODULE
from tests.support.builders import random_gaussians

pytestmark = pytest.mark.blender


@pytest.fixture
def bpy(bpy_session):
    if bpy_session.app.version < (5, 3, 0):
        pytest.skip(f"Blender {bpy_session.app.version_string} imports no USD particle field as splats (5.3 does)")
    return bpy_session


def our_object(collection, sh_degree: int = 3):
    """Our splat object of SHARP-like splats (the add-on's own Gaussians class, which it checks)."""
    so = importlib.import_module(f"{ADDON_MODULE}.blender.scene")
    g = random_gaussians(400, seed=7, sh_degree=sh_degree)
    g = importlib.import_module(f"{ADDON_MODULE}.gaussians").Gaussians(**vars(g))
    return g, so.gaussians_to_object(g, "ours", collection=collection, create_camera=False, setup_render=False)


def in_world(obj) -> dict[str, np.ndarray]:
    """What a native splat cloud (ours or Blender's) holds, each splat as its object puts it in the world."""
    attributes = obj.data.attributes
    n = len(obj.data.points)

    def read(name: str, width: int, field: str) -> np.ndarray:
        out = np.empty(n * width, dtype=np.float32)
        attributes[name].data.foreach_get(field, out)
        return out.reshape(n, width)

    m = np.array(obj.matrix_world, dtype=np.float64)
    scale = np.cbrt(np.linalg.det(m[:3, :3]))
    turn = m[:3, :3] / scale
    sh = sorted(name for name in attributes.keys() if name.startswith("radiance:sh_"))
    local_sh = np.stack([read(f"radiance:sh_{k}", 3, "vector") for k in range(len(sh))], axis=1) if sh else None
    return {"position": read("position", 3, "vector") @ m[:3, :3].T + m[:3, 3],
            "rotation": turn @ rotation_matrices(read("rotation", 4, "value")),
            "scale": read("scale", 3, "vector") * scale,
            "base": read("radiance:base", 4, "vector"),  # the SH DC as the file encodes it, and the opacity
            "sh": None if local_sh is None else rotate_sh(local_sh, turn)}


def imported(bpy, path):
    """The one object Blender's own USD import made of ``path``."""
    before = set(bpy.data.objects)
    assert bpy.ops.wm.usd_import(filepath=str(path)) == {"FINISHED"}
    (obj,) = set(bpy.data.objects) - before
    assert obj.type == "POINTCLOUD" and obj.data.type == "GAUSSIAN_SPLAT"
    return obj


def assert_same_splats(got: dict, want: dict) -> None:
    assert got["position"].shape == want["position"].shape
    assert np.abs(got["position"] - want["position"]).max() <= 2e-6  # metres, a few metres out
    assert np.abs(got["rotation"] - want["rotation"]).max() <= 1e-6  # rotation matrices: the same turns
    assert np.abs(got["scale"] / want["scale"] - 1).max() <= 1e-6
    np.testing.assert_array_equal(got["base"][:, 3], want["base"][:, 3])  # opacity
    assert np.abs(got["base"][:, :3] - want["base"][:, :3]).max() <= 1e-5  # DC: float32 sRGB round trip
    assert (got["sh"] is None) == (want["sh"] is None)
    if want["sh"] is not None:
        assert np.abs(got["sh"] - want["sh"]).max() <= 1e-6


@pytest.mark.parametrize("sh_degree", [0, 3])
def test_blenders_usd_import_puts_our_file_where_our_object_is(addon, bpy, clean_scene, tmp_path, sh_degree):
    g, built = our_object(clean_scene.collection, sh_degree)
    bpy.context.view_layer.update()
    assert np.allclose(np.array(built.frame.matrix_world)[:3, 3], 0), "an empty scene: the photo frame at the origin"
    path = tmp_path / "ours.usda"
    path.write_bytes(usd.encode(g))
    got = in_world(imported(bpy, path))
    assert_same_splats(got, in_world(built.splats))
    np.testing.assert_array_equal(got["base"][:, 3], g.opacities)


def test_blenders_own_usd_export_of_a_splat_cloud_is_no_particle_field(bpy, clean_scene, tmp_path):
    """Blender 5.3 exports a native splat cloud as a ``Points`` prim with rotation and scale primvars and
    drops ``radiance:base`` (colour and opacity): our reader refuses it and says where splats go out whole."""
    ours = tmp_path / "ours.usda"
    ours.write_bytes(usd.encode(random_gaussians(50, seed=8, sh_degree=1)))
    imported(bpy, ours)
    exported = tmp_path / "blender.usda"
    assert bpy.ops.wm.usd_export(filepath=str(exported)) == {"FINISHED"}
    text = exported.read_text()
    assert 'def Points "' in text and "ParticleField" not in text
    assert "primvars:rotation" in text and "radiance:base" not in text
    with pytest.raises(SplatFileError, match="plain Points"):
        usd.decode(exported.read_bytes(), str(exported))
