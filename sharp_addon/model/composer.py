"""Initializer and composer: base Gaussians from depth, then the network's deltas applied.

No bpy, no parameters. docs/model.md, "Initializer" and "Composer", computed in float32 whatever
the network ran in. Results are in SHARP's normalised camera space (x, y in [-1, 1] at unit depth)
times the global scale; ``gaussians.unproject`` turns them into metric OpenCV-camera Gaussians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

DELTA_XY = 1e-3  # delta_factor.xy
DELTA_Z = 1e-3  # delta_factor.z
DELTA_COLOR = 0.1  # delta_factor.color
MAX_SCALE = 10.0  # the scale factor lies in (0, MAX_SCALE)
DEPTH_CLAMP = 100.0  # normalised depth is clamped here
DISPARITY_CLAMP = (1e-4, 1e4)


@dataclass
class BaseGaussians:
    """What the initializer derives from depth before the network's deltas (all float32)."""

    disparity: torch.Tensor  # [L, G, G] normalised disparity, max-pooled 2x2
    scales: torch.Tensor  # [L, G, G] base scale (normalised depth / 384 at full size)
    colors: torch.Tensor  # [3, G, G] 2x2 average of the [0, 1] image (sRGB values)
    feature_input: torch.Tensor  # [1, 3 + L, S, S] 2 * cat(image, 1 / normalised depth) - 1
    global_scale: float  # metres per normalised unit: min depth + 1e-6


@dataclass
class ComposedGaussians:
    """Gaussians in normalised camera space times the global scale, flattened layer-major."""

    means: torch.Tensor  # [N, 3]
    scales: torch.Tensor  # [N, 3]
    quats: torch.Tensor  # [N, 4] (w, x, y, z), not normalised
    colors: torch.Tensor  # [N, 3] linear RGB
    opacities: torch.Tensor  # [N]


def metric_depth(disparity: torch.Tensor, disparity_factor: float) -> torch.Tensor:
    """Depth Pro's canonical inverse depth to metres: (f / W) / clamp(disparity)."""
    return disparity_factor / disparity.float().clamp(*DISPARITY_CLAMP)


def initialize(image01: torch.Tensor, depth: torch.Tensor) -> BaseGaussians:  # [1, 3, S, S], [1, L, S, S]
    """Normalise depth by its minimum, pool it to the Gaussian grid, build the decoder's input."""
    image01 = image01.float()
    global_scale = float(depth.min()) + 1e-6
    depth_n = (depth / global_scale).clamp(max=DEPTH_CLAMP)
    disparity_n = 1.0 / depth_n
    size = image01.shape[-1]
    base_disparity = F.max_pool2d(disparity_n, 2, 2)[0]
    return BaseGaussians(
        disparity=base_disparity,
        scales=(1.0 / base_disparity) * (4.0 / size),
        colors=F.avg_pool2d(image01, 2, 2)[0],
        feature_input=torch.cat([image01, disparity_n], dim=1) * 2 - 1,
        global_scale=global_scale,
    )


def _inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(min=1e-6)
    return x + torch.log(-torch.expm1(-x))


def srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def compose(base: BaseGaussians, delta: torch.Tensor) -> ComposedGaussians:  # delta [14, L, G, G]
    """Apply the activations of docs/model.md, "Composer", and the global scale."""
    delta = delta.float()
    layers, g = delta.shape[1], delta.shape[-1]
    ndc = (2 * torch.arange(g, dtype=torch.float32, device=delta.device) + 1) / g - 1
    x = ndc[None, None, :] + DELTA_XY * delta[0]
    y = ndc[None, :, None] + DELTA_XY * delta[1]
    rho = F.softplus(_inverse_softplus(base.disparity) + DELTA_Z * delta[2])
    z = 1.0 / (rho + 1e-3)
    means = torch.stack([z * x, z * y, z])  # [3, L, G, G]
    bias = torch.tensor(-math.log(9.0), dtype=torch.float32)  # logit(0.1): the factor is 1 at delta 0
    factor = MAX_SCALE * torch.sigmoid(delta[3:6] * (10.0 / 9.0) + bias)
    scales = (base.scales * base.disparity * z)[None] * factor
    one = torch.zeros_like(delta[6:10])
    one[0] = 1.0
    quats = one + delta[6:10]
    base_logit = torch.logit(base.colors.clamp(0.01, 0.99))[:, None]  # same base for every layer
    colors = srgb_to_linear(torch.sigmoid(base_logit + DELTA_COLOR * delta[10:13]))
    opacities = torch.sigmoid(delta[13])

    def flat(t: torch.Tensor) -> torch.Tensor:  # [C, L, G, G] -> [L*G*G, C]
        return t.reshape(t.shape[0], layers * g * g).T.contiguous()

    s = base.global_scale
    return ComposedGaussians(
        means=flat(means) * s,
        scales=flat(scales) * s,
        quats=flat(quats),
        colors=flat(colors),
        opacities=opacities.reshape(-1).contiguous(),
    )
