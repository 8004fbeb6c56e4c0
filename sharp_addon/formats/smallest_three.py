"""The smallest-three encoding of unit quaternions that SOG and the compressed PLY share.

No bpy. A unit quaternion and its negative are the same rotation, so the largest component (by
magnitude) can be made positive and dropped: the other three lie in [-sqrt(1/2), sqrt(1/2)] and the
dropped one is sqrt(1 - their squares). Formats store the dropped index in 2 bits and the three in
a few bits each. Components keep the caller's order (w, x, y, z for PLY's rot_0..3). Component-major
and ``np.choose``: no per-row fancy indexing, which numpy does slowly.
"""

from __future__ import annotations

import numpy as np

# KEPT[s][i]: the component in stored slot s when component i is dropped (the others, in order)
KEPT = ((1, 0, 0, 0), (2, 2, 1, 1), (3, 3, 3, 2))


def split(quats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # [N, 4] -> [N] uint8, [3, N] float32
    """The index of each quaternion's largest component and the other three (in order) of the
    normalised quaternion whose largest component is positive."""
    q = np.ascontiguousarray(np.asarray(quats, dtype=np.float32).T)  # [4, N]
    q /= np.sqrt(np.einsum("in,in->n", q, q))
    largest = np.argmax(np.abs(q), axis=0).astype(np.uint8)
    sign = np.where(np.choose(largest, q) < 0, np.float32(-1), np.float32(1))
    kept = np.stack([np.choose(largest, [q[i] for i in slot]) for slot in KEPT]) * sign
    return largest, kept


def join(largest: np.ndarray, kept: np.ndarray) -> np.ndarray:  # [N], [3, N] -> [N, 4] float32
    """Quaternions from the dropped index and the three kept components (the inverse of ``split``)."""
    kept = np.asarray(kept, dtype=np.float32)
    dropped = np.sqrt(np.maximum(np.float32(0), 1 - np.einsum("sn,sn->n", kept, kept)))
    a, b, c = kept
    out = np.empty((len(dropped), 4), np.float32)
    out[:, 0] = np.choose(largest, (dropped, a, a, a))
    out[:, 1] = np.choose(largest, (a, dropped, b, b))
    out[:, 2] = np.choose(largest, (b, b, dropped, c))
    out[:, 3] = np.choose(largest, (c, c, c, dropped))
    return out
