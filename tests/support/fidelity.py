"""Fidelity of a Blender render against the exact 3DGS renderer on the same splats (no bpy here).

Shared by ``tests/blender/test_fidelity.py`` (small scenes, Cycles, in the suite) and
``bench/fidelity.py`` (EEVEE, native 5.3 splats, the full-size scene). The scenes are the ones
the fidelity work names: one isotropic splat, a thin splat seen edge-on, overlapping colours, a 3000-splat
anisotropic slab; ``sharp_shaped`` builds two layers of splats about a pixel wide on a depth field,
the shape of a SHARP prediction, at any size.

PSNR is over the pixels that either image covers (alpha or colour above 1/255 in one of them):
over the whole frame, the black around a small splat would make any render look perfect.
"""

from __future__ import annotations

import numpy as np

from sharp_addon import gaussians as G

W, H, FOCAL = 64, 48, 60.0


def _rotation_quat(axis: str, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    matrix = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
              "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis]
    return G.quats_from_matrices(np.array([matrix], dtype=np.float64))[0]


def make_scene(means, scales, quats, colors, opacities, focal: float = FOCAL) -> G.Gaussians:
    return G.Gaussians(means=np.float32(means), scales=np.float32(scales), quats=np.float32(quats),
                       colors=np.float32(colors), opacities=np.float32(opacities), focal_px=focal, image_size=(W, H))


def isotropic() -> G.Gaussians:
    """One round splat in front of the camera."""
    return make_scene([[0.1, -0.05, 4.0]], [[0.3, 0.3, 0.3]], [[1, 0, 0, 0]], [[0.8, 0.5, 0.2]], [0.9])


def edge_on() -> G.Gaussians:
    """A flat disc (one axis 40x thinner) turned 75 degrees about y, nearly edge-on, through a long lens.

    Small against its distance, as SHARP's splats are: EWA linearises the projection at the centre,
    so a splat that reaches far in depth relative to its distance (a 0.6 m disc at 4 m turned
    80 degrees, through a 60 px lens) renders differently in 3DGS (26.9 dB against the per-ray
    exact Gaussian, which Cycles matches to 82 dB): that is the EWA approximation, not Blender."""
    return make_scene([[0.0, 0.0, 4.0]], [[0.08, 0.05, 0.002]], [_rotation_quat("y", np.radians(75))],
                  [[0.2, 0.7, 0.9]], [0.95], focal=400.0)


def overlapping() -> G.Gaussians:
    """Three splats of different colours overlapping at different depths."""
    return make_scene([[-0.3, 0.0, 4.0], [0.2, 0.15, 4.6], [0.0, -0.3, 5.2]],
                  [[0.35, 0.3, 0.3], [0.4, 0.25, 0.3], [0.45, 0.45, 0.2]],
                  [[1, 0, 0, 0], _rotation_quat("z", 0.5), _rotation_quat("x", 0.7)],
                  [[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.1, 0.2, 0.9]], [0.7, 0.8, 0.9])


def anisotropic(n: int = 3000, seed: int = 3) -> G.Gaussians:
    """A slab of ``n`` randomly shaped, turned and coloured splats, 3 to 5 m away."""
    rng = np.random.default_rng(seed)
    quats = rng.normal(size=(n, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    return make_scene(np.column_stack([rng.uniform(-2.2, 2.2, n), rng.uniform(-1.6, 1.6, n), rng.uniform(3.0, 5.0, n)]),
                  rng.uniform(0.02, 0.12, (n, 3)), quats, rng.uniform(0.05, 0.95, (n, 3)), rng.uniform(0.3, 0.95, n))


def anisotropic_one_size(n: int = 3000, seed: int = 3) -> G.Gaussians:
    """``anisotropic`` with every splat of one shape (still turned at random): proxies of one size."""
    g = anisotropic(n, seed)
    return make_scene(g.means, np.tile([0.09, 0.05, 0.03], (n, 1)), g.quats, g.colors, g.opacities)


def sharp_small() -> G.Gaussians:
    """``sharp_shaped`` at the test image's size: two layers of 48 x 48 splats about a pixel wide."""
    return sharp_shaped(side=48, width=W, height=H)


SCENES = {"isotropic": isotropic, "edge-on": edge_on, "overlapping": overlapping, "anisotropic": anisotropic,
          "anisotropic-one-size": anisotropic_one_size, "sharp-shaped": sharp_small}


def sharp_shaped(side: int = 768, width: int = 1536, height: int = 1152, seed: int = 0) -> G.Gaussians:
    """Two layers of ``side`` x ``side`` splats on a smooth depth field, each about one photo pixel
    wide (the shape of a SHARP prediction: 2 x 768^2 = 1.18 M splats by default), procedural colours."""
    rng = np.random.default_rng(seed)
    focal = 0.9 * width
    v, u = np.meshgrid((np.arange(side) + 0.5) / side, (np.arange(side) + 0.5) / side, indexing="ij")
    depth0 = 2.0 + 1.5 * v + 0.4 * np.sin(6 * u) * np.cos(4 * v)
    layers = []
    for layer, depth in enumerate((depth0, depth0 + 0.4 + 0.3 * u)):
        z = depth.ravel()
        x = (u.ravel() * width - width / 2) / focal * z
        y = (v.ravel() * height - height / 2) / focal * z
        pixel = z / focal * width / side  # one grid cell in metres at that depth
        scales = np.column_stack([pixel * 0.6, pixel * 0.6, pixel * 0.3]) * rng.uniform(0.8, 1.2, (z.size, 1))
        colors = np.column_stack([0.5 + 0.4 * np.sin(8 * u.ravel() + layer), 0.5 + 0.4 * np.cos(5 * v.ravel()),
                                  0.3 + 0.3 * u.ravel() * v.ravel()])
        layers.append((np.column_stack([x, y, z]), scales, colors, rng.uniform(0.5, 1.0, z.size)))
    n = side * side * 2
    return G.Gaussians(
        means=np.concatenate([m for m, *_ in layers]), scales=np.concatenate([s for _, s, *_ in layers]),
        quats=np.tile(np.float32([1, 0, 0, 0]), (n, 1)), colors=np.concatenate([c for *_, c, _ in layers]),
        opacities=np.concatenate([o for *_, o in layers]), focal_px=focal, image_size=(width, height),
        layers=np.repeat(np.uint8([0, 1]), side * side),
    )


def psnr(got: np.ndarray, want: np.ndarray) -> float:
    """PSNR in dB (peak 1) of RGB over the pixels either image covers; inf when they agree exactly."""
    got, want = np.asarray(got, np.float64)[..., :3], np.asarray(want, np.float64)[..., :3]
    covered = (got.max(axis=-1) > 1 / 255) | (want.max(axis=-1) > 1 / 255)
    if not covered.any():
        return float("inf")
    mse = float(np.mean((got[covered] - want[covered]) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
