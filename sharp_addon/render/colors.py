"""Per-splat colour seen from a camera centre: SH evaluated in the file's encoding, then linear.

No torch. 3DGS evaluates spherical harmonics in the colour encoding its files store (sRGB for
ml-sharp): the DC term is the encoded colour (0.5 + C0 f_dc, see ``gaussians.sh_dc_to_color``),
the higher bands are added for the direction from the camera centre to the splat (in the
Gaussians' frame, so no rotation of the coefficients is needed), the sum is clamped at 0 and
then decoded to linear when the encoding is sRGB.
"""

from __future__ import annotations

import numpy as np

from ..gaussians import Gaussians, linear_to_srgb, srgb_to_linear

SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def sh_basis(directions: np.ndarray, degree: int) -> np.ndarray:
    """The real SH basis of bands 1..degree, [N, K] (3DGS's order and signs) for unit directions."""
    x, y, z = (directions[:, i] for i in range(3))
    basis = [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        basis += [SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2 * zz - xx - yy), SH_C2[3] * x * z,
                  SH_C2[4] * (xx - yy)]
    if degree >= 3:
        basis += [SH_C3[0] * y * (3 * xx - yy), SH_C3[1] * x * y * z, SH_C3[2] * y * (4 * zz - xx - yy),
                  SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy), SH_C3[4] * x * (4 * zz - xx - yy),
                  SH_C3[5] * z * (xx - yy), SH_C3[6] * x * (xx - 3 * yy)]
    return np.stack(basis, axis=1)


def view_colors(g: Gaussians, camera_position: np.ndarray) -> np.ndarray:
    """Linear RGB [N, 3] float32 of every splat seen from ``camera_position`` (the plain colours without SH)."""
    if g.sh_rest is None or not np.any(g.sh_rest):
        return g.colors
    encoded = linear_to_srgb(g.colors) if g.color_space == "srgb" else g.colors
    directions = g.means.astype(np.float64) - np.asarray(camera_position, dtype=np.float64)
    norm = np.linalg.norm(directions, axis=1, keepdims=True)
    directions = directions / np.where(norm > 0, norm, 1.0)
    basis = sh_basis(directions, g.sh_degree).astype(np.float32)
    color = np.maximum(encoded + np.einsum("nk,nkc->nc", basis, g.sh_rest), 0.0).astype(np.float32)
    return srgb_to_linear(color) if g.color_space == "srgb" else color
