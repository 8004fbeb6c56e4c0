"""Gaussian splats in binary glTF (.glb) with the Khronos ``KHR_gaussian_splatting`` extension.

No bpy. One mesh primitive of mode 0 (POINTS) whose ``KHR_gaussian_splatting`` object names the
kernel ("ellipse") and the colour space; its attributes (``POSITION``, ``KHR_gaussian_splatting:``
``ROTATION`` (x, y, z, w), ``SCALE`` (linear), ``OPACITY`` (linear 0..1), ``SH_DEGREE_0_COEF_0``
(the raw DC coefficients a 3DGS PLY calls f_dc) and ``SH_DEGREE_l_COEF_n`` for l = 1..3) hold the
values unquantised (float32), so a round trip is exact. ``COLOR_0`` is the fallback colour of
plain point renderers (linear, as glTF colours are). Facts: KhronosGroup/glTF
``extensions/2.0/Khronos/KHR_gaussian_splatting/README.md`` (Release Candidate, 2026).

Axes: glTF's frame is +Y up with cameras looking down -Z, so the photo's OpenCV frame goes in as
(x, -y, -z) ("RUB", ``axes.py``; SH colour turns with it). Where the splats know the photo's camera
(``focal_px``, ``image_size``) the file has a perspective camera node at the origin looking down -Z
with the photo's vertical field of view and aspect ratio, so viewers can start where the photo was
taken; glTF cameras have no pixel size, so the image height goes in the camera's ``extras``.
Reading applies the node transforms glTF defines and, where that camera is present, expresses the
splats in its frame. ``compression="spz"`` writes the draft ``KHR_gaussian_splatting_compression_spz_2``
instead: one SPZ version 2 blob (``spz.py``) in a buffer view, accessors without data, both
extensions required; as lossy as SPZ version 2 is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import GaussiansError, SplatFileError
from ..gaussians import Gaussians, colors_from_file_sh_dc, file_sh_dc, rotation_matrices, sh_dc_to_color, sharp_layers
from . import spz
from .axes import from_axes, to_axes
from .gltf_container import BYTE, FLOAT, SHORT, UNSIGNED_BYTE, UNSIGNED_SHORT, Document, Encoding, GlbWriter, parse_glb

EXTENSION = "KHR_gaussian_splatting"
GLTF_COLOR_SPACES = {"srgb": "srgb_rec709_display", "linear": "lin_rec709_display"}
SH_COEFFICIENTS = {1: 3, 2: 5, 3: 7}  # coefficients of each SH degree beyond 0
SPZ_EXTENSION = "KHR_gaussian_splatting_compression_spz_2"  # draft (KhronosGroup/glTF, unmerged in 2026-07)
SUPPORTED_REQUIRED = (EXTENSION, SPZ_EXTENSION, "KHR_mesh_quantization")  # extensionsRequired we honour
# The SPZ draft stores its blob converted from "LUF" (glTF's x left, y up, z front) into SPZ's RUB: x and
# z turned. In the photo's frame (glTF = (x, -y, -z)) that is a half turn about y before spz.encode's own
# RDF -> RUB turn.
GLTF_TO_SPZ = np.diag([-1.0, 1.0, -1.0])
IMAGE_HEIGHT = "imageHeight"  # camera.extras: the photo's height in pixels
GENERATOR = "SHARP from Image"

FLOAT_ONLY: tuple[Encoding, ...] = ((FLOAT, False),)
ATTRIBUTES: dict[str, tuple[str, tuple[Encoding, ...]]] = {  # semantic: accessor type, encodings allowed
    "POSITION": ("VEC3", FLOAT_ONLY),
    f"{EXTENSION}:ROTATION": ("VEC4", ((FLOAT, False), (BYTE, True), (SHORT, True))),
    f"{EXTENSION}:SCALE": ("VEC3", ((FLOAT, False), (UNSIGNED_BYTE, False), (UNSIGNED_BYTE, True),
                                    (UNSIGNED_SHORT, False), (UNSIGNED_SHORT, True))),
    f"{EXTENSION}:OPACITY": ("SCALAR", ((FLOAT, False), (UNSIGNED_BYTE, True), (UNSIGNED_SHORT, True))),
    f"{EXTENSION}:SH_DEGREE_0_COEF_0": ("VEC3", FLOAT_ONLY),
}
# KHR_mesh_quantization lets POSITION be any 8- or 16-bit integer, normalized or not
QUANTIZED_POSITION = FLOAT_ONLY + tuple((c, n) for c in (BYTE, UNSIGNED_BYTE, SHORT, UNSIGNED_SHORT)
                                        for n in (False, True))


def sh_semantics(degree: int) -> list[str]:
    """The attribute names of SH degrees 1..``degree``, in the order of ``Gaussians.sh_rest``'s rows."""
    return [f"{EXTENSION}:SH_DEGREE_{d}_COEF_{c}" for d in range(1, degree + 1) for c in range(SH_COEFFICIENTS[d])]


