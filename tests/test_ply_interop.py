"""Our PLY files (both layouts) in other tools: Blender 5.3's own PLY importer and PlayCanvas'
splat-transform (npm, installed into .venv/npm by ``tools/dev.py setup``). Each must read the
count and the values we wrote."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sharp_addon import ply
from sharp_addon.gaussians import color_to_sh_dc, linear_to_srgb
from tests.conftest import ROOT
from tests.support.builders import random_gaussians

SPLAT_TRANSFORM = ROOT / ".venv" / "npm" / "node_modules" / ".bin" / "splat-transform"
LAYOUTS = ("sharp", "3dgs")


def written(tmp_path: Path, layout: str, n: int = 300):
    g = random_gaussians(n, sh_degree=1, seed=3)
    return g, ply.write_ply(g, tmp_path / f"ours-{layout}.ply", layout=layout)


def file_dc(g) -> np.ndarray:
    """The f_dc values our writer puts in the file (sRGB-encoded SH degree 0)."""
    return color_to_sh_dc(linear_to_srgb(g.colors))


# ---- Blender 5.3's importer -----------------------------------------------------------------------


@pytest.mark.blender
@pytest.mark.parametrize("layout", LAYOUTS)
def test_blender_5_3_imports_our_files_with_our_values(bpy_session, tmp_path, layout):
    bpy = bpy_session
    if bpy.app.version < (5, 3, 0):
        pytest.skip(f"Blender {bpy.app.version_string} has no Gaussian-splat PLY import (5.3 has)")
    g, path = written(tmp_path, layout)
    bpy.ops.wm.read_homefile(use_factory_startup=True, use_empty=True)
    assert bpy.ops.wm.ply_import(filepath=str(path)) == {"FINISHED"}
    (obj,) = bpy.data.objects
    attributes = obj.data.attributes

    def read(name: str, width: int, field: str) -> np.ndarray:
        out = np.empty(len(attributes[name].data) * width, dtype=np.float32)
        attributes[name].data.foreach_get(field, out)
        return out.reshape(-1, width)

    assert obj.type == "POINTCLOUD" and len(obj.data.points) == len(g)
    np.testing.assert_array_equal(read("position", 3, "vector"), g.means)
    np.testing.assert_allclose(read("scale", 3, "vector"), g.scales, rtol=1e-6)  # our linear sigmas
    np.testing.assert_allclose(read("rotation", 4, "value"), g.quats, atol=1e-6)  # (w, x, y, z)
    base = read("radiance:base", 4, "vector")  # f_dc as written, then the opacity
    np.testing.assert_allclose(base[:, :3], file_dc(g), atol=1e-6)
    np.testing.assert_allclose(base[:, 3], g.opacities, atol=1e-6)


# ---- PlayCanvas splat-transform -------------------------------------------------------------------


@pytest.fixture(scope="module")
def splat_transform():
    """The pinned splat-transform, or a skip saying why (a failure in CI, which must have it)."""
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed"
    elif not SPLAT_TRANSFORM.exists():
        missing = f"splat-transform is not installed in {SPLAT_TRANSFORM.parents[2]} (run tools/dev.py setup)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the interop test: {missing}")
        pytest.skip(missing)

    def convert(source: Path, target: Path) -> Path:
        done = subprocess.run([str(SPLAT_TRANSFORM), "-w", str(source), str(target)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return target

    return convert


def read_csv(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    table = np.array(rows[1:], dtype=np.float64)
    return {name: table[:, i] for i, name in enumerate(rows[0])}


def columns(table: dict[str, np.ndarray], prefix: str, count: int) -> np.ndarray:
    return np.stack([table[f"{prefix}{i}"] for i in range(count)], axis=1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_splat_transform_reads_our_values(splat_transform, tmp_path, layout):
    g, path = written(tmp_path, layout)
    table = read_csv(splat_transform(path, tmp_path / "out.csv"))
    assert len(table["x"]) == len(g)
    np.testing.assert_allclose(np.stack([table["x"], table["y"], table["z"]], axis=1), g.means, atol=1e-6)
    np.testing.assert_allclose(np.exp(columns(table, "scale_", 3)), g.scales, rtol=1e-5)
    np.testing.assert_allclose(columns(table, "rot_", 4), g.quats, atol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-table["opacity"])), g.opacities, atol=1e-6)
    np.testing.assert_allclose(columns(table, "f_dc_", 3), file_dc(g), atol=1e-5)
    np.testing.assert_allclose(columns(table, "f_rest_", 9).reshape(-1, 3, 3).transpose(0, 2, 1), g.sh_rest,
                               atol=1e-6)  # channel-major in files


@pytest.mark.parametrize("layout", LAYOUTS)
def test_our_files_survive_splat_transforms_spz_and_ply(splat_transform, tmp_path, layout):
    g, path = written(tmp_path, layout)
    spz = splat_transform(path, tmp_path / "out.spz")  # Niantic's compressed format: lossy
    back = ply.read_ply(splat_transform(spz, tmp_path / "back.ply"))  # its own PLY, read by us
    assert len(back) == len(g)
    np.testing.assert_allclose(back.means, g.means, atol=2e-3 * np.abs(g.means).max())
    np.testing.assert_allclose(np.log(back.scales), np.log(g.scales), atol=0.07)  # 1/16 log steps
    np.testing.assert_allclose(back.opacities, g.opacities, atol=0.01)
    np.testing.assert_allclose(linear_to_srgb(back.colors), linear_to_srgb(g.colors), atol=0.02)
    same = np.abs(np.einsum("ij,ij->i", back.quats / np.linalg.norm(back.quats, axis=1, keepdims=True), g.quats))
    assert same.min() > 0.999  # the same rotation (q and -q alike)
    plain = ply.read_ply(splat_transform(path, tmp_path / "plain.ply"))  # PLY to PLY: exact
    np.testing.assert_array_equal(plain.means, g.means)
    np.testing.assert_allclose(plain.scales, g.scales, rtol=1e-6)

