"""The depth mesh of SHARP's visible layer on synthetic depth grids: vertex count, UVs, step, the
depth-jump cut, and clear errors for splats that are no SHARP prediction."""

from __future__ import annotations

import numpy as np
import pytest

from sharp_addon.depth_mesh import DEFAULT_CUT_THRESHOLD, build_depth_mesh
from sharp_addon.errors import GaussiansError
from tests.support.builders import grid_gaussians


def test_a_smooth_surface_keeps_every_vertex_and_face_of_the_grid():
    mesh = build_depth_mesh(grid_gaussians(np.full((9, 9), 2.0)), step=1)
    assert mesh.vertices.shape == (81, 3) and mesh.uvs.shape == (81, 2) and mesh.face_count == 64
    g = grid_gaussians(np.full((9, 9), 2.0))
    np.testing.assert_array_equal(mesh.vertices, g.means[:81])  # the visible layer's centres, in order
    assert mesh.quads.min() == 0 and mesh.quads.max() == 80


def test_uvs_are_pixel_centres_with_v_up():
    mesh = build_depth_mesh(grid_gaussians(np.full((4, 4), 3.0)), step=1)
    uv = mesh.uvs.reshape(4, 4, 2)
    np.testing.assert_allclose(uv[0, :, 0], [0.125, 0.375, 0.625, 0.875])  # columns left to right
    np.testing.assert_allclose(uv[:, 0, 1], [0.875, 0.625, 0.375, 0.125])  # row 0 (top) has the highest v
    assert np.all(uv[..., 0] == uv[0:1, :, 0]) and np.all(uv[..., 1] == uv[:, 0:1, 1])


def test_faces_face_the_camera():
    mesh = build_depth_mesh(grid_gaussians(np.full((5, 5), 2.0)), step=1)
    a, b, c = (mesh.vertices[mesh.quads[:, k]] for k in range(3))
    normals = np.cross(b - a, c - a)  # OpenCV frame: the camera looks along +z, so "towards it" is -z
    # Blender's frame turns (x, y, z) -> (x, z, -y), a proper rotation, so the winding carries over
    assert np.all(normals[:, 2] < 0)


@pytest.mark.parametrize(("side", "step", "per_side"), [(9, 2, 5), (10, 2, 6), (10, 3, 4), (10, 9, 2)])
def test_step_takes_every_nth_splat_and_reaches_the_last_row(side, step, per_side):
    mesh = build_depth_mesh(grid_gaussians(np.full((side, side), 2.0)), step=step)
    assert len(mesh.vertices) == per_side**2 and mesh.face_count == (per_side - 1) ** 2
    uv = mesh.uvs.reshape(per_side, per_side, 2)
    assert uv[0, 0, 0] == pytest.approx(0.5 / side) and uv[0, -1, 0] == pytest.approx(1 - 0.5 / side)


def test_the_cut_removes_faces_across_a_depth_step_and_keeps_the_rest():
    depth = np.full((8, 8), 2.0)
    depth[:, 4:] = 2.0 * 1.3  # a 30 % jump between columns 3 and 4
    cut = build_depth_mesh(grid_gaussians(depth), step=1, cut_threshold=0.2)
    assert cut.face_count == 49 - 7  # 7 x 7 faces minus the 7 spanning columns 3-4
    corners = cut.vertices[cut.quads][..., 2]
    assert np.all(corners.max(axis=1) / corners.min(axis=1) <= 1.2)
    assert len(cut.vertices) == 64  # both sides keep their vertices; none is orphaned
    whole = build_depth_mesh(grid_gaussians(depth), step=1, cut_threshold=0.35)
    assert whole.face_count == 49
    edge = build_depth_mesh(grid_gaussians(depth), step=1, cut_threshold=0.3)
    assert edge.face_count == 49  # exactly 1 + threshold is kept (the cut is "exceeds")


def test_vertices_no_face_uses_are_dropped_and_indices_stay_valid():
    depth = np.full((6, 6), 2.0)
    depth[0, 0] = 50.0  # a lone far corner: its only face goes, and with it the vertex
    mesh = build_depth_mesh(grid_gaussians(depth), step=1)
    assert mesh.face_count == 24 and len(mesh.vertices) == 35
    assert mesh.quads.max() == len(mesh.vertices) - 1
    assert not np.any(mesh.vertices[:, 2] == 50.0)
    assert mesh.uvs.min() > 0 and mesh.uvs.max() < 1


def test_non_finite_or_non_positive_depths_never_make_faces():
    g = grid_gaussians(np.full((5, 5), 2.0))
    means = g.means.copy()
    means[12, 2] = np.nan  # the centre of layer 0; the constructor would refuse it, so set it after
    means[0, 2] = -1.0  # behind the camera
    g.means = means
    mesh = build_depth_mesh(g, step=1)
    assert mesh.face_count == 16 - 4 - 1 and np.all(np.isfinite(mesh.vertices))
    assert np.all(mesh.vertices[:, 2] > 0)


def test_a_full_size_grid_keeps_every_vertex_and_face():
    """SHARP's full 768 x 768 grid (how fast: bench/depth_mesh.py)."""
    rng = np.random.default_rng(0)
    g = grid_gaussians(2.0 + 0.01 * rng.random((768, 768)))
    mesh = build_depth_mesh(g, step=1, cut_threshold=DEFAULT_CUT_THRESHOLD)
    assert mesh.face_count == 767**2 and len(mesh.vertices) == 768**2


def test_splats_without_sharp_layers_are_refused_clearly():
    g = grid_gaussians(np.full((4, 4), 2.0))
    with pytest.raises(GaussiansError, match=r"depth layers.*3DGS"):
        build_depth_mesh(g.replace(layers=None))
    with pytest.raises(GaussiansError, match=r"square grid.*15"):
        build_depth_mesh(g.subset(np.arange(1, 32)))
    shuffled = g.layers.copy()
    shuffled[[0, 20]] = shuffled[[20, 0]]  # 16 splats in layer 0, but not one block
    with pytest.raises(GaussiansError, match="one block"):
        build_depth_mesh(g.replace(layers=shuffled))
    with pytest.raises(GaussiansError, match="step"):
        build_depth_mesh(g, step=0)
    assert build_depth_mesh(g, step=5).face_count == 1  # a step past the grid still spans the photo
    with pytest.raises(GaussiansError, match="threshold"):
        build_depth_mesh(g, cut_threshold=-0.1)
