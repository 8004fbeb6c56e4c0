"""The binary glTF container (.glb): chunks, the JSON document and typed accessors, read and written.

No bpy. Knows glTF 2.0 (registry.khronos.org/glTF/specs/2.0/glTF-2.0.html, "GLB File Format
Specification" and "Accessors"), nothing about splats (``gltf.py``). Reading trusts no number in the
file: every length, offset and count is checked against the bytes there before anything is sliced
or allocated, and every JSON value against the type it must have, so a damaged file gives one
``SplatFileError`` naming it.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SplatFileError
from . import check_count

GLB_MAGIC = b"glTF"
JSON_CHUNK = 0x4E4F534A  # "JSON"
BIN_CHUNK = 0x004E4942  # "BIN\0"
HEADER = struct.Struct("<4sII")  # magic, version, total length
CHUNK_HEADER = struct.Struct("<II")  # chunk length, chunk type
ARRAY_BUFFER = 34962  # bufferView.target of vertex attributes

BYTE, UNSIGNED_BYTE, SHORT, UNSIGNED_SHORT, UNSIGNED_INT, FLOAT = 5120, 5121, 5122, 5123, 5125, 5126
COMPONENT_DTYPES = {BYTE: "i1", UNSIGNED_BYTE: "u1", SHORT: "<i2", UNSIGNED_SHORT: "<u2", UNSIGNED_INT: "<u4",
                    FLOAT: "<f4"}
COMPONENT_NAMES = {BYTE: "byte", UNSIGNED_BYTE: "unsigned byte", SHORT: "short", UNSIGNED_SHORT: "unsigned short",
                   UNSIGNED_INT: "unsigned int", FLOAT: "float"}
TYPE_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
# glTF's normalized integers: signed ones by max(c / MAX, -1), unsigned by c / MAX ("Animations", table)
NORMALIZED_DIVISORS = {BYTE: 127.0, UNSIGNED_BYTE: 255.0, SHORT: 32767.0, UNSIGNED_SHORT: 65535.0}

Encoding = tuple[int, bool]  # (componentType, normalized)


def encoding_text(encoding: Encoding) -> str:
    component, normalized = encoding
    return ("normalized " if normalized else "") + COMPONENT_NAMES.get(component, f"componentType {component}")


# ---- reading ---------------------------------------------------------------------------------------


@dataclass
class Document:
    """A glTF JSON document and the GLB's binary chunk, read with checks that name ``source``."""

    root: dict[str, Any]
    binary: memoryview  # the BIN chunk (empty when the file has none)
    source: str

    def fail(self, problem: str) -> SplatFileError:
        return SplatFileError.about(self.source, problem)

    def get(self, obj: dict[str, Any], key: str, kind: str, where: str, default: Any = None) -> Any:
        """``obj[key]`` checked to be a ``kind`` ("object", "array", "string", "boolean", "index",
        "number"), or ``default`` when absent (an error when ``default`` is None: the key is required)."""
        if key not in obj:
            if default is None:
                raise self.fail(f"lacks {where}.{key}, which is required")
            return default
        value = obj[key]
        ok = {
            "object": isinstance(value, dict),
            "array": isinstance(value, list),
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "index": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            "number": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        }[kind]
        if not ok:
            want = "a non-negative integer" if kind == "index" else f"a{'n' if kind[0] in 'ao' else ''} {kind}"
            raise self.fail(f"has {where}.{key} = {_short(value)}; glTF expects {want}")
        return value

    def item(self, collection: str, index: int, where: str) -> dict[str, Any]:
        """``root[collection][index]`` as a JSON object (``where`` says who refers to it)."""
        items = self.get(self.root, collection, "array", "the document", default=[])
        if index >= len(items):
            raise self.fail(f"refers to {collection}[{index}] from {where}, but has {len(items)} {collection}")
        value = items[index]
        if not isinstance(value, dict):
            raise self.fail(f"has {collection}[{index}] = {_short(value)}; glTF expects an object")
        return value

    def accessor(self, index: int, type_: str, allowed: tuple[Encoding, ...], where: str,
                 count: int | None = None) -> np.ndarray:
        """Accessor ``index`` as float32 [count, width] (normalized integers mapped as glTF says),
        after checking its type, component type and that its elements lie inside its buffer view."""
        name = f"accessors[{index}] ({where})"
        acc = self.item("accessors", index, where)
        found_type = self.get(acc, "type", "string", name)
        component = self.get(acc, "componentType", "index", name)
        normalized = self.get(acc, "normalized", "boolean", name, default=False)
        if found_type != type_ or (component, normalized) not in allowed:
            want = " or ".join(encoding_text(e) for e in allowed)
            raise self.fail(f"has {name} of {encoding_text((component, normalized))} {found_type}; "
                            f"{where} must be {type_} of {want}")
        n = self.get(acc, "count", "index", name)
        if count is not None and n != count:
            raise self.fail(f"has {name} with {n:,} elements where the other attributes have {count:,}")
        if "sparse" in acc:
            raise self.fail(f"has a sparse {name}; sparse accessors are not read")
        if "bufferView" not in acc:
            raise self.fail(f"has {name} without a bufferView (no data)")
        view, stride = self.buffer_view(self.get(acc, "bufferView", "index", name), name)
        width = TYPE_WIDTHS[type_]
        dtype = np.dtype(COMPONENT_DTYPES[component])
        element = width * dtype.itemsize
        offset = self.get(acc, "byteOffset", "index", name, default=0)
        if stride and stride < element:
            raise self.fail(f"has {name} of {element}-byte elements in a buffer view whose byteStride is {stride}")
        stride = stride or element
        available = len(view) - offset
        check_count(n, element, max(available, 0), self.source, f"elements in {name}")
        if n and (n - 1) * stride + element > available:
            raise self.fail(f"has {name} of {n:,} elements {stride} bytes apart, which run past the end "
                            f"of its {len(view):,}-byte buffer view")
        raw: np.ndarray = np.ndarray((n, width), dtype, buffer=view, offset=offset, strides=(stride, dtype.itemsize))
        values = raw.astype(np.float32)
        if normalized:
            values /= np.float32(NORMALIZED_DIVISORS[component])
            if component in (BYTE, SHORT):
                np.maximum(values, -1, out=values)
        return values

    def buffer_view(self, index: int, where: str) -> tuple[memoryview, int]:
        """Buffer view ``index`` as a slice of the BIN chunk, and its byte stride (0: tightly packed)."""
        name = f"bufferViews[{index}]"
        view = self.item("bufferViews", index, where)
        buffer_index = self.get(view, "buffer", "index", name)
        buffer = self.item("buffers", buffer_index, name)
        if "uri" in buffer or buffer_index != 0:
            raise self.fail(f"keeps the data of {where} in an external buffer (buffers[{buffer_index}]); "
                            "a .glb is read from its own BIN chunk only")
        declared = self.get(buffer, "byteLength", "index", f"buffers[{buffer_index}]")
        if declared > len(self.binary):
            raise self.fail(f"declares buffers[0] of {declared:,} bytes, but its BIN chunk holds "
                            f"{len(self.binary):,} (a truncated file?)")
        offset = self.get(view, "byteOffset", "index", name, default=0)
        length = self.get(view, "byteLength", "index", name)
        if offset + length > declared:
            raise self.fail(f"has {name} of bytes {offset:,}..{offset + length:,}, beyond its "
                            f"{declared:,}-byte buffer")
        stride = self.get(view, "byteStride", "index", name, default=0)
        if stride and not 4 <= stride <= 252:
            raise self.fail(f"has {name}.byteStride = {stride}; glTF allows 4..252")
        return self.binary[offset:offset + length], stride


