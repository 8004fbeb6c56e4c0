"""Synthetic SHARP weights (rule ``sharp-parity-weights-v1``) and the official key/shape list.

The official checkpoint cannot ship with the repository, so the tests, the parity check and the
benches use weights that are a pure function of each state-dict key and shape: no library RNG, no
dependence on generation order, on torch or on numpy versions. The reference outputs in
``tests/data/golden.npz`` were computed with these weights, and ``meta__weight_crc32`` there holds
the CRC-32 of every tensor, which ``tests/core/test_weights.py`` checks.

The rule, for a key ``k`` of shape ``s``:

- element ``i`` (row-major) is the ``(i + 1)``-th output ``z`` of SplitMix64 seeded with
  ``crc32(k)``; ``U = (z >> 11) / 2**53`` lies in [0, 1) and ``u = (2U - 1) sqrt(3)`` has mean 0
  and variance 1; the value is ``float32(mean + std * u)``, computed in float64 and rounded once;
- ``(mean, std)`` come from the first matching row of ``_kind``: two exact keys of the depth head's
  last convolution (kept positive so the disparity stays in a plausible range), the prediction
  head (O(1) deltas instead of its zero initialisation), class tokens, position embeddings,
  LayerScale (0.2, so every ViT block visibly contributes), norm scales (1-D ``.weight``), other
  biases, and every other weight with ``1 / sqrt(fan_in)``;
- ``fan_in`` is ``prod(s[1:])``, except for the transposed convolutions (kernel = stride = 2,
  layout ``[in, out, kh, kw]``): ``s[0]``.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

RULE = "sharp-parity-weights-v1"
DATA = Path(__file__).resolve().parents[1] / "data"
STATE_DICT_TSV = DATA / "state-dict.tsv"
GOLDEN = DATA / "golden.npz"

_TRANSPOSED_CONV = re.compile(
    r"\.deconv\.weight$|\.upsample_latent0\.[123]\.weight$|\.upsample_latent1\.[12]\.weight$"
    r"|\.upsample[012]\.1\.weight$|\.upsample_lowres\.weight$"
    r"|^monodepth_model\.monodepth_predictor\.head\.1\.weight$"
)
_DEPTH_HEAD_OUT = "monodepth_model.monodepth_predictor.head.4."

# SplitMix64 constants (golden-ratio increment and the two finaliser multipliers)
_INCREMENT = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_CHUNK = 1 << 16  # elements per pass: the scratch arrays (512 KiB each) stay in the CPU cache, 3x faster than 1 << 20


def fan_in(key: str, shape: tuple[int, ...]) -> int:
    if _TRANSPOSED_CONV.search(key):
        return shape[0]
    return math.prod(shape[1:]) if len(shape) > 1 else shape[0]


def _kind(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) of one tensor."""
    if key == _DEPTH_HEAD_OUT + "weight":
        return 0.0, 0.25 / math.sqrt(fan_in(key, shape))
    if key == _DEPTH_HEAD_OUT + "bias":
        return 3.0, 0.1
    if key.startswith("prediction_head."):
        if key.endswith(".weight"):
            return 0.0, 0.5 / math.sqrt(fan_in(key, shape))
        if key.endswith(".bias"):
            return 0.0, 0.1
    if key.endswith(".cls_token"):
        return 0.0, 0.5
    if key.endswith(".pos_embed"):
        return 0.0, 0.2
    if key.endswith(".gamma"):
        return 0.2, 0.05
    if key.endswith(".weight") and len(shape) == 1:
        return 1.0, 0.1
    if key.endswith(".bias"):
        return 0.0, 0.02
    if key.endswith(".weight"):
        return 0.0, 1.0 / math.sqrt(fan_in(key, shape))
    raise KeyError(f"the weight rule has no row for {key!r} {shape}")


def synthetic_tensor(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The rule's float32 array for one key."""
    shape = tuple(int(d) for d in shape)
    mean, std = _kind(key, shape)
    seed = np.uint64(zlib.crc32(key.encode("utf-8")))
    n = math.prod(shape)
    out = np.empty(n, dtype=np.float32)
    step = min(n, _CHUNK)
    z = np.empty(step, dtype=np.uint64)
    t = np.empty(step, dtype=np.uint64)
    u = np.empty(step, dtype=np.float64)
    with np.errstate(over="ignore"):  # every uint64 operation wraps modulo 2**64, as SplitMix64's do
        counter = np.arange(1, step + 1, dtype=np.uint64) * _INCREMENT + seed  # element i: seed + (i+1) c
        advance = np.uint64(step) * _INCREMENT
        for start in range(0, n, step):
            m = min(step, n - start)
            zm, tm, um = z[:m], t[:m], u[:m]
            np.right_shift(counter[:m], np.uint64(30), out=tm)
            np.bitwise_xor(counter[:m], tm, out=zm)
            np.multiply(zm, _MIX1, out=zm)
            np.right_shift(zm, np.uint64(27), out=tm)
            np.bitwise_xor(zm, tm, out=zm)
            np.multiply(zm, _MIX2, out=zm)
            np.right_shift(zm, np.uint64(31), out=tm)
            np.bitwise_xor(zm, tm, out=zm)
            np.right_shift(zm, np.uint64(11), out=zm)  # 53 random bits: exact in float64
            um[:] = zm.view(np.int64)
            um *= 2.0**-53  # U in [0, 1)
            um *= 2.0
            um -= 1.0
            um *= math.sqrt(3.0)  # u: mean 0, variance 1
            um *= std
            um += mean
            out[start:start + m] = um  # one rounding to float32 (nearest even)
            counter += advance
    return out.reshape(shape)


def synthetic_state_dict(shapes: Mapping[str, tuple[int, ...]], as_torch: bool = True) -> dict:
    """The rule's weights for every key of ``shapes``, in its order (torch tensors or numpy arrays)."""
    if as_torch:
        import torch

        return {k: torch.from_numpy(synthetic_tensor(k, s)) for k, s in shapes.items()}
    return {k: synthetic_tensor(k, s) for k, s in shapes.items()}


def official_shapes(path: Path = STATE_DICT_TSV) -> dict[str, tuple[int, ...]]:
    """Key -> shape of Apple's checkpoint, in state-dict order (``tests/data/state-dict.tsv``)."""
    shapes: dict[str, tuple[int, ...]] = {}
    columns: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        cells = line.split("\t")
        if columns is None:
            columns = cells
            continue
        row = dict(zip(columns, cells))
        shapes[row["key"]] = tuple(int(d) for d in row["shape"].split("x")) if row["shape"] else ()
    return shapes


def crc32(array: np.ndarray) -> int:
    """CRC-32 of the little-endian float32 bytes, as ``meta__weight_crc32`` stores them."""
    return zlib.crc32(np.ascontiguousarray(array, dtype="<f4").tobytes())
