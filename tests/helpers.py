"""Small builders shared by the tests (no bpy, no torch)."""

from __future__ import annotations

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
    """Weights for ``tiny_config`` (or ``cfg``) by the synthetic weight rule (``tests/weights.py``)."""
    from sharp_addon.model.checkpoint import expected_shapes
    from tests.weights import synthetic_state_dict

    return synthetic_state_dict(expected_shapes(cfg or tiny_config()))
