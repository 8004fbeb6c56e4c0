"""A corpus of bad inputs (and odd but valid ones), run as a user would meet them.

Every case builds its files in its own folder, then runs either the command line (``info``,
``convert``, ``predict`` up to where it would need a checkpoint) or, for images, ``load_photo``
through a driver that reports errors the way the command line does. A case that could crash or hang
its process (damaged bytes into Pillow's native decoders, a declared size that would make a reader
allocate gigabytes, a named pipe) runs in a process of its own; the others share one process
(``tests/support/corpus_runs.py``: each case's output, exit status, umask and time limit are still
its own). Every process has a time limit, a 4 GB address-space limit (a header that makes the reader
allocate what it declares fails) and numpy's RuntimeWarnings (overflow, invalid casts) turned into
errors. Then:

- the exit status is 0 (success), 1 (a user error) or 2 (a bad argument), as the case says;
- an error is ONE line on stderr, starting with "error: " and naming the file (or argument);
- no "Traceback" appears anywhere;
- the case's folder is exactly as before (nothing half-written, an existing target keeps its
  bytes), apart from what a success writes, which gets the permissions the umask gives.

No torch, no bpy: this runs once per Python version (tools/dev.py).
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sharp_addon import ply
from tests.support.bad_files import (
    GOOD,
    HAS_FIFO,
    IS_ROOT,
    LONG,
    SPLAT_PROPERTIES,
    ascii_ply,
    chunk,
    crlf,
    edit_header,
    encoded,
    fifo,
    float_tiff_with_inf_and_nan,
    folder,
    gif_bad_lzw,
    jpeg_with_sof_size,
    metadata_ply,
    oriented_jpeg,
    photo,
    ply_file,
    png_damaged_idat,
    png_parts,
    png_with_ihdr,
    put,
    read_only_folder,
    splat_rows,
    splats,
    tiff_with,
    writable_again,
)
from tests.support.corpus_runs import Outcome, Run, listing, run_alone, run_batch

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

pytestmark = pytest.mark.corpus

# why a case gets a process of its own
NATIVE = "damaged bytes into a native decoder"
HUGE = "declares a size that a faulty reader would allocate"
PIPE = "opens a named pipe, which can block"


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
    alone: str = ""  # why it needs a process of its own (it could crash or hang a shared one)


CASES: dict[str, Case] = {}


def image_case(name: str, make: Callable[[Path], str], **kw) -> None:
    CASES[f"image-{name}"] = Case(lambda d: [make(d)], image=True, **kw)


def cli_case(name: str, make: Callable[[Path], list[str]], **kw) -> None:
    CASES[name] = Case(make, **kw)


# ---- the corpus ----------------------------------------------------------------------------------------

# images whose decoder fails somewhere inside Pillow, each in its own way
image_case("png-idat-damaged-bad-chunk-type", lambda d: put(d, "a.png", png_damaged_idat(
    struct.pack(">I", 9) + b"\xea\x11\x07\xbd" + b"x" * 13)), names="a.png", says="broken PNG file",
           alone=NATIVE)  # SyntaxError
image_case("png-idat-cut-at-chunk-length", lambda d: put(d, "a.png", png_damaged_idat(b"\x00\x00\x00\x05")),
           names="a.png", says="cannot be read as an image", alone=NATIVE)  # SyntaxError
image_case("png-idat-not-zlib", lambda d: put(d, "a.png", png_parts()[0] + chunk(b"IDAT", b"garbage" * 3)
                                              + png_parts()[2]), names="a.png", says="cannot be read as an image",
           alone=NATIVE)
image_case("png-declares-100000x100000", lambda d: put(d, "a.png", png_with_ihdr(100_000, 100_000)),
           names="a.png", says="exceeds limit", alone=HUGE)  # DecompressionBombError
image_case("png-truncated", lambda d: put(d, "a.png", encoded("PNG")[:200]), names="a.png", says="truncated",
           alone=NATIVE)
image_case("jpeg-cut-mid-scan", lambda d: put(d, "a.jpg", (lambda j: j[: len(j) // 2])(encoded("JPEG"))),
           names="a.jpg", says="image file is truncated", alone=NATIVE)
image_case("jpeg-bad-scan-header", lambda d: put(d, "a.jpg", (lambda j: j[: j.find(b"\xff\xda") + 2] + b"\x00\x01"
                                                              + j[j.find(b"\xff\xda") + 4 :])(encoded("JPEG"))),
           names="a.jpg", says="cannot be read as an image", alone=NATIVE)
image_case("jpeg-declares-65535x65535", lambda d: put(d, "a.jpg", jpeg_with_sof_size(65535, 65535)),
           names="a.jpg", says="exceeds limit", alone=HUGE)
image_case("jpeg-garbage-after-marker", lambda d: put(d, "a.jpg", b"\xff\xd8\xff\xe0 definitely not a jpeg"),
           names="a.jpg", says="cannot be read as an image", alone=NATIVE)
image_case("gif-bad-lzw-code-size", lambda d: put(d, "a.gif", gif_bad_lzw()), names="a.gif",
           says="cannot be read as an image", alone=NATIVE)
image_case("tiff-strip-past-end", lambda d: put(d, "a.tif", tiff_with(273, 10**9)), names="a.tif", says="truncated",
           alone=NATIVE)
image_case("tiff-zero-rows-per-strip", lambda d: put(d, "a.tif", tiff_with(278, 0)), names="a.tif",
           says="cannot be read as an image", alone=NATIVE)
image_case("bmp-7-bits-per-pixel", lambda d: put(d, "a.bmp", (lambda b: b[:28] + struct.pack("<H", 7) + b[30:])(
    encoded("BMP"))), names="a.bmp", says="Unsupported BMP pixel depth", alone=NATIVE)
image_case("bmp-huge-negative-width", lambda d: put(d, "a.bmp", (lambda b: b[:18] + struct.pack("<i", -5) + b[22:])(
    encoded("BMP"))), names="a.bmp", says="exceeds limit", alone=HUGE)
image_case("webp-cut", lambda d: put(d, "a.webp", (lambda w: w[: len(w) // 2])(encoded("WEBP"))), names="a.webp",
           says="cannot be read as an image", alone=NATIVE)
image_case("qoi-bad-data", lambda d: put(d, "a.qoi", b"qoif" + struct.pack(">II", 4, 4) + b"\x03\x00" + b"\xff" * 10),
           names="a.qoi", says="cannot be read as an image", alone=NATIVE)  # IndexError inside Pillow
image_case("dds-unknown-pixel-format", lambda d: put(d, "a.dds", b"DDS " + struct.pack("<I", 124) + bytes(120)),
           names="a.dds", says="Unknown pixel format", alone=NATIVE)  # NotImplementedError inside Pillow
image_case("ftex-header-only", lambda d: put(d, "a.ftc", b"FTEX" + bytes(100)), names="a.ftc",
           says="cannot be read as an image", alone=NATIVE)  # AssertionError inside Pillow
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
           skip="" if HAS_FIFO else "no named pipes here", alone=PIPE)
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
           status=0, says="48 x 40 px", alone=NATIVE)
image_case("png-garbage-icc-profile", lambda d: put(d, "a.png", (lambda h, i, e: h + chunk(b"iCCP", b"p\x00\x00junk")
                                                                  + chunk(b"IDAT", i) + e)(*png_parts())),
           status=0, says="48 x 40 px", alone=NATIVE)
image_case("jpeg-cmyk", lambda d: put(d, "a.jpg", encoded("JPEG", photo("CMYK"))), status=0, says="48 x 40 px")
image_case("jpeg-exif-rotated", lambda d: put(d, "a.jpg", oriented_jpeg()), status=0, says="48 x 64 px")
image_case("tiff-float-with-inf-and-nan", lambda d: put(d, "a.tif", float_tiff_with_inf_and_nan()), status=0,
           says="8 x 8 px")
image_case("250-byte-name", lambda d: put(d, LONG + ".png", encoded("PNG")), status=0, says="48 x 40 px")

# splat PLY files whose header looks legal but is inconsistent
HUGE_COUNTS = ("rows-without-properties", "count-beyond-the-file", "count-beyond-memory")
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
             names="a.ply", says=says, alone=HUGE if name in HUGE_COUNTS else "")
cli_case("ply-version-2", lambda d: ["info", put(d, "a.ply", edit_header(splats(), b"1.0", b"2.0"))],
         names="a.ply", says="has PLY version '2.0'; only version 1.0 exists")
cli_case("ply-ascii-count-beyond-the-file", lambda d: ["info", put(d, "a.ply", edit_header(
    ascii_ply(), b"vertex 3", b"vertex 100000000000000"))], names="a.ply", says="its header describes", alone=HUGE)
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
         skip="" if HAS_FIFO else "no named pipes here", alone=PIPE)
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
         names="out.ply", says="is a named pipe, not a file", skip="" if HAS_FIFO else "no named pipes here",
         alone=PIPE)
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
         names="a.png", says="is a named pipe", skip="" if HAS_FIFO else "no named pipes here", alone=PIPE)
cli_case("predict-focal-zero", lambda d: ["predict", "-i", put(d, "a.png", encoded("PNG")), "-o", str(d / "out"),
                                          "--focal-35mm", "0"], status=2, names="--focal-35mm",
         says="must be a positive number")


# ---- running a case ----------------------------------------------------------------------------------


@dataclass
class Ran:
    """A case's folder, its arguments, the folder before and after the run, and what the run gave."""

    d: Path
    args: list[str]
    before: dict
    after: dict
    result: Outcome


