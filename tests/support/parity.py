"""Parity with Apple's reference: a candidate's outputs against ``tests/data/golden.npz``.

    python -m tests.support.parity [MODULE:FUNCTION] [--require-all] [--report-only] [--tol-scale X]

The golden file holds what ml-sharp (commit 1eaa046) computed for ``tests/data/sample_640x480.png``
with the synthetic weights of ``tests/support/synthetic_weights.py``, reduced so that it stays small: for each map,
the values at 48 fixed pixels (``NAME__pos`` at ``NAME__ys``/``NAME__xs``), block means on a coarse
grid (``NAME__pool``) and (mean, std, min, max) of the whole tensor (``NAME__stats``); for each
per-Gaussian quantity, the rows at 5000 fixed indices (``gauss_idx``, ``NAME__sample``) and
per-column statistics; scalars as ``NAME__value``; the covariances at those indices, the exact PLY
header, the PLY's extra elements and sampled vertex rows. This module reduces the candidate's full
tensors the same way and compares. It depends on numpy and Pillow only (torch for the weights), not
on ``sharp_addon``: it checks our code, so none of it may come from our code.

The candidate (default ``tests.support.parity_candidate:candidate``) is
``FUNCTION(state_dict, image_uint8_HxWx3, f_px) -> dict`` of full tensors without the batch
dimension; it may ``state_dict.clear()`` once loaded (nothing else holds the 2.8 GB). Required:
``mean``, ``scales``, ``quaternions`` (w, x, y, z), ``colors`` (linear RGB) and ``opacities``; the
intermediates of ``QUANTITIES`` are compared when given (``--require-all``: they must be) and
``ply_bytes``, the PLY our writer makes, when given.

Tolerances (the golden's own; the reference moved by at most 4e-5 in these metrics when its
attention or ViTs were computed differently, so they leave a 25x margin): maps, max |c - g| over the
sampled and pooled values divided by the golden tensor's std, 1e-3 (1e-5 for the resized image
and the base colours); statistics likewise, min and max at 10x; Gaussians, per sampled row
||c - g|| / (||g|| + 1e-3 rms ||g||) at 1e-3, colours and opacities 2e-4 absolute; quaternions
through the covariance they imply with the scales (the reference's eigendecomposition fixes them
only up to sign and axis order), Frobenius-relative 1e-3.

Prints one verdict line per compared quantity (``OK``, ``FAIL`` or ``SKIP``), then ``PARITY OK`` or
``PARITY FAIL: <names>``; exit status 0 or 1.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.synthetic_weights import GOLDEN, crc32, official_shapes, synthetic_tensor  # noqa: E402

IMAGE = ROOT / "tests" / "data" / "sample_640x480.png"
SH_C0 = 0.28209479177387814  # the SH degree-0 basis constant, 1 / (2 sqrt(pi))
MINMAX_FACTOR = 10.0  # min and max of the statistics get this many times the tolerance
COVARIANCE_TOL = 1e-3
PLY_DISPARITY_RTOL = 1e-4  # the PLY's disparity quantiles, relative
PLY_FLOAT_ATOL = 1e-4  # the other float extras, times max(1, |golden|)


@dataclass(frozen=True)
class Quantity:
    name: str
    kind: str  # "map", "scalar" or "gauss"
    tol: float
    metric: str = ""  # gauss: "rowrel", "abs" or "cov"
    required: bool = False


def _maps(tol: float, *names: str) -> list[Quantity]:
    return [Quantity(n, "map", tol) for n in names]


QUANTITIES: list[Quantity] = [
    *_maps(1e-5, "image_1536"),
    Quantity("disparity_factor", "scalar", 1e-6),
    *_maps(1e-3, "vit_latent0", "vit_latent1", "vit_x0", "vit_x1", "vit_x2", "vit_lowres",
           "enc0", "enc1", "enc2", "enc3", "enc4", "mono_decoder_features", "mono_disparity", "depth"),
    Quantity("global_scale", "scalar", 1e-4),
    *_maps(1e-3, "init_feature_input", "base_disparity", "base_scales"),
    *_maps(1e-5, "base_colors"),
    *_maps(1e-3, "gdec_decoder_features", "gdec_skip_features", "gdec_texture_features",
           "gdec_geometry_features", "delta"),
    Quantity("ndc_mean", "gauss", 1e-3, "rowrel"),
    Quantity("ndc_scales", "gauss", 1e-3, "rowrel"),
    Quantity("ndc_quaternions", "gauss", 1e-3, "rowrel"),
    Quantity("mean", "gauss", 1e-3, "rowrel", required=True),
    Quantity("scales", "gauss", 1e-3, "rowrel", required=True),
    Quantity("quaternions", "gauss", COVARIANCE_TOL, "cov", required=True),
    Quantity("colors", "gauss", 2e-4, "abs", required=True),
    Quantity("opacities", "gauss", 2e-4, "abs", required=True),
]
TOLERANCE = {q.name: q.tol for q in QUANTITIES}


class Verdicts:
    """Prints and keeps one line per compared quantity."""

    def __init__(self, stream=None) -> None:
        self.lines: list[str] = []
        self.failed: list[str] = []
        self.stream = stream if stream is not None else sys.stdout

    def add(self, name: str, ok: bool | None, detail: str) -> None:
        tag = "SKIP" if ok is None else "OK" if ok else "FAIL"
        line = f"{tag:<4} {name:<28} {detail}"
        self.lines.append(line)
        print(line, file=self.stream, flush=True)
        if ok is False:
            self.failed.append(name)

    def summary(self) -> str:
        return f"PARITY FAIL: {', '.join(self.failed)}" if self.failed else "PARITY OK"


# ---- reductions (the golden's, applied to the candidate's full tensors) ----------------------------

def as_channels(a) -> np.ndarray:
    """A map as [C, H, W]; [C, L, H, W] (attribute, layer) folds its first two axes."""
    a = np.asarray(a)
    if a.ndim == 4:
        a = a.reshape(-1, *a.shape[2:])
    if a.ndim != 3:
        raise ValueError(f"a map must be [C, H, W] or [C, L, H, W], not {a.shape}")
    return a


def summary_stats(a: np.ndarray) -> np.ndarray:
    """(mean, std, min, max) in float64, one channel at a time (no float64 copy of a large map)."""
    flat = a.reshape(len(a), -1) if a.ndim > 1 else a.reshape(1, -1)
    count = flat.size
    total = sum(float(np.sum(row, dtype=np.float64)) for row in flat)
    mean = total / count
    squares = sum(float(np.sum(np.square(row.astype(np.float64) - mean))) for row in flat)
    return np.array([mean, math.sqrt(squares / count), float(flat.min()), float(flat.max())])


def column_stats(a2: np.ndarray) -> np.ndarray:
    """[4, k]: (mean, std, min, max) of each column of an [N, k] array."""
    return np.stack([summary_stats(np.ascontiguousarray(a2[:, j])) for j in range(a2.shape[1])], axis=1)


def block_means(m: np.ndarray, grid: int) -> np.ndarray:
    """[C, grid, grid] means of equal blocks of a [C, H, W] map."""
    c, h, w = m.shape
    if h % grid or w % grid:
        raise ValueError(f"a {h} x {w} map does not split into {grid} x {grid} blocks")
    return m.reshape(c, grid, h // grid, grid, w // grid).mean(axis=(2, 4), dtype=np.float64)


def stats_error(cand: np.ndarray, gold: np.ndarray) -> float:
    """Statistics ([4] or [4, k]) apart, in golden standard deviations; min and max count 1/10."""
    gold = np.asarray(gold, np.float64).reshape(4, -1)
    diff = np.abs(np.asarray(cand, np.float64).reshape(4, -1) - gold) / (gold[1] + 1e-12)
    diff[2:] /= MINMAX_FACTOR
    return float(diff.max())


def row_relative(cand: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per row ||c - g|| / (||g|| + 1e-3 rms||g||): relative, with a floor for rows near zero."""
    c = np.asarray(cand, np.float64).reshape(len(cand), -1)
    g = np.asarray(gold, np.float64).reshape(len(gold), -1)
    norms = np.linalg.norm(g, axis=1)
    return np.linalg.norm(c - g, axis=1) / (norms + 1e-3 * math.sqrt(float(np.mean(norms**2))))


