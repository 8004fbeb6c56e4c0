"""What the tests of the web formats (SOG, compressed PLY, .splat) share: PlayCanvas splat-transform as
the other side of every round trip, splats matched after a format reordered them, and error measures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from sharp_addon import formats
from sharp_addon.errors import SplatFileError
from sharp_addon.gaussians import Gaussians, linear_to_srgb
from tests.support.node_tools import NODE_MODULES, require_package

SPLAT_TRANSFORM = NODE_MODULES / ".bin" / "splat-transform"


def splat_transform(source: Path, target: Path, *flags: str) -> Path:
    """``target`` converted from ``source`` by splat-transform (the test is skipped where it is missing,
    and fails under CI=1); ``-g cpu``: no GPU for the SH k-means of a SOG."""
    require_package("@playcanvas/splat-transform")
    done = subprocess.run([str(SPLAT_TRANSFORM), "-w", *flags, str(source), str(target)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def matching(found: np.ndarray, want: np.ndarray, tolerance: float) -> np.ndarray:  # [N, 3], [N, 3] -> [N]
    """For each of the ``found`` centres, the index of the nearest ``want`` centre; asserts that the two
    sets match one to one within ``tolerance`` (metres) — a format may store splats in any order."""
    found, want = np.asarray(found, np.float64), np.asarray(want, np.float64)
    assert found.shape == want.shape, (found.shape, want.shape)
    index, distance = np.empty(len(found), np.int64), np.empty(len(found))
    half_norms = 0.5 * np.einsum("ij,ij->i", want, want)
    for start in range(0, len(found), 2048):
        block = found[start : start + 2048]
        nearest = np.argmax(block @ want.T - half_norms, axis=1)
        index[start : start + len(block)] = nearest
        distance[start : start + len(block)] = np.linalg.norm(block - want[nearest], axis=1)
    assert len(np.unique(index)) == len(index), "two splats matched the same original"
    assert distance.max() <= tolerance, f"a splat lies {distance.max():.3g} m from its original (> {tolerance:.3g})"
    return index


def rotation_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # [N, 4], [N, 4] -> [N] radians
    """The angle of the rotation between each pair of (not necessarily unit) quaternions, from the chord
    between the unit quaternions (q and -q alike): 4 asin(|a - b| / 2), exact to float rounding near 0."""
    a = np.asarray(a, np.float64) / np.linalg.norm(a, axis=1, keepdims=True)
    b = np.asarray(b, np.float64) / np.linalg.norm(b, axis=1, keepdims=True)
    b = b * np.where(np.einsum("ij,ij->i", a, b) < 0, -1.0, 1.0)[:, None]
    return 4 * np.arcsin(np.clip(np.linalg.norm(a - b, axis=1) / 2, 0, 1))


def srgb(g: Gaussians) -> np.ndarray:
    """[N, 3] the sRGB-encoded colour 0.5 + SH_C0 f_dc that these formats store."""
    return linear_to_srgb(g.colors.astype(np.float64))


def log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|ln a - ln b| elementwise: the relative error of positive scales."""
    return np.abs(np.log(np.asarray(a, np.float64)) - np.log(np.asarray(b, np.float64)))


def refused(path: Path, *words: str) -> str:
    """The one ``SplatFileError`` that ``formats.read_splats`` raises for ``path``: it names the file,
    carries no chained error, and holds each of ``words`` (which check spoke); its message."""
    with pytest.raises(SplatFileError) as caught:
        formats.read_splats(path)
    error = caught.value
    message = str(error)
    assert str(path) in message, message
    chained = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    assert chained is None, repr(chained)
    for word in words:
        assert word in message, message
    return message
