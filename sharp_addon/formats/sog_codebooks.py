"""The codebooks of a SOG file: 256 values for a pooled attribute, and the palette of SH vectors.

No bpy. Both are deterministic (no clock, a fixed seed) and vectorised:

- ``quantise_1d``: scales (log) and base colours (f_dc) share one 256-entry codebook per attribute.
  The values are binned (half uniform, half quantile bins, so outliers neither starve the dense
  middle nor vanish), then a weighted 1-D Lloyd iteration runs on the bins with weights
  count^0.5: dense regions pull entries, sparse tails keep a few (the trade PlayCanvas' writer
  makes too). Labels are the nearest entry for every value.
- ``sh_palette``: SH degree 1-3 vectors become at most 64 K centroids by a two-level k-means (a
  tree: 256 coarse clusters, each split into its share of the palette), so assigning 1.18 M vectors
  costs about two passes of 256 distances each instead of one of 65,536.
"""

from __future__ import annotations

import numpy as np

CODEBOOK_SIZE = 256
_BINS = 4096  # histogram bins of a 1-D codebook (half uniform, half quantile)
_LLOYD_1D_ITERATIONS = 40
_DENSITY_POWER = 0.5  # weight of a bin = count ** this: 1 is plain MSE, 0 spreads entries evenly
_SAMPLE = 1 << 18  # values the codebook is fitted to
_LABEL_CELLS = 1 << 16  # cells of the table that labels values
_COARSE = 256  # clusters of the palette's first level
_COARSE_SAMPLE, _FINE_SAMPLE = 64, 4  # vectors a level's k-means is fitted to, per centroid
_ROWS = 1 << 15  # vectors per distance block: bounded temporaries


# ---- 1-D codebooks --------------------------------------------------------------------------------


