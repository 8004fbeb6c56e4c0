"""Checkpoint tensors that inference never reads: one list of them, and their declaration without memory.

No bpy. The official checkpoint holds, besides the network that predicts Gaussians, weights only
training has a use for (48.3 M parameters): the two ViTs' ImageNet classifier heads, the
depth-alignment UNet (it aligns to ground-truth depth) and the skip unit of each decoder's coarsest
fusion block (that block has no skip input, so the unit is never called). ``TRAINING_ONLY_KEYS``
names them for the loader (``checkpoint.py``), which never copies their values; the alignment UNet,
which no inference module holds, is declared here on PyTorch's ``meta`` device
(``MetaWeights``), so that ``load_state_dict(strict=True)`` still checks every key and shape.
"""

from __future__ import annotations

import re

import torch
from torch import nn

TRAINING_ONLY_KEYS = re.compile(
    r"(_encoder\.head\.(weight|bias)$)"  # the ViTs' classifier heads
    r"|(^depth_alignment\.)"  # the alignment UNet
    r"|(decoder\.fusions\.4\.resnet1\.)"  # the coarsest fusion block's skip unit
)


def is_training_only(key: str) -> bool:
    """Is the checkpoint tensor ``key`` one that inference never reads?"""
    return TRAINING_ONLY_KEYS.search(key) is not None


class MetaWeights(nn.Module):
    """Parameters of the given dotted names and shapes, nested as the names say, on ``meta``."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]) -> None:
        super().__init__()
        for key, shape in shapes.items():
            *path, leaf = key.split(".")
            module: nn.Module = self
            for part in path:
                if not hasattr(module, part):
                    module.add_module(part, nn.Module())
                module = getattr(module, part)
            module.register_parameter(leaf, nn.Parameter(torch.empty(shape, device="meta"), requires_grad=False))


def alignment_unet_shapes(
    widths: tuple[int, ...] = (16, 32, 64, 128, 256), in_channels: int = 2
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the depth-alignment UNet (docs/model.md): 4 down and 4 up steps of residual blocks."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, c_in: int, c_out: int, k: int) -> None:
        shapes[f"{name}.weight"] = (c_out, c_in, k, k)
        shapes[f"{name}.bias"] = (c_out,)

    def norm(name: str, c: int) -> None:
        shapes[f"{name}.weight"] = shapes[f"{name}.bias"] = (c,)

    def res_block(name: str, c_in: int, c_out: int) -> None:
        norm(f"{name}.residual.0", c_in)
        conv(f"{name}.residual.2", c_in, c_out // 2, 3)
        norm(f"{name}.residual.3", c_out // 2)
        conv(f"{name}.residual.5", c_out // 2, c_out, 3)
        if c_in != c_out:
            conv(f"{name}.shortcut", c_in, c_out, 1)

    conv("encoder.conv_in.0", in_channels, widths[0], 3)
    norm("encoder.conv_in.1", widths[0])
    for i in range(len(widths) - 1):
        res_block(f"encoder.convs_down.{i}.1", widths[i], widths[i + 1])
        res_block(f"encoder.convs_down.{i}.2", widths[i + 1], widths[i + 1])
    steps = len(widths) - 1
    for i in range(steps):
        c_in = widths[-1] if i == 0 else 2 * widths[steps - i]
        res_block(f"decoder.convs_up.{i}.1", c_in, widths[steps - 1 - i])
        res_block(f"decoder.convs_up.{i}.2", widths[steps - 1 - i], widths[steps - 1 - i])
    norm("decoder.conv_out.0", 2 * widths[0])
    conv("decoder.conv_out.2", 2 * widths[0], widths[0], 1)
    norm("decoder.conv_out.3", widths[0])
    conv("conv_out", widths[0], 1, 1)
    return shapes
