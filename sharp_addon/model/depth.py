"""The monocular depth network (``monodepth_model``): encoder, depth decoder, two-layer disparity head.

No bpy. SPEC sections 6 and 6.4. The depth-alignment UNet that the checkpoint also carries is only
used in training with ground-truth depth; it is declared as ``UnusedWeights`` so that strict loading
checks its keys and shapes, and it is never materialised.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import SharpConfig
from .decoder import MultiresConvDecoder
from .encoder import SlidingPyramidNetwork
from .monitor import NULL_MONITOR, Monitor
from .unused import UnusedWeights, alignment_unet_shapes


class MonodepthDensePredictionTransformer(nn.Module):
    def __init__(self, cfg: SharpConfig) -> None:
        super().__init__()
        dim = cfg.depth_decoder_dim
        self.encoder = SlidingPyramidNetwork(cfg)
        self.decoder = MultiresConvDecoder(cfg.encoder_dims, dim)
        self.head = nn.Sequential(
            nn.Conv2d(dim, dim // 2, 3, padding=1),
            nn.ConvTranspose2d(dim // 2, dim // 2, 2, stride=2),
            nn.Conv2d(dim // 2, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, cfg.depth_layers, 1),
            nn.ReLU(),
        )

    def forward(
        self, x: torch.Tensor, monitor: Monitor = NULL_MONITOR, patch_chunk: int = 35
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:  # [1, 3, S, S] in [-1, 1] -> disparity [1, L, S, S], encoder maps
        features = self.encoder(x, monitor, patch_chunk)
        for i, f in enumerate(features):
            monitor.keep(f"enc{i}", f[0])
        decoded = self.decoder(features)
        monitor.keep("mono_decoder_features", decoded[0])
        monitor.step("depth", 0.5)
        disparity = self.head(decoded)
        monitor.step("depth", 1.0)
        return disparity, features


class MonodepthModel(nn.Module):
    """``monodepth_model``: holds the predictor (the checkpoint's extra nesting level)."""

    def __init__(self, cfg: SharpConfig) -> None:
        super().__init__()
        self.monodepth_predictor = MonodepthDensePredictionTransformer(cfg)


class DepthAlignment(nn.Module):
    """``depth_alignment``: training-only; its weights are checked at load, never kept."""

    def __init__(self) -> None:
        super().__init__()
        self.scale_map_estimator = UnusedWeights(alignment_unet_shapes())
