"""SH colour turns with its splats, and any affine map (a Blender object's matrix) moves splats whole."""

from __future__ import annotations

import numpy as np
import pytest

from sharp_addon.errors import GaussiansError
from sharp_addon.gaussians import rotation_matrices
from sharp_addon.sh_rotation import band_matrices, polar_rotation, real_sh_basis, rotate_sh
from tests.support.builders import random_gaussians


def random_orthogonal(seed: int, mirror: bool = False) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    return q @ np.diag([1, 1, -1]) if mirror else q


def colour(sh_rest: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """[N, K, 3] coefficients seen along [D, 3] directions -> [N, D, 3] (the view-dependent part)."""
    basis = real_sh_basis(directions)[:, : sh_rest.shape[1]]
    return np.einsum("dk,nkc->ndc", basis, sh_rest.astype(np.float64))


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("k", [3, 8, 15])
def test_turned_coefficients_show_along_d_what_the_old_ones_showed_along_q_transposed_d(mirror, k):
    q = random_orthogonal(k, mirror)
    sh = np.random.default_rng(1).normal(size=(50, k, 3)).astype(np.float32)
    d = np.random.default_rng(2).normal(size=(200, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    np.testing.assert_allclose(colour(rotate_sh(sh, q), d), colour(sh, d @ q), atol=2e-5)


def test_band_matrices_are_orthogonal_the_identity_for_no_turn_and_compose():
    a, b = random_orthogonal(3), random_orthogonal(4)
    for degree, m in band_matrices(np.eye(3)).items():
        np.testing.assert_allclose(m, np.eye(2 * degree + 1), atol=1e-10)
    ma, mb, mab = band_matrices(a), band_matrices(b), band_matrices(a @ b)
    for degree in (1, 2, 3):
        np.testing.assert_allclose(ma[degree] @ ma[degree].T, np.eye(2 * degree + 1), atol=1e-10)
        np.testing.assert_allclose(ma[degree] @ mb[degree], mab[degree], atol=1e-10)
    with pytest.raises(GaussiansError, match="orthogonal"):
        band_matrices(np.diag([1.0, 2.0, 1.0]))


def test_degree_one_turns_like_a_vector_in_3dgs_basis_order():
    """Band 1 is (-y, z, -x) times a constant: a 90-degree turn about Z sends x to y."""
    turn = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    sh = np.zeros((1, 3, 3), np.float32)
    sh[0, 2] = -1.0  # brightest along +x
    turned = rotate_sh(sh, turn)
    np.testing.assert_allclose(turned[0, :, 0], [-1.0, 0.0, 0.0], atol=1e-6)  # brightest along +y


def test_a_uniform_map_moves_splats_as_transformed_does():
    g = random_gaussians(40, seed=3, sh_degree=3)
    r, t, s = random_orthogonal(5), np.array([1.0, -2.0, 0.5]), 2.5
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = s * r, t
    a, b = g.transformed_by(m), g.transformed(r, t, s)
    for name in ("means", "scales", "sh_rest"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-5)
    np.testing.assert_allclose(a.covariances(), b.covariances(), atol=1e-6)
    np.testing.assert_array_equal(a.opacities, g.opacities)
    assert not np.allclose(a.sh_rest, g.sh_rest)  # the colour turned with the splats


def test_non_uniform_scale_shear_and_mirror_reshape_each_covariance():
    g = random_gaussians(60, seed=4, sh_degree=2)
    a = np.diag([2.0, 0.5, 1.5]) @ random_orthogonal(6, mirror=True)
    a[0, 1] += 0.3  # a shear too
    m = np.hstack([a, [[0.1], [0.2], [0.3]]])
    out = g.transformed_by(m)
    np.testing.assert_allclose(out.means, g.means @ a.T + [0.1, 0.2, 0.3], rtol=1e-5, atol=1e-5)
    expected = np.einsum("ij,njk,lk->nil", a, g.covariances(), a)
    np.testing.assert_allclose(out.covariances(), expected, rtol=1e-4, atol=1e-9)
    assert np.all(np.linalg.det(rotation_matrices(out.quats)) > 0)
    np.testing.assert_allclose(out.sh_rest, rotate_sh(g.sh_rest, polar_rotation(a)), atol=1e-6)
    np.testing.assert_array_equal(out.opacities, g.opacities)
    np.testing.assert_array_equal(out.colors, g.colors)


@pytest.mark.parametrize("matrix", [np.diag([1.0, 1.0, 0.0, 1.0]), np.full((4, 4), np.nan), np.eye(2)])
def test_a_flattening_or_broken_transform_is_refused(matrix):
    with pytest.raises(GaussiansError):
        random_gaussians(5).transformed_by(matrix)
