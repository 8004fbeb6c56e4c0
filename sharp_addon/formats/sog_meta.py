"""meta.json of a SOG file: read and checked before any image is opened.

No bpy. Version 2 only (a version 1 file, without ``version``, is refused with a word on how to
convert it). Every count, range, codebook and image name is checked here, so the image decoders in
``sog.py`` only ever see sizes a declared count allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SplatFileError
from .sog_codebooks import CODEBOOK_SIZE

VERSION = 2
META = "meta.json"
MAX_PALETTE = 1 << 16  # labels are 16 bits
SH_BANDS_COEFFICIENTS = {1: 3, 2: 8, 3: 15}  # SH degree -> coefficients per colour channel


@dataclass
class SogMeta:
    """What meta.json says, checked: counts, ranges, codebooks and the image names in file order."""

    count: int
    files: list[str]  # means_l, means_u, quats, scales, sh0[, shN centroids, shN labels]
    means_lo: np.ndarray  # [3] float64, of sign(v) ln(|v| + 1)
    means_hi: np.ndarray
    scales_codebook: np.ndarray  # [256] float64, ln(scale)
    sh0_codebook: np.ndarray  # [256] float64, f_dc
    sh_bands: int = 0
    sh_count: int = 0
    sh_codebook: np.ndarray | None = None


def parse_meta(meta: Any, source: str) -> SogMeta:
    """The checked content of a parsed meta.json; ``SplatFileError`` naming ``source`` and the field otherwise."""
    if not isinstance(meta, dict):
        raise SplatFileError.about(source, f"has a {META} that is not a JSON object")
    if "version" not in meta:
        raise SplatFileError.about(source, f"is a SOG version 1 file (its {META} has no 'version'); only version "
                                   "2 is read: convert it with PlayCanvas splat-transform")
    if meta["version"] != VERSION or isinstance(meta["version"], bool):
        raise SplatFileError.about(source, f"is SOG version {meta['version']!r}; only version {VERSION} is read")
    count = _whole(meta, "count", source)
    means = _numbers(meta, "means.mins", 3, source), _numbers(meta, "means.maxs", 3, source)
    spec = SogMeta(count, [], means[0], means[1], _numbers(meta, "scales.codebook", CODEBOOK_SIZE, source),
                   _numbers(meta, "sh0.codebook", CODEBOOK_SIZE, source))
    for section, count_files in (("means", 2), ("quats", 1), ("scales", 1), ("sh0", 1)):
        spec.files += _file_names(meta, section, count_files, source)
    if meta.get("shN") is not None:
        spec.sh_bands = _whole(meta, "shN.bands", source)
        if spec.sh_bands not in (1, 2, 3):
            raise SplatFileError.about(source, f"has shN.bands {spec.sh_bands} in its {META}; SH degree 1, 2 or 3 "
                                       "is what SOG stores")
        spec.sh_count = _whole(meta, "shN.count", source)
        if spec.sh_count > MAX_PALETTE:
            raise SplatFileError.about(source, f"has shN.count {spec.sh_count:,} in its {META}; 16-bit labels "
                                       f"address at most {MAX_PALETTE:,} centroids")
        spec.sh_codebook = _numbers(meta, "shN.codebook", CODEBOOK_SIZE, source)
        spec.files += _file_names(meta, "shN", 2, source)
    return spec


def _field(meta: dict, dotted: str, source: str) -> Any:
    value: Any = meta
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise SplatFileError.about(source, f"lacks '{dotted}' in its {META}")
        value = value[key]
    return value


def _whole(meta: dict, dotted: str, source: str) -> int:
    value = _field(meta, dotted, source)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SplatFileError.about(source, f"has '{dotted}' = {value!r:.40} in its {META}; expected a whole "
                                   "number >= 1")
    return value


def _numbers(meta: dict, dotted: str, length: int, source: str) -> np.ndarray:
    value = _field(meta, dotted, source)
    ok = isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
    if not ok or len(value) != length:
        raise SplatFileError.about(source, f"has '{dotted}' in its {META} that is not a list of {length} numbers")
    try:
        array = np.array(value, dtype=np.float64)
    except OverflowError:  # an integer beyond any float
        array = np.full(length, np.inf)
    if not np.all(np.isfinite(array)) or np.any(np.abs(array) > np.finfo(np.float32).max):
        raise SplatFileError.about(source, f"has NaN, infinite or out-of-range numbers in '{dotted}' in its {META}")
    return array


def _file_names(meta: dict, section: str, count: int, source: str) -> list[str]:
    names = _field(meta, f"{section}.files", source)
    if not isinstance(names, list) or len(names) != count or not all(isinstance(n, str) for n in names):
        raise SplatFileError.about(source, f"has '{section}.files' in its {META} that is not a list of {count} "
                                   "file names")
    for name in names:
        if not name or name in (".", "..", META) or any(c in name for c in "/\\:\0"):
            raise SplatFileError.about(source, f"names the image {name!r:.60} in its {META}; SOG images are plain "
                                       f"file names beside {META}")
    return names
