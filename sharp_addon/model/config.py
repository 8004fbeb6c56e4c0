"""SHARP's network configuration, read from a checkpoint's own tensor shapes.

No bpy. The defaults are the released checkpoint's (``sharp_2572gikvuh.pt``); small test
checkpoints (narrow, shallow ViTs) describe themselves the same way, so they go through exactly
the loading path of the official file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PATCH_PREFIX = "monodepth_model.monodepth_predictor.encoder.patch_encoder."
DEPTH_PREFIX = "monodepth_model.monodepth_predictor."


@dataclass(frozen=True)
class ViTConfig:
    """A timm-style ViT (DINOv2-L/16 at 384 px in the release)."""

    image_size: int = 384  # input side in pixels; every ViT input is exactly this size
    patch_size: int = 16
    embed_dim: int = 1024
    depth: int = 24  # number of transformer blocks
    num_heads: int = 16  # not in the checkpoint's shapes: embed_dim / 64, as in ViT-L
    mlp_dim: int = 4096
    num_classes: int = 21841  # the unused ImageNet-21k classifier that the checkpoint carries

    @property
    def grid(self) -> int:
        """Tokens per side (24 in the release)."""
        return self.image_size // self.patch_size

    @property
    def taps(self) -> tuple[int, int]:
        """Blocks whose raw outputs feed the encoder's two finest maps: (5, 11) of 24."""
        return self.depth // 4 - 1, self.depth // 2 - 1


@dataclass(frozen=True)
class SharpConfig:
    """Everything the inference needs to know about a checkpoint's network."""

    vit: ViTConfig = ViTConfig()
    encoder_dims: tuple[int, ...] = (256, 256, 512, 1024, 1024)  # SPN outputs, finest first
    depth_decoder_dim: int = 256
    depth_layers: int = 2  # disparity channels = Gaussian layers
    gaussian_decoder_dim: int = 128
    head_dim: int = 32  # texture / geometry feature channels
    norm_groups: int = 8  # GroupNorm groups in the texture / geometry heads

    def __post_init__(self) -> None:
        # the encoder's 3 doublings turn 1/16-resolution token maps into the 1/2-resolution grid, and
        # patch overlaps trim grid/8 and grid/4 tokens
        if self.vit.patch_size != 16 or self.vit.grid % 8:
            raise ValueError(f"SHARP needs 16-px patches and a token grid divisible by 8; got patch "
                             f"{self.vit.patch_size}, grid {self.vit.grid}")

    @property
    def internal_size(self) -> int:
        """Side of the square network input (1536 = 4 x the ViT's 384)."""
        return 4 * self.vit.image_size

    @property
    def grid_size(self) -> int:
        """Gaussians per side and layer (768)."""
        return self.internal_size // 2

    @property
    def num_gaussians(self) -> int:
        return self.depth_layers * self.grid_size**2

    @classmethod
    def from_shapes(cls, shapes: Mapping[str, tuple[int, ...]]) -> SharpConfig:
        """The configuration a state dict's shapes describe; KeyError if a defining key is missing."""
        embed_dim, _, patch, _ = shapes[PATCH_PREFIX + "patch_embed.proj.weight"]
        tokens = shapes[PATCH_PREFIX + "pos_embed"][1] - 1
        grid = round(tokens**0.5)
        blocks = {int(m.group(1)) for k in shapes if (m := re.match(re.escape(PATCH_PREFIX) + r"blocks\.(\d+)\.", k))}
        vit = ViTConfig(
            image_size=grid * patch,
            patch_size=patch,
            embed_dim=embed_dim,
            depth=len(blocks),
            num_heads=max(1, embed_dim // 64),
            mlp_dim=shapes[PATCH_PREFIX + "blocks.0.mlp.fc1.weight"][0],
            num_classes=shapes[PATCH_PREFIX + "head.weight"][0],
        )
        enc = DEPTH_PREFIX + "encoder."
        encoder_dims = (
            shapes[enc + "upsample_latent0.0.weight"][0],
            shapes[enc + "upsample_latent1.0.weight"][0],
            shapes[enc + "upsample0.0.weight"][0],
            shapes[enc + "upsample1.0.weight"][0],
            shapes[enc + "fuse_lowres.weight"][0],
        )
        return cls(
            vit=vit,
            encoder_dims=encoder_dims,
            depth_decoder_dim=shapes[DEPTH_PREFIX + "decoder.fusions.0.out_conv.weight"][0],
            depth_layers=shapes[DEPTH_PREFIX + "head.4.weight"][0],
            gaussian_decoder_dim=shapes["feature_model.decoder.fusions.0.out_conv.weight"][0],
            head_dim=shapes["feature_model.texture_head.3.weight"][0],
        )
