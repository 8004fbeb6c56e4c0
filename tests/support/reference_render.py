"""A numpy reference of the Gaussian image from the photo's camera, per pixel-centre ray (no torch, no bpy).

Each ray takes from each splat alpha = min(0.99, o exp(-m^2 / 2)) with m the ray's closest
Mahalanobis distance to the splat's centre (the ray marginal, what Blender's native splats and a
ray tracer compute), cut at the opacity-adaptive extent (m <= 3 and alpha >= 1/255), composited
front to back by the centres' depth. Under perspective it differs slightly from 3DGS's EWA
projection, which linearises the projection at the centre.
"""

from __future__ import annotations

import numpy as np

from sharp_addon import gaussians as G

W, H, FOCAL = 64, 48, 60.0


def known_scene(width: int = W, height: int = H, focal: float = FOCAL) -> G.Gaussians:
    """A round red splat, an elongated tilted green one, and a blue one half behind the red one."""
    tilt = G.quats_from_matrices(np.array([[[np.cos(0.6), -np.sin(0.6), 0], [np.sin(0.6), np.cos(0.6), 0],
                                            [0, 0, 1]]]))[0]
    return G.Gaussians(
        means=np.float32([[0.0, 0.0, 4.0], [1.2, -0.7, 4.0], [0.25, 0.1, 5.0]]),
        scales=np.float32([[0.2, 0.2, 0.2], [0.35, 0.08, 0.1], [0.25, 0.25, 0.25]]),
        quats=np.stack([np.float32([1, 0, 0, 0]), tilt, np.float32([1, 0, 0, 0])]),
        colors=np.float32([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.1, 0.2, 0.9]]),
        opacities=np.float32([0.8, 0.95, 0.9]),
        focal_px=focal,
        image_size=(width, height),
    )


def expected_image(g: G.Gaussians, width: int = W, height: int = H, focal: float = FOCAL,
                   with_alpha: bool = False) -> np.ndarray:
    """Per pixel-centre ray: alpha = min(0.99, o exp(-m^2 / 2)) with m the ray's closest Mahalanobis
    distance, cut at the opacity-adaptive extent, composited front to back over black.

    (H, W, 3) premultiplied RGB, or (H, W, 4) RGBA with ``with_alpha`` (alpha = 1 - T).
    """
    x, y = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    rays = np.stack([(x - width / 2) / focal, (y - height / 2) / focal, np.ones_like(x)], axis=-1)
    inverse = np.linalg.inv(g.covariances())
    image = np.zeros((height, width, 3))
    transmittance = np.ones((height, width))
    for i in np.argsort(g.means[:, 2], kind="stable"):
        mu, a = g.means[i].astype(np.float64), inverse[i]
        dad = np.einsum("hwi,ij,hwj->hw", rays, a, rays)
        dam = rays @ (a @ mu)
        m2 = mu @ a @ mu - dam**2 / dad
        k2 = min(9.0, 2 * np.log(255 * g.opacities[i]))
        alpha = np.where(m2 <= k2, np.minimum(0.99, g.opacities[i] * np.exp(-0.5 * m2)), 0.0)
        image += (transmittance * alpha)[..., None] * g.colors[i]
        transmittance *= 1 - alpha
    return np.concatenate([image, 1 - transmittance[..., None]], axis=-1) if with_alpha else image
