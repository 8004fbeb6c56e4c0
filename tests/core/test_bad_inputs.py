"""A corpus of bad inputs (and odd but valid ones), each run in a process of its own, as a user would meet it.

Every case builds its files in its own folder, then runs either the command line (``info``,
``convert``, ``predict`` up to where it would need a checkpoint) or, for images, ``load_photo``
through a driver that reports errors the way the command line does. Each process runs with a
time limit, a 4 GB address-space limit (a header that makes the reader allocate what it declares
fails) and numpy's RuntimeWarnings (overflow, invalid casts) turned into errors. Then:

- the exit status is 0 (success), 1 (a user error) or 2 (a bad argument), as the case says;
- an error is ONE line on stderr, starting with "error: " and naming the file (or argument);
- no "Traceback" appears anywhere;
- the case's folder is exactly as before (nothing half-written, an existing target keeps its
  bytes), apart from what a success writes, which gets the permissions the umask gives.

No torch, no bpy: this runs in every test environment.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sharp_addon import ply
from tests.conftest import ROOT
from tests.helpers import random_gaussians

TIME_LIMIT_S = 60
MEMORY_LIMIT = 4 << 30
IS_ROOT = getattr(os, "geteuid", lambda: -1)() == 0  # root writes into read-only folders
HAS_FIFO = hasattr(os, "mkfifo")

IMAGE_DRIVER = """
import sys
from sharp_addon.errors import SharpError
from sharp_addon.image import load_photo
try:
    photo = load_photo(sys.argv[1])
