"""The monocular depth network (``monodepth_model``): encoder, depth decoder, two-layer disparity head.

No bpy. docs/model.md, "Depth head and metric depth" and "Depth alignment (never run)". The
depth-alignment UNet that the checkpoint also carries is only used in training with ground-truth
depth; it is declared as ``MetaWeights`` (``training_only.py``) so that strict loading checks its
keys and shapes, and it is never materialised.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import SharpConfig
from .decoder import MultiresConvDecoder, decode_finest_in_strips
from .encoder import EncoderMaps, SlidingPyramidNetwork
from .monitor import NULL_MONITOR, Monitor
from .strips import strip_rows
from .training_only import MetaWeights, alignment_unet_shapes

HALO = 8  # rows: the finest decoder level reaches 4, the head 2 more; a multiple of 8 for the encoder


class MonodepthDensePredictionTransformer(nn.Module):
    def __init__(self, cfg: SharpConfig) -> None:
        super().__init__()
        dim = cfg.depth_decoder_dim
        self.dim, self.layers = dim, cfg.depth_layers
        self.encoder = SlidingPyramidNetwork(cfg)
        self.decoder = MultiresConvDecoder(cfg.encoder_dims, dim)
        self.head = nn.Sequential(
            nn.Conv2d(dim, dim // 2, 3, padding=1),
            nn.ConvTranspose2d(dim // 2, dim // 2, 2, stride=2),
            nn.Conv2d(dim // 2, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, cfg.depth_layers, 1),
            nn.ReLU(inplace=True),
        )

    def forward(
        self, x: torch.Tensor, monitor: Monitor = NULL_MONITOR, patch_chunk: int = 35, strip_bytes: float = 2**62
    ) -> tuple[torch.Tensor, EncoderMaps]:  # [1, 3, S, S] in [-1, 1] -> disparity [1, L, S, S], encoder maps
        """Disparity, with the finest decoder level and the head run on row strips of ``strip_bytes``."""
        maps = self.encoder(x, monitor, patch_chunk)
        monitor.step("depth", 0.0)
        if monitor.wants("enc0"):
            monitor.keep("enc0", maps.finest()[0])
        for i, f in enumerate(maps.coarse, start=1):
            monitor.keep(f"enc{i}", f[0])
        coarse = self.decoder.coarse(maps.coarse)
        g = maps.size
        row_bytes = 9 * self.dim * g * x.element_size()  # about five decoder maps and the head's 2x-wide pair
        rows = strip_rows(row_bytes, strip_bytes, g, HALO)
        disparity = x.new_empty((1, self.layers, 2 * g, 2 * g)).contiguous(memory_format=torch.channels_last)
        for strip, decoded in decode_finest_in_strips(
            self.decoder, coarse, maps, rows, HALO, monitor, "mono_decoder_features",
            progress=lambda f: monitor.step("depth", f),
        ):
            disparity[..., strip.rows(2), :] = self.head(decoded)[..., strip.crop(2), :]
        return disparity, maps


class MonodepthModel(nn.Module):
    """``monodepth_model``: holds the predictor (the checkpoint's extra nesting level)."""

    def __init__(self, cfg: SharpConfig) -> None:
        super().__init__()
        self.monodepth_predictor = MonodepthDensePredictionTransformer(cfg)


class DepthAlignment(nn.Module):
    """``depth_alignment``: training-only; its weights are checked at load, never kept."""

    def __init__(self) -> None:
        super().__init__()
        self.scale_map_estimator = MetaWeights(alignment_unet_shapes())
