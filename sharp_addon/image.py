"""Photos in: RGB pixels and the focal length in pixels, as SHARP's reference loads them.

No bpy, no torch. docs/model.md, "Image loading and EXIF focal length": EXIF orientation applied,
focal length from EXIF (35 mm equivalent, else the true focal length, else 30 mm; values under
10 mm are scaled by 8.4 as a phone crop factor) converted to pixels by matching the diagonal.
Grayscale, alpha, palette, CMYK and 16-bit images are converted to 8-bit RGB; ICC profiles are not
applied (as in the reference).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ImageError
from .files import path_kind

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".heic")
DEFAULT_FOCAL_35MM = 30.0  # mm, when the EXIF says nothing
FULL_FRAME_DIAGONAL = math.hypot(36.0, 24.0)  # mm
PHONE_CROP_FACTOR = 8.4  # applied to true focal lengths under 10 mm
EXIF_IFD = 0x8769
TAG_ORIENTATION = 0x0112
TAG_FOCAL_LENGTH = 0x920A
TAG_FOCAL_35MM = 0xA405


@dataclass
class Photo:
    """An 8-bit RGB image with the focal length SHARP will assume for it."""

    pixels: np.ndarray  # [H, W, 3] uint8, sRGB-encoded, orientation applied
    focal_px: float  # pixels, for this (oriented) image
    focal_35mm: float  # the 35 mm-equivalent focal length behind focal_px
    source: str  # file name or a description, for messages

    @property
    def size_wh(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def focal_35mm_to_px(focal_35mm: float, size_wh: tuple[int, int]) -> float:
    """35 mm-equivalent focal length to pixels, matching the image diagonal to 43.27 mm."""
    return focal_35mm * math.hypot(*size_wh) / FULL_FRAME_DIAGONAL


def focal_px_to_35mm(focal_px: float, size_wh: tuple[int, int]) -> float:
    return focal_px * FULL_FRAME_DIAGONAL / math.hypot(*size_wh)


def exif_focal_35mm(exif: dict[int, Any]) -> float:
    """The reference's choice: 35 mm equivalent, else focal length (x 8.4 under 10 mm), else 30 mm."""

    def number(tag: int) -> float | None:
        try:
            value = float(exif[tag])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return None
        return value if math.isfinite(value) else None

    f35 = number(TAG_FOCAL_35MM)
    if f35 is not None and f35 >= 1:
        return f35
    f = number(TAG_FOCAL_LENGTH)
    if f is None or f <= 0:
        f = DEFAULT_FOCAL_35MM
    return f * PHONE_CROP_FACTOR if f < 10 else f


def load_photo(image: Any, focal_px: float | None = None, focal_35mm: float | None = None) -> Photo:
    """A path, a PIL image or an [H, W, 3] uint8 array -> ``Photo``; ``ImageError`` on anything unusable.

    ``focal_px`` or ``focal_35mm`` (35 mm equivalent) override what the EXIF says.
    """
    from PIL import Image

    exif: dict[int, Any] = {}
    if isinstance(image, np.ndarray):
        source = f"array {image.shape}"
        pixels = _array_to_rgb(image, source)
    elif isinstance(image, (str, os.PathLike)):
        source = str(image)
        pixels, exif = _read_file(Path(image), source)
    elif isinstance(image, Image.Image):
        source = "PIL image"
        try:
            pixels, exif = _decode(image)
        except Exception as e:  # a lazily loaded PIL image may fail to decode here, in any of Pillow's ways
            raise ImageError(f"the PIL image cannot be decoded ({_reason(e)})") from None
    else:
        raise ImageError(f"expected an image path, PIL image or HxWx3 uint8 array; got {type(image).__name__}")
    h, w = pixels.shape[:2]
    if h < 2 or w < 2:
        raise ImageError(f"image '{source}': is {w} x {h} pixels; at least 2 x 2 are needed")
    if focal_px is not None:
        if not (math.isfinite(focal_px) and focal_px > 0):
            raise ImageError(f"focal length must be a positive number of pixels; got {focal_px}")
        return Photo(pixels, float(focal_px), focal_px_to_35mm(focal_px, (w, h)), source)
    f35 = focal_35mm if focal_35mm is not None else exif_focal_35mm(exif)
    if not (math.isfinite(f35) and f35 > 0):
        raise ImageError(f"35 mm-equivalent focal length must be positive; got {f35}")
    return Photo(pixels, focal_35mm_to_px(f35, (w, h)), float(f35), source)


