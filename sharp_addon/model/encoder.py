"""Sliding-pyramid encoder (Depth Pro style): 35 overlapping ViT patches on three scales.

No bpy. From the 1536-px image in [-1, 1] (docs/model.md, "Encoder: sliding pyramid"): a 3-level
pyramid, 25 + 9 + 1 patches of the ViT's size through the patch ViT (in chunks), the whole 384-px
image through the image ViT, patch maps merged with their overlaps trimmed, then 1x1 projections
and 2x2 transposed convs (no nonlinearity) to five maps at 1/2, 1/4, 1/8, 1/16 and 1/32 of the
input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import SharpConfig
from .monitor import NULL_MONITOR, Monitor
from .vit import VisionTransformer

LEVEL_OVERLAPS = (0.25, 0.5)  # patch overlap on the full- and half-resolution levels


def upsampler(dim_in: int, dim_out: int, doublings: int) -> nn.Sequential:
    """1x1 projection then ``doublings`` transposed 2x2 convs, all without bias."""
    layers: list[nn.Module] = [nn.Conv2d(dim_in, dim_out, 1, bias=False)]
    layers += [nn.ConvTranspose2d(dim_out, dim_out, 2, stride=2, bias=False) for _ in range(doublings)]
    return nn.Sequential(*layers)


def split_patches(x: torch.Tensor, size: int, overlap: float) -> tuple[torch.Tensor, int]:
    """Square patches of ``size`` at stride size*(1-overlap), row-major (rows outer), and how many per side.

    [1, C, S, S] -> [n*n, C, size, size], n
    """
    stride = int(size * (1 - overlap))
    count = math.ceil((x.shape[-1] - size) / stride) + 1
    starts = [i * stride for i in range(count)]
    return torch.cat([x[..., j : j + size, i : i + size] for j in starts for i in starts]), count


def merge_patches(maps: torch.Tensor, count: int, pad: int) -> torch.Tensor:  # [n*n, C, g, g] -> [1, C, G, G]
    """Join a count x count grid of patch maps, trimming ``pad`` tokens wherever patches meet."""
    g = maps.shape[-1]
    rows = []
    for j in range(count):
        top, bottom = (0 if j == 0 else pad), (g if j == count - 1 else g - pad)
        cols = []
        for i in range(count):
            left, right = (0 if i == 0 else pad), (g if i == count - 1 else g - pad)
            cols.append(maps[j * count + i, :, top:bottom, left:right])
        rows.append(torch.cat(cols, dim=-1))
    return torch.cat(rows, dim=-2)[None]


@dataclass
class EncoderMaps:
    """The encoder's five maps, the finest one kept as its 8x coarser source.

    The finest map (256 x 768 x 768 in the release, 0.6 GB in float32) follows from ``latent0`` by a
    1x1 conv and three 2x2 transposed convs, all pixel-local, so any band of its rows is computed
    on demand from the matching rows of ``latent0``.
    """

    latent0: torch.Tensor  # [1, D, G/8, G/8] merged block-5 ViT map
    upsample_latent0: nn.Module
    coarse: list[torch.Tensor]  # the other four maps, finest first

    @property
    def size(self) -> int:
        """Side of the finest map (the Gaussian grid, 768 in the release)."""
        return self.latent0.shape[-1] * 8

    def finest(self, rows: slice | None = None) -> torch.Tensor:  # -> [1, C, rows, G]
        """Rows of the finest map (a slice of the full-resolution rows, edges multiples of 8)."""
        if rows is None:
            return self.upsample_latent0(self.latent0)
        assert rows.start % 8 == 0 and rows.stop % 8 == 0, rows
        return self.upsample_latent0(self.latent0[..., rows.start // 8 : rows.stop // 8, :])


class SlidingPyramidNetwork(nn.Module):
    def __init__(self, cfg: SharpConfig) -> None:
        super().__init__()
        d, dims = cfg.vit.embed_dim, cfg.encoder_dims
        self.cfg = cfg
        self.patch_encoder = VisionTransformer(cfg.vit)
        self.image_encoder = VisionTransformer(cfg.vit)
        self.upsample_latent0 = upsampler(d, dims[0], 3)
        self.upsample_latent1 = upsampler(d, dims[1], 2)
        self.upsample0 = upsampler(d, dims[2], 1)
        self.upsample1 = upsampler(d, dims[3], 1)
        self.upsample2 = upsampler(d, dims[4], 1)
        self.upsample_lowres = nn.ConvTranspose2d(d, dims[4], 2, stride=2, bias=True)
        self.fuse_lowres = nn.Conv2d(2 * dims[4], dims[4], 1, bias=True)

    def forward(
        self, x: torch.Tensor, monitor: Monitor = NULL_MONITOR, chunk: int = 35
    ) -> EncoderMaps:  # [1, 3, 4S, 4S] in [-1, 1] -> 5 maps, finest first
        """``chunk`` patches go through the patch ViT at a time (memory against speed)."""
        s = self.cfg.vit.image_size
        x1 = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        x2 = F.interpolate(x, scale_factor=0.25, mode="bilinear", align_corners=False)
        patches0, count0 = split_patches(x, s, LEVEL_OVERLAPS[0])
        patches1, count1 = split_patches(x1, s, LEVEL_OVERLAPS[1])
        patches = torch.cat([patches0, patches1, x2])
        del patches0, patches1
        hi_res = count0**2

        finals, taps0, taps1 = [], [], []
        taps = self.cfg.vit.taps
        total, depth = len(patches) + 1, self.cfg.vit.depth  # + 1: the image ViT
        for start in range(0, len(patches), chunk):
            batch = patches[start : start + chunk]

            def after_block(i: int, start: int = start, n: int = len(batch)) -> None:
                monitor.step("encoder", (start + n * (i + 1) / depth) / total)

            final, tapped = self.patch_encoder(batch, taps=taps, after_block=after_block)
            finals.append(final)
            keep = max(0, min(len(batch), hi_res - start))  # intermediates of the full-resolution patches only
            taps0.append(tapped[0][:keep])
            taps1.append(tapped[1][:keep])
        final = torch.cat(finals)
        del finals, patches
        g = self.cfg.vit.grid
        latent0 = merge_patches(torch.cat(taps0), count0, g // 8)
        latent1 = merge_patches(torch.cat(taps1), count0, g // 8)
        x0_map = merge_patches(final[:hi_res], count0, g // 8)
        x1_map = merge_patches(final[hi_res : hi_res + count1**2], count1, g // 4)
        x2_map = final[-1:]
        lowres, _ = self.image_encoder(
            x2, after_block=lambda i: monitor.step("encoder", (total - 1 + (i + 1) / depth) / total)
        )
        for name, value in (("vit_latent0", latent0), ("vit_latent1", latent1), ("vit_x0", x0_map),
                            ("vit_x1", x1_map), ("vit_x2", x2_map), ("vit_lowres", lowres)):
            monitor.keep(name, value[0])

        # channels-last from here on: oneDNN's convolutions (transposed ones above all) run several times
        # faster on it, and a band of rows of such a map is one contiguous block
        latent0, latent1, x0_map, x1_map, x2_map, lowres = (
            t.contiguous(memory_format=torch.channels_last) for t in (latent0, latent1, x0_map, x1_map, x2_map, lowres)
        )
        enc4 = self.fuse_lowres(torch.cat([self.upsample2(x2_map), self.upsample_lowres(lowres)], dim=1))
        coarse = [self.upsample_latent1(latent1), self.upsample0(x0_map), self.upsample1(x1_map), enc4]
        return EncoderMaps(latent0, self.upsample_latent0, coarse)