def parse_glb(data: bytes | memoryview, source: str) -> Document:
    """The JSON document and BIN chunk of a GLB file (version 2), or one ``SplatFileError``."""
    data = memoryview(data).cast("B")
    if len(data) < HEADER.size:
        raise SplatFileError.about(source, f"has {len(data)} bytes, too short for a GLB header ({HEADER.size})")
    magic, version, length = HEADER.unpack_from(data)
    if magic != GLB_MAGIC:
        hint = ": it looks like text glTF (.gltf); export binary glTF (.glb)" if bytes(data[:1]) == b"{" else ""
        raise SplatFileError.about(source, f"is not a binary glTF file: it starts with {bytes(magic)!r}, "
                                   f"not b'glTF'{hint}")
    if version != 2:
        raise SplatFileError.about(source, f"is GLB version {version}; glTF 2.0 (GLB version 2) is read")
    if length > len(data):
        raise SplatFileError.about(source, f"declares {length:,} bytes in its GLB header but has {len(data):,} "
                                   "(a truncated file)")
    chunks = _chunks(data[:length], source)
    if not chunks or chunks[0][0] != JSON_CHUNK:
        raise SplatFileError.about(source, "has no JSON chunk first, as GLB requires")
    root = _json_object(chunks[0][1], source)
    binary = next((body for kind, body in chunks[1:] if kind == BIN_CHUNK), memoryview(b""))
    return Document(root, binary, source)


