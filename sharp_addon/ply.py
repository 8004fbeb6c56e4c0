"""3D Gaussian splat PLY files: ml-sharp's layout and plain 3DGS, bytes first.

No bpy, no torch. ``decode``/``encode`` work on bytes; ``read_ply``/``write_ply`` are thin file
wrappers. Everything is vectorised through numpy structured dtypes (no per-point Python).

Reading accepts what ml-sharp writes (a ``vertex`` element followed by the ``extrinsic``,
``intrinsic``, ``image_size``, ``frame``, ``disparity``, ``color_space`` and ``version``
elements) and generic 3DGS files: properties in any order, unknown properties and elements
ignored, SH ``f_rest_*`` of degree 0-3, binary little- or big-endian, or ASCII.
Anything that is not a complete, finite splat file raises ``PLYError`` naming the file;
nothing half-read is ever returned.

Writing: ``layout="sharp"`` reproduces ml-sharp's ``save_ply`` header byte for byte;
``layout="3dgs"`` writes the INRIA vertex layout alone, for tools that reject extra elements.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .errors import GaussiansError, PLYError
from .files import new_file_mode, readable_file, target_problem
from .gaussians import (
    SH_REST_COUNTS,
    Gaussians,
    color_to_sh_dc,
    linear_to_srgb,
    logit,
    sh_dc_to_color,
    sharp_layers,
    sigmoid,
    srgb_to_linear,
)

Layout = Literal["sharp", "3dgs"]
LAYOUTS = ("sharp", "3dgs")

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_FORMATS = {"binary_little_endian": "<", "binary_big_endian": ">", "ascii": None}
_MAX_HEADER = 1 << 20  # a header longer than 1 MiB is not a splat file
_THREADED_ROWS = 1 << 16  # from this many vertices, properties are converted on several threads
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_UINT32_MAX = int(np.iinfo(np.uint32).max)

REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
            "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")  # fmt: skip
SHARP_VERTEX = REQUIRED  # ml-sharp's vertex properties, in its order
INRIA_PREFIX = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
INRIA_SUFFIX = ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
# ml-sharp's extra elements: name, PLY type and count (the one place these counts are written down)
SHARP_EXTRAS = (
    ("extrinsic", "float", 16),
    ("intrinsic", "float", 9),
    ("image_size", "uint", 2),
    ("frame", "int", 2),
    ("disparity", "float", 2),
    ("color_space", "uchar", 1),
    ("version", "uchar", 3),
)
SHARP_VERSION = (1, 5, 0)
COLOR_SPACE_CODES = {0: "srgb", 1: "linear"}  # ml-sharp's color_space element


@dataclass
class Element:
    """One element of a PLY header: its name, row count and (property, numpy type) pairs."""

    name: str
    count: int
    properties: list[tuple[str, str]]


@dataclass
class Header:
    format: str  # one of _FORMATS
    elements: list[Element]
    size: int  # bytes up to and including the end_header line


# ---- reading ----------------------------------------------------------------------------------


def read_ply(path: str | os.PathLike[str]) -> Gaussians:
    """Read a SHARP or 3DGS splat PLY; raises ``PLYError`` naming the file on any problem."""
    path = readable_file(path, PLYError)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # one read into numpy's memory, no bytes copy
    except OSError as e:
        raise PLYError.about(str(path), f"cannot be read ({e.strerror or e})") from None
    except MemoryError:
        raise PLYError.about(str(path), "is too large to read into memory") from None
    return decode(data, source=str(path))


def decode(data: bytes | np.ndarray, source: str = "<bytes>") -> Gaussians:
    """Gaussians from the bytes of a splat PLY (see the module docstring for what is accepted).

    ``data`` is ``bytes`` or a uint8 numpy array (what ``read_ply`` reads the file into).
    """
    header = parse_header(data, source)
    elements = _read_elements(data, header, source)
    if "vertex" not in elements:
        raise PLYError.about(source, "has no 'vertex' element")
    vertex = elements["vertex"]
    if len(vertex) == 0:
        raise PLYError.about(source, "has 0 vertices")
    names = vertex.dtype.names or ()
    missing = [p for p in REQUIRED if p not in names]
    if missing:
        raise PLYError.about(source, f"lacks the splat properties {', '.join(missing)} (has: {', '.join(names)})")
    meta = _sharp_metadata(elements, source)
    try:
        return _gaussians_from_vertex(vertex, meta, source)
    except GaussiansError as e:
        raise PLYError.about(source, str(e)) from None


def parse_header(data: bytes | np.ndarray, source: str = "<bytes>") -> Header:
    """The header of a PLY file; anything but a consistent header of scalar properties raises ``PLYError``.

    Consistent: one 'format ... 1.0' line before the first element, element names and the
    property names within an element unique and printable, counts non-negative, and rows only
    where there are properties to hold them (the checks numpy's structured dtypes rely on).
    """
    head = bytes(data[:_MAX_HEADER])
    if not head.startswith(b"ply"):
        raise PLYError.about(source, "is not a PLY file (it does not start with 'ply')")
    m = re.search(rb"(?m)^end_header[ \t]*\r?\n", head)
    if m is None:
        raise PLYError.about(source, "has no 'end_header' line (not a PLY file, or a truncated header)")
    try:
        text = head[: m.start()].decode("ascii")
    except UnicodeDecodeError:
        raise PLYError.about(source, "has a header that is not ASCII text") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]  # not splitlines(): it splits at \f, \x1c, ...
    if lines[0].strip() != "ply":
        raise PLYError.about(source, "is not a PLY file (first line is not 'ply')")
    fmt = None
    elements: list[Element] = []
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format" and len(parts) == 3:
            if fmt is not None:
                raise PLYError.about(source, f"has a second 'format' line (line {number})")
            if elements:
                raise PLYError.about(source, f"has its 'format' line after an element (line {number})")
            if parts[1] not in _FORMATS:
                raise PLYError.about(source, f"has unsupported format '{parts[1]}' (line {number})")
            if parts[2] not in ("1.0", "1"):
                raise PLYError.about(source, f"has PLY version '{parts[2]}'; only version 1.0 exists (line {number})")
            fmt = parts[1]
        elif parts[0] == "element" and len(parts) == 3 and re.fullmatch(r"[+-]?[0-9]+", parts[2]):
            name, count = parts[1], int(parts[2])
            if count < 0:
                raise PLYError.about(source, f"declares a negative count {count} for element '{name}' "
                                     f"(line {number})")
            _check_name(name, "an element", number, source)
            if any(el.name == name for el in elements):
                raise PLYError.about(source, f"declares element '{name}' twice (line {number})")
            if elements:
                _check_rows(elements[-1], source)
            elements.append(Element(name, count, []))
        elif parts[0] == "property" and len(parts) >= 3:
            if not elements:
                raise PLYError.about(source, f"has a property before any element (line {number})")
            el = elements[-1]
            if parts[1] == "list":
                raise PLYError.about(source, f"has a list property '{parts[-1]}' in element '{el.name}'; "
                                     "splat files hold scalar properties only")
            if len(parts) != 3 or parts[1] not in _TYPES:
                raise PLYError.about(source, f"has a property of unsupported type: '{line.strip()}' "
                                     f"(line {number})")
            name = parts[2]
            _check_name(name, "a property", number, source)
            if any(p == name for p, _ in el.properties):
                raise PLYError.about(source, f"declares property '{name}' twice in element '{el.name}' "
                                     f"(line {number})")
            el.properties.append((name, _TYPES[parts[1]]))
        else:
            raise PLYError.about(source, f"has a malformed header line {number}: '{line.strip()}'")
    if fmt is None:
        raise PLYError.about(source, "has no 'format' line in its header")
    if elements:
        _check_rows(elements[-1], source)
    return Header(fmt, elements, m.end())


def _check_name(name: str, what: str, number: int, source: str) -> None:
    if not re.fullmatch(r"[!-~]+", name):  # printable ASCII, no spaces (split() already removed those)
        raise PLYError.about(source, f"has {what} name that is not printable text: {name!r} (line {number})")


def _check_rows(el: Element, source: str) -> None:
    if el.count and not el.properties:
        raise PLYError.about(source, f"declares {el.count} rows of element '{el.name}' but no properties for them")


def _read_elements(data: bytes | np.ndarray, header: Header, source: str) -> dict[str, np.ndarray]:
    """Every element as a structured array; the body must match the header exactly.

    Sizes are checked against the file before anything is allocated, so a header that declares
    more rows than the file can hold costs nothing.
    """
    order = _FORMATS[header.format]
    if order is None:
        return _read_ascii(bytes(data[header.size :]), header, source)
    out: dict[str, np.ndarray] = {}
    offset = header.size
    for el in header.elements:
        dtype = _dtype(el, order, source)
        end = offset + dtype.itemsize * el.count  # Python ints: no overflow for absurd counts
        if end > len(data):
            raise PLYError.about(source, f"is truncated: element '{el.name}' needs {end - header.size} bytes after "
                           f"the header, the file has {len(data) - header.size}")
        try:
            out[el.name] = np.frombuffer(data, dtype=dtype, count=el.count, offset=offset)
        except (ValueError, TypeError) as e:
            raise _inconsistent(source, el, e) from None
        offset = end
    if offset != len(data):
        raise PLYError.about(source, f"has {len(data) - offset} bytes more than its header describes "
                       "(header and data disagree)")
    return out


def _dtype(el: Element, order: str, source: str) -> np.dtype:
    """The structured dtype of one element's rows; numpy's refusals become ``PLYError``."""
    try:
        return np.dtype([(name, order + t) for name, t in el.properties])
    except (ValueError, TypeError) as e:  # duplicate or odd field names the header checks missed
        raise _inconsistent(source, el, e) from None


def _inconsistent(source: str, el: Element, e: Exception) -> PLYError:
    return PLYError.about(source, f"has an inconsistent header: element '{el.name}' cannot be laid out ({e})")


def _read_ascii(body: bytes, header: Header, source: str) -> dict[str, np.ndarray]:
    try:
        values = np.array(body.split(), dtype=np.float64)  # as large as the file, whatever the header says
    except ValueError:
        raise PLYError.about(source, "has ASCII data that are not all numbers") from None
    need = sum(el.count * len(el.properties) for el in header.elements)  # Python ints: absurd counts are fine
    if values.size != need:  # before any element is allocated
        raise PLYError.about(source, f"has {values.size} ASCII values, its header describes {need} "
                       "(truncated, or header and data disagree)")
    out: dict[str, np.ndarray] = {}
    offset = 0
    for el in header.elements:
        width = len(el.properties)
        table = values[offset : offset + el.count * width].reshape(el.count, width)
        offset += el.count * width
        arr = np.empty(el.count, dtype=_dtype(el, "=", source))
        for i, (name, t) in enumerate(el.properties):
            column = table[:, i]
            kind = np.dtype(t)
            if kind.kind in "iu":  # an integer property takes integers in its range, not wrapped casts
                info = np.iinfo(kind)
                ok = np.isfinite(column) & (column == np.round(column)) & (column >= info.min) & (column <= info.max)
                if not ok.all():
                    raise PLYError.about(source, f"has the ASCII value {float(column[~ok][0]):g} for the {kind.name} "
                                         f"property '{name}' of element '{el.name}' (not an integer in "
                                         f"{info.min}..{info.max})")
            with np.errstate(over="ignore", invalid="ignore"):  # 1e300 for a float: inf, refused later
                arr[name] = column
        out[el.name] = arr
    return out


def _rest_names(names: tuple[str, ...]) -> list[str]:
    rest = sorted((int(n[7:]), n) for n in names if re.fullmatch(r"f_rest_\d+", n))
    return [n for _, n in rest]


Activation = Callable[[np.ndarray], np.ndarray]


def _columns(vertex: np.ndarray, groups: dict[str, tuple[list[str], Activation | None]],
             source: str) -> dict[str, np.ndarray]:
    """Each group of properties as a float32 [N, len(group)] array, checked finite, then activated.

    A vertex whose properties all share one float type (every splat file seen in practice) is
    viewed as an [N, P] table and sliced, one pass per group; other layouts copy column by column.
    Large files run the groups on a few threads (numpy releases the GIL for copies and ufuncs).
    """
    fields = vertex.dtype.fields or {}
    types = {fields[name][0] for name in fields}
    single = types.pop() if len(types) == 1 else None
    table = None
    if single is not None and single.kind == "f" and vertex.dtype.itemsize == len(fields) * single.itemsize:
        table = vertex.view(single).reshape(len(vertex), len(fields))
    position = {name: i for i, name in enumerate(vertex.dtype.names or ())}

    def load(names: list[str], activation: Activation | None) -> tuple[np.ndarray, list[str]]:
        # doubles beyond float32 become inf and are reported below, silently: errstate is per thread
        with np.errstate(over="ignore", invalid="ignore"):
            if table is not None:
                idx = [position[n] for n in names]
                consecutive = idx == list(range(idx[0], idx[0] + len(idx)))
                # consecutive properties (the usual case) are one strided slice: a single copy
                picked = table[:, idx[0] : idx[0] + len(idx)] if consecutive else table[:, idx]
                values = np.ascontiguousarray(picked, dtype=np.float32)
            else:
                values = np.empty((len(vertex), len(names)), dtype=np.float32)
                for i, name in enumerate(names):
                    values[:, i] = vertex[name]
            finite = np.isfinite(values)
            if not finite.all():
                counts = (len(vertex) - np.count_nonzero(finite, axis=0)).tolist()
                return values, [f"{n} ({c})" for n, c in zip(names, counts) if c]
            # finite inputs may still give inf (exp of a huge log scale): Gaussians refuses those
            return (values if activation is None else activation(values)), []

    if len(vertex) >= _THREADED_ROWS:
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            futures = {k: pool.submit(load, names, act) for k, (names, act) in groups.items()}
            loaded = {k: f.result() for k, f in futures.items()}
    else:
        loaded = {k: load(names, act) for k, (names, act) in groups.items()}
    bad = [item for _, problems in loaded.values() for item in problems]
    if bad:
        wide = any(fields[name][0].itemsize > 4 for name in fields)  # doubles may just be beyond float32
        raise PLYError.about(source, f"has NaN/Inf values in {len(bad)} properties: {', '.join(bad[:6])}"
                             + (" (or values too large for 32-bit floats)" if wide else ""))
    return {k: values for k, (values, _) in loaded.items()}


def _gaussians_from_vertex(vertex: np.ndarray, meta: dict, source: str) -> Gaussians:
    rest = _rest_names(vertex.dtype.names or ())
    if rest:
        k, extra = divmod(len(rest), 3)
        if extra or k not in SH_REST_COUNTS or rest != [f"f_rest_{i}" for i in range(len(rest))]:
            raise PLYError.about(source, f"has {len(rest)} f_rest_* properties; SH degree 1, 2 or 3 needs "
                           "f_rest_0 .. f_rest_8, _23 or _44")
    color_space = meta.get("color_space", "srgb")

    def colors(f_dc: np.ndarray) -> np.ndarray:
        encoded = sh_dc_to_color(f_dc)
        return srgb_to_linear(encoded) if color_space == "srgb" else encoded

    def scales(log_scales: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(log_scales)

    groups: dict[str, tuple[list[str], Activation | None]] = {
        "means": (["x", "y", "z"], None),
        "colors": (["f_dc_0", "f_dc_1", "f_dc_2"], colors),
        "opacities": (["opacity"], lambda logits: sigmoid(logits[:, 0])),
        "scales": (["scale_0", "scale_1", "scale_2"], scales),
        "quats": (["rot_0", "rot_1", "rot_2", "rot_3"], None),
    }
    if rest:  # 3DGS stores the rest coefficients channel-major: f_rest[c * K + k]
        groups["sh_rest"] = (rest, lambda r: r.reshape(len(r), 3, -1).transpose(0, 2, 1))
    values = _columns(vertex, groups, source)
    return Gaussians(
        **values,
        layers=sharp_layers(len(vertex)) if meta.get("image_size") else None,
        focal_px=meta.get("focal_px"),
        image_size=meta.get("image_size"),
        color_space=color_space,
    )


def _sharp_metadata(elements: dict[str, np.ndarray], source: str) -> dict:
    """focal_px, image_size and color_space from ml-sharp's extra elements, where present.

    Values must fit the types ml-sharp stores them in (float for the focal length, uint for the
    size), whatever type a file declares, so that they survive being written again exactly.
    """
    meta: dict = {}
    counts = {name: count for name, _type, count in SHARP_EXTRAS}

    def values(name: str) -> np.ndarray | None:
        el = elements.get(name)
        if el is None:
            return None
        if len(el) != counts[name] or not el.dtype.names:
            raise PLYError.about(source, f"has an '{name}' element of {len(el)} values; "
                                 f"ml-sharp writes {counts[name]}")
        return np.asarray(el[el.dtype.names[0]], dtype=np.float64)  # exact for every PLY type

    intrinsic = values("intrinsic")
    if intrinsic is not None:
        if not (np.isfinite(intrinsic).all() and intrinsic[0] > 0):
            raise PLYError.about(source, f"has an invalid 'intrinsic' element {intrinsic.tolist()}")
        if intrinsic[0] > _FLOAT32_MAX:
            raise PLYError.about(source, f"has a focal length of {intrinsic[0]:g} px in its 'intrinsic' element, "
                                 "more than a 32-bit float holds")
        meta["focal_px"] = float(intrinsic[0])
    size = values("image_size")
    if size is not None:
        if not (np.isfinite(size).all() and (size > 0).all() and (size == np.round(size)).all()):
            raise PLYError.about(source, f"has an invalid 'image_size' element {size.tolist()}")
        if (size > _UINT32_MAX).any():
            raise PLYError.about(source, f"has an 'image_size' element {size.tolist()} beyond {_UINT32_MAX}, "
                                 "the largest size ml-sharp's uint can store")
        meta["image_size"] = (int(size[0]), int(size[1]))
    space = values("color_space")
    if space is not None:
        code = float(space[0])
        if code not in COLOR_SPACE_CODES:
            raise PLYError.about(source, f"has an unknown color_space code {code:g} (0 = sRGB, 1 = linear)")
        meta["color_space"] = COLOR_SPACE_CODES[int(code)]
    return meta


# ---- writing ----------------------------------------------------------------------------------


def encode(g: Gaussians, layout: Layout = "sharp") -> bytes:
    """The bytes of a binary little-endian splat PLY in ml-sharp's or the plain 3DGS layout."""
    return b"".join(_encode_parts(g, layout))


def _encode_parts(g: Gaussians, layout: Layout) -> list[bytes | memoryview]:
    """Header, vertex table and extra elements, in file order (written without joining them)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
    if layout == "sharp":
        if g.focal_px is None or g.image_size is None:
            raise GaussiansError("the 'sharp' PLY layout records the photo's focal length and size, and these "
                                 "Gaussians have none; write layout='3dgs' instead")
        if g.focal_px > _FLOAT32_MAX or max(g.image_size) > _UINT32_MAX:
            raise GaussiansError(f"the 'sharp' PLY layout stores the focal length as a 32-bit float and the size "
                                 f"as 32-bit unsigned integers; focal_px={g.focal_px:g} and "
                                 f"image_size={g.image_size} do not fit")
    n = len(g)
    rest = [] if g.sh_rest is None else [f"f_rest_{i}" for i in range(g.sh_rest.size // n)]
    if layout == "sharp":
        names = [*SHARP_VERTEX[:6], *rest, *SHARP_VERTEX[6:]]
    else:
        names = [*INRIA_PREFIX, *rest, *INRIA_SUFFIX]
    table = np.empty((n, len(names)), dtype="<f4")
    col = {name: i for i, name in enumerate(names)}

    def put(first: str, values: np.ndarray) -> None:
        i = col[first]
        table[:, i : i + values.shape[1]] = values

    if layout == "3dgs":
        put("nx", np.zeros((1, 3), np.float32))
    put("x", g.means)
    encoded = linear_to_srgb(g.colors) if g.color_space == "srgb" else g.colors
    put("f_dc_0", color_to_sh_dc(encoded))
    if g.sh_rest is not None:
        put("f_rest_0", g.sh_rest.transpose(0, 2, 1).reshape(n, -1))
    with np.errstate(divide="ignore"):
        put("opacity", logit(g.opacities)[:, None])
        put("scale_0", np.log(g.scales))
    put("rot_0", g.quats)

    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    lines += [f"property float {name}" for name in names]
    parts: list[bytes | memoryview] = [table.data.cast("B")]
    if layout == "sharp":
        for name, ply_type, values in _sharp_extras(g):
            lines += [f"element {name} {len(values)}", f"property {ply_type} {name}"]
            parts.append(np.ascontiguousarray(values, dtype="<" + _TYPES[ply_type]).data.cast("B"))
    lines.append("end_header")
    return [("\n".join(lines) + "\n").encode("ascii"), *parts]


def _sharp_extras(g: Gaussians) -> list[tuple[str, str, np.ndarray]]:
    """ml-sharp's extra elements for these Gaussians, in its order and types (docs/model.md, "PLY layout")."""
    assert g.focal_px is not None and g.image_size is not None
    w, h = g.image_size
    f = g.focal_px
    with np.errstate(divide="ignore"):
        inverse_depth = 1.0 / g.means[:, 2].astype(np.float64)
    finite = inverse_depth[np.isfinite(inverse_depth)]
    disparity = np.quantile(finite, [0.1, 0.9]) if finite.size else np.zeros(2)
    values = {
        "extrinsic": np.eye(4).ravel(),
        "intrinsic": np.array([f, 0, w / 2, 0, f, h / 2, 0, 0, 1]),
        "image_size": np.array([w, h]),
        "frame": np.array([1, len(g)]),
        "disparity": disparity,
        "color_space": np.array([0 if g.color_space == "srgb" else 1]),
        "version": np.array(SHARP_VERSION),
    }
    assert all(len(values[name]) == count for name, _, count in SHARP_EXTRAS)
    return [(name, ply_type, values[name]) for name, ply_type, _count in SHARP_EXTRAS]


def write_ply(g: Gaussians, path: str | os.PathLike[str], layout: Layout = "sharp") -> Path:
    """Write ``g`` to ``path`` atomically: on any failure an existing file there is left as it was.

    The bytes go to a short temporary name in the same folder (any name the system allows for
    ``path`` works), get the permissions the umask gives new files, and are renamed over ``path``.
    A folder, pipe or device at ``path``, or a folder that is missing, a file or not writable,
    raises ``PLYError`` naming ``path`` before anything is written.
    """
    text = os.fspath(path)
    path = Path(path)
    parts = _encode_parts(g, layout)
    problem = target_problem(path, text, what="the .ply file")
    if problem:
        raise PLYError.about(text, f"cannot be written: {problem}")
    folder = path.parent
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sharp-", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            for part in parts:
                fh.write(part)
        os.chmod(tmp, new_file_mode())  # mkstemp makes 0600; a new file gets what the umask gives
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise PLYError.about(text, f"cannot be written ({e.strerror or e})") from None
    finally:  # also on KeyboardInterrupt: no temporary file is left behind
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path