def prepared(case: Case, base: Path) -> tuple[Path, list[str], Run]:
    d = base / "case"
    d.mkdir(parents=True)
    args = case.make(d)
    home = base / "torch-home"  # no checkpoint in it: predict must stop before needing one
    return d, args, Run(IMAGE_DRIVER if case.image else CLI_DRIVER, tuple(args), home, case.umask)


def selected_names(request: pytest.FixtureRequest) -> list[str]:
    """The cases of ``test_corpus`` that this session runs (after -k and -m)."""
    return [item.callspec.params["name"] for item in request.session.items
            if getattr(item, "originalname", "") == "test_corpus" and getattr(item, "module", None) is request.module]


@pytest.fixture(scope="module")
def shared_runs(request, tmp_path_factory) -> dict[str, Ran]:
    """Every selected case that nothing can crash, run in one shared process."""
    names = [n for n in selected_names(request) if not CASES[n].alone and not CASES[n].skip]
    root = tmp_path_factory.mktemp("corpus")
    cases = {name: prepared(CASES[name], root / name) for name in names}
    befores = {name: listing(d) for name, (d, _, _) in cases.items()}
    try:
        outcomes = run_batch({name: run for name, (_, _, run) in cases.items()}, root / "batches")
        afters = {name: listing(d) for name, (d, _, _) in cases.items()}
    finally:
        for d, _, _ in cases.values():
            writable_again(d)
    return {name: Ran(d, args, befores[name], afters[name], outcomes[name]) for name, (d, args, _) in cases.items()}