def _chunks(data: memoryview, source: str) -> list[tuple[int, memoryview]]:
    chunks, at = [], HEADER.size
    while at < len(data):
        if at + CHUNK_HEADER.size > len(data):
            raise SplatFileError.about(source, f"ends inside a chunk header at byte {at:,} (a truncated file)")
        length, kind = CHUNK_HEADER.unpack_from(data, at)
        at += CHUNK_HEADER.size
        if length > len(data) - at:
            raise SplatFileError.about(source, f"has a chunk of {length:,} bytes at byte {at:,}, beyond the "
                                       f"{len(data):,} the file holds (a truncated file)")
        chunks.append((kind, data[at:at + length]))
        at += length
    return chunks


def _json_object(body: memoryview, source: str) -> dict[str, Any]:
    try:
        root = json.loads(bytes(body).rstrip(b" \0").decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise SplatFileError.about(source, f"has a JSON chunk that is not valid UTF-8 JSON ({e})") from None
    if not isinstance(root, dict):
        raise SplatFileError.about(source, f"has JSON {type(root).__name__} {_short(root)} where glTF "
                                   "expects an object")
    return root


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (bytes, memoryview)) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- writing ---------------------------------------------------------------------------------------


@dataclass
class GlbWriter:
    """Collects vertex attributes into one BIN chunk (each 4-byte aligned) and their accessors."""

    root: dict[str, Any]
    parts: list[memoryview] = field(default_factory=list)
    size: int = 0

    def view(self, data: bytes | memoryview, target: int | None = None) -> int:
        """Add ``data`` as one buffer view starting on a 4-byte boundary; returns the view's index."""
        data = memoryview(data).cast("B")
        pad = -self.size % 4
        if pad:
            self.parts.append(memoryview(bytes(pad)))
            self.size += pad
        views = self.root.setdefault("bufferViews", [])
        views.append({"buffer": 0, "byteOffset": self.size, "byteLength": len(data)})
        if target is not None:
            views[-1]["target"] = target
        self.parts.append(data)
        self.size += len(data)
        return len(views) - 1

    def accessor(self, values: np.ndarray | None, type_: str, bounds: bool = False, normalized: bool = False,
                 count: int = 0) -> int:
        """Add ``values`` [N, width] (float32 or an 8/16-bit integer type) as one buffer view and accessor,
        or (``values`` None) an accessor of ``count`` floats without data (a compression extension holds
        them); returns the accessor's index."""
        accessor: dict[str, Any] = {"componentType": FLOAT, "count": count, "type": type_}
        if values is not None:
            values = np.ascontiguousarray(values)
            accessor["bufferView"] = self.view(values.reshape(-1).data, ARRAY_BUFFER)
            accessor["componentType"] = {np.dtype(v): k for k, v in COMPONENT_DTYPES.items()}[values.dtype]
            accessor["count"] = len(values)
        if normalized:
            accessor["normalized"] = True
        if bounds and values is not None:  # POSITION must carry min and max (glTF 2.0, "Meshes")
            self.bound(accessor, values)
        accessors = self.root.setdefault("accessors", [])
        accessors.append(accessor)
        return len(accessors) - 1

    @staticmethod
    def bound(accessor: dict[str, Any], values: np.ndarray) -> None:
        """Set the accessor's min and max to those of ``values`` [N, width] (float32: exact as doubles)."""
        flat = values.reshape(len(values), -1)
        accessor["min"] = [float(v) for v in flat.min(axis=0)]
        accessor["max"] = [float(v) for v in flat.max(axis=0)]

    def tobytes(self) -> bytes:
        """The whole GLB: header, the JSON chunk padded with spaces, the BIN chunk padded with zeros."""
        self.root["buffers"] = [{"byteLength": self.size}]
        text = json.dumps(self.root, separators=(",", ":"), allow_nan=False).encode("utf-8")
        text += b" " * (-len(text) % 4)
        bin_pad = bytes(-self.size % 4)
        total = HEADER.size + 2 * CHUNK_HEADER.size + len(text) + self.size + len(bin_pad)
        return b"".join([HEADER.pack(GLB_MAGIC, 2, total), CHUNK_HEADER.pack(len(text), JSON_CHUNK), text,
                         CHUNK_HEADER.pack(self.size + len(bin_pad), BIN_CHUNK), *self.parts, bin_pad])