# ---- writing ---------------------------------------------------------------------------------------


def encode(g: Gaussians, fallback_colors: bool = True, compression: str | None = None) -> bytes:
    """The .glb bytes of ``g``: float attributes (``fallback_colors`` adds ``COLOR_0``, 4 bytes a splat,
    for point renderers), or with ``compression="spz"`` one SPZ blob (draft ``KHR_gaussian_splatting_``
    ``compression_spz_2``: about 16 bytes a splat at SH degree 0, lossy as SPZ is)."""
    if len(g) == 0:
        raise SplatFileError("a glTF accessor holds at least one element: there are no splats to write")
    if compression not in (None, "spz"):
        raise SplatFileError(f"glTF splats are written plain or compressed as 'spz'; got compression={compression!r}")
    writer = GlbWriter({"asset": {"version": "2.0", "generator": GENERATOR}, "extensionsUsed": [EXTENSION]})
    splats = {"kernel": "ellipse", "colorSpace": GLTF_COLOR_SPACES[g.color_space], "projection": "perspective",
              "sortingMethod": "cameraDistance"}
    if compression == "spz":
        attributes = _spz_attributes(writer, g, splats)
    else:
        attributes = _float_attributes(writer, g, fallback_colors)
    root = writer.root
    root["meshes"] = [{"name": "Gaussian splats",
                       "primitives": [{"attributes": attributes, "mode": 0, "extensions": {EXTENSION: splats}}]}]
    root["nodes"] = [{"name": "Gaussian splats", "mesh": 0}]
    camera = photo_camera(g)
    if camera is not None:
        root["cameras"] = [camera]
        root["nodes"].append({"name": "Photo camera", "camera": 0})
    root["scenes"] = [{"nodes": list(range(len(root["nodes"])))}]
    root["scene"] = 0
    return writer.tobytes()


def _float_attributes(writer: GlbWriter, g: Gaussians, fallback_colors: bool) -> dict[str, int]:
    """Every attribute as float32 in glTF's axes (``COLOR_0`` as 8-bit fractions): semantic -> accessor."""
    rub = to_axes(g, "RUB")
    attributes = {"POSITION": writer.accessor(rub.means, "VEC3", bounds=True)}
    if fallback_colors:
        attributes["COLOR_0"] = writer.accessor(_fallback_colors(g), "VEC4", normalized=True)
    attributes[f"{EXTENSION}:ROTATION"] = writer.accessor(_unit(rub.quats)[:, [1, 2, 3, 0]], "VEC4")
    attributes[f"{EXTENSION}:SCALE"] = writer.accessor(rub.scales, "VEC3")
    attributes[f"{EXTENSION}:OPACITY"] = writer.accessor(rub.opacities, "SCALAR")
    attributes[f"{EXTENSION}:SH_DEGREE_0_COEF_0"] = writer.accessor(file_sh_dc(rub).astype(np.float32), "VEC3")
    for k, name in enumerate(sh_semantics(g.sh_degree)):
        assert rub.sh_rest is not None
        attributes[name] = writer.accessor(rub.sh_rest[:, k], "VEC3")
    return attributes


