"""DPT-style multi-resolution convolutional decoder (used by the depth and the Gaussian branch).

No bpy. docs/model.md, "Multi-resolution decoders": per level a projection (1x1 or 3x3, no bias)
and a fusion block; fusion runs coarse to fine, each block adding the projected skip through a
residual unit, refining, doubling the resolution with a 2x2 transposed conv (all but the finest)
and mixing with a 1x1 conv.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

import torch
from torch import nn

from .encoder import EncoderMaps
from .monitor import Monitor
from .strips import Strip, strips


class ResidualConvUnit(nn.Module):
    """x + conv3x3(relu(conv3x3(relu(x)))), convs with bias; indices match the checkpoint.

    The first ReLU must leave x intact (it is added back); the second works in place.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(dim, dim, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x).add_(x)


class FeatureFusionBlock2d(nn.Module):
    def __init__(self, dim: int, upsample: bool) -> None:
        super().__init__()
        self.resnet1 = ResidualConvUnit(dim)  # refines the skip input (never run in the coarsest block)
        self.resnet2 = ResidualConvUnit(dim)
        self.deconv = nn.ConvTranspose2d(dim, dim, 2, stride=2, bias=False) if upsample else None
        self.out_conv = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        return self.finish(self.refine(x, skip))

    def refine(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """The 3x3 part at the input resolution: add the refined skip, refine the sum."""
        if skip is not None:
            x = self.resnet1(skip).add_(x)
        return self.resnet2(x)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The pixel-local part: 2x2 upsampling (if any) and the 1x1 mix; can run on any crop."""
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

    def coarse(self, features: list[torch.Tensor]) -> torch.Tensor:  # maps of levels 1.. -> [1, C, H1, W1]
        """Every level but the finest, stopping before level 1's upsampling: what follows is local.

        The finest level (``fine``) can then run on row strips of this map and of the finest encoder
        map (``decode_finest_in_strips``), which keeps the largest tensors (finest resolution, full
        width) out of memory.
        """
        x = self.fusions[-1](self.convs[-1](features[-1]))
        for i in range(len(features) - 1, 0, -1):  # fusion blocks len .. 1 (level i + 1 -> block i)
            x = self.fusion(i).refine(x, self.convs[i](features[i - 1]))
            if i > 1:
                x = self.fusion(i).finish(x)
        return x

    def fine(self, coarse: torch.Tensor, finest: torch.Tensor) -> torch.Tensor:
        """The finest level from (crops of) ``coarse()`` and the finest encoder map; 4 rows of halo needed."""
        return self.fusions[0](self.fusion(1).finish(coarse), self.convs[0](finest))

    def fusion(self, i: int) -> FeatureFusionBlock2d:
        return cast(FeatureFusionBlock2d, self.fusions[i])


def decode_finest_in_strips(
    decoder: MultiresConvDecoder, coarse: torch.Tensor, maps: EncoderMaps, rows: int, halo: int,
    monitor: Monitor, capture: str, progress: Callable[[float], None],
) -> Iterator[tuple[Strip, torch.Tensor]]:
    """The decoder's finest level on row strips: (strip, decoded window) for each, top to bottom.

    ``coarse`` is ``decoder.coarse(...)`` of the coarse maps; each strip has ``rows`` output rows and
    ``halo`` rows of context on each side (as much as the caller's own per-strip work reaches too),
    and its decoded window covers ``strip.window()``, so ``[..., strip.crop(), :]`` are its rows.
    When ``monitor`` wants the intermediate named ``capture``, the cropped strips are gathered into a
    full-size map kept under that name. ``progress(fraction of rows done)`` runs once the caller is
    done with a strip (it may raise to cancel).
    """
    g = maps.size
    full = None
    if monitor.wants(capture):
        dim = decoder.fusion(0).out_conv.out_channels
        full = coarse.new_empty((1, dim, g, g)).contiguous(memory_format=torch.channels_last)
    for strip in strips(g, rows, halo):
        decoded = decoder.fine(coarse[..., strip.window(2), :], maps.finest(strip.window()))
        if full is not None:
            full[..., strip.rows(), :] = decoded[..., strip.crop(), :]
        yield strip, decoded
        progress(strip.bottom / g)
    if full is not None:
        monitor.keep(capture, full[0])