except SharpError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
print(f"{photo.size_wh[0]} x {photo.size_wh[1]} px, focal length {photo.focal_px:.1f} px")
"""
CLI_DRIVER = "import sys; from sharp_addon.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], list[str]]  # writes the inputs into the case folder, returns the arguments
    status: int = 1  # 0: success, 1: user error, 2: bad argument
    names: str = ""  # what the error line must name: a path relative to the case folder, or an argument
    says: str = ""  # text the error line (or, for a success, stdout) must contain
    image: bool = False  # run load_photo's driver instead of the command line
    writes: tuple[str, ...] = ()  # files a success creates or replaces (relative to the case folder)
    umask: int = 0o022
    skip: str = ""  # a reason this case cannot run here


# ---- building files ---------------------------------------------------------------------------------


def put(d: Path, name: str, data: bytes) -> str:
    (d / name).parent.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)
    return str(d / name)


def fifo(d: Path, name: str) -> str:
    os.mkfifo(d / name)
    return str(d / name)


def folder(d: Path, name: str, *files: str) -> str:
    (d / name).mkdir()
    for f in files:
        (d / name / f).write_bytes(b"not an image")
    return str(d / name)


def read_only_folder(d: Path, name: str) -> str:
    (d / name).mkdir()
    (d / name).chmod(0o555)
    return str(d / name)


def encoded(fmt: str, img: Image.Image | None = None, **options) -> bytes:
    img = img or Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk with a correct CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_parts() -> tuple[bytes, bytes, bytes]:
    """A PNG as (signature + IHDR, IDAT payload, IEND chunk)."""
    png = encoded("PNG")
    start = png.find(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[start : start + 4])
    return png[:start], png[start + 8 : start + 8 + length], png[start + 12 + length :]


def png_with_ihdr(width: int, height: int) -> bytes:
    head, idat, end = png_parts()
    return head[:8] + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", idat) + end


def png_damaged_idat(tail: bytes) -> bytes:
    """Half the compressed pixels, then ``tail`` where the decoder looks for more IDAT data."""
    head, idat, _ = png_parts()
    return head + chunk(b"IDAT", idat[: len(idat) // 2]) + tail


def jpeg_with_sof_size(width: int, height: int) -> bytes:
    jpg = encoded("JPEG")
    sof = jpg.find(b"\xff\xc0")
    return jpg[: sof + 5] + struct.pack(">HH", height, width) + jpg[sof + 9 :]


def tiff_with(tag: int, value: int) -> bytes:
    """A baseline TIFF with one entry of its first IFD changed."""
    data = bytearray(encoded("TIFF"))
    ifd = struct.unpack("<I", data[4:8])[0]
    for e in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        at = ifd + 2 + 12 * e
        t, kind, count, _ = struct.unpack("<HHII", data[at : at + 12])
        if t == tag:
            data[at : at + 12] = struct.pack("<HHII", t, kind, count, value)
    return bytes(data)


def gif_bad_lzw() -> bytes:
    gif = encoded("GIF", Image.new("P", (48, 40)))
    at = gif.find(b",") + 10  # the LZW minimum code size after the image descriptor
    return gif[:at] + b"\x0c" + gif[at + 1 :]


def photo(mode: str = "RGB", size: tuple[int, int] = (48, 40)) -> Image.Image:
    return Image.new("RGB", size, (200, 100, 50)).convert(mode)


def float_tiff_with_inf_and_nan() -> bytes:
    a = np.full((8, 8), 0.5, np.float32)
    a[0, 0], a[1, 1], a[2, 2] = np.inf, np.nan, -np.inf
    return encoded("TIFF", Image.fromarray(a, "F"))


def oriented_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    return encoded("JPEG", photo(size=(64, 48)), exif=exif)


def splats(photo_camera: bool = True, layout: ply.Layout = "sharp", n: int = 20) -> bytes:
    return ply.encode(random_gaussians(n, photo=photo_camera), layout)


def edit_header(data: bytes, old: bytes, new: bytes) -> bytes:
    head, sep, body = data.partition(b"end_header\n")
    assert old in head, old
    return head.replace(old, new, 1) + sep + body


def ply_file(header: list[str], body: bytes, fmt: str | None = "binary_little_endian") -> bytes:
    """A PLY file of these header lines (after a format line, unless ``fmt`` is None) and body."""
    formats = [f"format {fmt} 1.0"] if fmt else []
    return ("\n".join(["ply", *formats, *header, "end_header"]) + "\n").encode() + body


SPLAT_PROPERTIES = [f"property float {name}" for name in ply.REQUIRED]


def splat_rows(n: int, x: float = 0.0, f_dc: float = 0.0, dtype: str = "<f4") -> bytes:
    """n rows of the REQUIRED properties: unit quaternions, small scales, x and f_dc as given."""
    rows = np.zeros((n, len(ply.REQUIRED)), np.float64)
    rows[:, 0], rows[:, 2] = x, 2.0
    rows[:, 3:6] = f_dc
    rows[:, 7:10] = -4.0  # log scales
    rows[:, 10] = 1.0  # rot_0
    return rows.astype(dtype).tobytes()


def metadata_ply(focal: float, size: tuple[float, float], types: tuple[str, str] = ("float", "uint")) -> bytes:
    """A vertex element and ml-sharp's intrinsic and image_size elements, of the given PLY types."""
    numpy_type = {"float": "<f4", "double": "<f8", "uint": "<u4"}
    intrinsic = np.array([focal, 0, 1, 0, focal, 1, 0, 0, 1]).astype(numpy_type[types[0]])
    return ply_file(["element vertex 4", *SPLAT_PROPERTIES,
                     "element intrinsic 9", f"property {types[0]} intrinsic",
                     "element image_size 2", f"property {types[1]} image_size"],
                    splat_rows(4) + intrinsic.tobytes() + np.array(size).astype(numpy_type[types[1]]).tobytes())


def ascii_ply(image_size: str = "640 480", color_space: str = "0") -> bytes:
    rows = "\n".join(" ".join(["0", "0", "2", "0", "0", "0", "0", "-4", "-4", "-4", "1", "0", "0", "0"])
                     for _ in range(3))
    return ply_file(["element vertex 3", *SPLAT_PROPERTIES, "element image_size 2", "property uint image_size",
                     "element color_space 1", "property uchar color_space"],
                    f"{rows}\n{image_size}\n{color_space}\n".encode(), fmt="ascii")


def crlf(data: bytes) -> bytes:
    head, _, body = data.partition(b"end_header\n")
    return head.replace(b"\n", b"\r\n") + b"end_header\r\n" + body


LONG = "p" * 246  # + ".ply" or ".png": a 250-byte name, legal on every common file system


# ---- the corpus ----------------------------------------------------------------------------------------