def _spz_attributes(writer: GlbWriter, g: Gaussians, splats: dict[str, Any]) -> dict[str, int]:
    """The SPZ blob (version 2, stored as the draft says: SPZ's RUB from glTF's "LUF", x and z turned)
    and data-less accessors of what it decodes to; both extensions become required."""
    blob = spz.encode(g.transformed(GLTF_TO_SPZ), version=2)  # spz.encode turns RDF into RUB itself
    splats["colorSpace"] = GLTF_COLOR_SPACES["srgb"]  # SPZ holds sRGB-encoded DC colour
    splats["extensions"] = {SPZ_EXTENSION: {"bufferView": writer.view(blob)}}
    writer.root["extensionsUsed"].append(SPZ_EXTENSION)
    writer.root["extensionsRequired"] = [EXTENSION, SPZ_EXTENSION]
    n = len(g)
    types = {"POSITION": "VEC3", "COLOR_0": "VEC4", **{s: t for s, (t, _) in ATTRIBUTES.items()},
             **{s: "VEC3" for s in sh_semantics(g.sh_degree)}}
    attributes = {semantic: writer.accessor(None, type_, count=n) for semantic, type_ in types.items()}
    writer.bound(writer.root["accessors"][attributes["POSITION"]], _spz_positions(g))
    return attributes


def _spz_positions(g: Gaussians) -> np.ndarray:  # -> [N, 3] float32
    """The positions a reader decodes from the blob, in glTF's axes, without decoding it: SPZ's fixed
    point (``spz.fractional_bits_for``) of the blob's (-x, -y, z), turned back (the test checks this
    against ``spz.decode``)."""
    stored = g.means * np.array([-1, -1, 1], dtype=np.float32)
    bits = spz.fractional_bits_for(stored)
    steps = np.rint(stored.astype(np.float64) * 2.0**bits).astype(np.float32)  # exact: 24-bit integers
    return steps * np.float32(2.0**-bits) * np.array([-1, 1, -1], dtype=np.float32)


def _spz_in_gltf(stored: Gaussians) -> Gaussians:
    """Splats ``spz.decode`` read from a blob stored as the draft says, in glTF's axes."""
    return stored.transformed(GLTF_TO_SPZ @ np.diag([1.0, -1.0, -1.0]))


def photo_camera(g: Gaussians) -> dict[str, Any] | None:
    """The glTF perspective camera of the photo (None when the splats do not know it)."""
    if g.focal_px is None or g.image_size is None:
        return None
    width, height = g.image_size
    return {"type": "perspective", "name": "Photo camera",
            "perspective": {"yfov": 2 * math.atan(height / (2 * g.focal_px)), "aspectRatio": width / height,
                            "znear": 0.01},
            "extras": {IMAGE_HEIGHT: height}}


def _unit(quats: np.ndarray) -> np.ndarray:  # [N, 4] -> [N, 4]
    """Quaternions as the extension stores them (unit length); ones already unit to float precision
    are kept bit for bit, so a round trip is exact."""
    norms = np.linalg.norm(quats, axis=1)
    off = np.abs(norms - 1) > 1e-6
    if not off.any():
        return quats
    out = quats.copy()
    out[off] /= norms[off, None]
    return out


def _fallback_colors(g: Gaussians) -> np.ndarray:  # -> [N, 4] uint8
    """``COLOR_0``: the linear base colour clamped to [0, 1] and the opacity, as 8-bit fractions."""
    rgba = np.empty((len(g), 4), dtype=np.float32)
    np.clip(g.colors, 0, 1, out=rgba[:, :3])
    rgba[:, 3] = g.opacities
    return np.rint(rgba * 255).astype(np.uint8)


# ---- reading ---------------------------------------------------------------------------------------


