"""OpenUSD's Gaussian splats (``ParticleField3DGaussianSplat`` in ``.usda`` text): round trips, the layout
the schema asks for, Pixar's own USD library (``usd-core``, where installed) reading what we write and
writing what we read, hand-written files, and one clear error for every kind of bad file.

What the round trip may lose: nothing but float32 rounding. Every float is written with 9 significant
digits, which bring a float32 back exactly, so positions, scales, opacities and SH coefficients of
degree 1-3 come back bit for bit. Colour goes through the file's SH DC (sRGB-encoded, as 3DGS files
store it): linear -> sRGB -> DC -> sRGB -> linear in float32, within 1e-6. Quaternions are written
normalised: within float32 rounding of the unit quaternion (2e-7 a component).
"""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from sharp_addon.errors import SplatFileError
from sharp_addon.formats import usd
from sharp_addon.formats.axes import to_axes
from sharp_addon.gaussians import OPENCV_TO_BLENDER_WORLD, file_sh_dc
from tests.support.builders import random_gaussians
from tests.support.web_formats import refused, rotation_angles

COLOUR = 1e-6
QUAT = 2e-7


def unit(quats: np.ndarray) -> np.ndarray:
    return quats / np.linalg.norm(quats, axis=1, keepdims=True)


def array_text(text: str, name: str) -> str:
    """The text inside the brackets of the array attribute ``name`` (a test's own, simple reading)."""
    found = re.search(rf"\[\] {re.escape(name)} = \[(.*?)\]", text, re.S)
    assert found, name
    return found.group(1)


def python_floats(inside: str) -> np.ndarray:
    """The numbers of an array's text by Python's own float(): an independent check of our parser."""
    return np.array([float(t) for t in re.split(r"[\s,()]+", inside) if t], dtype=np.float64)


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_round_trip_keeps_every_value(tmp_path, sh_degree):
    g = random_gaussians(700, seed=sh_degree, sh_degree=sh_degree)
    path = tmp_path / "scene.usda"
    path.write_bytes(usd.encode(g))
    back = usd.decode(path.read_bytes(), str(path))
    assert len(back) == len(g) and back.sh_degree == sh_degree and back.color_space == "srgb"
    np.testing.assert_array_equal(back.means, g.means)
    np.testing.assert_array_equal(back.scales, g.scales)
    np.testing.assert_array_equal(back.opacities, g.opacities)
    if sh_degree:
        np.testing.assert_array_equal(back.sh_rest, g.sh_rest)
    assert np.abs(back.colors - g.colors).max() <= COLOUR
    assert np.abs(back.quats - unit(g.quats)).max() <= QUAT
    assert back.focal_px is None and back.layers is None  # a particle field holds no camera


def test_linear_encoded_colour_keeps_its_encoding():
    g = random_gaussians(300, seed=9, sh_degree=2).replace(color_space="linear")
    data = usd.encode(g)
    assert b'colorSpace:name = "lin_rec709_scene"' in data
    back = usd.decode(data, "linear.usda")
    assert back.color_space == "linear"
    assert np.abs(back.colors - g.colors).max() <= COLOUR
    np.testing.assert_array_equal(back.sh_rest, g.sh_rest)