def _read_file(path: Path, source: str) -> tuple[np.ndarray, dict[int, Any]]:
    """Pixels and EXIF of an image file; ``ImageError`` naming the file for whatever goes wrong.

    Pillow decodes lazily and each format plugin fails in its own way (OSError, SyntaxError,
    struct.error, zlib.error, ValueError, IndexError, DecompressionBombError, ...), in open(),
    load(), getexif(), transpose() or convert(): every exception from opening to RGB pixels is
    this file's problem, so all of them become one ``ImageError``.
    """
    from PIL import Image

    try:
        kind = path_kind(path)
    except OSError as e:
        raise ImageError.about(source, f"cannot be read ({e.strerror or e})") from None
    if kind == "missing":
        raise ImageError.about(source, "no such file")
    if kind != "file":  # never open a folder, pipe or device (a pipe would block)
        raise ImageError.about(source, f"is a {kind}, not an image file")
    try:
        with Image.open(path) as pil:
            w, h = pil.size
            if w < 2 or h < 2:  # before decoding: a 0 x N image breaks the converters
                raise ImageError.about(source, f"is {w} x {h} pixels; at least 2 x 2 are needed")
            return _decode(pil)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError.about(source, f"cannot be read as an image ({_reason(e)})") from None


def _decode(pil: Any) -> tuple[np.ndarray, dict[int, Any]]:
    """Decoded, oriented 8-bit RGB pixels and the EXIF of an opened PIL image (may raise anything)."""
    pil.load()
    exif = _exif(pil)
    pil = _apply_orientation(pil, exif.get(TAG_ORIENTATION))
    return _pil_to_rgb(pil), exif


def _reason(e: BaseException) -> str:
    """A short, one-line reason for a decoding failure, for the end of a message."""
    from PIL import UnidentifiedImageError

    if isinstance(e, UnidentifiedImageError):
        return "not an image format Pillow can read"  # Pillow's own text repeats the path
    if isinstance(e, MemoryError):
        return "not enough memory to decode it"
    if isinstance(e, OSError) and e.errno is not None and e.strerror:
        return e.strerror  # from the operating system: permission denied, I/O error, ...
    text = " ".join(str(e).split())
    return (text or type(e).__name__)[:160]


def _exif(pil: Any) -> dict[int, Any]:
    """IFD0 merged over the Exif sub-IFD (IFD0 wins), as the reference reads it.

    A broken EXIF block is ignored, silently: Pillow's "Corrupt EXIF data" warnings would only
    add lines to the output of a photo that loads fine.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = pil.getexif()
            merged = dict(raw.get_ifd(EXIF_IFD))
            merged.update(dict(raw))
        return merged
    except Exception:  # a broken EXIF block must not stop the photo from loading
        return {}


def _apply_orientation(pil: Any, orientation: Any) -> Any:
    from PIL import Image

    rotations = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}
    rotation = rotations.get(orientation) if isinstance(orientation, int) else None  # odd EXIF values: ignored
    return pil if rotation is None else pil.transpose(rotation)


def _pil_to_rgb(pil: Any) -> np.ndarray:
    """8-bit RGB from any PIL mode: 16-bit scaled down, alpha dropped, palette/CMYK/LA converted."""
    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(pil, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        gray = np.clip(np.round(a / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        raw = np.asarray(pil, dtype=np.float64)
        finite = raw[np.isfinite(raw)]
        peak = 1.0 if finite.size and finite.max() <= 1 else 255.0  # [0, 1] floats, else 0..255
        a = np.nan_to_num(raw, nan=0.0, posinf=peak, neginf=0.0)
        gray = np.round(np.clip(a, 0, peak) * (255.0 / peak)).astype(np.uint8)  # clip first: no overflow
        return np.repeat(gray[..., None], 3, axis=2)
    rgb = pil.convert("RGB")  # may decode (lazily) and fail: the caller turns that into an ImageError
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _array_to_rgb(a: np.ndarray, source: str) -> np.ndarray:
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ImageError(f"image {source}: expected H x W x 3 (or 1 or 4 channels)")
    if a.dtype == np.uint16:
        a = np.round(a / 257.0).astype(np.uint8)
    elif a.dtype.kind == "f":
        a = np.clip(np.round(np.nan_to_num(a) * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ImageError(f"image {source}: unsupported pixel type {a.dtype}")
    a = a[..., :3] if a.shape[2] >= 3 else np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)