def decode(data: bytes, source: str) -> Gaussians:
    """The splats of a .glb file, in the photo's frame where it has our camera; one ``SplatFileError``
    naming ``source`` for anything that is not a readable ``KHR_gaussian_splatting`` file."""
    doc = parse_glb(data, source)
    _check_required_extensions(doc)
    mesh_index, primitive = _splat_primitive(doc)
    g = _splats(doc, primitive)
    camera_node, camera = _photo_camera(doc)
    placement = _global_matrix(doc, _mesh_node(doc, mesh_index))
    try:
        if camera_node is not None:
            placement = np.linalg.inv(_global_matrix(doc, camera_node)) @ placement
        if not np.array_equal(placement, np.eye(4)):
            g = g.transformed_by(placement)
        g = from_axes(g, "RUB")
        if camera is not None:
            g = g.replace(focal_px=camera[0], image_size=camera[1], layers=sharp_layers(len(g)))
    except np.linalg.LinAlgError:
        raise doc.fail("has a photo camera whose node transform cannot be inverted") from None
    except GaussiansError as e:
        raise doc.fail(f"holds splats that cannot be used: {e}") from None
    return g


def _check_required_extensions(doc: Document) -> None:
    required = doc.get(doc.root, "extensionsRequired", "array", "the document", default=[])
    unknown = [str(name) for name in required if name not in SUPPORTED_REQUIRED]
    if unknown:
        raise doc.fail(f"requires the glTF extension(s) {', '.join(unknown)}, which this reader does not "
                       f"support (it reads {', '.join(SUPPORTED_REQUIRED)})")
    asset = doc.get(doc.root, "asset", "object", "the document")
    version = doc.get(asset, "version", "string", "asset")
    if not version.startswith("2."):
        raise doc.fail(f"is glTF {version}; glTF 2.x is read")


def _splat_primitive(doc: Document) -> tuple[int, dict[str, Any]]:
    """(mesh index, primitive) of the one primitive with ``KHR_gaussian_splatting``, checked."""
    found = []
    for m, _ in enumerate(doc.get(doc.root, "meshes", "array", "the document", default=[])):
        mesh = doc.item("meshes", m, "the document")
        for p, primitive in enumerate(doc.get(mesh, "primitives", "array", f"meshes[{m}]")):
            where = f"meshes[{m}].primitives[{p}]"
            if not isinstance(primitive, dict):
                raise doc.fail(f"has {where} that is not a JSON object")
            if EXTENSION in doc.get(primitive, "extensions", "object", where, default={}):
                found.append((m, where, primitive))
    if not found:
        raise doc.fail(f"has no mesh primitive with {EXTENSION}: no Gaussian splats (a plain glTF mesh or "
                       "point cloud?)")
    if len(found) > 1:
        raise doc.fail(f"has {len(found)} {EXTENSION} primitives ({', '.join(w for _, w, _ in found)}); one "
                       "splat cloud per file is read")
    mesh_index, where, primitive = found[0]
    mode = doc.get(primitive, "mode", "index", where, default=4)
    if mode != 0:
        raise doc.fail(f"has {where}.mode = {mode}; {EXTENSION} requires 0 (POINTS)")
    return mesh_index, primitive