def quantise_1d(values: np.ndarray, size: int = CODEBOOK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A ``size``-entry ascending float32 codebook for the finite ``values`` (pooled, any shape) and the
    uint8 index of each value's nearest entry (``values``' shape).

    The codebook is fitted to a strided sample (plus the extremes); only the labels see every value.
    """
    v = np.ascontiguousarray(values, dtype=np.float32).ravel()
    if v.size == 0:
        return np.zeros(size, np.float32), np.zeros(np.shape(values), np.uint8)
    lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        return np.full(size, lo, np.float32), np.zeros(np.shape(values), np.uint8)
    sample = np.sort(np.concatenate([v[:: max(1, v.size // _SAMPLE)], [lo, hi]]).astype(np.float64))
    centres, weights = _histogram(sample, lo, hi)
    codebook = _weighted_lloyd(centres, weights, size).astype(np.float32)
    return codebook, nearest_entry(codebook, v, lo, hi).reshape(np.shape(values))


def nearest_entry(codebook: np.ndarray, values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """uint8 index of the nearest entry of an ascending ``codebook`` for each of ``values`` (all in [lo, hi]).

    A table over 65,536 equal cells of [lo, hi] answers every value whose cell holds no boundary
    between two entries; the few values in the other cells are searched exactly.
    """
    v = np.asarray(values, dtype=np.float32).ravel()
    c = codebook.astype(np.float64)
    boundaries = (c[1:] + c[:-1]) / 2
    cells = _LABEL_CELLS
    step = (hi - lo) / cells
    cell = np.clip(((v - np.float32(lo)) * np.float32(1 / step)).astype(np.int32), 0, cells - 1)
    edges = lo + step * np.arange(cells + 1)
    first = np.searchsorted(boundaries, edges)  # label at each cell edge
    labels = first[:-1].astype(np.uint8)[cell]
    split = np.flatnonzero((first[1:] != first[:-1])[cell])
    labels[split] = np.searchsorted(boundaries, v[split])
    return labels


def _histogram(sample: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The mean value and weight of each non-empty bin of the sorted ``sample``, ascending."""
    quantile_edges = sample[np.linspace(0, sample.size - 1, _BINS // 2).astype(np.int64)]
    edges = np.unique(np.concatenate([np.linspace(lo, hi, _BINS // 2), quantile_edges]))
    starts = np.searchsorted(sample, edges)  # sorted: each bin is a run
    counts = np.diff(np.concatenate([starts, [sample.size]]))
    sums = np.add.reduceat(sample, np.minimum(starts, sample.size - 1))
    full = counts > 0
    return sums[full] / counts[full], counts[full].astype(np.float64) ** _DENSITY_POWER


def _weighted_lloyd(x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:  # ascending [B] -> [k]
    """k centres of weighted 1-D points by Lloyd's iteration; each cluster is a run of the sorted
    points, so one iteration is a search for k - 1 boundaries and prefix-sum differences."""
    if x.size <= k:
        return np.concatenate([x, np.full(k - x.size, x[-1])])
    cw = np.concatenate([[0.0], np.cumsum(w)])
    cwx = np.concatenate([[0.0], np.cumsum(w * x)])
    c = x[np.minimum(np.searchsorted(cw[1:], (np.arange(k) + 0.5) / k * cw[-1]), x.size - 1)]
    for _ in range(_LLOYD_1D_ITERATIONS):
        bounds = np.concatenate([[0], np.searchsorted(x, (c[1:] + c[:-1]) / 2), [x.size]])
        weight = cw[bounds[1:]] - cw[bounds[:-1]]
        new = np.where(weight > 0, (cwx[bounds[1:]] - cwx[bounds[:-1]]) / np.maximum(weight, 1e-300), c)
        if np.array_equal(new, c):
            break
        c = new
    return np.sort(c)


# ---- the SH palette -------------------------------------------------------------------------------


def palette_size(n: int) -> int:
    """Centroids for n splats, as PlayCanvas sizes its palette: 1024 * min(64, 2^floor(log2(n / 1024))),
    never more than n."""
    if n <= 0:
        return 0
    power = int(np.floor(np.log2(n / 1024)))
    return int(min(n, min(64.0, 2.0**power) * 1024))


def sh_palette(vectors: np.ndarray, size: int, iterations: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """At most ``size`` centroids [P, D] float32 for ``vectors`` [N, D] and each vector's label [N] int64."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    if n <= size:
        return x.copy(), np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    coarse = _lloyd(_sample(x, _COARSE_SAMPLE * _COARSE, rng), min(_COARSE, size), iterations, rng)
    groups = nearest_centroid(x, coarse)
    counts = np.bincount(groups, minlength=len(coarse))
    shares = _shares(counts, size)
    order = np.argsort(groups, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    centroids, labels = [], np.empty(n, dtype=np.int64)
    first = 0
    for j in np.flatnonzero(counts):
        members = order[starts[j] : starts[j + 1]]
        points = x[members]
        if shares[j] >= len(points):
            fine, local = points, np.arange(len(points))
        else:
            fine = _lloyd(_sample(points, _FINE_SAMPLE * shares[j], rng), int(shares[j]), iterations, rng)
            local = nearest_centroid(points, fine)
        centroids.append(fine)
        labels[members] = first + local
        first += len(fine)
    return np.concatenate(centroids).astype(np.float32), labels


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:  # [N, D], [K, D] -> [N] int64
    """Index of the nearest centroid (squared Euclidean distance) of each row, in bounded blocks."""
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    half_norms = 0.5 * np.einsum("kd,kd->k", c, c)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), _ROWS):
        block = x[start : start + _ROWS]
        out[start : start + len(block)] = np.argmax(block @ c.T - half_norms, axis=1)
    return out


def _sample(x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= count else x[np.sort(rng.choice(len(x), count, replace=False))]


def _lloyd(x: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """k centroids of the rows of ``x`` (k <= len(x)), from k distinct rows; an emptied cluster keeps its centroid."""
    c = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(iterations):
        labels = nearest_centroid(x, c)
        counts = np.bincount(labels, minlength=k)
        order = np.argsort(labels, kind="stable")
        used = np.flatnonzero(counts)
        sums = np.add.reduceat(x[order], np.concatenate([[0], np.cumsum(counts)])[used], axis=0)
        c[used] = sums / counts[used, None]
    return c


def _shares(counts: np.ndarray, total: int) -> np.ndarray:
    """``total`` centroids split over clusters in proportion to their sizes (largest remainders), each
    non-empty cluster at least one and at most its size (``total`` >= the non-empty clusters)."""
    ideal = counts * (total / counts.sum())
    shares = np.minimum(np.maximum(np.floor(ideal).astype(np.int64), counts > 0), counts)
    while shares.sum() > total:  # the minimum of one took more than floor() left: from the most over-served
        over = np.flatnonzero(shares > 1)
        cut = over[np.argsort(ideal[over] - shares[over], kind="stable")][: int(shares.sum()) - total]
        shares[cut] -= 1
    left = total - int(shares.sum())
    for j in np.argsort(-(ideal - shares), kind="stable"):  # one more for the largest remainders
        if left > 0 and shares[j] < counts[j]:
            shares[j] += 1
            left -= 1
    for j in np.argsort(shares - counts, kind="stable"):  # what clamping left over: where there is room
        extra = min(int(counts[j] - shares[j]), left)
        shares[j] += extra
        left -= extra
    return shares
