"""Turning spherical-harmonic colour with its splat: the band matrices of an orthogonal 3x3 map.

No bpy, no torch. A splat's view-dependent colour is ``sum_k c_k Y_k(d)`` over the real SH basis
that 3DGS files use (degree 1-3, the same functions and order as 3DGS's ``eval_sh``; ``d`` the unit
view direction). When the splat is turned by ``Q`` (a rotation, or a reflection: any orthogonal
matrix), the colour seen along ``d`` must be the old colour along ``Q^T d``. Each band is closed
under ``Q``, so that is one small matrix per band, applied to every splat at once:
``c'[l] = M_l @ c[l]``. The matrices are fitted by least squares on a fixed set of directions (exact
up to rounding, since the band space holds the rotated functions), so they follow whatever basis the
files use, signs included, without hand-derived Wigner formulas.
"""

from __future__ import annotations

import numpy as np

from .errors import GaussiansError

BAND_SLICES = {1: slice(0, 3), 2: slice(3, 8), 3: slice(8, 15)}  # rows of sh_rest per degree


def real_sh_basis(directions: np.ndarray) -> np.ndarray:
    """[K, 3] unit directions -> [K, 15] the degree 1-3 real SH functions, in 3DGS's order and signs."""
    x, y, z = (directions[:, i].astype(np.float64) for i in range(3))
    xx, yy, zz = x * x, y * y, z * z
    c1 = 0.4886025119029199
    c2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
    c3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
          1.445305721320277, -0.5900435899266435)
    return np.stack([
        -c1 * y, c1 * z, -c1 * x,
        c2[0] * x * y, c2[1] * y * z, c2[2] * (2 * zz - xx - yy), c2[3] * x * z, c2[4] * (xx - yy),
        c3[0] * y * (3 * xx - yy), c3[1] * x * y * z, c3[2] * y * (4 * zz - xx - yy),
        c3[3] * z * (2 * zz - 3 * xx - 3 * yy), c3[4] * x * (4 * zz - xx - yy), c3[5] * z * (xx - yy),
        c3[6] * x * (xx - 3 * yy),
    ], axis=1)


def _sample_directions(count: int = 64) -> np.ndarray:
    """Fixed, well-spread unit directions (a Fibonacci sphere): enough to pin down every band."""
    i = np.arange(count) + 0.5
    z = 1 - 2 * i / count
    r = np.sqrt(1 - z * z)
    phi = np.pi * (1 + 5**0.5) * i
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def band_matrices(q: np.ndarray) -> dict[int, np.ndarray]:
    """{degree: [2l+1, 2l+1]} for the orthogonal map ``q``: ``c' = M @ c`` per band."""
    q = np.asarray(q, dtype=np.float64).reshape(3, 3)
    if not np.allclose(q @ q.T, np.eye(3), atol=1e-5):
        raise GaussiansError("SH colour turns only with a rotation or reflection (an orthogonal matrix)")
    d = _sample_directions()
    before, after = real_sh_basis(d), real_sh_basis(d @ q)  # row k of d @ q is q^T d_k
    matrices = {}
    for degree, rows in BAND_SLICES.items():
        solution, *_ = np.linalg.lstsq(before[:, rows], after[:, rows], rcond=None)
        matrices[degree] = solution
    return matrices


def rotate_sh(sh_rest: np.ndarray | None, q: np.ndarray) -> np.ndarray | None:
    """``sh_rest`` [N, K, 3] (K = 3, 8 or 15) as seen after the splats are turned by orthogonal ``q``."""
    if sh_rest is None:
        return None
    out = np.empty_like(sh_rest)
    for degree, matrix in band_matrices(q).items():
        rows = BAND_SLICES[degree]
        if rows.stop > sh_rest.shape[1]:
            break
        out[:, rows] = np.einsum("jk,nkc->njc", matrix.astype(np.float32), sh_rest[:, rows], optimize=True)
    return out


def polar_rotation(a: np.ndarray) -> np.ndarray:
    """The orthogonal factor ``Q`` of ``a = Q P`` (P symmetric positive): how a linear map turns directions."""
    u, _, vt = np.linalg.svd(np.asarray(a, dtype=np.float64).reshape(3, 3))
    return u @ vt
