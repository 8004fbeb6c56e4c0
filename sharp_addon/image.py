"""Photos in: RGB pixels and the focal length in pixels, as SHARP's reference loads them.

No bpy, no torch. SPEC section 3: EXIF orientation applied, focal length from EXIF (35 mm
equivalent, else the true focal length, else 30 mm; values under 10 mm are scaled by 8.4 as a
phone crop factor) converted to pixels by matching the diagonal. Grayscale, alpha, palette, CMYK
and 16-bit images are converted to 8-bit RGB; ICC profiles are not applied (as in the reference).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ImageError

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
    from PIL import Image, UnidentifiedImageError

    exif: dict[int, Any] = {}
    pil: Any
    if isinstance(image, np.ndarray):
        source = f"array {image.shape}"
        pixels = _array_to_rgb(image, source)
    else:
        if isinstance(image, (str, os.PathLike)):
            source = str(image)
            path = Path(image)
            if not path.is_file():
                raise ImageError(f"image '{source}': " + ("no such file" if not path.exists() else "is not a file"))
            try:
                pil = Image.open(path)
                pil.load()
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
                raise ImageError(f"image '{source}': cannot be read as an image ({str(e)[:160]})") from None
        elif isinstance(image, Image.Image):
            source, pil = "PIL image", image
        else:
            raise ImageError(f"expected an image path, PIL image or HxWx3 uint8 array; got {type(image).__name__}")
        exif = _exif(pil)
        pil = _apply_orientation(pil, exif.get(TAG_ORIENTATION))
        pixels = _pil_to_rgb(pil, source)
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


def _exif(pil: Any) -> dict[int, Any]:
    """IFD0 merged over the Exif sub-IFD (IFD0 wins), as the reference reads it."""
    try:
        raw = pil.getexif()
        merged = dict(raw.get_ifd(EXIF_IFD))
        merged.update(dict(raw))
        return merged
    except Exception:  # a broken EXIF block must not stop the photo from loading
        return {}


def _apply_orientation(pil: Any, orientation: Any) -> Any:
    from PIL import Image

    rotations = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}
    return pil.transpose(rotations[orientation]) if orientation in rotations else pil


def _pil_to_rgb(pil: Any, source: str) -> np.ndarray:
    """8-bit RGB from any PIL mode: 16-bit scaled down, alpha dropped, palette/CMYK/LA converted."""
    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(pil, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        gray = np.clip(np.round(a / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(pil, dtype=np.float64)
        gray = np.clip(np.round(np.nan_to_num(a) * (255.0 if a.max() <= 1 else 1.0)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    try:
        rgb = pil.convert("RGB")
    except (OSError, ValueError) as e:
        raise ImageError(f"image '{source}': mode {mode} cannot be converted to RGB ({e})") from None
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