CASES: dict[str, Case] = {}


def image_case(name: str, make: Callable[[Path], str], **kw) -> None:
    CASES[f"image-{name}"] = Case(lambda d: [make(d)], image=True, **kw)


def cli_case(name: str, make: Callable[[Path], list[str]], **kw) -> None:
    CASES[name] = Case(make, **kw)


# images whose decoder fails somewhere inside Pillow, each in its own way
image_case("png-idat-damaged-bad-chunk-type", lambda d: put(d, "a.png", png_damaged_idat(
    struct.pack(">I", 9) + b"\xea\x11\x07\xbd" + b"x" * 13)), names="a.png", says="broken PNG file")  # SyntaxError
image_case("png-idat-cut-at-chunk-length", lambda d: put(d, "a.png", png_damaged_idat(b"\x00\x00\x00\x05")),
           names="a.png", says="cannot be read as an image")  # SyntaxError
image_case("png-idat-not-zlib", lambda d: put(d, "a.png", png_parts()[0] + chunk(b"IDAT", b"garbage" * 3)
                                              + png_parts()[2]), names="a.png", says="cannot be read as an image")
image_case("png-declares-100000x100000", lambda d: put(d, "a.png", png_with_ihdr(100_000, 100_000)),
           names="a.png", says="exceeds limit")  # DecompressionBombError