def _splats(doc: Document, primitive: dict[str, Any]) -> Gaussians:
    """The primitive's splats in its mesh's own frame (glTF axes)."""
    where = "the splat primitive"
    settings = doc.get(primitive["extensions"], EXTENSION, "object", where)
    doc.get(settings, "kernel", "string", EXTENSION)  # other kernels fall back to "ellipse" (the README)
    name = doc.get(settings, "colorSpace", "string", EXTENSION)
    spaces = {v: k for k, v in GLTF_COLOR_SPACES.items()}
    if name not in spaces:
        raise doc.fail(f"has colorSpace {name!r}; {' or '.join(spaces)} is read")
    nested = doc.get(settings, "extensions", "object", EXTENSION, default={})
    unknown = [str(e) for e in nested if e != SPZ_EXTENSION]
    if unknown:
        raise doc.fail(f"extends {EXTENSION} with {', '.join(unknown)} (compressed splats?), which this "
                       f"reader does not support (it reads {SPZ_EXTENSION})")
    attributes = doc.get(primitive, "attributes", "object", where)
    if nested:
        return _spz_splats(doc, doc.get(nested, SPZ_EXTENSION, "object", EXTENSION), attributes, spaces[name])
    missing = [s for s in ATTRIBUTES if s not in attributes]
    if missing:
        raise doc.fail(f"lacks the splat attribute(s) {', '.join(missing)} (has: {', '.join(attributes)})")
    used = doc.get(doc.root, "extensionsUsed", "array", "the document", default=[])
    values, count = {}, None
    for semantic, (type_, allowed) in ATTRIBUTES.items():
        if semantic == "POSITION" and "KHR_mesh_quantization" in used:
            allowed = QUANTIZED_POSITION
        index = doc.get(attributes, semantic, "index", "attributes")
        values[semantic] = doc.accessor(index, type_, allowed, semantic, count)
        count = len(values[semantic])
        if count == 0:
            raise doc.fail(f"has 0 splats ({semantic} is empty)")
    sh_rest = _sh_rest(doc, attributes, count or 0)
    color_space = spaces[name]
    try:
        return Gaussians(
            means=values["POSITION"],
            quats=values[f"{EXTENSION}:ROTATION"][:, [3, 0, 1, 2]],
            scales=values[f"{EXTENSION}:SCALE"],
            opacities=values[f"{EXTENSION}:OPACITY"][:, 0],
            colors=colors_from_file_sh_dc(values[f"{EXTENSION}:SH_DEGREE_0_COEF_0"], color_space),
            sh_rest=sh_rest,
            color_space=color_space,
        )
    except GaussiansError as e:
        raise doc.fail(f"holds splats that cannot be used: {e}") from None


def _spz_splats(doc: Document, settings: dict[str, Any], attributes: dict[str, Any], color_space: str) -> Gaussians:
    """The splats of the SPZ blob the compression extension points to, in glTF's axes."""
    index = doc.get(settings, "bufferView", "index", SPZ_EXTENSION)
    blob = bytes(doc.buffer_view(index, SPZ_EXTENSION)[0])
    try:
        stored = spz.decode(blob, doc.source)
    except SplatFileError as e:
        problem = str(e).removeprefix(f"{SplatFileError.subject} '{doc.source}': ")
        raise doc.fail(f"holds its splats in an SPZ blob (bufferViews[{index}]) that {problem}") from None
    position = doc.item("accessors", doc.get(attributes, "POSITION", "index", "attributes"), "POSITION")
    count = doc.get(position, "count", "index", "the POSITION accessor")
    if count != len(stored):
        raise doc.fail(f"has {len(stored):,} splats in its SPZ blob but {count:,} in its POSITION accessor")
    if color_space == "linear":  # SPZ's DC colour is as the file encodes it; spz.decode takes it as sRGB
        stored = stored.replace(colors=sh_dc_to_color(file_sh_dc(stored)), color_space="linear")
    return _spz_in_gltf(stored)


def _sh_rest(doc: Document, attributes: dict[str, Any], count: int) -> np.ndarray | None:  # -> [N, K, 3]
    """SH degrees 1..3 as ``Gaussians.sh_rest``; a degree must be whole and follow the one below it."""
    present = {d: [s in attributes for s in sh_semantics(d)[-SH_COEFFICIENTS[d]:]] for d in SH_COEFFICIENTS}
    degree = 0
    for d, flags in present.items():
        if all(flags) and degree == d - 1:
            degree = d
        elif any(flags):
            raise doc.fail(f"has SH degree {d} coefficients without all of degree {d} and below "
                           f"({EXTENSION} needs whole degrees from 1 up)")
    if degree == 0:
        return None
    rows = [doc.accessor(doc.get(attributes, s, "index", "attributes"), "VEC3", FLOAT_ONLY, s, count)
            for s in sh_semantics(degree)]
    return np.stack(rows, axis=1)


# ---- nodes and the photo camera --------------------------------------------------------------------


