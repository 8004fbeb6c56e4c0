"""The Gaussian decoder (``feature_model``): from depth-encoder maps and the 5-channel input to features.

No bpy. docs/model.md, "Gaussian decoder": a 128-wide multires decoder over the depth network's
five encoder maps, a 2x2 stride-2 conv of the initializer's feature input (image + normalised
disparity), one fusion block, then separate texture and geometry heads of GroupNorm residual
blocks.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from .config import SharpConfig
from .decoder import FeatureFusionBlock2d, MultiresConvDecoder, decode_finest_in_strips
from .encoder import EncoderMaps
from .monitor import NULL_MONITOR, Monitor
from .strips import strip_rows, strips

HALO = 8  # rows: the finest decoder level reaches 4, the fusion with the skip conv 4 more
# rows summed together for GroupNorm statistics; every strip here starts at a multiple of it and has at
# least as many rows (oneDNN runs maps of a few rows with other kernels, which round differently)
MOMENT_ROWS = 8


class ResidualBlock(nn.Module):
    """x + conv(relu(GN(conv(relu(GN(x)))))), halving the width inside; indices match the checkpoint.

    Only holds the layers: ``run_residual_block`` runs them on row strips (GroupNorm over the whole map).
    """

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


def feature_head(dim: int, dim_out: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        ResidualBlock(dim, groups), ResidualBlock(dim, groups), nn.ReLU(), nn.Conv2d(dim, dim_out, 1), nn.ReLU()
    )


class Moments:
    """Per-channel sums of a map produced strip by strip, for its GroupNorm statistics.

    The strips' height follows the free memory, so sums taken per strip would change from run to
    run. Instead each block of ``MOMENT_ROWS`` rows is summed on its own (float32) and the blocks'
    sums are added one by one from the top (float64): the same additions wherever the strips are
    cut, so a map's statistics, and the network's output, are the same in every run on one machine
    (docs/notes/determinism.md).
    """

    def __init__(self) -> None:
        self.sum: torch.Tensor | float = 0.0
        self.sum_sq: torch.Tensor | float = 0.0
        self.count = 0

    def add(self, x: torch.Tensor) -> None:  # the next strip [1, C, h, W], starting at a multiple of MOMENT_ROWS
        block = MOMENT_ROWS * x.shape[3]
        assert self.count % block == 0, f"strip at row {self.count // x.shape[3]}: not a multiple of {MOMENT_ROWS}"
        pixels = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]).float()  # one row per pixel: a view if channels-last
        whole = len(pixels) // block * block
        parts = [pixels[:whole].view(-1, block, x.shape[1])] if whole else []
        parts += [pixels[whole:][None]] if whole < len(pixels) else []
        for part in parts:  # [blocks, pixels of a block, C]: whole blocks, then a last, shorter one
            sums, squares = part.sum(1).double(), (part * part).sum(1).double()
            for s, q in zip(sums, squares):
                self.sum = self.sum + s
                self.sum_sq = self.sum_sq + q
        self.count += len(pixels)

    def group_norm_affine(self, norm: nn.GroupNorm) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (scale, shift) so that x * scale + shift is ``norm`` over the whole map."""
        assert isinstance(self.sum, torch.Tensor) and isinstance(self.sum_sq, torch.Tensor)
        groups = norm.num_groups
        n = self.count * (self.sum.numel() // groups)
        mean = self.sum.view(groups, -1).sum(dim=1) / n
        var = (self.sum_sq.view(groups, -1).sum(dim=1) / n - mean**2).clamp(min=0)
        per_channel = self.sum.numel() // groups
        rstd = torch.rsqrt(var + norm.eps).repeat_interleave(per_channel)
        scale = norm.weight.double() * rstd
        shift = norm.bias.double() - mean.repeat_interleave(per_channel) * scale
        dtype = norm.weight.dtype
        return scale.to(dtype)[None, :, None, None], shift.to(dtype)[None, :, None, None]


def run_residual_block(
    block: ResidualBlock, x: torch.Tensor, x_moments: Moments, rows: int, out: torch.Tensor
) -> tuple[torch.Tensor, Moments]:
    """``block(x)`` written into ``out`` (which may be ``x``) in row strips, and the result's moments.

    GroupNorm needs statistics of whole maps, so each half of the block is one pass over strips
    that also gathers the moments of what it writes.
    """
    norm1, _, conv1, norm2, _, conv2 = cast(tuple[nn.GroupNorm, nn.ReLU, nn.Conv2d, nn.GroupNorm, nn.ReLU, nn.Conv2d],
                                            tuple(block.residual))
    scale, shift = x_moments.group_norm_affine(norm1)
    hidden = x.new_empty((1, conv1.out_channels, *x.shape[2:])).contiguous(memory_format=torch.channels_last)
    hidden_moments = Moments()
    for strip in strips(x.shape[2], rows, 1, align=MOMENT_ROWS):
        y = conv1(torch.addcmul(shift, x[..., strip.window(), :], scale).relu_())[..., strip.crop(), :]
        hidden[..., strip.rows(), :] = y
        hidden_moments.add(y)
    scale, shift = hidden_moments.group_norm_affine(norm2)
    out_moments = Moments()
    for strip in strips(x.shape[2], rows, 1, align=MOMENT_ROWS):  # reads hidden only, so out may alias x
        y = conv2(torch.addcmul(shift, hidden[..., strip.window(), :], scale).relu_())[..., strip.crop(), :]
        y += x[..., strip.rows(), :]
        out[..., strip.rows(), :] = y
        out_moments.add(y)
    return out, out_moments


def run_head(head: nn.Sequential, x: torch.Tensor, x_moments: Moments, rows: int) -> torch.Tensor:
    """``head(x)`` for a texture or geometry head without ever holding its full-size temporaries."""
    first, second, _, conv, _ = cast(tuple[ResidualBlock, ResidualBlock, nn.ReLU, nn.Conv2d, nn.ReLU], tuple(head))
    y, y_moments = run_residual_block(first, x, x_moments, rows, torch.empty_like(x))  # x serves both heads
    y, _ = run_residual_block(second, y, y_moments, rows, y)
    out = x.new_empty((1, conv.out_channels, *x.shape[2:])).contiguous(memory_format=torch.channels_last)
    for strip in strips(x.shape[2], rows, 0, align=MOMENT_ROWS):
        out[..., strip.rows(), :] = conv(y[..., strip.rows(), :].relu()).relu_()
    return out


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
        self, feature_input: torch.Tensor, maps: EncoderMaps, monitor: Monitor = NULL_MONITOR,
        strip_bytes: float = 2**62,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # [1, 5, S, S], maps -> texture, geometry [1, 32, S/2, S/2]
        """Texture and geometry features; the finest level runs on row strips of ``strip_bytes``.

        Consumes ``maps.coarse`` (emptied once the coarse levels have run).
        """
        coarse = self.decoder.coarse(maps.coarse)
        g = maps.size
        dim = self.fusion.out_conv.out_channels
        row_bytes = 7 * dim * g * feature_input.element_size()
        def full_map() -> torch.Tensor:
            return feature_input.new_empty((1, dim, g, g)).contiguous(memory_format=torch.channels_last)

        fused, fused_moments = full_map(), Moments()
        skip_all = full_map() if monitor.wants("gdec_skip_features") else None
        rows = strip_rows(row_bytes, strip_bytes, g, HALO)
        for strip, decoded in decode_finest_in_strips(
            self.decoder, coarse, maps, rows, HALO, monitor, "gdec_decoder_features",
            progress=lambda f: monitor.step("gaussians", 0.5 * f),
        ):
            skip = self.image_encoder(feature_input[..., strip.window(scale=2), :])
            if skip_all is not None:
                skip_all[..., strip.rows(), :] = skip[..., strip.crop(), :]
            done = self.fusion(decoded, skip)[..., strip.crop(), :]
            fused[..., strip.rows(), :] = done
            fused_moments.add(done)
        del coarse
        maps.coarse = []  # consumed: nothing below needs them, and they are 0.3 GB at full size
        if skip_all is not None:
            monitor.keep("gdec_skip_features", skip_all[0])
        rows = strip_rows(row_bytes, strip_bytes / 2, g, 1)
        texture = run_head(self.texture_head, fused, fused_moments, rows)
        monitor.step("gaussians", 0.75)
        return texture, run_head(self.geometry_head, fused, fused_moments, rows)


class DirectPredictionHead(nn.Module):
    """``prediction_head``: 1x1 convs to raw deltas; channel c = attribute * layers + layer."""

    def __init__(self, cfg: SharpConfig) -> None:
        super().__init__()
        self.layers = cfg.depth_layers
        self.geometry_prediction_head = nn.Conv2d(cfg.head_dim, 3 * cfg.depth_layers, 1)
        self.texture_prediction_head = nn.Conv2d(cfg.head_dim, 11 * cfg.depth_layers, 1)

    def forward(self, texture: torch.Tensor, geometry: torch.Tensor) -> torch.Tensor:  # -> [14, L, G, G]
        g = geometry.shape[-1]
        geo = self.geometry_prediction_head(geometry).reshape(3, self.layers, g, g)
        tex = self.texture_prediction_head(texture).reshape(11, self.layers, g, g)
        return torch.cat([geo, tex])