def rotations(quats: np.ndarray) -> np.ndarray:
    """[N, 3, 3] rotation matrices of (w, x, y, z) quaternions, normalised first (float64)."""
    q = np.asarray(quats, np.float64)
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=1)


def covariances(quats: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Sigma = R diag(s^2) R^T per Gaussian, float64."""
    r = rotations(quats)
    return (r * np.asarray(scales, np.float64)[:, None, :] ** 2) @ r.transpose(0, 2, 1)


def covariance_error(cand: np.ndarray, gold: np.ndarray) -> np.ndarray:
    n = len(gold)
    return np.linalg.norm((cand - gold).reshape(n, -1), axis=1) / np.linalg.norm(gold.reshape(n, -1), axis=1)


def srgb_decode(v: np.ndarray) -> np.ndarray:
    """The exact piecewise sRGB curve, encoded -> linear."""
    v = np.asarray(v, np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0.04045) + 0.055) / 1.055) ** 2.4)


# ---- comparisons -------------------------------------------------------------------------------------

def compare_scalar(v: Verdicts, q: Quantity, value, gold: Mapping, tol: float) -> None:
    c, g = float(np.asarray(value)), float(gold[f"{q.name}__value"])
    err = abs(c - g) / (abs(g) + 1e-12)
    v.add(q.name, err <= tol, f"relative error {err:.2e} ({c:.9g} vs {g:.9g}; tol {tol:.0e})")


def compare_map(v: Verdicts, q: Quantity, value, gold: Mapping, tol: float) -> None:
    name = q.name
    try:
        m = as_channels(value)
    except ValueError as e:
        v.add(name, False, str(e))
        return
    g_pos, g_pool, g_stats = gold[f"{name}__pos"], gold[f"{name}__pool"], gold[f"{name}__stats"]
    shape = tuple(np.shape(value))
    if m.shape[0] != g_pool.shape[0] or g_pool.shape[1] > min(m.shape[1:]):
        v.add(name, False, f"shape {shape} does not fit the golden's {g_pool.shape[0]} channels")
        return
    if not np.isfinite(m).all():
        v.add(name, False, f"non-finite values (shape {shape})")
        return
    try:
        pool = block_means(m, g_pool.shape[1])
        pos = m[:, gold[f"{name}__ys"], gold[f"{name}__xs"]].T
    except (ValueError, IndexError) as e:
        v.add(name, False, f"shape {shape}: {e}")
        return
    std = float(g_stats[1]) + 1e-12
    e_pos = float(np.max(np.abs(pos.astype(np.float64) - g_pos))) / std
    e_pool = float(np.max(np.abs(pool - g_pool))) / std
    e_stats = stats_error(summary_stats(m), g_stats)
    ok = max(e_pos, e_pool, e_stats) <= tol
    v.add(name, ok, f"error/std pixels {e_pos:.2e} blocks {e_pool:.2e} stats {e_stats:.2e} "
                    f"(tol {tol:.0e}) shape {shape}")


def _gaussian_rows(v: Verdicts, name: str, value, gold: Mapping, columns: int) -> np.ndarray | None:
    a = np.asarray(value)
    n = int(gold["num_gaussians"])
    if a.shape[0] != n or a.reshape(n, -1).shape[1] != columns:
        v.add(name, False, f"shape {a.shape}, expected ({n}, {columns})")
        return None
    a2 = a.reshape(n, columns)
    if not np.isfinite(a2).all():
        v.add(name, False, "non-finite values")
        return None
    return a2


def compare_gaussians(v: Verdicts, q: Quantity, value, gold: Mapping, tol: float) -> None:
    g_sample = np.asarray(gold[f"{q.name}__sample"], np.float64)
    a2 = _gaussian_rows(v, q.name, value, gold, g_sample.shape[1])
    if a2 is None:
        return
    c_sample = a2[gold["gauss_idx"]].astype(np.float64)
    e_stats = stats_error(column_stats(a2), gold[f"{q.name}__stats"])
    if q.metric == "rowrel":
        err = row_relative(c_sample, g_sample)
        what = "row-relative"
    else:
        err = np.abs(c_sample - g_sample)
        what = "absolute"
    worst = float(err.max())
    v.add(q.name, max(worst, e_stats) <= tol,
          f"{what} max {worst:.2e} p99 {float(np.percentile(err, 99)):.2e} stats/std {e_stats:.2e} "
          f"(tol {tol:.0e}) n {len(a2)}")


def compare_covariances(v: Verdicts, quats, scales, gold: Mapping, tol: float) -> None:
    name = "quaternions"
    q2 = _gaussian_rows(v, name, quats, gold, 4)
    if q2 is None:
        return
    if scales is None:
        v.add(name, False, "no scales to form covariances with")
        return
    idx = gold["gauss_idx"]
    q = q2[idx].astype(np.float64)
    s = np.asarray(scales)[idx].astype(np.float64)
    err = covariance_error(covariances(q, s), np.asarray(gold["covariance__sample"], np.float64))
    unit = float(np.max(np.abs(np.linalg.norm(q, axis=1) - 1)))
    g_q = np.asarray(gold["quaternions__sample"], np.float64)
    agree = np.abs(np.sum(g_q / np.linalg.norm(g_q, axis=1, keepdims=True)
                          * q / np.linalg.norm(q, axis=1, keepdims=True), axis=1)) > 0.999
    v.add("covariance(quaternions)", float(err.max()) <= tol,
          f"Frobenius-relative max {float(err.max()):.2e} p99 {float(np.percentile(err, 99)):.2e} (tol {tol:.0e}); "
          f"for information: same quaternion up to sign {100 * float(agree.mean()):.1f}%, max ||q|-1| {unit:.1e}")


_PLY_TYPES = {"char": "i1", "uchar": "u1", "short": "i2", "ushort": "u2", "int": "i4", "uint": "u4",
              "float": "f4", "double": "f8", "int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2",
              "int32": "i4", "uint32": "u4", "float32": "f4", "float64": "f8"}


def read_binary_ply(data: bytes) -> tuple[bytes, dict[str, np.ndarray]]:
    """(header bytes, element -> structured rows) of a binary PLY without list properties.

    Deliberately small and separate from ``sharp_addon.ply``: it checks our writer, so it must not
    share our reader's code.
    """
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError("not a PLY file (no 'ply' line or no 'end_header')")
    header = data[: end + len(b"end_header\n")]
    order, layout = None, []
    for line in header.decode("ascii").splitlines()[1:-1]:
        words = line.split()
        if not words:
            continue
        if words[0] == "format":
            order = {"binary_little_endian": "<", "binary_big_endian": ">"}[words[1]]
        elif words[0] == "element":
            layout.append((words[1], int(words[2]), []))
        elif words[0] == "property":
            layout[-1][2].append((words[-1], _PLY_TYPES[words[1]]))
    if order is None:
        raise ValueError("no binary format line")
    elements, offset = {}, len(header)
    for name, count, props in layout:
        dtype = np.dtype([(p, order + t) for p, t in props])
        elements[name] = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        offset += count * dtype.itemsize
    if offset != len(data):
        raise ValueError(f"{len(data) - offset} bytes after the last element")
    return header, elements


def compare_ply(v: Verdicts, ply_bytes, gold: Mapping) -> None:
    data = np.asarray(ply_bytes, dtype=np.uint8).tobytes()
    try:
        header, elements = read_binary_ply(data)
    except (ValueError, KeyError, IndexError) as e:
        v.add("ply", False, f"cannot be read: {e}")
        return
    g_header = np.asarray(gold["ply__header"], np.uint8).tobytes()
    v.add("ply.header", header == g_header,
          "byte-identical" if header == g_header else f"differs:\n{header.decode('ascii', 'replace')}"
                                                      f"--- golden ---\n{g_header.decode('ascii')}")
    size = int(gold["ply__num_bytes"])
    v.add("ply.size", len(data) == size, f"{len(data)} bytes (golden {size})")
    for key in (k for k in gold if k.startswith("ply__elem__")):
        name = key.removeprefix("ply__elem__")
        g = np.asarray(gold[key])
        if name not in elements or len(elements[name].dtype.names or ()) != 1:
            v.add(f"ply.{name}", False, "element missing or not a single property")
            continue
        c = np.asarray(elements[name][elements[name].dtype.names[0]])
        if c.shape != g.shape:
            v.add(f"ply.{name}", False, f"{c.shape[0]} values, golden {g.shape[0]}")
        elif name == "disparity":
            err = float(np.max(np.abs(c.astype(np.float64) - g) / np.abs(g)))
            v.add(f"ply.{name}", err <= PLY_DISPARITY_RTOL, f"relative error {err:.2e} ({c.tolist()})")
        elif name == "frame" or c.dtype.kind in "iu":
            v.add(f"ply.{name}", bool(np.array_equal(c, g)), f"{c.tolist()} (golden {g.tolist()})")
        else:
            err = float(np.max(np.abs(c.astype(np.float64) - g)))
            v.add(f"ply.{name}", err <= PLY_FLOAT_ATOL * max(1.0, float(np.abs(g).max())), f"max abs error {err:.2e}")
    vertex = elements.get("vertex")
    props = [str(p) for p in gold["ply__vertex_props"]]
    if vertex is None or len(vertex) != int(gold["num_gaussians"]) or list(vertex.dtype.names or ()) != props:
        v.add("ply.vertex", False, "vertex element missing, of another length or with other properties")
        return
    idx = gold["gauss_idx"]
    c_rows = {p: vertex[p][idx].astype(np.float64) for p in props}
    g_rows = {p: np.asarray(gold["ply__vertex_sample"], np.float64)[:, i] for i, p in enumerate(props)}

    def columns(rows: dict, *names: str) -> np.ndarray:
        return np.stack([rows[n] for n in names], axis=1)

    xyz = float(row_relative(columns(c_rows, "x", "y", "z"), columns(g_rows, "x", "y", "z")).max())
    s_names = ("scale_0", "scale_1", "scale_2")
    c_scales, g_scales = np.exp(columns(c_rows, *s_names)), np.exp(columns(g_rows, *s_names))
    scale = float(row_relative(c_scales, g_scales).max())
    dc = ("f_dc_0", "f_dc_1", "f_dc_2")
    color = float(np.abs(srgb_decode(columns(c_rows, *dc) * SH_C0 + 0.5)
                         - srgb_decode(columns(g_rows, *dc) * SH_C0 + 0.5)).max())
    opacity = float(np.abs(1 / (1 + np.exp(-c_rows["opacity"])) - 1 / (1 + np.exp(-g_rows["opacity"]))).max())
    rot = ("rot_0", "rot_1", "rot_2", "rot_3")
    cov = float(covariance_error(covariances(columns(c_rows, *rot), c_scales),
                                 covariances(columns(g_rows, *rot), g_scales)).max())
    ok = (xyz <= TOLERANCE["mean"] and scale <= TOLERANCE["scales"] and color <= TOLERANCE["colors"]
          and opacity <= TOLERANCE["opacities"] and cov <= COVARIANCE_TOL)
    v.add("ply.vertex", ok, f"position row-relative {xyz:.2e}, scale row-relative {scale:.2e}, linear colour "
                            f"{color:.2e}, opacity {opacity:.2e}, covariance {cov:.2e} at {len(idx)} rows")


def compare(outputs: dict, gold: Mapping, verdicts: Verdicts, require_all: bool = False,
            tol_scale: float = 1.0) -> Verdicts:
    """Compare the candidate's outputs with the golden file; entries are dropped once compared."""
    scales = outputs.get("scales")  # the covariance check needs them after their own comparison
    count = len(np.asarray(outputs["mean"])) if "mean" in outputs else None
    for q in QUANTITIES:
        tol = q.tol * tol_scale
        if q.name not in outputs:
            verdicts.add(q.name, False if q.required or require_all else None, "not returned by the candidate")
            continue
        value = outputs.pop(q.name)
        if q.kind == "scalar":
            compare_scalar(verdicts, q, value, gold, tol)
        elif q.kind == "map":
            compare_map(verdicts, q, value, gold, tol)
        elif q.metric == "cov":
            compare_covariances(verdicts, value, scales, gold, tol)
        else:
            compare_gaussians(verdicts, q, value, gold, tol)
        del value
    del scales
    if count is not None:
        expected = int(gold["num_gaussians"])
        verdicts.add("num_gaussians", count == expected, f"{count} (golden {expected})")
    if "ply_bytes" in outputs:
        compare_ply(verdicts, outputs.pop("ply_bytes"), gold)
    else:
        verdicts.add("ply", False if require_all else None, "not returned by the candidate")
    return verdicts


# ---- the run -----------------------------------------------------------------------------------------

def synthetic_weights(gold: Mapping, verdicts: Verdicts) -> dict:
    """The rule's weights for the official keys, as torch tensors; their CRC-32s checked."""
    import torch

    start = time.perf_counter()
    shapes = official_shapes()
    keys = [str(k) for k in gold["meta__weight_keys"]]
    weights, wrong = {}, []
    for key, expected in zip(shapes, gold["meta__weight_crc32"]):
        array = synthetic_tensor(key, shapes[key])
        if crc32(array) != int(expected):
            wrong.append(key)
        weights[key] = torch.from_numpy(array)
    same_keys = list(shapes) == keys
    verdicts.add("weights", same_keys and not wrong,
                 f"{len(weights)} tensors, rule {gold['meta__weight_rule']}, "
                 + ("keys in the golden's order" if same_keys else "keys differ from the golden's")
                 + (f", CRC-32 differs for {len(wrong)} (first {wrong[0]})" if wrong else ", every CRC-32 matches")
                 + f" ({time.perf_counter() - start:.1f} s)")
    return weights


def load_candidate(spec: str) -> Callable:
    module, _, function = spec.partition(":")
    if not function:
        raise SystemExit(f"the candidate must be MODULE:FUNCTION, not {spec!r}")
    return getattr(importlib.import_module(module), function)


def run(candidate: Callable, golden: Path = GOLDEN, image: Path = IMAGE, require_all: bool = False,
        tol_scale: float = 1.0) -> Verdicts:
    from PIL import Image

    gold = np.load(golden, allow_pickle=False)
    verdicts = Verdicts()
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    expected = str(gold["meta__image_sha256"])
    verdicts.add("image", digest == expected, f"{image.name} sha256 {'matches' if digest == expected else 'differs'}")
    with Image.open(image) as im:
        pixels = np.array(im.convert("RGB"))
    f_px = float(gold["meta__f_px"])
    weights = synthetic_weights(gold, verdicts)
    start = time.perf_counter()
    outputs = candidate(weights, pixels, f_px)
    del weights
    print(f"candidate ran in {time.perf_counter() - start:.1f} s and returned {len(outputs)} entries", flush=True)
    return compare(dict(outputs), gold, verdicts, require_all=require_all, tol_scale=tol_scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidate", nargs="?", default="tests.support.parity_candidate:candidate",
                        help="MODULE:FUNCTION")
    parser.add_argument("--golden", type=Path, default=GOLDEN)
    parser.add_argument("--require-all", action="store_true", help="every intermediate and the PLY must be given")
    parser.add_argument("--report-only", action="store_true", help="print the errors, exit 0 whatever they are")
    parser.add_argument("--tol-scale", type=float, default=1.0,
                        help="multiply every tolerance: for reporting a lower-precision run, never for passing one")
    args = parser.parse_args(argv)
    verdicts = run(load_candidate(args.candidate), args.golden, require_all=args.require_all,
                   tol_scale=args.tol_scale)
    print(verdicts.summary(), flush=True)
    return 0 if args.report_only or not verdicts.failed else 1


if __name__ == "__main__":
    sys.exit(main())
