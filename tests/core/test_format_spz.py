"""Niantic's SPZ (v1-4 read, v2-4 written): round trips within the quantisation the encoding defines,
files that splat-transform and gsply read and write, and one clear error for every kind of bad file.

Bounds, each from the encoding (``sharp_addon/formats/spz.py``):

- position: 24-bit fixed point in steps of 2^-12 m: error <= 2^-13 m (plus float32 rounding);
- scale: a byte of (ln s + 10) * 16: ln s within 1/32, relative error <= e^(1/32) - 1 (3.2 %);
- opacity: a byte of opacity * 255: error <= 0.5 / 255;
- colour: a byte of f_dc * 0.15 * 255 + 127.5: f_dc within 0.5 / (0.15 * 255) = 0.0131;
- SH: x * 128 + 128 rounded, then snapped to 8-wide buckets (degree 1) or 16-wide (degrees 2-3):
  error <= (0.5 + 4) / 128 = 0.035 and (0.5 + 8) / 128 = 0.066 for |x| <= 127/128;
- rotation v3/v4: three components in 9 bits of sqrt(1/2) / 511 (error d <= 6.9e-4 each), the largest
  (>= 1/2) rebuilt from unit length: |q' - q| <= 2 sqrt(3) d, an angle <= 4 asin(sqrt(3) d) < 0.005 rad;
- rotation v2: x, y, z in steps of 1/127.5 (|e| <= sqrt(3) / 255) and w rebuilt as sqrt(1 - |xyz|^2):
  |q' - q|^2 <= |e|^2 + 2|e|, an angle <= 0.24 rad in the worst case (w near 0), and for w >= 1/2
  (turns up to 120 degrees) |q' - q| <= 2|e|, an angle <= 0.03 rad.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from sharp_addon import formats, ply
from sharp_addon.errors import SplatFileError
from sharp_addon.formats import spz
from sharp_addon.formats.axes import from_axes, to_axes
from sharp_addon.gaussians import Gaussians, file_sh_dc, rotation_matrices
from tests.support.builders import grid_gaussians, random_gaussians
from tests.support.corpus_runs import Run, listing, run_alone
from tests.support.node_tools import NODE_MODULES, require_package

POSITION_ERROR = 2.0**-13 + 1e-6
SCALE_ERROR = np.expm1(1 / 32) + 1e-5
OPACITY_ERROR = 0.5 / 255 + 1e-6
F_DC_ERROR = 0.5 / (0.15 * 255) + 1e-5
SH_ERRORS = ((0.5 + 4) / 128 + 1e-6, (0.5 + 8) / 128 + 1e-6)  # degree 1, degrees 2-3
ANGLE_ERROR = {2: 0.24, 3: 0.005, 4: 0.005}
ANGLE_ERROR_V2_UP_TO_120_DEGREES = 0.03


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # [N, 4] x 2 -> [N] radians between the rotations
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 2 * np.arccos(np.minimum(1.0, np.abs(np.einsum("ij,ij->i", a.astype(np.float64), b))))


def assert_within_quantisation(got: Gaussians, want: Gaussians, version: int = 3, stored: str = "RUB") -> None:
    """``got`` is ``want`` up to the file's quantisation; ``stored``: the axes ``want`` had in the file
    relative to its own (v2's error depends on the stored w: "RUB" after our writer's turn, "RDF" as is)."""
    assert len(got) == len(want) and got.sh_degree == want.sh_degree and got.color_space == "srgb"
    assert np.abs(got.means - want.means).max() <= POSITION_ERROR
    assert np.abs(got.scales / want.scales - 1).max() <= SCALE_ERROR
    assert np.abs(got.opacities - want.opacities).max() <= OPACITY_ERROR
    assert np.abs(file_sh_dc(got) - file_sh_dc(want)).max() <= F_DC_ERROR
    assert angles(got.quats, want.quats).max() <= ANGLE_ERROR[version]
    if version == 2:
        in_file = to_axes(want, stored).quats
        turns = np.abs(in_file[:, 0]) / np.linalg.norm(in_file, axis=1) >= 0.5
        assert angles(got.quats[turns], want.quats[turns]).max() <= ANGLE_ERROR_V2_UP_TO_120_DEGREES
    if want.sh_rest is not None:
        error = np.abs(got.sh_rest - want.sh_rest).max(axis=(0, 2))
        assert error[:3].max() <= SH_ERRORS[0] and error[3:].max(initial=0) <= SH_ERRORS[1]


# ---- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_a_round_trip_through_a_file_keeps_every_attribute_within_its_quantisation(tmp_path, version, sh_degree):
    g = random_gaussians(3000, seed=sh_degree, sh_degree=sh_degree)
    path = formats.write_splats(g, tmp_path / "scene.spz", version=version)
    assert path.read_bytes()[:4] == (b"NGSP" if version == 4 else b"\x1f\x8b\x08\x00")
    assert_within_quantisation(formats.read_splats(path), g, version)


@pytest.mark.parametrize("version", [3, 4])
def test_highly_compressible_scenes_are_read_back(version):
    """A flat wall whose splats differ only in position compresses 28-fold in v4: within what we believe."""
    g = grid_gaussians(np.full((256, 256), 2.0))
    data = spz.encode(g, version=version)
    assert len(g) * 20 / len(data) > 9
    assert_within_quantisation(spz.decode(data), g, version)


def test_version_3_is_written_by_default_with_the_header_the_format_defines():
    g = random_gaussians(100, sh_degree=1)
    version, count, sh_degree, bits, flags, reserved = struct.unpack_from("<IIBBBB", gzip.decompress(spz.encode(g)), 4)
    assert (version, count, sh_degree, bits, flags, reserved) == (3, 100, 1, 12, 0, 0)
    assert len(gzip.decompress(spz.encode(g))) == 16 + 100 * (9 + 1 + 3 + 3 + 4 + 9)


@pytest.mark.parametrize("sh_degree, streams", [(0, 5), (2, 6)])
def test_version_4_has_a_plain_header_and_one_stream_per_array_that_holds_anything(sh_degree, streams):
    data = spz.encode(random_gaussians(100, sh_degree=sh_degree), version=4)
    magic, version, count, degree, bits, flags, count_streams, table_at = struct.unpack_from("<4sIIBBBBI", data)
    assert (magic, version, count, degree, bits, flags, count_streams, table_at) == (
        b"NGSP", 4, 100, sh_degree, 12, 0, streams, 32)
    table = np.frombuffer(data, "<u8", 2 * streams, 32).reshape(-1, 2)
    assert table[:, 1].tolist() == [900, 100, 300, 300, 400, 100 * 3 * 8][:streams]
    assert 32 + 16 * streams + int(table[:, 0].sum()) == len(data)


def test_the_file_holds_the_splats_in_its_own_axes_and_reading_turns_them_back():
    """SPZ names RUB (x right, y up, z back): our RDF splats are stored half-turned about x."""
    g = random_gaussians(200, sh_degree=3)
    stored = spz._unpack(spz.Header(3, 200, 3, 12), _gzip_arrays(spz.encode(g)), "x")  # the file's values, raw
    assert_within_quantisation(stored, to_axes(g, "RUB"), stored="RDF")
    np.testing.assert_allclose(stored.means * [1, -1, -1], g.means, atol=POSITION_ERROR)


def test_far_splats_keep_their_place_with_coarser_position_steps():
    g = random_gaussians(200)
    far = g.replace(means=g.means * np.float32(1000))  # up to 6 km: beyond 12 fractional bits' +-2048 m
    data = spz.encode(far)
    bits = gzip.decompress(data)[13]
    assert bits == 10 and spz.fractional_bits_for(to_axes(far, "RUB").means) == 10
    assert np.abs(spz.decode(data).means - far.means).max() <= 2.0**-(bits + 1) + 1e-6


def test_values_beyond_what_a_byte_holds_are_clamped_not_wrapped():
    g = random_gaussians(4)
    g = g.replace(scales=np.array([[0, 1e-9, 1], [1e3, 1, 1], [1, 1, 1], [1, 1, 1]], np.float32),
                  opacities=np.array([0, 1, 0.5, 0.5], np.float32))
    back = spz.decode(spz.encode(g))
    np.testing.assert_allclose(back.scales[:2], [[np.exp(-10)] * 2 + [1], [np.exp(255 / 16 - 10), 1, 1]], rtol=1e-6)
    np.testing.assert_array_equal(back.opacities[:2], [0, 1])


def test_positions_beyond_24_bits_unknown_versions_and_empty_scenes_are_clear_errors():
    g = random_gaussians(3)
    with pytest.raises(SplatFileError, match=r"24-bit fixed point .* these splats reach 1e"):
        spz.encode(g.replace(means=np.full((3, 3), 1e7, np.float32)))
    with pytest.raises(SplatFileError, match="SPZ version 1 cannot be written: we write versions 2, 3, 4"):
        spz.encode(g, version=1)
    with pytest.raises(SplatFileError, match="at least one splat"):
        spz.encode(g.subset(np.zeros(3, bool)))


def test_version_1_files_with_half_float_positions_are_read():
    g = random_gaussians(300, sh_degree=1)
    body = gzip.decompress(spz.encode(g, version=2))
    positions = np.frombuffer(body, np.uint8, 300 * 9, 16).reshape(-1, 3)
    wide = np.zeros((900, 4), np.uint8)
    wide[:, 1:] = positions
    rub = (wide.view("<i4")[:, 0] >> 8) / 4096.0
    v1 = body[:4] + struct.pack("<I", 1) + body[8:16] + rub.astype("<f2").tobytes() + body[16 + 300 * 9:]
    back = spz.decode(gzip.compress(v1))
    np.testing.assert_array_equal(back.means, from_axes(g.replace(means=rub.reshape(-1, 3).astype(np.float16)
                                                                  .astype(np.float32)), "RUB").means)
    assert angles(back.quats, g.quats).max() <= ANGLE_ERROR[2]


def with_extensions(data: bytes, records: bytes) -> bytes:
    """A v4 file of ours with extension records between its header and its table (flag 0x2 set)."""
    table_at = struct.unpack_from("<I", data, 16)[0]
    header = bytearray(data[:32])
    header[14] |= 0x2
    header[16:20] = struct.pack("<I", table_at + len(records))
    return bytes(header) + records + data[table_at:]


def record(kind: int, payload: bytes) -> bytes:
    return struct.pack("<II", kind, len(payload)) + payload


def test_extension_records_are_skipped_and_adobes_coordinate_system_is_honoured():
    g = random_gaussians(200, sh_degree=1)
    stored_rdf = spz.encode(from_axes(g, "RUB"), version=4)  # our writer's RUB turned back: the file holds g's RDF
    unknown = record(0x12340001, b"anything")
    assert_within_quantisation(spz.decode(with_extensions(stored_rdf, unknown)), from_axes(g, "RUB"), 4)
    says_rdf = with_extensions(stored_rdf, unknown + record(spz.COORDINATE_SYSTEM_EXTENSION, struct.pack("<I", 6)))
    assert_within_quantisation(spz.decode(says_rdf), g, 4)
    legacy = gzip.decompress(spz.encode(g))
    legacy = legacy[:14] + bytes([legacy[14] | 0x2]) + legacy[15:] + unknown
    assert_within_quantisation(spz.decode(gzip.compress(legacy)), g)


def test_a_missing_zstandard_is_a_clear_error_for_version_4_only(monkeypatch, tmp_path):
    g = random_gaussians(10)
    path = formats.write_splats(g, tmp_path / "v4.spz", version=4)
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard now raises ImportError
    needs = f"'{path}': is SPZ version 4, which needs the Python package 'zstandard'"
    with pytest.raises(SplatFileError, match=re.escape(needs)):
        formats.read_splats(path)
    with pytest.raises(SplatFileError, match=r"SPZ version 4 needs .* or write version 3"):
        spz.encode(g, version=4)
    assert len(spz.decode(spz.encode(g))) == 10


def _gzip_arrays(data: bytes) -> dict[str, memoryview]:
    body = gzip.decompress(data)
    header = spz.Header(*struct.unpack_from("<IIBB", body, 4))
    return spz._split(memoryview(body)[16:], header.section_sizes(), header, "x")


# ---- others' readers and writers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def splat_transform():
    """PlayCanvas' splat-transform (npm, .venv/npm): ``convert(source, target, *options)``."""
    require_package("@playcanvas/splat-transform")

    def convert(source, target, *options: str):
        done = subprocess.run([str(NODE_MODULES / ".bin" / "splat-transform"), "-w", *options, str(source),
                               str(target)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return target

    return convert


@pytest.mark.parametrize("version", [2, 3, 4])
def test_splat_transform_reads_our_files_as_the_values_we_stored(splat_transform, tmp_path, version):
    """splat-transform takes SPZ values as they are, in PLY's axes (it converts no coordinates, by
    experiment and its reader's note): its PLY holds our splats half-turned about x, the RUB we stored."""
    g = random_gaussians(400, seed=version, sh_degree=3)
    path = formats.write_splats(g, tmp_path / "ours.spz", version=version)
    theirs = ply.read_ply(splat_transform(path, tmp_path / "theirs.ply"))
    assert_within_quantisation(theirs, to_axes(g, "RUB"), version, stored="RDF")
    assert_within_quantisation(from_axes(theirs, "RUB"), g, version)


def test_splat_transform_reads_far_splats_at_the_coarser_step_we_chose(splat_transform, tmp_path):
    g = random_gaussians(200)
    far = g.replace(means=g.means * np.float32(1000))  # 10 fractional bits
    theirs = ply.read_ply(splat_transform(formats.write_splats(far, tmp_path / "far.spz"), tmp_path / "far.ply"))
    assert np.abs(from_axes(theirs, "RUB").means - far.means).max() <= 2.0**-11 + 1e-6


@pytest.mark.parametrize("version", [3, 4])
def test_we_read_what_splat_transform_writes(splat_transform, tmp_path, version):
    g = random_gaussians(400, seed=version, sh_degree=3)
    source = ply.write_ply(g, tmp_path / "source.ply", layout="3dgs")
    path = splat_transform(source, tmp_path / "theirs.spz", "--spz-version", str(version))
    assert path.read_bytes()[:4] == (b"NGSP" if version == 4 else b"\x1f\x8b\x08\x00")
    assert_within_quantisation(to_axes(formats.read_splats(path), "RUB"), g, version, stored="RDF")  # PLY's axes


@pytest.mark.parametrize("version", [2, 3, 4])
def test_gsply_reads_our_files(tmp_path, version):
    """A second reader, written by others in Python (gsply: NumPy and Numba); it converts no axes."""
    if importlib.util.find_spec("gsply") is None:
        pytest.skip("gsply (PyPI, a second SPZ reader) is not installed in this environment")
    import gsply

    g = random_gaussians(400, seed=version, sh_degree=3)
    rub = to_axes(g, "RUB")
    data = gsply.read_spz(formats.write_splats(g, tmp_path / "ours.spz", version=version))
    theirs = Gaussians(means=data.means, scales=np.exp(data.scales), quats=data.quats,
                       colors=g.colors, opacities=1 / (1 + np.exp(-data.opacities.astype(np.float64))),
                       sh_rest=data.shN)
    assert_within_quantisation(theirs, rub, version, stored="RDF")
    assert np.abs(data.sh0 - file_sh_dc(g)).max() <= F_DC_ERROR


def test_rotations_agree_with_the_covariances_they_stand_for():
    """The quaternion order of the file (x, y, z, w) against ours (w, x, y, z): covariances match."""
    g = random_gaussians(500, seed=9)
    back = spz.decode(spz.encode(g))
    assert np.abs(rotation_matrices(back.quats) - rotation_matrices(g.quats)).max() < 0.01


# ---- bad files ------------------------------------------------------------------------------------


def _v3(n: int = 50, sh_degree: int = 1) -> bytes:
    return gzip.decompress(spz.encode(random_gaussians(n, sh_degree=sh_degree)))


def _v4(n: int = 50, sh_degree: int = 1) -> bytes:
    return spz.encode(random_gaussians(n, sh_degree=sh_degree), version=4)


def _patched(data: bytes, at: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def _flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _junk_in_first_stream(data: bytes) -> bytes:
    size = struct.unpack_from("<Q", data, 32)[0]
    frame_end = 32 + 16 * data[15] + size
    return _patched(data[:frame_end] + b"junk" + data[frame_end:], 32, "<Q", size + 4)


BAD_FILES = {
    "empty": lambda: b"",
    "text": lambda: b"this is not a splat file at all",
    "gzip of something else": lambda: gzip.compress(b"PLY!" + bytes(200)),
    "gzip cut off": lambda: spz.encode(random_gaussians(300))[:1500],
    "gzip header only": lambda: gzip.compress(_v3()[:10]),
    "gzip corrupted": lambda: _flipped(spz.encode(random_gaussians(300)), 600),
    "gzip crc wrong": lambda: _flipped(spz.encode(random_gaussians(300)), -6),
    "gzip trailing garbage": lambda: spz.encode(random_gaussians(50)) + b"garbage",
    "gzip splats then garbage": lambda: gzip.compress(_v3() + b"garbage"),
    "gzip splats cut short": lambda: gzip.compress(_v3()[:-7]),
    "gzip version 0": lambda: gzip.compress(_patched(_v3(), 4, "<I", 0)),
    "gzip version 4": lambda: gzip.compress(_patched(_v3(), 4, "<I", 4)),
    "gzip SH degree 4": lambda: gzip.compress(_patched(_v3(), 12, "<B", 4)),
    "gzip SH degree 5": lambda: gzip.compress(_patched(_v3(), 12, "<B", 5)),
    "gzip no splats": lambda: gzip.compress(_patched(_v3(), 8, "<I", 0)[:16]),
    "gzip oversized count": lambda: gzip.compress(_patched(_v3(), 8, "<I", 0xFFFFFFFF)),
    "gzip 40 fractional bits": lambda: gzip.compress(_patched(_v3(), 13, "<B", 40)),
    "gzip bad extension record": lambda: gzip.compress(_patched(_v3(), 14, "<B", 2) + struct.pack("<II", 9, 1000)),
    "gzip v1 position not a number": lambda: gzip.compress(_patched(_v3(), 4, "<I", 1)[:16] + b"\x00\x7c" * 3
                                                           + bytes(50 * (6 + 1 + 3 + 3 + 3 + 9) - 6)),  # +inf
    "ngsp header cut off": lambda: _v4()[:20],
    "ngsp cut off": lambda: _v4()[:-10],
    "ngsp trailing garbage": lambda: _v4() + b"garbage",
    "ngsp version 5": lambda: _patched(_v4(), 4, "<I", 5),
    "ngsp version 3": lambda: _patched(_v4(), 4, "<I", 3),
    "ngsp SH degree 9": lambda: _patched(_v4(), 12, "<B", 9),
    "ngsp oversized count": lambda: _patched(_v4(), 8, "<I", 2_000_000_000),
    "ngsp count beyond its streams": lambda: _patched(_v4(), 8, "<I", 60),
    "ngsp stream count": lambda: _patched(_v4(), 15, "<B", 4),
    "ngsp table outside": lambda: _patched(_v4(), 16, "<I", 1 << 30),
    "ngsp table before header end": lambda: _patched(_v4(), 16, "<I", 8),
    "ngsp stream size": lambda: _patched(_v4(), 40, "<Q", 449),
    "ngsp corrupted stream": lambda: _flipped(_v4(1000), 32 + 6 * 16 + 200),  # we write zstd's checksum
    "ngsp junk after a frame": lambda: _junk_in_first_stream(_v4()),
    "ngsp coordinate system LUF": lambda: with_extensions(_v4(), record(spz.COORDINATE_SYSTEM_EXTENSION,
                                                                        struct.pack("<I", 7))),
    "ngsp extension cut": lambda: with_extensions(_v4(), struct.pack("<II", 5, 100)),
}
EXPECTED = {  # a few words each error must say
    "empty": "is not an SPZ file", "text": "is not an SPZ file: it starts with 74 68 69 73",
    "gzip of something else": "not 'NGSP'", "gzip cut off": "is cut off", "gzip header only": "ends before",
    "gzip corrupted": "does not inflate", "gzip crc wrong": "does not inflate",
    "gzip trailing garbage": "bytes after its gzip data",
    "gzip splats then garbage": "more than the 1,450 bytes its header declares",
    "gzip splats cut short": "is cut off: holds", "gzip version 0": "version 0", "gzip version 4": "version 4",
    "gzip SH degree 4": "SH degree 4", "gzip SH degree 5": "SH degree 5", "gzip no splats": "declares no splats",
    "gzip oversized count": "declares 4,294,967,295 splats", "gzip 40 fractional bits": "40 fractional bits",
    "gzip bad extension record": "extension record", "ngsp header cut off": "is cut off",
    "gzip v1 position not a number": "half-float positions are not numbers",
    "ngsp cut off": "where its table declares", "ngsp trailing garbage": "where its table declares",
    "ngsp version 5": "version 5", "ngsp version 3": "version 3", "ngsp SH degree 9": "SH degree 9",
    "ngsp oversized count": "declares 2,000,000,000 splats", "ngsp count beyond its streams": "bytes of positions",
    "ngsp stream count": "declares 4 streams", "ngsp table outside": "outside the",
    "ngsp table before header end": "outside the", "ngsp stream size": "declares 449 bytes of positions",
    "ngsp corrupted stream": "does not inflate", "ngsp junk after a frame": "not one whole zstd frame",
    "ngsp coordinate system LUF": "coordinate system 7", "ngsp extension cut": "extension record",
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_gives_one_error_naming_it_and_changes_nothing(tmp_path, case):
    path = tmp_path / "bad.spz"
    path.write_bytes(BAD_FILES[case]())
    before = listing(tmp_path)
    with pytest.raises(SplatFileError) as caught:
        formats.read_splats(path)
    message = str(caught.value)
    assert message.startswith(f"splat file '{path}': ") and EXPECTED[case] in message, message
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)
    assert listing(tmp_path) == before


# ---- decompression bombs: bounded memory, in a process of their own --------------------------------

BOMB_BYTES = 6 << 30  # what each bomb inflates to: more than the 4 GB address space its process has
READ = "import sys; from sharp_addon import formats; formats.read_splats(sys.argv[1])"


def gzip_bomb(header: bytes) -> bytes:
    """A gzip stream that inflates to ``header`` and then 6 GiB of zeros (1 KiB per MiB: each MiB is
    deflated alone after a full flush, so the same bytes repeat)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = deflater.compress(header) + deflater.flush(zlib.Z_FULL_FLUSH)
    piece = deflater.compress(bytes(1 << 20)) + deflater.flush(zlib.Z_FULL_FLUSH)
    end = deflater.flush()
    return spz.GZIP_HEADER + start + piece * (BOMB_BYTES >> 20) + end + bytes(8)  # never read that far


def zstd_bomb(declared: int | None = None) -> bytes:
    """A zstd frame of run-length blocks: 4 bytes for each 128 KiB of zeros, 6 GiB in all."""
    size = b"" if declared is None else struct.pack("<Q", declared)
    descriptor = 0x00 if declared is None else 0xC0  # no content size, or one of 8 bytes
    header = struct.pack("<IBB", 0xFD2FB528, descriptor, 0x38) + size  # a window of 128 KiB
    block = struct.pack("<I", (1 << 17) << 3 | 1 << 1)[:3] + b"\0"
    blocks = BOMB_BYTES >> 17
    return header + block * (blocks - 1) + struct.pack("<I", (1 << 17) << 3 | 1 << 1 | 1)[:3] + b"\0"


def ngsp_bomb(declared: int | None) -> bytes:
    """Our v4 file of 50 splats with its positions stream swapped for a zstd bomb."""
    data = _v4(50, 0)
    frame = zstd_bomb(declared)
    sizes = np.frombuffer(data, "<u8", 10, 32).reshape(-1, 2)
    rest = data[32 + 80 + int(sizes[0, 0]):]
    return _patched(data[:32 + 80], 32, "<Q", len(frame)) + frame + rest


BOMBS = {
    "gzip, 50 splats declared": lambda: gzip_bomb(_v3(50, 0)[:16]),
    "gzip, a count to match": lambda: gzip_bomb(_patched(_v3(50, 0)[:16], 8, "<I", BOMB_BYTES // 20)),
    "zstd, no content size": lambda: ngsp_bomb(None),
    "zstd, content size 6 GiB": lambda: ngsp_bomb(BOMB_BYTES),
    "zstd, content size as the table says": lambda: ngsp_bomb(450),
}


@pytest.mark.parametrize("case", BOMBS)
def test_a_decompression_bomb_is_an_error_within_bounded_memory(tmp_path, case):
    path = tmp_path / "bomb.spz"
    path.write_bytes(BOMBS[case]())
    assert path.stat().st_size < 8 << 20
    before = listing(tmp_path)
    result = run_alone(Run(READ, (str(path),), home=tmp_path))  # 4 GB of address space, 60 s
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and last.startswith(f"sharp_addon.errors.SplatFileError: splat file '{path}'"), \
        result.stderr[-2000:]
    assert "MemoryError" not in result.stderr and result.stderr.count("Error:") == 1, result.stderr[-2000:]
    assert listing(tmp_path) == before