def test_every_float32_comes_back_exactly_even_at_the_ends_of_its_range():
    """9 significant digits for any float32: the smallest subnormal, the largest finite, powers of ten,
    values whose rounding carries into a new digit, negative zero; read by Python's float() as well."""
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 0x7F7FFFFF, 20000, dtype=np.uint32).view(np.float32)  # any finite magnitude
    special = np.array([0.0, -0.0, 1e-45, -1e-45, 3e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38, 1.0, 10.0,
                        1e-8, 9.9999999e-1, 0.1, 123456789.0, 999999999.0, 9999999999.0], np.float32)
    values = np.concatenate([bits, -bits[:5000], special])
    g = random_gaussians(len(values) // 3, seed=1)
    means = values[:len(g) * 3].reshape(-1, 3)
    back = usd.decode(usd.encode(g.replace(means=means)), "x.usda")
    rub = to_axes(g.replace(means=means), "RUB")  # what the file holds
    np.testing.assert_array_equal(back.means, means)  # exact (-0 and 0 alike: the half turn adds a +0)
    text = usd.encode(g.replace(means=means)).decode("ascii")
    python = python_floats(array_text(text, "positions")).astype(np.float32).reshape(-1, 3)
    np.testing.assert_array_equal(python.view(np.uint32), rub.means.view(np.uint32))  # bit for bit


def test_the_file_is_the_schemas_particle_field_in_a_y_up_stage():
    """The layer and prim the schema defines; positions in RUB (x right, y up, z back, the photo's camera at
    the origin looking down -Z); quaternions real part first; (degree + 1)^2 coefficients a splat, DC first."""
    g = random_gaussians(40, seed=4, sh_degree=1)
    text = usd.encode(g, name="photo_splats").decode("ascii")
    assert text.startswith("#usda 1.0\n(")
    for line in ('defaultPrim = "photo_splats"', 'upAxis = "Y"', "metersPerUnit = 1",
                 'def ParticleField3DGaussianSplat "photo_splats"', "uniform int radiance:sphericalHarmonicsDegree = 1",
                 'uniform token colorSpace:name = "srgb_rec709_scene"', "elementSize = 4"):
        assert line in text, line
    rub = np.diag([1.0, -1.0, -1.0])
    positions = python_floats(array_text(text, "positions")).reshape(-1, 3)
    np.testing.assert_allclose(positions, g.means @ rub.T, rtol=1e-7)
    quats = python_floats(array_text(text, "orientations")).reshape(-1, 4)
    assert rotation_angles(quats, to_axes(g, "RUB").quats).max() <= 1e-6
    opacities = python_floats(array_text(text, "opacities"))
    np.testing.assert_allclose(opacities, g.opacities, rtol=1e-7)
    scales = python_floats(array_text(text, "scales")).reshape(-1, 3)
    np.testing.assert_allclose(scales, g.scales, rtol=1e-7)  # linear, not log
    sh = python_floats(array_text(text, "radiance:sphericalHarmonicsCoefficients")).reshape(len(g), 4, 3)
    np.testing.assert_allclose(sh[:, 0], file_sh_dc(g), rtol=1e-6, atol=1e-7)  # DC first: the PLY's f_dc
    np.testing.assert_allclose(sh[:, 1:], to_axes(g, "RUB").sh_rest, rtol=1e-6, atol=1e-8)
    extent = python_floats(array_text(text, "extent")).reshape(2, 3)
    assert (extent[0] <= positions.min(axis=0)).all() and (extent[1] >= positions.max(axis=0)).all()


HAND_WRITTEN = '''#usda 1.0
(
    doc = "written by hand"   # a comment
    upAxis = "Z"
)

def Xform "World" (
    kind = "component"
)
{
    def Scope "Looks" {
    }
    def ParticleField3DGaussianSplat "gs" (
        doc = """splats (with a bracket ] in a string)"""
    )
    {
        point3h[] positionsh = [(1, 2, 3), (-1e2, 0.5, +2.5E-1)]
        float[] opacities = [0.5, 1]
        float3[] radiance:sphericalHarmonicsCoefficients = [(0.1, 0.2, 0.3), (-0.1, 0, 0)]
        uniform token[] purposes = ["default", "render"]
        rel proxyPrim
    }
}
'''


def test_reads_hand_written_files_with_the_schemas_defaults(tmp_path):
    """A Z-up layer in USD's default unit (centimetres: metersPerUnit falls back to 0.01), half-precision
    positions, no orientations or scales (the schema's defaults: no turn, unit scale), the degree missing
    (inferred from the count), other prims, comments and strings around it."""
    path = tmp_path / "hand.usda"
    path.write_text(HAND_WRITTEN)
    g = usd.decode(path.read_bytes(), str(path))
    world = np.array([[1, 2, 3], [-100, 0.5, 0.25]], np.float32) * np.float32(0.01)  # Blender's world, metres
    np.testing.assert_allclose(g.means @ OPENCV_TO_BLENDER_WORLD.T, world, rtol=1e-6)
    np.testing.assert_allclose(g.scales, 0.01)
    np.testing.assert_allclose(g.opacities, [0.5, 1.0])
    # the identity in a Z-up file is the turn from the photo frame to Blender's world, seen from the photo frame
    assert rotation_angles(g.quats, np.tile(unit(np.array([[1.0, 1.0, 0.0, 0.0]])), (2, 1))).max() <= 1e-6
    assert g.sh_rest is None and g.color_space == "srgb"
    np.testing.assert_allclose(file_sh_dc(g), [[0.1, 0.2, 0.3], [-0.1, 0, 0]], atol=1e-6)


def test_a_file_from_pixars_usd_library_reads_back(tmp_path):
    """``usd-core`` (Pixar's OpenUSD for Python) writes a particle field as its own text (shortest numbers,
    one line an array, the prim nested in another); we read it, values exact."""
    pxr = pixar_usd()
    g = random_gaussians(500, seed=11, sh_degree=3)
    rub = to_axes(g, "RUB")
    stage = pxr.Usd.Stage.CreateInMemory()
    pxr.UsdGeom.SetStageUpAxis(stage, pxr.UsdGeom.Tokens.y)
    pxr.UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    prim = pxr.UsdVol.ParticleField3DGaussianSplat.Define(stage, "/World/splats").GetPrim()
    vt = pxr.Vt
    pxr.UsdVol.ParticleFieldPositionAttributeAPI(prim).CreatePositionsAttr(vt.Vec3fArray.FromNumpy(rub.means))
    xyzw = np.ascontiguousarray(rub.quats[:, [1, 2, 3, 0]])  # GfQuatf's memory: imaginary part first
    pxr.UsdVol.ParticleFieldOrientationAttributeAPI(prim).CreateOrientationsAttr(vt.QuatfArray.FromNumpy(xyzw))
    pxr.UsdVol.ParticleFieldScaleAttributeAPI(prim).CreateScalesAttr(vt.Vec3fArray.FromNumpy(rub.scales))
    pxr.UsdVol.ParticleFieldOpacityAttributeAPI(prim).CreateOpacitiesAttr(vt.FloatArray.FromNumpy(rub.opacities))
    radiance = pxr.UsdVol.ParticleFieldSphericalHarmonicsAttributeAPI(prim)
    radiance.CreateRadianceSphericalHarmonicsDegreeAttr(3)
    sh = np.concatenate([file_sh_dc(rub)[:, None], rub.sh_rest], axis=1).reshape(-1, 3)
    radiance.CreateRadianceSphericalHarmonicsCoefficientsAttr(vt.Vec3fArray.FromNumpy(np.ascontiguousarray(sh)))
    path = tmp_path / "pixar.usda"
    path.write_text(stage.GetRootLayer().ExportToString())
    back = usd.decode(path.read_bytes(), str(path))
    np.testing.assert_array_equal(back.means, g.means)
    np.testing.assert_array_equal(back.scales, g.scales)
    np.testing.assert_array_equal(back.opacities, g.opacities)
    np.testing.assert_array_equal(back.sh_rest, g.sh_rest)
    assert rotation_angles(back.quats, g.quats).max() <= 1e-6
    assert np.abs(back.colors - g.colors).max() <= COLOUR


def test_pixars_usd_library_reads_our_file_as_the_schema_says(tmp_path):
    """``usd-core`` opens our layer, sees the typed prim with every splat API applied, reads the values
    we meant bit for bit, and its validators (all that it registers) find nothing wrong."""
    pxr = pixar_usd()
    g = random_gaussians(400, seed=12, sh_degree=2)
    path = tmp_path / "ours.usda"
    path.write_bytes(usd.encode(g))
    stage = pxr.Usd.Stage.Open(str(path))
    assert pxr.UsdGeom.GetStageUpAxis(stage) == "Y" and pxr.UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    prim = stage.GetDefaultPrim()
    assert prim.IsA(pxr.UsdVol.ParticleField3DGaussianSplat)
    assert {"ParticleFieldPositionAttributeAPI", "ParticleFieldKernelGaussianEllipsoidAPI",
            "ParticleFieldSphericalHarmonicsAttributeAPI", "ColorSpaceAPI"} <= set(prim.GetAppliedSchemas())
    rub = to_axes(g, "RUB")
    np.testing.assert_array_equal(np.array(prim.GetAttribute("positions").Get()), rub.means)
    np.testing.assert_array_equal(np.array(prim.GetAttribute("scales").Get()), rub.scales)
    np.testing.assert_array_equal(np.array(prim.GetAttribute("opacities").Get()), rub.opacities)
    quats = np.array([[q.GetReal(), *q.GetImaginary()] for q in prim.GetAttribute("orientations").Get()])
    assert rotation_angles(quats, rub.quats).max() <= 1e-6
    sh = np.array(prim.GetAttribute("radiance:sphericalHarmonicsCoefficients").Get()).reshape(len(g), 9, 3)
    np.testing.assert_array_equal(sh[:, 1:], rub.sh_rest)
    assert prim.GetAttribute("radiance:sphericalHarmonicsDegree").Get() == 2
    assert prim.GetAttribute("colorSpace:name").Get() == "srgb_rec709_scene"
    registry = pxr.UsdValidation.ValidationRegistry()
    validators = [registry.GetOrLoadValidatorByName(m.name) for m in registry.GetAllValidatorMetadata()]
    errors = pxr.UsdValidation.ValidationContext(validators).Validate(stage)
    assert not errors, [e.GetMessage() for e in errors]


def pixar_usd():
    """Pixar's ``pxr`` (PyPI ``usd-core``, a test dependency) with the particle-field schema, or a skip."""
    if importlib.util.find_spec("pxr") is None:
        pytest.skip("usd-core (PyPI: Pixar's OpenUSD, a second USD reader and writer) is not installed")
    import pxr
    from pxr import Usd, UsdGeom, UsdValidation, UsdVol, Vt  # noqa: F401  (loads the submodules)

    if not hasattr(pxr.UsdVol, "ParticleField3DGaussianSplat"):
        pytest.skip(f"usd-core {pxr.Usd.GetVersion()} predates the particle-field schema (26.03+)")
    return pxr


# ---- bad files --------------------------------------------------------------------------------------

GOOD = usd.encode(random_gaussians(30, seed=2, sh_degree=1)).decode("ascii")


def edited(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def first_row(name: str) -> str:
    """The first element's line of array ``name`` in GOOD."""
    return array_text(GOOD, name).split("\n")[1]


BLENDER_EXPORT = """#usda 1.0
(
    upAxis = "Z"
)
def Xform "root"
{
    def Points "splats"
    {
        point3f[] points = [(1, 2, 3)]
        quatf[] primvars:rotation = [(1, 0, 0, 0)] (
            interpolation = "varying"
        )
    }
}
"""  # the shape of Blender 5.3's own USD export of a splat cloud (tests/blender/test_usd_blender.py)

BAD_FILES = {
    "not USD": (b"ply\nformat binary_little_endian 1.0\n", ["not an ASCII USD file"]),
    "binary usdc": (b"PXR-USDC" + bytes(80), ["binary USD (usdc)", "usdcat"]),
    "usdz": (b"PK\x03\x04" + bytes(60), ["USDZ package"]),
    "empty": (b"", ["not an ASCII USD file"]),
    "no splat prim": ('#usda 1.0\ndef Mesh "cube"\n{\n    point3f[] points = [(0, 0, 0)]\n}\n',
                      ["no ParticleField3DGaussianSplat prim", "Mesh /cube"]),
    "two splat prims": (GOOD + GOOD[GOOD.index("def "):].replace('"splats"', '"more"', 1),
                        ["2 ParticleField3DGaussianSplat"]),
    "fewer orientations": (edited(first_row("orientations") + "\n", ""), ["29 orientations for 30 positions"]),
    "more opacities": (edited("    float[] opacities = [\n", "    float[] opacities = [\n    0.5,\n"),
                       ["31 opacities for 30 positions"]),
    "SH count": (edited(first_row("radiance:sphericalHarmonicsCoefficients") + "\n", ""),
                 ["119 SH coefficients for 30 splats of SH degree 1"]),
    "SH degree 4": (edited("sphericalHarmonicsDegree = 1", "sphericalHarmonicsDegree = 4"), ["SH degree 4"]),
    "SH degree not a number": (edited("sphericalHarmonicsDegree = 1", "sphericalHarmonicsDegree = x"), ["'x'"]),
    "huge number": (edited(first_row("positions"), "( 1e39, 0, 0),"), ["not finite or too large"]),
    "nan": (edited(first_row("scales"), "( nan, 1, 1),"), ["'nan'", "scales"]),
    "letters in an array": (edited(first_row("positions"), "( 1, two, 3),"), ["'two'"]),
    "a short tuple": (edited(first_row("positions"), "( 1, 2),"), ["3-number tuples"]),
    "two numbers in one": (edited(first_row("opacities"), "  0.5.5,"), ["not a number"]),
    "negative scale": (edited(first_row("scales"), "( -1, 1, 1),"), ["scales must be >= 0"]),
    "opacity above 1": (edited(first_row("opacities"), "  1.5,"), ["opacities must lie in [0, 1]"]),
    "wrong type": (edited("float3[] scales", "int[] scales"), ["int[]"]),
    "time samples": (edited("quatf[] orientations = [", "quatf[] orientations.timeSamples = { 0: [").replace(
        "\n]\n    float3[] scales", "\n] }\n    float3[] scales", 1), ["time samples"]),
    "transform": (edited('uniform token colorSpace:name', 'double3 xformOp:translate = (1, 0, 0)\n'
                         '    uniform token[] xformOpOrder = ["xformOp:translate"]\n    uniform token colorSpace:name'),
                  ["xformOpOrder", "flatten"]),
    "colour space": (edited("srgb_rec709_scene", "lin_ap1_scene"), ["'lin_ap1_scene'"]),
    "up axis": (edited('upAxis = "Y"', 'upAxis = "X"'), ["upAxis 'X'"]),
    "unit": (edited("metersPerUnit = 1", "metersPerUnit = 0"), ["metersPerUnit '0'"]),
    "no positions": (edited("point3f[] positions", "point3f[] centres"), ["no positions"]),
    "variant set": (edited("    uniform int radiance", '    variantSet "look" = {\n    }\n    uniform int radiance'),
                    ["variantSet", "does not parse"]),
    "Blender's own export": (BLENDER_EXPORT, ["plain Points", "Blender 5.3"]),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_are_refused_with_one_clear_error(tmp_path, case):
    content, words = BAD_FILES[case]
    path = tmp_path / f"{case.replace(' ', '_')}.usda"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    refused(path, *words)


def test_a_file_cut_anywhere_is_refused(tmp_path):
    """Truncated at any byte before the prim's closing brace: an error, never a partial result."""
    data = GOOD.encode()
    path = tmp_path / "cut.usda"
    for cut in range(0, data.rindex(b"}"), 97):
        path.write_bytes(data[:cut])
        refused(path)


def test_damaged_bytes_give_a_clear_error_or_splats_never_a_crash(tmp_path):
    """Any byte overwritten with any other: either a SplatFileError or valid splats (a digit for a digit)."""
    data = bytearray(GOOD.encode())
    rng = np.random.default_rng(5)
    for at, value in zip(rng.integers(0, len(data), 400), rng.integers(0, 256, 400)):
        damaged = bytearray(data)
        damaged[at] = value
        try:
            usd.decode(bytes(damaged), "damaged.usda")
        except SplatFileError:
            pass


def test_names_and_empty_sets_are_refused_when_writing():
    g = random_gaussians(5)
    with pytest.raises(SplatFileError, match="prim name"):
        usd.encode(g, name="my splats")
    with pytest.raises(SplatFileError, match="at least one splat"):
        usd.encode(g.subset(np.zeros(5, bool)))
