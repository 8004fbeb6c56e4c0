"""PlayCanvas' compressed PLY: our writer and reader, and PlayCanvas splat-transform both ways.

Quantisation of the format, per chunk of 256 splats (Morton order), from the chunk's bounds:
positions and ln(scale) take 11, 10, 11 bits between the chunk's min and max per axis (rounded: at
most span / (2 (2^bits - 1)) off); the sRGB colour 8 bits between the chunk's bounds (span / 510);
the opacity 8 bits (1/510); the rotation keeps three components c of the unit quaternion as 10-bit
unorm(c sqrt(2)/2 + 1/2), so each is at most sqrt(2) / 2046 off, the quaternion at most
d = 2 sqrt(3) sqrt(2) / 2046 and the rotation angle at most 4 asin(d / 2) = 0.0048 rad; SH bytes are
1/32 wide, read at their centres (at most 1/64 off inside +-3.97).
"""

from __future__ import annotations

import numpy as np
import pytest

from sharp_addon import formats, ply
from sharp_addon.formats import compressed_ply, morton, smallest_three
from sharp_addon.formats.morton import morton_order
from tests.support.builders import random_gaussians
from tests.support.web_formats import log_ratio, matching, refused, rotation_angles, splat_transform, srgb

D = 2 * np.sqrt(3) * np.sqrt(2) / 2046
ANGLE = 4 * np.arcsin(D / 2) + 1e-5
SH_STEP = 1 / 64 + 1e-6
BITS = np.array([11, 10, 11])


