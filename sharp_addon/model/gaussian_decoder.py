"""The Gaussian decoder (``feature_model``): from depth-encoder maps and the 5-channel input to features.

No bpy. SPEC section 8: a 128-wide multires decoder over the depth network's five encoder maps, a
2x2 stride-2 conv of the initializer's feature input (image + normalised disparity), one fusion
block, then separate texture and geometry heads of GroupNorm residual blocks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .config import SharpConfig
from .decoder import FeatureFusionBlock2d, MultiresConvDecoder


class ResidualBlock(nn.Module):
    """x + conv(relu(GN(conv(relu(GN(x)))))), halving the width inside; indices match the checkpoint."""

    def __init__(self, dim: int, groups: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.GroupNorm(groups, dim),
            nn.ReLU(),
            nn.Conv2d(dim, dim // 2, 3, padding=1),
            nn.GroupNorm(groups, dim // 2),
            nn.ReLU(),
            nn.Conv2d(dim // 2, dim, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


def feature_head(dim: int, dim_out: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        ResidualBlock(dim, groups), ResidualBlock(dim, groups), nn.ReLU(), nn.Conv2d(dim, dim_out, 1), nn.ReLU()
    )


class SkipConv(nn.Module):
    """``image_encoder``: the 5-channel feature input down to the Gaussian grid (kernel 2, stride 2)."""

    def __init__(self, dim_in: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim_in, dim, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class GaussianDensePredictionTransformer(nn.Module):
    def __init__(self, cfg: SharpConfig) -> None:
        super().__init__()
        dim = cfg.gaussian_decoder_dim
        self.decoder = MultiresConvDecoder(cfg.encoder_dims, dim)
        self.image_encoder = SkipConv(3 + cfg.depth_layers, dim)
        self.fusion = FeatureFusionBlock2d(dim, upsample=False)
        self.texture_head = feature_head(dim, cfg.head_dim, cfg.norm_groups)
        self.geometry_head = feature_head(dim, cfg.head_dim, cfg.norm_groups)

    def forward(
        self, feature_input: torch.Tensor, encoder_maps: list[torch.Tensor],
        keep: Callable[[str, torch.Tensor], None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # [1, 5, S, S], maps -> texture, geometry [1, 32, S/2, S/2]
        decoded = self.decoder(encoder_maps)
        skip = self.image_encoder(feature_input)
        if keep is not None:
            keep("gdec_decoder_features", decoded[0])
            keep("gdec_skip_features", skip[0])
        fused = self.fusion(decoded, skip)
        del decoded, skip
        return self.texture_head(fused), self.geometry_head(fused)


class DirectPredictionHead(nn.Module):
    """``prediction_head``: 1x1 convs to raw deltas; channel c = attribute * layers + layer."""

    def __init__(self, cfg: SharpConfig) -> None:
        super().__init__()
        self.layers = cfg.depth_layers
        self.geometry_prediction_head = nn.Conv2d(cfg.head_dim, 3 * cfg.depth_layers, 1)
        self.texture_prediction_head = nn.Conv2d(cfg.head_dim, 11 * cfg.depth_layers, 1)

    def forward(self, texture: torch.Tensor, geometry: torch.Tensor) -> torch.Tensor:  # -> [14, L, G, G]
        g = geometry.shape[-1]
        geo = self.geometry_prediction_head(geometry).view(3, self.layers, g, g)
        tex = self.texture_prediction_head(texture).view(11, self.layers, g, g)
        return torch.cat([geo, tex])
