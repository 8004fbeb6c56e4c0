"""DPT-style multi-resolution convolutional decoder (used by the depth and the Gaussian branch).

No bpy. SPEC section 6.1: per level a projection (1x1 or 3x3, no bias) and a fusion block; fusion
runs coarse to fine, each block adding the projected skip through a residual unit, refining,
doubling the resolution with a 2x2 transposed conv (all but the finest) and mixing with a 1x1 conv.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualConvUnit(nn.Module):
    """x + conv3x3(relu(conv3x3(relu(x)))), convs with bias; indices match the checkpoint."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


class FeatureFusionBlock2d(nn.Module):
    def __init__(self, dim: int, upsample: bool) -> None:
        super().__init__()
        self.resnet1 = ResidualConvUnit(dim)  # refines the skip input (never run in the coarsest block)
        self.resnet2 = ResidualConvUnit(dim)
        self.deconv = nn.ConvTranspose2d(dim, dim, 2, stride=2, bias=False) if upsample else None
        self.out_conv = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resnet1(skip)
        x = self.resnet2(x)
        if self.deconv is not None:
            x = self.deconv(x)
        return self.out_conv(x)


class MultiresConvDecoder(nn.Module):
    """Five encoder maps (finest first, each half the previous size) -> one map at the finest size."""

    def __init__(self, dims_encoder: tuple[int, ...], dim: int) -> None:
        super().__init__()
        first: nn.Module = nn.Identity() if dims_encoder[0] == dim else nn.Conv2d(dims_encoder[0], dim, 1, bias=False)
        self.convs = nn.ModuleList([first, *(nn.Conv2d(d, dim, 3, padding=1, bias=False) for d in dims_encoder[1:])])
        self.fusions = nn.ModuleList(FeatureFusionBlock2d(dim, upsample=i > 0) for i in range(len(dims_encoder)))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.fusions[-1](self.convs[-1](features[-1]))
        for i in range(len(features) - 2, -1, -1):
            x = self.fusions[i](x, self.convs[i](features[i]))
        return x
