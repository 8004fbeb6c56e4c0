"""Morton (Z-order) ordering of splat centres: neighbours in space become neighbours in the file.

No bpy. PlayCanvas' writers (splat-transform's SOG and compressed-PLY writers) put splats in this
order: SOG textures then compress better, and the 256-splat chunks of a compressed PLY span small
boxes, so their 11/10/11-bit positions are fine. We quantise each axis to 21 bits of the bounding
box (63-bit codes) in one pass, so no bucket of equal codes needs refining as a 10-bit code would.
"""

from __future__ import annotations

from functools import cache

import numpy as np

BITS = 21  # per axis: three of them fill a 63-bit code
_PIECE = 7  # bits per axis that one table look-up interleaves


@cache
def _interleave_table() -> np.ndarray:  # [2^21] uint32, 8 MiB, made once
    """Entry x | y << 7 | z << 14 (7 bits each) holds their bits interleaved: bit i of x, y, z at 3 i,
    3 i + 1, 3 i + 2."""
    one, bits = np.uint32(1), np.arange(1 << _PIECE, dtype=np.uint32)
    spread = np.zeros(1 << _PIECE, dtype=np.uint32)
    for i in range(_PIECE):
        spread |= ((bits >> np.uint32(i)) & one) << np.uint32(3 * i)
    index = np.arange(1 << (3 * _PIECE), dtype=np.uint32)
    mask, piece = np.uint32((1 << _PIECE) - 1), np.uint32(_PIECE)
    x, y, z = index & mask, (index >> piece) & mask, index >> (piece + piece)
    return spread[x] | (spread[y] << one) | (spread[z] << (one + one))


def morton_codes(points: np.ndarray) -> np.ndarray:  # [N, 3] -> [N] uint64
    """Each point's Z-order code within the points' bounding box (x in the lowest bit)."""
    axes = np.ascontiguousarray(np.asarray(points, dtype=np.float32).T)  # [3, N]: fast reductions per axis
    top = (1 << BITS) - 1
    cells = []
    for values in axes:
        lo, hi = float(values.min()), float(values.max())
        scale = np.float32(top / (hi - lo)) if hi > lo else np.float32(0)
        cells.append(np.clip((values - np.float32(lo)) * scale, 0, top).astype(np.uint32))
    table = _interleave_table()
    mask = np.uint32((1 << _PIECE) - 1)
    codes = np.zeros(axes.shape[1], dtype=np.uint64)
    for piece in range(BITS // _PIECE):
        shift = np.uint32(piece * _PIECE)
        index = ((cells[0] >> shift) & mask) | (((cells[1] >> shift) & mask) << np.uint32(_PIECE))
        index |= ((cells[2] >> shift) & mask) << np.uint32(2 * _PIECE)
        codes |= table[index].astype(np.uint64) << np.uint64(3 * _PIECE * piece)
    return codes


def morton_order(points: np.ndarray) -> np.ndarray:  # [N, 3] -> [N] int64
    """The permutation that sorts ``points`` along the Z-order curve (points in one cell, 1/2^21 of the
    box per axis, come in an order numpy's sort chooses)."""
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.argsort(morton_codes(points)).astype(np.int64, copy=False)
