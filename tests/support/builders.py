"""Small builders shared by the tests (no bpy, no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sharp_addon.gaussians import Gaussians


def random_gaussians(n: int, seed: int = 0, sh_degree: int = 0, photo: bool = True) -> Gaussians:
    """Plausible SHARP-like splats in front of the camera (z in 1..6 m), unit quaternions."""
    rng = np.random.default_rng(seed)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    k = {0: 0, 1: 3, 2: 8, 3: 15}[sh_degree]
    return Gaussians(
        means=np.column_stack([rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(1, 6, n)]).astype(np.float32),
        scales=np.exp(rng.uniform(-7, -2, size=(n, 3))).astype(np.float32),
        quats=quats,
        colors=rng.uniform(0.0, 1.0, size=(n, 3)).astype(np.float32),
        opacities=rng.uniform(0.01, 0.99, n).astype(np.float32),
        sh_rest=rng.normal(0, 0.1, size=(n, k, 3)).astype(np.float32) if k else None,
        focal_px=554.7001962 if photo else None,
        image_size=(640, 480) if photo else None,
    )


def sharp_gaussians(n: int = 1000, sh_degree: int = 0) -> Gaussians:
    """``random_gaussians`` in SHARP's two layers: the first half visible, the second occluded."""
    g = random_gaussians(n, sh_degree=sh_degree)
    return g.replace(layers=(np.arange(n) >= n // 2).astype(np.uint8))


def assert_same_covariances(a: np.ndarray, b: np.ndarray, rtol: float = 1e-5) -> None:
    """Per Gaussian, ||A - B||_F <= rtol ||B||_F (entries near zero make element-wise checks flaky)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    err = np.linalg.norm((a - b).reshape(len(a), -1), axis=1) / np.linalg.norm(b.reshape(len(b), -1), axis=1)
    assert float(err.max()) <= rtol, f"covariances differ: max relative Frobenius error {err.max():.2e} > {rtol:.0e}"


def tiny_config():
    """A narrow, shallow SHARP (ViT 64 wide, 4 blocks): 2 x 256 x 256 Gaussians in about a second."""
    from sharp_addon.model.config import SharpConfig, ViTConfig

    vit = ViTConfig(image_size=128, patch_size=16, embed_dim=64, depth=4, num_heads=1, mlp_dim=128, num_classes=10)
    return SharpConfig(vit=vit, encoder_dims=(16, 16, 32, 64, 64), depth_decoder_dim=32, gaussian_decoder_dim=16,
                       head_dim=8)


def tiny_state_dict(cfg=None) -> dict:
    """Weights for ``tiny_config`` (or ``cfg``) by the synthetic weight rule (``synthetic_weights``)."""
    from sharp_addon.model.checkpoint import expected_shapes
    from tests.support.synthetic_weights import synthetic_state_dict

    return synthetic_state_dict(expected_shapes(cfg or tiny_config()))


def grid_gaussians(depth: np.ndarray, layers: int = 2) -> Gaussians:
    """SHARP-shaped splats: ``layers`` layer-major blocks of a [G, G] depth grid, unprojected on a
    pinhole of 90° field of view, layer 1 one metre behind layer 0."""
    side = depth.shape[0]
    ndc = (2 * np.arange(side) + 1) / side - 1
    x, y = np.meshgrid(ndc, ndc)  # x along columns, y down the rows
    blocks = [np.stack([x * (depth + k), y * (depth + k), depth + k], axis=-1).reshape(-1, 3) for k in range(layers)]
    means = np.concatenate(blocks)
    n = len(means)
    return Gaussians(means=means, scales=np.full((n, 3), 0.01), quats=np.tile([1.0, 0, 0, 0], (n, 1)),
                     colors=np.full((n, 3), 0.5), opacities=np.full(n, 0.9), focal_px=side / 2,
                     image_size=(side, side), layers=np.repeat(np.arange(layers, dtype=np.uint8), side * side))


def photos(folder: Path, names: list[str], size=(64, 48)) -> Path:
    from PIL import Image

    rng = np.random.default_rng(len(names))
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return folder
