""".splat, the web format of antimatter15's splat viewer: 32 bytes per splat, no header, no SH.

No bpy. Facts from antimatter15/splat (``convert.py`` writes it, ``main.js`` reads it). Each splat,
little-endian: position 3 x float32, scale 3 x float32 (linear), colour RGBA u8 (the sRGB colour
0.5 + SH_C0 f_dc and the opacity, times 255), rotation 4 x u8 (rot_0..3 = w, x, y, z of the unit
quaternion, times 128, plus 128). The writer sorts the splats by size times opacity (the product
of the three scales times the opacity), largest first, so a viewer that streams the file draws
the most visible splats first; we do the same. View-dependent colour (SH degree 1-3) is dropped:
``formats.what_is_dropped`` says so before a write.
"""

from __future__ import annotations

import numpy as np

from ..errors import GaussiansError, SplatFileError
from ..gaussians import Gaussians, linear_to_srgb, srgb_to_linear

RECORD = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)), ("rotation", "u1", (4,))])
assert RECORD.itemsize == 32


def encode(g: Gaussians) -> bytes:
    """The bytes of a .splat file of ``g``, most visible splats first."""
    visibility = np.prod(g.scales, axis=1, dtype=np.float64) * g.opacities
    order = np.argsort(-visibility, kind="stable")
    floats = np.empty((len(g), 6), "<f4")
    floats[:, 0:3] = np.take(g.means, order, axis=0)
    floats[:, 3:6] = np.take(g.scales, order, axis=0)
    record = np.empty((len(g), RECORD.itemsize), np.uint8)
    record[:, 0:24] = floats.view(np.uint8)
    record[:, 24:27] = _bytes(linear_to_srgb(np.take(g.colors, order, axis=0)) * np.float32(255))  # 0.5 + SH_C0 f_dc
    record[:, 27] = _bytes(np.take(g.opacities, order) * np.float32(255))
    q = np.take(g.quats, order, axis=0)
    record[:, 28:32] = _bytes(q / np.linalg.norm(q, axis=1, keepdims=True) * np.float32(128) + np.float32(128))
    return record.tobytes()


def _bytes(values: np.ndarray) -> np.ndarray:
    """Rounded to bytes, clamped (a rotation component of 1 gives 256: 255)."""
    return np.clip(values + np.float32(0.5), 0, 255).astype(np.uint8)


def decode(data: bytes, source: str = "<bytes>") -> Gaussians:
    """Gaussians from the bytes of a .splat file."""
    if len(data) == 0:
        raise SplatFileError.about(source, "is empty (a .splat file holds 32 bytes per splat)")
    if len(data) % RECORD.itemsize:
        raise SplatFileError.about(source, f"has {len(data):,} bytes, not a whole number of 32-byte splats (a "
                                   "truncated file, or not a .splat file)")
    record = np.frombuffer(data, RECORD)
    q = (record["rotation"].astype(np.float32) - np.float32(128)) * np.float32(1 / 128)
    q[~np.any(q, axis=1)] = (1, 0, 0, 0)  # an all-128 rotation says nothing: the identity (as readers do)
    rgba = record["rgba"]
    colors = srgb_to_linear(np.arange(256, dtype=np.float32) / np.float32(255))[rgba[:, :3]]  # a table of 256
    try:
        return Gaussians(means=record["position"], scales=record["scale"], quats=q, colors=colors,
                         opacities=rgba[:, 3] * np.float32(1 / 255), color_space="srgb")
    except GaussiansError as e:
        raise SplatFileError.about(source, str(e)) from None