def chunk_half_steps(values: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """[N, C] values in file order -> [N, C] the largest rounding error of each (half a step of its chunk)."""
    n = len(values)
    padded = np.concatenate([values, np.repeat(values[-1:], -n % 256, axis=0)]).astype(np.float64)
    chunks = padded.reshape(-1, 256, values.shape[1])
    span = chunks.max(axis=1) - chunks.min(axis=1)
    return np.repeat(span / (2 * (2.0**bits - 1)), 256, axis=0)[:n]


def assert_within_quantisation(back, want, sh_step=SH_STEP, angle=ANGLE):
    """``back`` read from a compressed PLY of ``want`` (both in file order)."""
    assert len(back) == len(want)
    slack = 1e-6 * (1 + np.abs(want.means))  # float32 bounds and results
    assert np.all(np.abs(back.means - want.means) <= chunk_half_steps(want.means, BITS) + slack)
    logs = np.clip(np.log(want.scales.astype(np.float64)), -20, 20)
    assert np.all(log_ratio(back.scales, want.scales) <= chunk_half_steps(logs, BITS) + 1e-5)
    assert np.all(np.abs(srgb(back) - srgb(want)) <= chunk_half_steps(srgb(want), np.array([8, 8, 8])) + 1e-5)
    assert np.abs(back.opacities - want.opacities).max() <= 1 / 510 + 1e-6
    assert rotation_angles(back.quats, want.quats).max() <= angle
    if want.sh_rest is None:
        assert back.sh_rest is None
    else:
        assert np.abs(back.sh_rest - want.sh_rest).max() <= sh_step


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_round_trip_stays_within_each_chunks_quantisation(tmp_path, sh_degree):
    g = random_gaussians(3000, seed=sh_degree, sh_degree=sh_degree)
    path = formats.write_splats(g, tmp_path / "scene.compressed.ply")
    back = formats.read_splats(path)
    assert_within_quantisation(back, g.subset(morton_order(g.means)))
    assert back.color_space == "srgb" and back.focal_px is None


def test_the_file_is_playcanvas_layout():
    g = random_gaussians(600, seed=11, sh_degree=1)
    data = compressed_ply.encode(g)
    header = ply.parse_header(data)
    assert [(el.name, el.count) for el in header.elements] == [("chunk", 3), ("vertex", 600), ("sh", 600)]
    assert [p for p, _ in header.elements[0].properties] == [*compressed_ply.BOUNDS, *compressed_ply.COLOR_BOUNDS]
    assert header.elements[1].properties == [(p, "u4") for p in compressed_ply.PACKED]
    assert header.elements[2].properties == [(f"f_rest_{i}", "u1") for i in range(9)]
    assert len(data) == header.size + 3 * 18 * 4 + 600 * 16 + 600 * 9


def test_a_plain_ply_named_compressed_is_read_as_one(tmp_path):
    g = random_gaussians(100, seed=12)
    path = tmp_path / "plain.compressed.ply"
    path.write_bytes(ply.encode(g, "3dgs"))
    np.testing.assert_array_equal(formats.read_splats(path).means, g.means)


@pytest.mark.parametrize("sh_degree", [0, 2])
def test_splat_transform_reads_our_values(tmp_path, sh_degree):
    g = random_gaussians(2000, seed=13, sh_degree=sh_degree)
    ours = formats.write_splats(g, tmp_path / "ours.compressed.ply")
    theirs = ply.read_ply(splat_transform(ours, tmp_path / "theirs.ply"))  # in the file's order
    assert_within_quantisation(theirs, g.subset(morton_order(g.means)))
    mine = formats.read_splats(ours)
    np.testing.assert_allclose(theirs.means, mine.means, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(theirs.scales, mine.scales, rtol=1e-5)
    np.testing.assert_allclose(theirs.colors, mine.colors, atol=1e-5)
    assert rotation_angles(theirs.quats, mine.quats).max() < 1e-5
    if sh_degree:
        np.testing.assert_allclose(theirs.sh_rest, mine.sh_rest, atol=1e-6)


@pytest.mark.parametrize("sh_degree", [0, 3])
def test_we_read_what_splat_transform_writes(tmp_path, sh_degree):
    g = random_gaussians(2000, seed=14, sh_degree=sh_degree)
    source = ply.write_ply(g, tmp_path / "source.ply", layout="3dgs")
    back = formats.read_splats(splat_transform(source, tmp_path / "theirs.compressed.ply"))
    want = g.subset(matching(back.means, g.means, tolerance=0.01))  # its own Morton order
    # its SH bytes are truncated, not rounded: read at the byte's centre that is still at most 1/64 off
    assert_within_quantisation(back, want)


# ---- the pieces SOG shares: Morton order, smallest-three quaternions ----------------------------


def test_morton_codes_interleave_21_bits_per_axis_x_lowest():
    rng = np.random.default_rng(16)
    points = rng.normal(size=(500, 3)).astype(np.float32)
    lo, hi = points.min(axis=0), points.max(axis=0)
    scale = np.array([np.float32((2**21 - 1) / (float(h) - float(low))) for low, h in zip(lo, hi)])
    cells = np.clip((points - lo) * scale, 0, 2**21 - 1).astype(np.uint64)  # each axis in 2^21 cells of its range
    want = np.zeros(len(points), np.uint64)
    for bit in range(21):
        for axis in range(3):
            want |= ((cells[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + axis)
    np.testing.assert_array_equal(morton.morton_codes(points), want)
    corners = np.array([(x, y, z) for z in (0, 1) for y in (0, 1) for x in (0, 1)], np.float32)
    shuffled = rng.permutation(8)
    np.testing.assert_array_equal(corners[shuffled][morton.morton_order(corners[shuffled])], corners)


def test_smallest_three_keeps_the_rotation_and_drops_the_largest_component():
    q = np.random.default_rng(17).normal(size=(1000, 4)).astype(np.float32)
    largest, kept = smallest_three.split(q)
    np.testing.assert_array_equal(largest, np.argmax(np.abs(q), axis=1))
    assert np.abs(kept).max() <= np.sqrt(0.5) + 1e-6
    back = smallest_three.join(largest, kept)
    assert rotation_angles(back, q).max() < 1e-5
    np.testing.assert_array_less(-1e-7, back[np.arange(len(q)), largest])  # the dropped one comes back positive


# ---- bad input ------------------------------------------------------------------------------------


def good() -> bytes:
    return compressed_ply.encode(random_gaussians(300, seed=15, sh_degree=1))


def replaced(old: bytes, new: bytes, data: bytes | None = None) -> bytes:
    data = good() if data is None else data
    assert old in data
    return data.replace(old, new, 1)


def one_chunk_too_few() -> bytes:
    data = good()
    size = ply.parse_header(data).size
    header = data[:size].replace(b"element chunk 2", b"element chunk 1")
    return header + data[size + 72 :]  # the second chunk's 18 floats gone


def no_splats() -> bytes:
    header = good()[: ply.parse_header(good()).size]
    return header.replace(b"element chunk 2", b"element chunk 0").replace(b"element vertex 300", b"element vertex 0") \
        .replace(b"element sh 300", b"element sh 0")


def nan_bounds() -> bytes:
    data = bytearray(good())
    start = ply.parse_header(bytes(data)).size
    data[start : start + 4] = np.float32(np.nan).tobytes()
    return bytes(data)


BAD = {
    "empty": (lambda: b"", ["not a PLY file"]),
    "wrong magic": (lambda: b"plx" + good()[3:], ["not a PLY file"]),
    "truncated": (lambda: good()[:-100], ["truncated"]),
    "header only": (lambda: good()[: ply.parse_header(good()).size], ["truncated"]),
    "trailing bytes": (lambda: good() + b"\0" * 64, ["does not describe"]),
    "a billion splats declared": (lambda: replaced(b"element vertex 300", b"element vertex 1000000000"),
                                  ["truncated"]),
    "too few chunks": (one_chunk_too_few, ["chunks of 256"]),
    "NaN chunk bounds": (nan_bounds, ["NaN", "chunk bounds"]),
    "bounds missing": (lambda: replaced(b"property float min_scale_z\n", b"property float other\n"),
                       ["min_scale_z"]),
    "packed as float": (lambda: replaced(b"property uint packed_color", b"property float packed_color"),
                        ["packed_color"]),
    "SH names out of order": (lambda: replaced(b"property uchar f_rest_8", b"property uchar f_rest_9"),
                              ["'sh' element"]),
    "SH rows fewer than splats": (lambda: replaced(b"element sh 300", b"element sh 299", good()[:-9]),
                                  ["'sh' element"]),
    "ascii": (lambda: replaced(b"binary_little_endian", b"ascii"), ["binary_little_endian"]),
    "big endian": (lambda: replaced(b"binary_little_endian", b"binary_big_endian"), ["binary_little_endian"]),
    "zero splats": (no_splats, ["0 splats"]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_files_give_one_error_naming_the_file(tmp_path, case):
    make, words = BAD[case]
    path = tmp_path / "bad.compressed.ply"
    path.write_bytes(make())
    refused(path, *words)
