"""OpenUSD's Gaussian splats: one ``ParticleField3DGaussianSplat`` prim in an ASCII layer (``.usda``).

No bpy, no ``pxr``: the text is ours (``usda_text``). Facts from the schema Blender 5.2+ bundles
(``bpy/lib/usd/usdVol/resources/usdVol/schema.usda``, the ``ParticleField*`` classes):

- ``point3f[] positions`` (local space; their number is the number of splats), ``quatf[] orientations``
  (USD text writes a quaternion real part first: (w, x, y, z), our order), ``float3[] scales`` *linear*
  (not the log a 3DGS PLY stores), ``float[] opacities`` *linear* in [0, 1] (not the logit).
- Kernel ``ParticleFieldKernelGaussianEllipsoidAPI``: a Gaussian of standard deviation 1 before the
  scale and rotation (99.7 % within radius 3), opacity multiplying it: the 3DGS splat, so our scales
  go in as they are.
- ``float3[] radiance:sphericalHarmonicsCoefficients``: (degree + 1)^2 RGB triples per splat, splat by
  splat, DC first and then the bands in 3DGS order (our ``sh_rest`` rows); ``uniform int
  radiance:sphericalHarmonicsDegree`` (fallback 3). Without coefficients a splat has DC colour 0.5:
  colour = 0.5 + SH_C0 * DC, as in 3DGS, so the DC triple is a PLY's ``f_dc``.
- Missing orientations, scales or opacities mean no turn, unit scale, opaque (the schema's defaults;
  we read them so). Arrays of another length than the positions the schema truncates or ignores; we
  refuse them, naming the counts (such a file is damaged).
- Colour encoding: the schema names none. 3DGS writers (Pixar's own PLY converter among them) store
  the PLY's ``f_dc``, the DC of sRGB-encoded colour, and Blender 5.3 reads it so. We say which with
  ``ColorSpaceAPI`` (``colorSpace:name`` "srgb_rec709_scene", or "lin_rec709_scene" for linear-encoded
  Gaussians); the reader takes that token from the prim or its nearest ancestor, else sRGB.

Axes: ``upAxis = "Y"``, ``metersPerUnit = 1`` and the photo frame as x right, y up, z back (RUB), USD's
own camera convention (a camera looks down -Z, +Y up), so the photo's camera sits at the origin.
Blender 5.3's USD import turns a Y-up stage to Z-up (the object gets +90 degrees about X), which puts
each splat at ``OPENCV_TO_BLENDER_WORLD @ mean``: where our photo frame at the origin shows it
(``tests/blender/test_usd_blender.py``). The reader also takes Z-up layers (coordinates are then
Blender's world) and any ``metersPerUnit`` (USD's fallback is 0.01, centimetres; Blender's import
scales by it too).

The reader takes the splats as a USD viewer shows the stage: a file whose writer put a PLY's positions
unchanged into a Y-up stage (Pixar's and NVIDIA's converters do, unless told to turn them) comes in
upside down, as it shows there. It refuses, saying so: binary ``.usdc`` and ``.usdz``, more than one
splat prim, transforms (``xformOp``) on the prim or above it, time samples; it does not follow
sublayers, references or payloads. Blender 5.3's own USD export writes a splat cloud as a ``Points``
prim without colour or opacity: no splat file (the error says where to export splats instead).

Size: 9 significant digits a float, 244 bytes a splat at SH degree 0 (a 1.18 M-splat SHARP scene is
288 MB; ``bench/formats_usd.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from ..errors import GaussiansError, SplatFileError
from ..gaussians import OPENCV_TO_BLENDER_WORLD, Gaussians, colors_from_file_sh_dc, file_sh_dc
from . import usda_text
from .axes import from_axes, to_axes

PRIM_TYPE = "ParticleField3DGaussianSplat"
COLOR_SPACES = {"srgb": "srgb_rec709_scene", "linear": "lin_rec709_scene"}
KERNEL_RADIUS = 3.0  # standard deviations a splat reaches, for the prim's extent
DEFAULT_METERS_PER_UNIT = 0.01  # USD's fallback when a layer names none (UsdGeom)
SH_COUNTS = {(d + 1) ** 2: d for d in range(4)}  # coefficients per splat -> SH degree
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPES = {1: ("float[]", "half[]", "double[]"), 4: ("quatf[]", "quath[]", "quatd[]"),
          3: ("float3[]", "half3[]", "double3[]",
              *(f"{kind}3{p}[]" for kind in ("point", "vector", "normal", "color") for p in "fhd"))}
Fail = Callable[[str], SplatFileError]


def encode(g: Gaussians, name: str = "splats") -> bytes:
    """The ``.usda`` text of ``g`` as the prim ``/<name>`` (the layer's default prim)."""
    if len(g) == 0:
        raise SplatFileError("a USD particle field needs at least one splat; got none")
    if not _NAME.fullmatch(name):
        raise SplatFileError(f"a USD prim name is a letter or '_' and then letters, digits or '_'; got {name!r}")
    stored = to_axes(g, "RUB")
    sh = file_sh_dc(stored)[:, None]
    if stored.sh_rest is not None:
        sh = np.concatenate([sh, stored.sh_rest], axis=1)
    arrays = {"float3[] extent": _extent(stored),
              "point3f[] positions": stored.means,
              "quatf[] orientations": _turns(stored.quats),
              "float3[] scales": stored.scales,
              "float[] opacities": stored.opacities,
              "float3[] radiance:sphericalHarmonicsCoefficients": sh.reshape(-1, 3)}
    parts: list[bytes | memoryview] = [_head(name, g).encode("ascii")]
    for declaration, text in zip(arrays, usda_text.array_parts(list(arrays.values()))):
        parts += [f"    {declaration} = ".encode("ascii"), *text, b"\n"]
    parts[-1] = f' (\n        elementSize = {sh.shape[1]}\n        interpolation = "vertex"\n    )\n}}\n'.encode()
    return b"".join(parts)


def _head(name: str, g: Gaussians) -> str:
    """The layer's metadata and the prim's opening, up to its arrays."""
    return (f'#usda 1.0\n(\n    defaultPrim = "{name}"\n'
            '    doc = """Gaussian splats written by SHARP from Image. The photo frame: x right, y up, z toward\n'
            '    the viewer (the photo\'s camera at the origin looking down -Z), in metres."""\n'
            '    metersPerUnit = 1\n    upAxis = "Y"\n)\n\n'
            f'def {PRIM_TYPE} "{name}" (\n    prepend apiSchemas = ["ColorSpaceAPI"]\n)\n{{\n'
            f'    uniform token colorSpace:name = "{COLOR_SPACES[g.color_space]}"\n'
            f"    uniform int radiance:sphericalHarmonicsDegree = {g.sh_degree}\n")


def _turns(quats: np.ndarray) -> np.ndarray:  # [N, 4] (w, x, y, z), in the file's axes
    """Unit quaternions, of the sign that reads back as the one we were given: q and -q are the same turn,
    and the half turn between RDF and RUB, done twice, negates a quaternion."""
    return quats / -np.linalg.norm(quats, axis=1, keepdims=True)


def _extent(g: Gaussians) -> np.ndarray:  # [2, 3]: the corners of a box holding every splat to 3 sigma
    reach = KERNEL_RADIUS * np.maximum(np.maximum(g.scales[:, 0], g.scales[:, 1]), g.scales[:, 2])[:, None]
    return np.stack([(g.means - reach).min(axis=0), (g.means + reach).max(axis=0)])


def decode(data: bytes, source: str = "<bytes>") -> Gaussians:
    """Gaussians from the text of a ``.usda`` layer holding one ``ParticleField3DGaussianSplat`` prim."""

    def fail(problem: str) -> SplatFileError:
        return SplatFileError.about(source, problem)

    data = bytes(data)
    if data.startswith(b"PXR-USDC"):
        raise fail("is binary USD (usdc); this reader takes ASCII .usda (convert it: usdcat in.usd -o out.usda)")
    if data.startswith(b"PK\x03\x04"):
        raise fail("is a USDZ package (a zip); this reader takes ASCII .usda (unzip it, or usdcat it to .usda)")
    layer = usda_text.scan(data, fail)
    prim = _splat_prim(layer, fail)
    _refuse_transforms(layer, prim, fail)
    positions = _array(layer, prim, "positions", 3, fail)
    if positions is None or len(positions) == 0:
        raise fail(f"has no splats: prim {prim.path} holds no positions")
    n = len(positions)
    quats = _per_splat(layer, prim, "orientations", 4, n, fail, default=(1.0, 0.0, 0.0, 0.0))
    scales = _per_splat(layer, prim, "scales", 3, n, fail, default=(1.0, 1.0, 1.0))
    opacities = _per_splat(layer, prim, "opacities", 1, n, fail, default=(1.0,))[:, 0]
    sh = _coefficients(layer, prim, n, fail)
    bad = sum(int(np.count_nonzero(~np.isfinite(a))) for a in (positions, quats, scales, opacities, sh))
    if bad:
        raise fail(f"holds {bad:,} numbers that are not finite or too large for 32-bit floats")
    color_space = _color_space(layer, prim, fail)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a huge DC gives an infinite colour: refused below
            colors = colors_from_file_sh_dc(sh[:, 0], color_space)
        g = Gaussians(means=positions, scales=scales, quats=quats, opacities=opacities, colors=colors,
                      sh_rest=sh[:, 1:] if sh.shape[1] > 1 else None, color_space=color_space)
    except GaussiansError as e:
        raise fail(f"holds splats that cannot be used: {e}") from None
    return _in_photo_frame(g, layer.metadata, fail)


def _splat_prim(layer: usda_text.Layer, fail: Fail) -> usda_text.Prim:
    """The one splat prim the layer defines."""
    found = [p for p in layer.prims if p.type == PRIM_TYPE and p.specifier == "def" and not _in_class(p)]
    if len(found) == 1:
        return found[0]
    if found:
        raise fail(f"holds {len(found)} {PRIM_TYPE} prims ({', '.join(p.path for p in found[:4])}); "
                   "this reader takes a file with one")
    if any(p.type == "Points" and "primvars:rotation" in p.properties for p in layer.prims):
        raise fail(f"holds splats as plain Points (as Blender 5.3's USD export writes them: no colour, no "
                   f"opacity), not a {PRIM_TYPE} prim; export with File > Export > Gaussian Splats instead")
    kinds = ", ".join(f"{p.type or 'typeless'} {p.path}" for p in layer.prims[:5]) or "none"
    raise fail(f"holds no {PRIM_TYPE} prim (OpenUSD's Gaussian splats); its prims: {kinds}")


def _in_class(prim: usda_text.Prim) -> bool:
    parent = prim.parent
    while parent is not None:
        if parent.specifier == "class":
            return True
        parent = parent.parent
    return False


def _refuse_transforms(layer: usda_text.Layer, prim: usda_text.Prim, fail: Fail) -> None:
    """Transforms are not applied: a prim on the way to the splats that lists transform ops is an error."""
    at: usda_text.Prim | None = prim
    while at is not None:
        order = at.properties.get("xformOpOrder")
        if order is not None and order.value is not None and b'"' in layer.text(order):
            raise fail(f"transforms prim {at.path} (xformOpOrder), which this reader does not apply; "
                       "flatten the transform into the splats first")
        at = at.parent


def _array(layer: usda_text.Layer, prim: usda_text.Prim, name: str, width: int, fail: Fail) -> np.ndarray | None:
    """An array attribute of the prim as float32 [N, width] (its half-precision twin ``<name>h`` if only
    that is there); None when neither is."""
    for key in (name, name + "h"):
        if any(p.startswith(key + ".") for p in prim.properties):
            raise fail(f"gives {prim.path}.{key} time samples or a connection; this reader takes plain values")
        prop = prim.properties.get(key)
        if prop is None:
            continue
        if prop.type not in _TYPES[width] or not prop.array or prop.value is None:
            raise fail(f"declares {prim.path}.{key} as {prop.type}, not an array of one of "
                       f"{', '.join(_TYPES[width][:3])}")
        def problem(words: str, key: str = key) -> SplatFileError:
            return fail(f"{prim.path}.{key} {words}")

        return usda_text.parse_array(layer.data, prop.value, width, problem)
    return None


def _per_splat(layer: usda_text.Layer, prim: usda_text.Prim, name: str, width: int, n: int, fail: Fail,
               default: tuple[float, ...]) -> np.ndarray:
    """A per-splat attribute, one row a splat; the schema's default where the file has none."""
    values = _array(layer, prim, name, width, fail)
    if values is None:
        return np.tile(np.asarray(default, np.float32), (n, 1))
    if len(values) != n:
        raise fail(f"has {len(values):,} {name} for {n:,} positions (the counts must agree: a damaged file)")
    return values


def _coefficients(layer: usda_text.Layer, prim: usda_text.Prim, n: int, fail: Fail) -> np.ndarray:
    """[N, (degree + 1)^2, 3] SH coefficients, DC first; DC 0 (colour 0.5) for a file without them."""
    values = _array(layer, prim, "radiance:sphericalHarmonicsCoefficients", 3, fail)
    if values is None:
        return np.zeros((n, 1, 3), np.float32)
    declared = prim.properties.get("radiance:sphericalHarmonicsDegree")
    if declared is None:  # the schema's fallback is 3; a count that names another degree says more
        per_splat = len(values) // n if len(values) % n == 0 else 16
        degree = SH_COUNTS.get(per_splat, 3)
    else:
        text = layer.text(declared) if declared.value else b""
        if not re.fullmatch(rb"[0-9]{1,3}", text):
            words = text[:20].decode("ascii", "replace")
            raise fail(f"gives {prim.path} an SH degree of {words!r}, not a whole number")
        degree = int(text)
    if degree > 3:
        raise fail(f"has SH degree {degree}; splats of SH degree 0 to 3 are read")
    per_splat = (degree + 1) ** 2
    if len(values) != n * per_splat:
        raise fail(f"has {len(values):,} SH coefficients for {n:,} splats of SH degree {degree} "
                   f"({n * per_splat:,} expected: a damaged file)")
    return values.reshape(n, per_splat, 3)


def _color_space(layer: usda_text.Layer, prim: usda_text.Prim, fail: Fail) -> str:
    """How the coefficients encode colour: the nearest ``colorSpace:name`` on the way up, else sRGB."""
    at: usda_text.Prim | None = prim
    while at is not None:
        declared = at.properties.get("colorSpace:name")
        if declared is not None and declared.value is not None:
            token = layer.text(declared).strip(b"\"'").decode("utf-8", "replace")
            for ours, theirs in COLOR_SPACES.items():
                if token == theirs:
                    return ours
            raise fail(f"gives {at.path} the colour space {token!r}; this reader takes "
                       f"{' or '.join(COLOR_SPACES.values())}")
        at = at.parent
    return "srgb"


def _in_photo_frame(g: Gaussians, metadata: bytes, fail: Fail) -> Gaussians:
    """Splats read in the layer's axes and units, in the photo frame (RDF, metres)."""
    up = re.search(rb'\bupAxis\s*=\s*"([^"]*)"', metadata)
    axis = up.group(1).decode("utf-8", "replace") if up else "Y"
    unit = re.search(rb"\bmetersPerUnit\s*=\s*([^\s)]+)", metadata)
    try:
        meters = float(unit.group(1)) if unit else DEFAULT_METERS_PER_UNIT
    except ValueError:
        meters = float("nan")
    if axis not in ("Y", "Z"):
        raise fail(f"has upAxis {axis!r}; USD stages are Y-up or Z-up")
    if not (np.isfinite(meters) and meters > 0):
        raise fail(f"has metersPerUnit {unit.group(1).decode('ascii', 'replace') if unit else ''!r}, "
                   "not a positive number")
    if axis == "Y" and meters == 1.0:
        return from_axes(g, "RUB")  # what we write: exact
    turn = np.diag([1.0, -1.0, -1.0]) if axis == "Y" else OPENCV_TO_BLENDER_WORLD.T  # Z-up: Blender's world
    return g.transformed(turn, scale=meters)
