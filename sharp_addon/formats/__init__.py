"""Every splat file format we read and write, chosen by name or by the file's extension.

No bpy. One registry (``FORMATS``) says what each format is: its extensions, the SH degree it keeps,
whether it quantises, and the axes its files use. ``read_splats`` and ``write_splats`` are the one
way the command line, the batch and Blender's import and export reach them: the path checks, the
atomic write (a failure leaves an existing file as it was) and the errors naming the file are here;
each format module only turns bytes into ``Gaussians`` and back:

    decode(data: bytes, source: str) -> Gaussians      # raises SplatFileError.about(source, ...)
    encode(g: Gaussians, **options) -> bytes

``Gaussians`` in memory are always in the photo's OpenCV frame (x right, y down, z forward: the
axes of ml-sharp's and every 3DGS PLY, "RDF"). A format whose specification names other axes
(SPZ, glTF: x right, y up, z back, "RUB") converts in its own module (``axes.py``), SH included,
so that ``decode(encode(g))`` is ``g`` up to the format's quantisation.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import SplatFileError
from ..files import atomic_output, readable_file, target_problem
from ..gaussians import Gaussians


@dataclass(frozen=True)
class SplatFormat:
    """One file format: what it is called, how its files are named and what it keeps."""

    name: str  # the name on the command line (--to, --format)
    label: str  # for menus and messages
    extensions: tuple[str, ...]  # lower case, the first is what we write
    module: str  # the module in this package that reads and writes it
    sh_degree: int  # the highest SH degree the format keeps (0: the base colour only)
    lossy: bool  # whether it quantises what it stores
    axes: str  # "RDF" (x right, y down, z forward: PLY's) or "RUB" (x right, y up, z back)
    keeps_camera: bool = False  # whether the photo's camera (focal length, image size) is stored

    @property
    def extension(self) -> str:
        return self.extensions[0]

    def codec(self) -> ModuleType:
        return importlib.import_module(f"{__name__}.{self.module}")


FORMATS: tuple[SplatFormat, ...] = (
    SplatFormat("ply", "PLY (ml-sharp, 3DGS)", (".ply",), "ply_format", 3, False, "RDF", keeps_camera=True),
    SplatFormat("compressed-ply", "Compressed PLY (PlayCanvas)", (".compressed.ply",), "compressed_ply", 3, True,
                "RDF"),
    SplatFormat("spz", "SPZ (Niantic)", (".spz",), "spz", 3, True, "RUB"),
    SplatFormat("glb", "glTF binary (KHR_gaussian_splatting)", (".glb",), "gltf", 3, False, "RUB", keeps_camera=True),
    SplatFormat("sog", "SOG (PlayCanvas)", (".sog",), "sog", 3, True, "RDF"),
    SplatFormat("splat", "Splat (antimatter15, no SH)", (".splat",), "splat", 0, True, "RDF"),
    SplatFormat("usd", "OpenUSD particle field (.usda)", (".usda",), "usd", 3, False, "RUB"),
)
NAMES = tuple(f.name for f in FORMATS)
SOG_META = "meta.json"  # the file that names an unzipped SOG


def format_named(name: str) -> SplatFormat:
    """The format called ``name`` (as in ``--to``); ``SplatFileError`` listing the known ones otherwise."""
    for f in FORMATS:
        if f.name == name.lower().lstrip("."):
            return f
    raise SplatFileError(f"unknown splat format '{name}': use one of {', '.join(NAMES)}")


def format_for(path: str | os.PathLike[str], name: str | None = None) -> SplatFormat:
    """The format of ``path``: ``name`` when given, else its extension (the longest that matches, so
    ``.compressed.ply`` is not ``.ply``); an unknown extension is an error naming the file."""
    if name:
        return format_named(name)
    if Path(path).name.lower() == SOG_META:  # an unzipped SOG: meta.json beside its images
        return format_named("sog")
    lower = os.fspath(path).lower()
    matches = [(len(ext), f) for f in FORMATS for ext in f.extensions if lower.endswith(ext)]
    if not matches:
        suffix = Path(lower).suffix or "no extension"
        known = ", ".join(ext for f in FORMATS for ext in f.extensions)
        raise SplatFileError.about(os.fspath(path), f"has {suffix!s}, which names no splat format we know "
                                   f"(one of {known}); or name the format (--to)")
    return max(matches, key=lambda m: m[0])[1]


def read_splats(path: str | os.PathLike[str], name: str | None = None) -> Gaussians:
    """The splats of the file at ``path`` in the format its extension (or ``name``) gives."""
    fmt = format_for(path, name)
    if fmt.module == "ply_format":
        from ..ply import read_ply

        return read_ply(path)
    if fmt.name == "sog" and Path(path).name.lower() == SOG_META:
        return fmt.codec().decode_folder(readable_file(path, SplatFileError))
    path = readable_file(path, SplatFileError)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SplatFileError.about(str(path), f"cannot be read ({e.strerror or e})") from None
    except MemoryError:
        raise SplatFileError.about(str(path), "is too large to read into memory") from None
    return fmt.codec().decode(data, source=str(path))


def write_splats(g: Gaussians, path: str | os.PathLike[str], name: str | None = None, **options: Any) -> Path:
    """Write ``g`` to ``path`` in the format its extension (or ``name``) gives, whole or not at all.

    ``options`` go to the format's encoder (``layout`` for PLY, ``version`` for SPZ, ...).
    """
    fmt = format_for(path, name)
    if fmt.module == "ply_format":
        from ..ply import write_ply

        return write_ply(g, path, **options)
    text, path = os.fspath(path), Path(path)
    problem = target_problem(path, text, what=f"the {fmt.extension} file")
    if problem:
        raise SplatFileError.about(text, f"cannot be written: {problem}")
    data = fmt.codec().encode(g, **options)
    try:
        with atomic_output(path) as temp:
            temp.write_bytes(data)
    except OSError as e:
        raise SplatFileError.about(text, f"cannot be written ({e.strerror or e})") from None
    return path


def what_is_dropped(g: Gaussians, fmt: SplatFormat) -> list[str]:
    """What of ``g`` a file in ``fmt`` cannot keep, in words for a warning (empty: nothing)."""
    dropped = []
    if g.sh_degree > fmt.sh_degree:
        dropped.append(f"SH degree {g.sh_degree} colour beyond degree {fmt.sh_degree}"
                       if fmt.sh_degree else f"view-dependent colour (SH degree {g.sh_degree}): "
                       f"{fmt.label} stores the base colour only")
    if not fmt.keeps_camera and g.focal_px is not None:
        dropped.append("the photo's camera (focal length, image size)")
    if not fmt.keeps_camera and g.layers is not None:  # the formats that keep the camera know the layers by it
        dropped.append("SHARP's depth layers (the Visible / Occluded Layer filters)")
    return dropped


def check_count(count: int, bytes_per_splat: float, available: int, source: str, what: str = "splats") -> int:
    """The declared ``count``, once it fits what the file holds (so memory stays bounded by the
    file's size, whatever a damaged header claims); ``SplatFileError`` naming the file otherwise."""
    if count < 0 or count * bytes_per_splat > available:
        raise SplatFileError.about(source, f"declares {count:,} {what}, more than its {available:,} bytes of "
                                   "data can hold (a damaged or truncated file)")
    return int(count)


def as_bytes(data: bytes | np.ndarray) -> bytes:
    return data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
