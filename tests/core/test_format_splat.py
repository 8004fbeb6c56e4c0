""".splat (antimatter15's 32-byte web format): our writer and reader, and PlayCanvas splat-transform
reading what we write. splat-transform 3.7 writes no .splat, so the other direction has no oracle;
the layout is pinned here byte by byte instead.

Quantisation of the format (what the round trip may lose): positions and scales are float32 (exact);
the sRGB colour and the opacity are bytes (rounded: at most 1/510 off); each component of the unit
quaternion is a byte q 128 + 128 (rounded: |error| <= 1/256 per component, so the error vector is at
most 2/256 long and the rotation angle at most 2 asin(1/128) = 0.0156 rad).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from sharp_addon import formats, ply
from sharp_addon.formats import splat
from tests.support.builders import random_gaussians
from tests.support.web_formats import refused, rotation_angles, splat_transform, srgb

BYTE = 1 / 510 + 1e-6  # half a byte step, and float32 rounding
ANGLE = 2 * np.arcsin(1 / 128) + 1e-4


def file_order(g):
    """The order our writer (and antimatter15's) puts splats in: size times opacity, largest first."""
    return np.argsort(-(np.prod(g.scales.astype(np.float64), axis=1) * g.opacities), kind="stable")


def assert_within_quantisation(back, want, angle=ANGLE, scale_rtol=0.0):
    assert len(back) == len(want)
    np.testing.assert_array_equal(back.means, want.means)
    np.testing.assert_allclose(back.scales, want.scales, rtol=scale_rtol)
    assert np.abs(srgb(back) - srgb(want)).max() <= BYTE
    assert np.abs(back.opacities - want.opacities).max() <= BYTE
    assert rotation_angles(back.quats, want.quats).max() <= angle


def test_round_trip_keeps_every_value_within_a_byte_of_rounding(tmp_path):
    g = random_gaussians(3000, seed=5)
    path = formats.write_splats(g, tmp_path / "scene.splat")
    assert path.stat().st_size == 32 * len(g)
    back = formats.read_splats(path)
    assert_within_quantisation(back, g.subset(file_order(g)))
    assert back.sh_rest is None and back.focal_px is None and back.color_space == "srgb"


def test_the_file_is_antimatter15s_layout_most_visible_splat_first():
    g = random_gaussians(50, seed=6)
    data = splat.encode(g)
    first = int(file_order(g)[0])
    assert first == int(np.argmax(np.prod(g.scales.astype(np.float64), axis=1) * g.opacities))
    x, y, z, sx, sy, sz = struct.unpack_from("<6f", data, 0)
    r, gr, b, a, q0, q1, q2, q3 = struct.unpack_from("<8B", data, 24)
    assert (x, y, z) == tuple(g.means[first].tolist()) and (sx, sy, sz) == tuple(g.scales[first].tolist())
    assert (r, gr, b) == tuple(np.rint(srgb(g)[first] * 255).astype(int).tolist())
    assert a == round(float(g.opacities[first]) * 255)
    q = g.quats[first] / np.linalg.norm(g.quats[first])  # (w, x, y, z) as rot_0..3
    assert (q0, q1, q2, q3) == tuple(np.clip(np.rint(q * 128 + 128), 0, 255).astype(int).tolist())


def test_view_dependent_colour_is_dropped_and_the_registry_says_so():
    g = random_gaussians(200, seed=7, sh_degree=2)
    back = splat.decode(splat.encode(g), "x.splat")
    assert back.sh_rest is None
    assert_within_quantisation(back, g.subset(file_order(g)))
    assert any("view-dependent colour" in d for d in formats.what_is_dropped(g, formats.format_named("splat")))


def test_splat_transform_reads_our_values(tmp_path):
    g = random_gaussians(2000, seed=8)
    ours = formats.write_splats(g, tmp_path / "ours.splat")
    theirs = ply.read_ply(splat_transform(ours, tmp_path / "theirs.ply"))
    want = g.subset(file_order(g))  # splat-transform keeps the file's order
    # splat-transform centres rotation bytes at 127.5 (b / 255 * 2 - 1), antimatter15 at 128: up to
    # 0.5/128 more per component, 2 asin(sqrt(4) 0.5/128) = 0.0078 rad more
    # and its PLY holds ln(scale): float32 rounding
    assert_within_quantisation(theirs, want, angle=ANGLE + 2 * np.arcsin(1 / 128), scale_rtol=1e-6)
    ours_read = formats.read_splats(ours)
    np.testing.assert_allclose(theirs.colors, ours_read.colors, atol=1e-6)
    np.testing.assert_allclose(theirs.opacities, ours_read.opacities, atol=2e-6)  # its logit clamps 0 and 1 by 1e-6


def test_a_rotation_of_all_128_reads_as_the_identity():
    record = np.zeros(1, splat.RECORD)
    record["scale"] = 0.1
    record["rgba"] = 128
    record["rotation"] = 128
    back = splat.decode(record.tobytes(), "x.splat")
    np.testing.assert_array_equal(back.quats, [[1, 0, 0, 0]])


# ---- bad input ------------------------------------------------------------------------------------


def good_bytes() -> bytes:
    return splat.encode(random_gaussians(10, seed=9))


def with_record(field: str, value) -> bytes:
    record = np.frombuffer(good_bytes(), splat.RECORD).copy()
    record[field][3, 0] = value
    return record.tobytes()


BAD = {
    "empty": (lambda: b"", ["empty"]),
    "truncated": (lambda: good_bytes()[:-5], ["not a whole number of 32-byte splats"]),
    "one byte": (lambda: b"\0", ["not a whole number"]),
    "NaN position": (lambda: with_record("position", np.nan), ["means", "NaN"]),
    "infinite scale": (lambda: with_record("scale", np.inf), ["scales", "Inf"]),
    "negative scale": (lambda: with_record("scale", -0.5), ["scales", ">= 0"]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_files_give_one_error_naming_the_file(tmp_path, case):
    make, words = BAD[case]
    path = tmp_path / "bad.splat"
    path.write_bytes(make())
    refused(path, *words)