image_case("png-truncated", lambda d: put(d, "a.png", encoded("PNG")[:200]), names="a.png", says="truncated")
image_case("jpeg-cut-mid-scan", lambda d: put(d, "a.jpg", (lambda j: j[: len(j) // 2])(encoded("JPEG"))),
           names="a.jpg", says="image file is truncated")
image_case("jpeg-bad-scan-header", lambda d: put(d, "a.jpg", (lambda j: j[: j.find(b"\xff\xda") + 2] + b"\x00\x01"
                                                              + j[j.find(b"\xff\xda") + 4 :])(encoded("JPEG"))),
           names="a.jpg", says="cannot be read as an image")
image_case("jpeg-declares-65535x65535", lambda d: put(d, "a.jpg", jpeg_with_sof_size(65535, 65535)),
           names="a.jpg", says="exceeds limit")
image_case("jpeg-garbage-after-marker", lambda d: put(d, "a.jpg", b"\xff\xd8\xff\xe0 definitely not a jpeg"),
           names="a.jpg", says="cannot be read as an image")
image_case("gif-bad-lzw-code-size", lambda d: put(d, "a.gif", gif_bad_lzw()), names="a.gif",
           says="cannot be read as an image")
image_case("tiff-strip-past-end", lambda d: put(d, "a.tif", tiff_with(273, 10**9)), names="a.tif", says="truncated")
image_case("tiff-zero-rows-per-strip", lambda d: put(d, "a.tif", tiff_with(278, 0)), names="a.tif",
           says="cannot be read as an image")
image_case("bmp-7-bits-per-pixel", lambda d: put(d, "a.bmp", (lambda b: b[:28] + struct.pack("<H", 7) + b[30:])(
    encoded("BMP"))), names="a.bmp", says="Unsupported BMP pixel depth")
image_case("bmp-huge-negative-width", lambda d: put(d, "a.bmp", (lambda b: b[:18] + struct.pack("<i", -5) + b[22:])(
    encoded("BMP"))), names="a.bmp", says="exceeds limit")
image_case("webp-cut", lambda d: put(d, "a.webp", (lambda w: w[: len(w) // 2])(encoded("WEBP"))), names="a.webp",
           says="cannot be read as an image")
image_case("qoi-bad-data", lambda d: put(d, "a.qoi", b"qoif" + struct.pack(">II", 4, 4) + b"\x03\x00" + b"\xff" * 10),
           names="a.qoi", says="cannot be read as an image")  # IndexError inside Pillow
image_case("dds-unknown-pixel-format", lambda d: put(d, "a.dds", b"DDS " + struct.pack("<I", 124) + bytes(120)),
           names="a.dds", says="Unknown pixel format")  # NotImplementedError inside Pillow
image_case("ftex-header-only", lambda d: put(d, "a.ftc", b"FTEX" + bytes(100)), names="a.ftc",
           says="cannot be read as an image")  # AssertionError inside Pillow
image_case("empty-file", lambda d: put(d, "a.png", b""), names="a.png", says="not an image format Pillow can read")
image_case("text-named-jpg", lambda d: put(d, "a.jpg", b"hello\n"), names="a.jpg", says="cannot be read as an image")
image_case("1x1-pixels", lambda d: put(d, "a.png", encoded("PNG", photo(size=(1, 1)))), names="a.png",
           says="is 1 x 1 pixels; at least 2 x 2 are needed")
image_case("1x40-pixels", lambda d: put(d, "a.png", encoded("PNG", photo(size=(1, 40)))), names="a.png",
           says="is 1 x 40 pixels")
# paths that are not image files
image_case("folder", lambda d: folder(d, "photos.jpg"), names="photos.jpg", says="is a folder, not an image file")
image_case("missing", lambda d: str(d / "none.jpg"), names="none.jpg", says="no such file")
image_case("under-a-file", lambda d: put(d, "a.txt", b"x") + "/b.png", names="a.txt/b.png", says="no such file")
image_case("named-pipe", lambda d: fifo(d, "a.png"), names="a.png", says="is a named pipe, not an image file",
           skip="" if HAS_FIFO else "no named pipes here")
image_case("no-read-permission", lambda d: (put(d, "a.png", encoded("PNG")), (d / "a.png").chmod(0))[0],
           names="a.png", says="Permission denied", skip="root reads anything" if IS_ROOT else "")
# odd but valid images
image_case("png-16-bit-gray", lambda d: put(d, "a.png", encoded("PNG", Image.fromarray(
    np.full((40, 48), 40000, np.uint16)))), status=0, says="48 x 40 px")
image_case("png-gray-alpha", lambda d: put(d, "a.png", encoded("PNG", photo("LA"))), status=0, says="48 x 40 px")
image_case("png-palette", lambda d: put(d, "a.png", encoded("PNG", photo("P"), transparency=0)), status=0,
           says="48 x 40 px")
image_case("png-broken-exif-chunk", lambda d: put(d, "a.png", (lambda h, i, e: h + chunk(b"eXIf", b"\x00")
                                                                + chunk(b"IDAT", i) + e)(*png_parts())),
           status=0, says="48 x 40 px")
image_case("png-garbage-icc-profile", lambda d: put(d, "a.png", (lambda h, i, e: h + chunk(b"iCCP", b"p\x00\x00junk")
                                                                  + chunk(b"IDAT", i) + e)(*png_parts())),
           status=0, says="48 x 40 px")
image_case("jpeg-cmyk", lambda d: put(d, "a.jpg", encoded("JPEG", photo("CMYK"))), status=0, says="48 x 40 px")
image_case("jpeg-exif-rotated", lambda d: put(d, "a.jpg", oriented_jpeg()), status=0, says="48 x 64 px")
image_case("tiff-float-with-inf-and-nan", lambda d: put(d, "a.tif", float_tiff_with_inf_and_nan()), status=0,
           says="8 x 8 px")
image_case("250-byte-name", lambda d: put(d, LONG + ".png", encoded("PNG")), status=0, says="48 x 40 px")

# splat PLY files whose header looks legal but is inconsistent
GOOD = ["element vertex 2", *SPLAT_PROPERTIES]
for name, header, body, says in [
    ("property-twice", [*GOOD, "property float x"], splat_rows(2) + bytes(8),
     "declares property 'x' twice in element 'vertex'"),
    ("element-twice", [*GOOD, "element extra 1", "property float a", "element extra 1", "property float b"],
     splat_rows(2) + bytes(8), "declares element 'extra' twice"),
    ("rows-without-properties", [*GOOD, "element face 1000000000000"], splat_rows(2),
     "declares 1000000000000 rows of element 'face' but no properties"),
    ("negative-count", ["element vertex -2", *SPLAT_PROPERTIES], splat_rows(2), "negative count -2"),
    ("count-beyond-the-file", ["element vertex 1000000000000000", *SPLAT_PROPERTIES], splat_rows(2),
     "is truncated: element 'vertex' needs 56000000000000000 bytes"),
    ("count-beyond-memory", ["element vertex 60000000", *SPLAT_PROPERTIES], splat_rows(2), "is truncated"),
    ("format-twice", ["format ascii 1.0", *GOOD], splat_rows(2), "has a second 'format' line (line 3)"),
    ("format-after-element", [*GOOD, "format binary_little_endian 1.0"], splat_rows(2),
     "has its 'format' line after an element"),  # (built without the usual format line, see below)
    ("property-before-element", ["property float x", *GOOD], splat_rows(2), "has a property before any element"),
    ("property-name-control-byte", [*GOOD, "property float a\x01b"], splat_rows(2) + bytes(8), "not printable text"),
    ("header-not-ascii", ["comment caf\u00e9", *GOOD], splat_rows(2), "has a header that is not ASCII text"),
    ("vertex-doubles-beyond-float32", ["element vertex 2", *(p.replace("float", "double") for p in SPLAT_PROPERTIES)],
     splat_rows(2, x=1e300, dtype="<f8"), "NaN/Inf values in 1 properties: x (2) (or values too large"),
    ("colour-overflows-srgb", GOOD, splat_rows(2, f_dc=1e30), "colors has 0 NaN and 6 Inf values"),
]:
    fmt = None if name == "format-after-element" else "binary_little_endian"
    cli_case(f"ply-{name}", lambda d, h=header, b=body, f=fmt: ["info", put(d, "a.ply", ply_file(h, b, f))],
             names="a.ply", says=says)
cli_case("ply-version-2", lambda d: ["info", put(d, "a.ply", edit_header(splats(), b"1.0", b"2.0"))],
         names="a.ply", says="has PLY version '2.0'; only version 1.0 exists")
cli_case("ply-ascii-count-beyond-the-file", lambda d: ["info", put(d, "a.ply", edit_header(
    ascii_ply(), b"vertex 3", b"vertex 100000000000000"))], names="a.ply", says="its header describes")
cli_case("ply-ascii-negative-uint", lambda d: ["info", put(d, "a.ply", ascii_ply(image_size="-1 480"))],
         names="a.ply", says="ASCII value -1 for the uint32 property 'image_size'")
cli_case("ply-ascii-fraction-for-uchar", lambda d: ["info", put(d, "a.ply", ascii_ply(color_space="0.5"))],
         names="a.ply", says="ASCII value 0.5 for the uint8 property 'color_space'")
cli_case("ply-size-beyond-uint32", lambda d: ["info", put(d, "a.ply", metadata_ply(500, (1e10, 1),
                                                                                  ("float", "double")))],
         names="a.ply", says="beyond 4294967295")
cli_case("ply-focal-beyond-float32", lambda d: ["info", put(d, "a.ply", metadata_ply(1e300, (640, 480),
                                                                                     ("double", "uint")))],
         names="a.ply", says="more than a 32-bit float holds")
cli_case("ply-folder", lambda d: ["info", folder(d, "scene.ply")], names="scene.ply", says="is a folder, not a file")
cli_case("ply-missing", lambda d: ["info", str(d / "none.ply")], names="none.ply", says="no such file")
cli_case("ply-under-a-file", lambda d: ["info", put(d, "a.ply", splats()) + "/b.ply"], names="a.ply/b.ply",
         says="a.ply' is a file, not a folder")
cli_case("ply-named-pipe", lambda d: ["info", fifo(d, "a.ply")], names="a.ply", says="is a named pipe, not a file",
         skip="" if HAS_FIFO else "no named pipes here")
# odd but valid PLY files
cli_case("ply-crlf-header", lambda d: ["info", put(d, "a.ply", crlf(splats()))], status=0, says="20 Gaussians")
cli_case("ply-extreme-metadata", lambda d: ["info", put(d, "a.ply", metadata_ply(1e30, (4294967295, 1)))],
         status=0, says="photo: 4294967295 x 1 px, focal length 1000000015047466219876688855040.00 px")
cli_case("ply-250-byte-name", lambda d: ["info", put(d, LONG + ".ply", splats())], status=0, says="20 Gaussians")

# convert: user terms for what cannot be written, bad arguments, bad inputs
cli_case("convert-3dgs-to-sharp-layout", lambda d: ["convert", put(d, "in.ply", splats(False, "3dgs")),
                                                    str(d / "out.ply"), "--layout", "sharp"],
         names="in.ply", says="has no photo camera (focal length and size), which the ml-sharp layout records; "
                             "use --layout 3dgs")
cli_case("convert-missing-input", lambda d: ["convert", str(d / "in.ply"), str(d / "out.ply")], names="in.ply",
         says="no such file")
cli_case("convert-folder-input", lambda d: ["convert", folder(d, "in.ply"), str(d / "out.ply")], names="in.ply",
         says="is a folder, not a file")
cli_case("convert-bad-input-keeps-existing-output", lambda d: [
    "convert", put(d, "in.ply", splats()[:-5]), put(d, "out.ply", b"precious")], names="in.ply", says="truncated")
for arg, value in [("--min-opacity", "1.5"), ("--min-opacity", "-0.1"), ("--keep-fraction", "nan"),
                   ("--keep-fraction", "2"), ("--keep-fraction", "half")]:
    cli_case(f"convert{arg}-{value}", lambda d, a=arg, v=value: [
        "convert", put(d, "in.ply", splats()), str(d / "out.ply"), a, v], status=2, names=arg,
        says="must be a number from 0 to 1")
cli_case("convert-to-a-folder", lambda d: ["convert", put(d, "in.ply", splats()), folder(d, "out")], names="out",
         says="cannot be written: it is a folder")
cli_case("convert-under-a-file", lambda d: ["convert", put(d, "in.ply", splats()), put(d, "notes.txt", b"x")
                                            + "/out.ply"],
         names="notes.txt/out.ply", says="notes.txt' is a file, not a folder")
cli_case("convert-into-missing-folder", lambda d: ["convert", put(d, "in.ply", splats()), str(d / "no/out.ply")],
         names="no/out.ply", says="does not exist")
cli_case("convert-into-read-only-folder", lambda d: ["convert", put(d, "in.ply", splats()),
                                                     read_only_folder(d, "ro") + "/out.ply"],
         names="ro/out.ply", says="no permission to write in folder", skip="root writes anywhere" if IS_ROOT else "")
cli_case("convert-to-a-named-pipe", lambda d: ["convert", put(d, "in.ply", splats()), fifo(d, "out.ply")],
         names="out.ply", says="is a named pipe, not a file", skip="" if HAS_FIFO else "no named pipes here")
cli_case("convert-to-a-folder-name", lambda d: ["convert", put(d, "in.ply", splats()), str(d / "new") + "/"],
         names="new/", says="ends in a path separator")
cli_case("convert-name-too-long", lambda d: ["convert", put(d, "in.ply", splats()), str(d / ("p" * 300 + ".ply"))],
         names="p" * 300, says="File name too long")
# convert: successes
cli_case("convert-250-byte-name", lambda d: ["convert", put(d, "in.ply", splats()), str(d / (LONG + ".ply"))],
         status=0, says="20 of 20 Gaussians", writes=(LONG + ".ply",))
cli_case("convert-replaces-with-umask-permissions", lambda d: [
    "convert", put(d, "in.ply", splats()), put(d, "out.ply", b"old"), "--layout", "sharp"], status=0,
    says="layout sharp", writes=("out.ply",), umask=0o027)
cli_case("convert-extreme-metadata-to-sharp", lambda d: [
    "convert", put(d, "in.ply", metadata_ply(1e30, (4294967295, 1))), str(d / "out.ply"), "--layout", "sharp"],
    status=0, says="4 of 4 Gaussians", writes=("out.ply",))

# predict: the inputs and the output folder are checked before a checkpoint is looked for
cli_case("predict-output-is-a-file", lambda d: ["predict", "-i", put(d, "a.png", encoded("PNG")),
                                                "-o", put(d, "out", b"x")], names="out", says="is a file, not a folder")
cli_case("predict-output-under-a-file", lambda d: ["predict", "-i", put(d, "a.png", encoded("PNG")),
                                                   "-o", put(d, "out", b"x") + "/sub"],
         names="out/sub", says="cannot be created: '")
cli_case("predict-input-empty-folder", lambda d: ["predict", "-i", folder(d, "photos"), "-o", str(d / "out")],
         names="photos", says="is an empty folder")
cli_case("predict-input-folder-without-images", lambda d: [
    "predict", "-i", folder(d, "photos", "notes.txt", "a.ply"), "-o", str(d / "out")], names="photos",
    says="is a folder without images")
cli_case("predict-input-missing", lambda d: ["predict", "-i", str(d / "a.png"), "-o", str(d / "out")], names="a.png",
         says="no such file or folder")
cli_case("predict-input-named-pipe", lambda d: ["predict", "-i", fifo(d, "a.png"), "-o", str(d / "out")],
         names="a.png", says="is a named pipe", skip="" if HAS_FIFO else "no named pipes here")
cli_case("predict-focal-zero", lambda d: ["predict", "-i", put(d, "a.png", encoded("PNG")), "-o", str(d / "out"),
                                          "--focal-35mm", "0"], status=2, names="--focal-35mm",
         says="must be a positive number")


# ---- running a case ----------------------------------------------------------------------------------


def listing(d: Path) -> dict[str, tuple]:
    """Every entry under ``d``: its kind and, for files, its bytes (what a failed run must not change)."""
    out: dict[str, tuple] = {}
    for path in sorted(d.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            try:
                out[str(path.relative_to(d))] = ("file", path.read_bytes())
            except PermissionError:
                out[str(path.relative_to(d))] = ("unreadable file", path.stat().st_size)
        else:
            out[str(path.relative_to(d))] = (stat.S_IFMT(mode),)
    return out


def run_limited(code: str, args: list[str], home: Path, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter as a user meets it: time and address-space limits, numpy's
    RuntimeWarnings as errors, no default checkpoint, its own torch home. (Also the checkpoint corpus's.)"""
    def limits() -> None:
        os.umask(umask)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        except (ImportError, ValueError, OSError):  # no such limit here: the time limit still holds
            pass

    env = {k: v for k, v in os.environ.items() if k not in ("SHARP_CHECKPOINT", "PYTHONWARNINGS")}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env |= {"PYTHONPATH": path, "TORCH_HOME": str(home), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=TIME_LIMIT_S,
                          preexec_fn=limits if os.name == "posix" else None)


def run(case: Case, args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return run_limited(IMAGE_DRIVER if case.image else CLI_DRIVER, args, home, case.umask)


@pytest.mark.parametrize("name", list(CASES))
def test_corpus(tmp_path, name):
    case = CASES[name]
    if case.skip:
        pytest.skip(case.skip)
    d = tmp_path / "case"
    d.mkdir()
    home = tmp_path / "torch-home"  # no checkpoint in it: predict must stop before needing one
    try:
        args = case.make(d)
        before = listing(d)
        result = run(case, args, home)
        after = listing(d)
    finally:
        for path in [d, *d.rglob("*")]:  # undo read-only folders and files for the cleanup
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == case.status, output
    if case.status == 0:
        assert result.stderr == "", result.stderr
        assert case.says in result.stdout, result.stdout
        changed = {k for k in after if before.get(k) != after[k]} | {k for k in before if k not in after}
        assert changed == set(case.writes), (changed, case.writes)
        for written in case.writes:
            assert stat.S_IMODE((d / written).stat().st_mode) == 0o666 & ~case.umask, written
            back, source = ply.read_ply(d / written), ply.read_ply(args[1])
            assert len(back) == len(source)
            if "sharp" in args:  # the photo camera survives exactly, extreme values included
                assert (back.focal_px, back.image_size) == (source.focal_px, source.image_size)
        return
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    named = case.names if case.names.startswith("-") else str(d / case.names)
    assert named in lines[0], (named, lines[0])
    assert case.says in lines[0], (case.says, lines[0])
    assert result.stdout == "", result.stdout
    assert after == before, "the case folder changed: " + ", ".join(
        sorted({k for k in after if before.get(k) != after[k]} | set(before) - set(after)))


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert sum(c.status == 0 for c in CASES.values()) >= 8  # odd but valid inputs that must work
