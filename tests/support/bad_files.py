"""Builders of bad (and odd but valid) files for the bad-input corpora: images, PLY files, checkpoints, paths.

Each builder writes into (or returns bytes for) a case's own folder. The corpora that use them:
``tests/core/test_bad_inputs.py``, ``tests/core/test_bad_checkpoints.py`` and
``tests/blender/test_bad_inputs_operators.py``. No torch at import; the checkpoint builders import it.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from sharp_addon import ply
from tests.support.builders import random_gaussians

IS_ROOT = getattr(os, "geteuid", lambda: -1)() == 0  # root writes into read-only folders
HAS_FIFO = hasattr(os, "mkfifo")
LONG = "p" * 246  # + ".ply" or ".png": a 250-byte name, legal on every common file system


# ---- paths ----------------------------------------------------------------------------------------------


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


def writable_again(d: Path) -> None:
    """Undo read-only folders and unreadable files under ``d`` so that it can be removed (other files keep
    their permissions: a success's are checked)."""
    for path in [d, *d.rglob("*")]:
        if path.is_symlink() or not path.exists():
            continue
        if path.is_dir():
            path.chmod(0o755)
        elif not path.stat().st_mode & 0o400:
            path.chmod(0o644)


# ---- images ---------------------------------------------------------------------------------------------


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


# ---- PLY files --------------------------------------------------------------------------------------------


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
GOOD = ["element vertex 2", *SPLAT_PROPERTIES]  # the header of two splat rows


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


# ---- checkpoints (torch) ---------------------------------------------------------------------------------


def good_state_dict(good: Path) -> dict:
    import torch

    return torch.load(good, map_location="cpu", weights_only=True)


def saved(d: Path, name: str, obj: object, **options) -> str:
    import torch

    torch.save(obj, d / name, **options)
    return str(d / name)


def edited(good: Path, edit: Callable[[dict], dict]) -> object:
    """The good state dict, changed by ``edit`` (which gets a copy and returns what to save)."""
    return edit(dict(good_state_dict(good)))


def with_nan(sd: dict) -> dict:
    key = next(k for k, v in sd.items() if v.numel() > 1)
    sd[key] = sd[key].clone()
    sd[key].view(-1)[1] = float("nan")
    return sd


def with_wrong_shape(sd: dict) -> dict:
    key = next(iter(sd))
    sd[key] = sd[key].new_zeros((*sd[key].shape, 2))
    return sd


def integers(sd: dict) -> dict:
    import torch

    return {k: (v * 1000).to(dtype=torch.int32) for k, v in sd.items()}


def zip_not_torch(d: Path, name: str) -> str:
    with zipfile.ZipFile(d / name, "w") as z:
        z.writestr("readme.txt", "a zip archive, but not one torch wrote")
        z.writestr("data/0", b"\x00" * 64)
    return str(d / name)


class Planted:
    """An object whose unpickling would create a file: a refused checkpoint must never run it."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))
