"""PLY through the registry: ``ply.py`` is the reader and writer (ml-sharp's and INRIA 3DGS layouts)."""

from __future__ import annotations

from ..gaussians import Gaussians
from ..ply import Layout, decode


def encode(g: Gaussians, layout: Layout = "sharp") -> bytes:
    from ..ply import encode as encode_ply

    return encode_ply(g, layout)


__all__ = ["decode", "encode"]