def run_in_own_process(case: Case, base: Path) -> Ran:
    d, args, run = prepared(case, base)
    try:
        before = listing(d)
        result = run_alone(run)
        after = listing(d)
    finally:
        writable_again(d)
    return Ran(d, args, before, after, result)


@pytest.mark.parametrize("name", list(CASES))
def test_corpus(request, tmp_path, name):
    case = CASES[name]
    if case.skip:
        pytest.skip(case.skip)
    ran = run_in_own_process(case, tmp_path) if case.alone else request.getfixturevalue("shared_runs")[name]
    d, args, before, after, result = ran.d, ran.args, ran.before, ran.after, ran.result
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


def test_every_case_that_could_crash_a_shared_process_has_its_own():
    """Damaged images reach native decoders, named pipes block, huge declared sizes allocate: alone."""
    for name, case in CASES.items():
        if "named-pipe" in name:
            assert case.alone == PIPE, name
    assert sum(bool(c.alone) for c in CASES.values()) >= 20
    assert sum(not c.alone for c in CASES.values()) >= 40


def test_a_shared_process_keeps_each_cases_own_output_status_and_settings_and_outlives_a_crash(tmp_path):
    """What makes sharing a process safe: a case's writes (Python's and native code's), exit status,
    traceback, umask, TORCH_HOME and once-shown warnings are its own, and a crash fails the case that
    crashed while the cases after it run in a new process."""
    (tmp_path / "warner.py").write_text("import warnings\n\ndef warn():\n    warnings.warn('again', UserWarning)\n")
    warn = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import warner; warner.warn()"
    home = tmp_path / "home"
    runs = {
        "prints": Run("import sys; print('out'); print('err', file=sys.stderr)", (), home),
        "writes-to-fd-2": Run("import os; os.write(2, b'native\\n')", ("x",), home),
        "exits-2": Run("import sys; sys.exit(2)", (), home),
        "raises": Run("raise ValueError('boom')", (), home),
        "warns": Run(warn, (), home),
        "warns-again": Run(warn, (), home),
        "umask-and-arguments": Run("import os, sys; print(oct(os.umask(0)), sys.argv[1:])", ("a", "b"), home, 0o027),
        "crashes": Run("import os; os.abort()", (), home),
        "after-the-crash": Run("import os; print(os.environ['TORCH_HOME'])", (), tmp_path / "own-home"),
    }
    got = run_batch(runs, tmp_path / "work")
    assert got["prints"] == Outcome(0, "out\n", "err\n")
    assert got["writes-to-fd-2"] == Outcome(0, "", "native\n")
    assert got["exits-2"] == Outcome(2, "", "")
    assert got["raises"].returncode == 1 and "Traceback" in got["raises"].stderr
    assert got["raises"].stderr.endswith("ValueError: boom\n")
    assert "UserWarning: again" in got["warns"].stderr and "UserWarning: again" in got["warns-again"].stderr
    assert got["umask-and-arguments"] == Outcome(0, "0o27 ['a', 'b']\n", "")
    assert got["crashes"].returncode != 0 and "died running this case" in got["crashes"].stderr
    assert got["after-the-crash"] == Outcome(0, f"{tmp_path / 'own-home'}\n", "")
    assert len(list((tmp_path / "work").iterdir())) == 2  # the crash needed a second process