def _mesh_node(doc: Document, mesh_index: int) -> int | None:
    """The node that places the splat mesh (None: the mesh is in no node, so it stays where it is)."""
    nodes = [i for i, _ in enumerate(doc.get(doc.root, "nodes", "array", "the document", default=[]))
             if doc.item("nodes", i, "the document").get("mesh") == mesh_index]
    if len(nodes) > 1:
        raise doc.fail(f"places the splat mesh {len(nodes)} times (nodes {nodes}); one instance is read")
    return nodes[0] if nodes else None


def _photo_camera(doc: Document) -> tuple[int | None, tuple[float, tuple[int, int]] | None]:
    """(node, (focal_px, (W, H))) of the first perspective camera that records the photo's height."""
    for i, _ in enumerate(doc.get(doc.root, "nodes", "array", "the document", default=[])):
        node = doc.item("nodes", i, "the document")
        if "camera" not in node:
            continue
        camera_index = doc.get(node, "camera", "index", f"nodes[{i}]")
        camera, where = doc.item("cameras", camera_index, f"nodes[{i}]"), f"cameras[{camera_index}]"
        extras = camera.get("extras")
        if camera.get("type") != "perspective" or not isinstance(extras, dict) or IMAGE_HEIGHT not in extras:
            continue
        lens = doc.get(camera, "perspective", "object", where)
        yfov = doc.get(lens, "yfov", "number", f"{where}.perspective")
        aspect = doc.get(lens, "aspectRatio", "number", f"{where}.perspective")
        height = doc.get(extras, IMAGE_HEIGHT, "index", f"{where}.extras")
        width = round(aspect * height)
        if not (0 < yfov < math.pi and height > 0 and width > 0):
            raise doc.fail(f"has a photo camera ({where}) of yfov {yfov}, aspectRatio {aspect} and "
                           f"{IMAGE_HEIGHT} {height}: no image")
        return i, (height / (2 * math.tan(yfov / 2)), (width, height))
    return None, None


def _global_matrix(doc: Document, node: int | None) -> np.ndarray:  # -> [4, 4] float64
    """The node's world matrix: its local matrix after each parent's, as glTF composes them."""
    count = len(doc.get(doc.root, "nodes", "array", "the document", default=[]))
    parents: dict[int, int] = {}
    for i in range(count):
        for child in doc.get(doc.item("nodes", i, "the document"), "children", "array", f"nodes[{i}]", default=[]):
            if child in parents or not isinstance(child, int):
                raise doc.fail(f"has node {child} as a child of two nodes (or not a node index)")
            parents[child] = i
    matrix, steps = np.eye(4), 0
    while node is not None:
        steps += 1
        if steps > count:
            raise doc.fail("has nodes that are their own ancestors (a cycle in the node tree)")
        matrix = _local_matrix(doc, node) @ matrix
        node = parents.get(node)
    if not np.all(np.isfinite(matrix)):
        raise doc.fail("has node transforms that are not finite numbers")
    return matrix


def _local_matrix(doc: Document, index: int) -> np.ndarray:  # -> [4, 4] float64
    node, where = doc.item("nodes", index, "a node"), f"nodes[{index}]"

    def numbers(key: str, length: int, default: list[float]) -> np.ndarray:
        values = doc.get(node, key, "array", where, default=default)
        if len(values) != length or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise doc.fail(f"has {where}.{key} that is not {length} numbers")
        return np.array(values, dtype=np.float64)

    if "matrix" in node:
        return numbers("matrix", 16, []).reshape(4, 4).T  # glTF matrices are column-major
    x, y, z, w = numbers("rotation", 4, [0.0, 0.0, 0.0, 1.0])
    if not np.any([w, x, y, z]):
        raise doc.fail(f"has {where}.rotation of zero length")
    matrix = np.eye(4)
    matrix[:3, :3] = rotation_matrices(np.array([w, x, y, z])) * numbers("scale", 3, [1.0, 1.0, 1.0])
    matrix[:3, 3] = numbers("translation", 3, [0.0, 0.0, 0.0])
    return matrix
