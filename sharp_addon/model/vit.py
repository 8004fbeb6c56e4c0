"""Vision transformer with timm's module names (the checkpoint's ``patch_encoder``/``image_encoder``).

No bpy. Pre-norm blocks with LayerScale, exact GELU, LayerNorm eps 1e-6, one class token, learned
position embeddings for exactly ``image_size`` inputs (docs/model.md, "ViT backbones"). Attention
is PyTorch's fused ``scaled_dot_product_attention``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .config import ViTConfig


class PatchEmbed(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, S, S] -> [B, T, D]
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, N, D]
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.contiguous()  # the CPU flash kernel runs twice as fast in bfloat16 on dense heads
        x = F.scaled_dot_product_attention(q, k, v)  # [B, H, N, D/H]
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class LayerScale(nn.Module):
    """Holds ``gamma`` only: ``Block`` folds the scaling into its residual adds."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.attn = Attention(cfg.embed_dim, cfg.num_heads)
        self.ls1 = LayerScale(cfg.embed_dim)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.mlp = Mlp(cfg.embed_dim, cfg.mlp_dim)
        self.ls2 = LayerScale(cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x + gamma * f(x) as one fused pass (LayerScale folded into the residual add)
        x = torch.addcmul(x, self.ls1.gamma, self.attn(self.norm1(x)))
        return torch.addcmul(x, self.ls2.gamma, self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """Token maps of square images of exactly ``cfg.image_size`` pixels."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid**2 + 1, cfg.embed_dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)  # in the checkpoint, never run

    def forward(
        self, x: torch.Tensor, after_block: Callable[[int], None], taps: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:  # [B, 3, S, S] -> [B, D, G, G], taps x [B, D, G, G]
        """Final normed token map, and the raw residual stream after each block in ``taps``.

        ``after_block(i)`` runs after block i (progress and cancellation between blocks).
        """
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        tapped = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in taps:
                tapped.append(self.to_map(x))
            after_block(i)
        return self.to_map(self.norm(x)), tapped

    def to_map(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, 1 + G*G, D] -> [B, D, G, G]
        """Drop the class token; token t sits at row t // G, column t % G."""
        g = self.cfg.grid
        return tokens[:, 1:].transpose(1, 2).reshape(len(tokens), -1, g, g)
