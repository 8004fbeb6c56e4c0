"""Splat PLY files: ml-sharp's layout byte for byte, generic 3DGS files, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest

from sharp_addon import gaussians as G
from sharp_addon import ply
from sharp_addon.errors import GaussiansError, PLYError
from tests.support.builders import assert_same_covariances, random_gaussians
from tests.support.synthetic_weights import GOLDEN

SHARP_N = 1_179_648  # every SHARP prediction: 2 layers x 768 x 768


def make_ply(columns: dict[str, np.ndarray], fmt: str = "binary_little_endian", types: dict[str, str] | None = None,
             extra_elements: list[tuple[str, str, np.ndarray]] = (), comments: tuple[str, ...] = ()) -> bytes:
    """An independent, minimal PLY writer for the tests: one vertex element plus optional extras."""
    types = types or {}
    numpy_type = {"float": "f4", "double": "f8", "uchar": "u1", "int": "i4", "uint": "u4", "short": "i2"}
    n = len(next(iter(columns.values())))
    lines = ["ply", f"format {fmt} 1.0", *[f"comment {c}" for c in comments], f"element vertex {n}"]
    lines += [f"property {types.get(k, 'float')} {k}" for k in columns]
    for name, t, values in extra_elements:
        lines += [f"element {name} {len(values)}", f"property {t} {name}"]
    lines.append("end_header")
    head = ("\n".join(lines) + "\n").encode()
    if fmt == "ascii":
        table = np.column_stack([np.asarray(v, np.float64) for v in columns.values()])
        body = "\n".join(" ".join(repr(float(x)) for x in row) for row in table)
        body += "".join("\n" + " ".join(str(x) for x in values) for _, _, values in extra_elements)
        return head + body.encode() + b"\n"
    order = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(k, order + numpy_type[types.get(k, "float")]) for k in columns])
    rec = np.empty(n, dtype)
    for k, v in columns.items():
        rec[k] = v
    extras = b"".join(np.asarray(v, order + numpy_type[t]).tobytes() for _, t, v in extra_elements)
    return head + rec.tobytes() + extras


def splat_columns(g: G.Gaussians) -> dict[str, np.ndarray]:
    """The 3DGS properties of ``g`` computed independently of sharp_addon.ply (sRGB DC encoding)."""
    c = np.asarray(G.linear_to_srgb(g.colors.astype(np.float64)))
    dc = (c - 0.5) / G.SH_C0
    cols = {"x": g.means[:, 0], "y": g.means[:, 1], "z": g.means[:, 2],
            "f_dc_0": dc[:, 0], "f_dc_1": dc[:, 1], "f_dc_2": dc[:, 2],
            "opacity": np.log(g.opacities / (1 - g.opacities.astype(np.float64)))}
    for i in range(3):
        cols[f"scale_{i}"] = np.log(g.scales[:, i])
    for i in range(4):
        cols[f"rot_{i}"] = g.quats[:, i]
    return cols


def assert_close(a: G.Gaussians, b: G.Gaussians) -> None:
    """Equal up to the float32 rounding of the stored encodings (log scale, logit, sRGB DC)."""
    np.testing.assert_array_equal(a.means, b.means)
    np.testing.assert_array_equal(a.quats, b.quats)
    np.testing.assert_allclose(a.scales, b.scales, rtol=1e-6)
    np.testing.assert_allclose(a.opacities, b.opacities, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.colors, b.colors, atol=1e-6)
    if b.sh_rest is None:
        assert a.sh_rest is None
    else:
        np.testing.assert_array_equal(a.sh_rest, b.sh_rest)
    assert (a.image_size, a.color_space) == (b.image_size, b.color_space)
    assert a.focal_px == (None if b.focal_px is None else pytest.approx(b.focal_px, rel=1e-7))  # stored as float32


# ---- round trips and ml-sharp's layout --------------------------------------------------------------


@pytest.mark.parametrize("layout", ["sharp", "3dgs"])
@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_round_trip_through_bytes(layout, sh_degree):
    g = random_gaussians(500, sh_degree=sh_degree)
    back = ply.decode(ply.encode(g, layout))
    if layout == "3dgs":  # the vertex element alone carries no photo metadata
        g = g.replace(focal_px=None, image_size=None)
    assert_close(back, g)


@pytest.mark.parametrize("layout", ["sharp", "3dgs"])
def test_round_trip_through_a_file_is_stable(tmp_path, layout):
    g = random_gaussians(2000, sh_degree=1)
    first = ply.write_ply(g, tmp_path / "a.ply", layout=layout)
    once = ply.read_ply(first)
    ply.write_ply(once, tmp_path / "b.ply", layout=layout)
    twice = ply.read_ply(tmp_path / "b.ply")
    assert_close(twice, once)
    assert_same_covariances(twice.covariances(), g.covariances())


def test_linear_color_space_is_stored_without_encoding():
    g = random_gaussians(100).replace(color_space="linear")
    data = ply.encode(g, "sharp")
    _, elements = parse_with_parity_reader(data)
    v = elements["vertex"]
    np.testing.assert_allclose(v["f_dc_0"] * G.SH_C0 + 0.5, g.colors[:, 0], atol=1e-6)
    assert int(elements["color_space"]["color_space"][0]) == 1
    assert ply.decode(data).color_space == "linear"


def parse_with_parity_reader(data: bytes):
    """The parity checker's small binary-PLY parser, which shares no code with ``sharp_addon.ply``."""
    from tests.support.parity import read_binary_ply

    return read_binary_ply(data)


def test_sharp_layout_matches_the_reference_header_and_size():
    golden = np.load(GOLDEN)  # ml-sharp's save_ply output for the parity image: header bytes, extras
    g = random_gaussians(SHARP_N)
    data = ply.encode(g, "sharp")
    header = golden["ply__header"].tobytes()
    assert data[: len(header)] == header
    assert len(data) == int(golden["ply__num_bytes"]) == 66_061_086
    _, elements = parse_with_parity_reader(data)
    assert list(elements["vertex"].dtype.names) == [str(p) for p in golden["ply__vertex_props"]]
    for name in ("extrinsic", "intrinsic", "image_size", "frame", "color_space", "version"):
        got = elements[name][name]
        np.testing.assert_allclose(got, golden[f"ply__elem__{name}"], rtol=1e-6, err_msg=name)
    inv_z = 1 / g.means[:, 2].astype(np.float64)
    np.testing.assert_allclose(elements["disparity"]["disparity"], np.quantile(inv_z, [0.1, 0.9]), rtol=1e-6)
    # vertex rows hold what ml-sharp writes: logit opacity, log scales, sRGB-encoded DC
    v = elements["vertex"]
    np.testing.assert_allclose(v["opacity"], splat_columns(g)["opacity"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v["scale_1"], np.log(g.scales[:, 1]), rtol=1e-6)
    np.testing.assert_allclose(v["f_dc_2"], splat_columns(g)["f_dc_2"], atol=1e-5)


def test_sharp_layout_needs_photo_metadata():
    g = random_gaussians(10, photo=False)
    with pytest.raises(GaussiansError, match="layout='3dgs' instead"):
        ply.encode(g, "sharp")
    assert ply.decode(ply.encode(g, "3dgs")).focal_px is None
    with pytest.raises(ValueError, match="layout must be one of"):
        ply.encode(g, "splat")


def test_reads_sharp_metadata_written_by_another_writer():
    g = random_gaussians(50)
    extras = [("extrinsic", "float", np.eye(4).ravel()),
              ("intrinsic", "float", [1234.5, 0, 500, 0, 1234.5, 375, 0, 0, 1]),
              ("image_size", "uint", [1000, 750]), ("frame", "int", [1, 50]), ("disparity", "float", [0.2, 0.5]),
              ("color_space", "uchar", [0]), ("version", "uchar", [1, 5, 0])]
    back = ply.decode(make_ply(splat_columns(g), extra_elements=extras))
    assert back.focal_px == pytest.approx(1234.5) and back.image_size == (1000, 750)
    np.testing.assert_allclose(back.colors, g.colors, atol=2e-6)


# ---- generic 3DGS files ------------------------------------------------------------------------------


def inria_columns(g: G.Gaussians, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """INRIA order with normals and SH rest, as trained 3DGS scenes are written."""
    cols = splat_columns(g)
    out = {k: cols[k] for k in ("x", "y", "z")}
    out |= {"nx": np.zeros(len(g)), "ny": np.zeros(len(g)), "nz": np.full(len(g), np.nan)}  # ignored, even NaN
    out |= {k: cols[k] for k in ("f_dc_0", "f_dc_1", "f_dc_2")}
    rest = rng.normal(0, 0.1, size=(len(g), 3, 15))
    for c in range(3):
        for k in range(15):
            out[f"f_rest_{c * 15 + k}"] = rest[:, c, k]
    out |= {k: cols[k] for k in ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")}
    return out


def test_reads_inria_3dgs_with_sh_degree_3_and_ignores_normals():
    g = random_gaussians(300, photo=False)
    cols = inria_columns(g, np.random.default_rng(1))
    back = ply.decode(make_ply(cols, comments=("trained by 3DGS",)))
    assert back.sh_degree == 3 and back.focal_px is None
    stored = np.stack([cols[f"f_rest_{i}"] for i in range(45)], axis=1)  # channel-major: f_rest[c * 15 + k]
    expected_rest = stored.reshape(-1, 3, 15).transpose(0, 2, 1)
    np.testing.assert_allclose(back.sh_rest, expected_rest, rtol=1e-6)
    np.testing.assert_allclose(back.colors, g.colors, atol=2e-6)
    np.testing.assert_allclose(back.scales, g.scales, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_reads_any_property_order_and_encoding(fmt):
    g = random_gaussians(40, photo=False)
    cols = splat_columns(g)
    names = list(cols)[::-1]  # reversed order
    cols = {k: cols[k] for k in names} | {"confidence": np.arange(40.0)}
    types = {"x": "double", "y": "double", "z": "double", "confidence": "uchar"}
    back = ply.decode(make_ply(cols, fmt=fmt, types=types))
    np.testing.assert_allclose(back.means, g.means, rtol=1e-6)
    np.testing.assert_allclose(back.opacities, g.opacities, rtol=1e-5)
    np.testing.assert_allclose(back.colors, g.colors, atol=1e-5)
    np.testing.assert_allclose(back.quats, g.quats, rtol=1e-6)


def test_reads_crlf_ascii_header():
    g = random_gaussians(3, photo=False)
    data = make_ply(splat_columns(g), fmt="ascii")
    head, _, body = data.partition(b"end_header\n")
    back = ply.decode(head.replace(b"\n", b"\r\n") + b"end_header\r\n" + body)
    np.testing.assert_allclose(back.means, g.means, rtol=1e-6)


# ---- bad input: a PLYError that names the file and the problem, nothing half-read ----------------------


def good_bytes(n: int = 20) -> bytes:
    return ply.encode(random_gaussians(n), "sharp")


def with_header(data: bytes, old: bytes, new: bytes) -> bytes:
    head, sep, body = data.partition(b"end_header\n")
    assert old in head
    return head.replace(old, new) + sep + body


BAD_INPUTS = {
    "truncated": (lambda: good_bytes()[:-200], r"is truncated: element 'vertex' needs 1120 bytes"),
    "truncated header": (lambda: good_bytes()[:100], "has no 'end_header' line"),
    "count larger than data": (lambda: with_header(good_bytes(), b"vertex 20", b"vertex 21"), "is truncated"),
    "count smaller than data": (lambda: with_header(good_bytes(), b"vertex 20", b"vertex 19"),
                                "56 bytes more than its header describes"),
    "missing properties": (lambda: make_ply({k: v for k, v in splat_columns(random_gaussians(5)).items()
                                             if not k.startswith("scale")}),
                           r"lacks the splat properties scale_0, scale_1, scale_2 \(has: x, y, z, f_dc_0"),
    "list property": (lambda: with_header(good_bytes(), b"property float rot_3",
                                          b"property float rot_3\nproperty list uchar int vertex_indices"),
                      "has a list property 'vertex_indices' in element 'vertex'"),
    "unknown type": (lambda: with_header(good_bytes(), b"property float x", b"property float128 x"),
                     "has a property of unsupported type: 'property float128 x'"),
    "unknown format": (lambda: with_header(good_bytes(), b"binary_little_endian", b"binary_middle_endian"),
                       "unsupported format 'binary_middle_endian'"),
    "NaN and Inf": (lambda: make_ply(splat_columns(random_gaussians(5)) | {"x": np.array([np.nan, 0, 0, 0, 0]),
                                                                            "opacity": np.array([np.inf] * 5)}),
                    r"NaN/Inf values in 2 properties: x \(1\), opacity \(5\)"),
    "zero vertices": (lambda: make_ply({k: np.zeros(0) for k in ply.REQUIRED}), "has 0 vertices"),
    "no vertex element": (lambda: b"ply\nformat binary_little_endian 1.0\nelement face 0\nend_header\n",
                          "has no 'vertex' element"),
    "png file": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(100), "is not a PLY file"),
    "empty file": (lambda: b"", "is not a PLY file"),
    "malformed header line": (lambda: with_header(good_bytes(), b"element vertex 20", b"element vertex twenty"),
                              "malformed header line 3"),
    "wrong f_rest count": (lambda: make_ply(splat_columns(random_gaussians(5))
                                            | {f"f_rest_{i}": np.zeros(5) for i in range(4)}),
                           "has 4 f_rest_\\* properties"),
    "ascii short": (lambda: make_ply(splat_columns(random_gaussians(4)), fmt="ascii").rstrip().rpartition(b"\n")[0],
                    "ASCII values, its header describes 56"),
    "ascii not numbers": (lambda: make_ply(splat_columns(random_gaussians(2)), fmt="ascii")
                          .replace(b"end_header\n", b"end_header\nabc "),
                          "ASCII data that are not all numbers"),
    "bad color space": (lambda: good_bytes()[:-4] + b"\x07" + good_bytes()[-3:], "unknown color_space code 7"),
    "log scale overflow": (lambda: make_ply(splat_columns(random_gaussians(3)) | {"scale_0": np.full(3, 500.0)}),
                           r"scales has 0 NaN and 3 Inf values"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_plyerror_naming_file_and_problem(tmp_path, case):
    make, message = BAD_INPUTS[case]
    path = tmp_path / f"{case.replace(' ', '_')}.ply"
    path.write_bytes(make())
    with pytest.raises(PLYError, match=message) as info:
        ply.read_ply(path)
    assert str(info.value).startswith(f"PLY file '{path}': ")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(PLYError, match="no such file"):
        ply.read_ply(tmp_path / "nope.ply")
    with pytest.raises(PLYError, match="is a folder, not a file"):
        ply.read_ply(tmp_path)


def test_unreadable_path(tmp_path):
    (tmp_path / "file.ply").write_bytes(good_bytes())
    with pytest.raises(PLYError, match="cannot be read"):
        ply.read_ply(tmp_path / "file.ply" / "inside.ply")  # a file is not a folder


def test_write_failures_leave_existing_files_untouched(tmp_path):
    target = tmp_path / "scene.ply"
    target.write_bytes(b"precious")
    with pytest.raises(GaussiansError):
        ply.write_ply(random_gaussians(5, photo=False), target, layout="sharp")
    assert target.read_bytes() == b"precious"
    with pytest.raises(PLYError, match=r"folder .* does not exist"):
        ply.write_ply(random_gaussians(5), tmp_path / "missing" / "scene.ply")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.ply"]  # no temporary files left
    ply.write_ply(random_gaussians(5), target)
    assert len(ply.read_ply(target)) == 5


def test_large_files_convert_on_threads_and_still_report_nan(tmp_path):
    n = ply._THREADED_ROWS + 10
    g = random_gaussians(n, sh_degree=1)
    data = ply.encode(g, "sharp")
    assert_close(ply.decode(data), g)
    cols = splat_columns(g) | {"rot_2": np.where(np.arange(n) % 1000 == 0, np.nan, g.quats[:, 2])}
    path = tmp_path / "big.ply"
    path.write_bytes(make_ply(cols))
    with pytest.raises(PLYError, match=rf"NaN/Inf values in 1 properties: rot_2 \({(n + 999) // 1000}\)"):
        ply.read_ply(path)


def test_sharp_files_of_a_full_prediction_get_their_depth_layers_back():
    n = 2 * G.SHARP_LAYER_SIZE
    g = G.Gaussians(means=np.zeros((n, 3), np.float32), scales=np.full((n, 3), 0.01, np.float32),
                    quats=np.tile(np.float32([1, 0, 0, 0]), (n, 1)), colors=np.full((n, 3), 0.5, np.float32),
                    opacities=np.full(n, 0.5, np.float32), focal_px=500.0, image_size=(640, 480))
    back = ply.decode(ply.encode(g, "sharp"))
    assert back.layers is not None and np.count_nonzero(back.layers) == G.SHARP_LAYER_SIZE
    assert ply.decode(ply.encode(g, "3dgs")).layers is None  # a bare 3DGS file may be anything


# ---- headers that look legal but are inconsistent -------------------------------------------------------


def header_only(lines: list[str], body: bytes = b"") -> bytes:
    return ("\n".join(["ply", *lines, "end_header"]) + "\n").encode() + body


VERTEX = ["element vertex 1", *[f"property float {p}" for p in ply.REQUIRED]]
LE = "format binary_little_endian 1.0"
INCONSISTENT = {
    "property twice": ([LE, *VERTEX, "property float x"],
                       "declares property 'x' twice in element 'vertex' \\(line 18\\)"),
    "element twice": ([LE, *VERTEX, "element vertex 0"], "declares element 'vertex' twice"),
    "rows without properties": ([LE, *VERTEX, "element face 3"], "declares 3 rows of element 'face' but no properties"),
    "last element without properties": ([LE, "element face 3"], "declares 3 rows of element 'face'"),
    "negative count": ([LE, "element vertex -1"], "declares a negative count -1 for element 'vertex'"),
    "format twice": ([LE, LE, *VERTEX], "has a second 'format' line \\(line 3\\)"),
    "format after elements": ([*VERTEX, LE], "has its 'format' line after an element"),
    "version 2.0": (["format ascii 2.0", *VERTEX], "has PLY version '2.0'; only version 1.0 exists"),
    "property before element": ([LE, "property float x", *VERTEX], "has a property before any element"),
    "odd bytes in a name": ([LE, *VERTEX, "property float a\x7fb"], "has a property name that is not printable"),
    "odd bytes in an element name": ([LE, "element v\x01 0"], "has an element name that is not printable"),
    "form feed is not a line break": ([LE, "comment a\x0cformat ascii 1.0", *VERTEX], None),
}


@pytest.mark.parametrize("case", sorted(INCONSISTENT))
def test_inconsistent_headers_raise_plyerror_naming_file(tmp_path, case):
    lines, message = INCONSISTENT[case]
    path = tmp_path / "a.ply"
    row = np.zeros(len(ply.REQUIRED), "<f4")
    row[ply.REQUIRED.index("rot_0")] = 1  # one valid splat
    path.write_bytes(header_only(lines, row.tobytes()))
    if message is None:  # a comment that holds a form feed stays a comment
        assert len(ply.read_ply(path)) == 1
        return
    with pytest.raises(PLYError, match=message) as info:
        ply.read_ply(path)
    assert str(info.value).startswith(f"PLY file '{path}': ")


def test_counts_beyond_the_file_allocate_nothing():
    for count in (10**9, 10**30):
        data = header_only([LE, f"element vertex {count}", *VERTEX[1:]], bytes(56))
        with pytest.raises(PLYError, match="is truncated: element 'vertex' needs"):
            ply.decode(data)
        data = header_only(["format ascii 1.0", f"element vertex {count}", *VERTEX[1:]], b"0 " * 14)
        with pytest.raises(PLYError, match=f"has 14 ASCII values, its header describes {count * 14}"):
            ply.decode(data)


def test_ascii_integers_must_fit_their_type():
    g = random_gaussians(2, photo=False)
    for size, bad in [("-1 480", "-1"), ("640 4294967296", "4.29497e\\+09"), ("640.5 480", "640.5"),
                      ("nan 480", "nan")]:
        data = make_ply(splat_columns(g), fmt="ascii", extra_elements=[("image_size", "uint", [0, 0])])
        data = data.rstrip().rpartition(b"\n")[0] + f"\n{size}\n".encode()
        with pytest.raises(PLYError, match=f"ASCII value {bad} for the uint32 property 'image_size'"):
            ply.decode(data)


# ---- ml-sharp's extra elements: one list of counts, extreme values -------------------------------------


def test_sharp_extras_is_the_one_place_the_counts_live(monkeypatch):
    data = good_bytes()
    assert ply.decode(data).focal_px is not None
    changed = tuple((name, t, 8 if name == "intrinsic" else count) for name, t, count in ply.SHARP_EXTRAS)
    monkeypatch.setattr(ply, "SHARP_EXTRAS", changed)
    with pytest.raises(PLYError, match="has an 'intrinsic' element of 9 values; ml-sharp writes 8"):
        ply.decode(data)


def extreme(focal: float, size: tuple[float, float], types: tuple[str, str] = ("float", "uint")) -> bytes:
    return make_ply(splat_columns(random_gaussians(4, photo=False)), extra_elements=[
        ("intrinsic", types[0], [focal, 0, 1, 0, focal, 1, 0, 0, 1]), ("image_size", types[1], list(size))])


def test_extreme_but_valid_metadata_is_read_exactly_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow and cast warnings fail the test
        g = ply.decode(extreme(1e30, (4294967295, 1)))
        assert g.image_size == (4294967295, 1) and type(g.image_size[0]) is int
        assert g.focal_px == pytest.approx(1e30, rel=1e-7)
        back = ply.decode(ply.encode(g, "sharp"))
    assert (back.image_size, back.focal_px) == (g.image_size, g.focal_px)


@pytest.mark.parametrize(("focal", "size", "types", "message"), [
    (1e300, (640, 480), ("double", "uint"), "focal length of 1e\\+300 px .* more than a 32-bit float holds"),
    (500, (1e10, 1), ("float", "double"), r"image_size' element \[10000000000.0, 1.0\] beyond 4294967295"),
    (500, (640.5, 480), ("float", "double"), "invalid 'image_size' element"),
    (np.inf, (640, 480), ("float", "uint"), "invalid 'intrinsic' element"),
])
def test_metadata_beyond_what_ml_sharp_stores_is_refused(focal, size, types, message):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PLYError, match=message):
            ply.decode(extreme(focal, size, types))


def test_doubles_beyond_float32_and_overflowing_activations_are_refused_without_warnings():
    import warnings

    g = random_gaussians(3, photo=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PLYError, match=r"NaN/Inf values in 1 properties: y \(3\) \(or values too large"):
            ply.decode(make_ply(splat_columns(g) | {"y": np.full(3, 1e300)}, types={"y": "double"}))
        with pytest.raises(PLYError, match="colors has 0 NaN and 3 Inf values"):
            ply.decode(make_ply(splat_columns(g) | {"f_dc_0": np.full(3, 1e30)}))


def test_the_sharp_layout_refuses_metadata_it_cannot_store():
    with pytest.raises(GaussiansError, match="do not fit"):
        ply.encode(random_gaussians(3).replace(image_size=(2**32, 1)), "sharp")
    with pytest.raises(GaussiansError, match="do not fit"):
        ply.encode(random_gaussians(3).replace(focal_px=1e300), "sharp")


# ---- paths that are not files, outputs that cannot be written ------------------------------------------


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_neither_read_nor_replaced(tmp_path):
    import os

    os.mkfifo(tmp_path / "a.ply")
    with pytest.raises(PLYError, match=r"a.ply': is a named pipe, not a file$"):
        ply.read_ply(tmp_path / "a.ply")
    with pytest.raises(PLYError, match=r"a.ply': cannot be written: it is a named pipe, not a file$"):
        ply.write_ply(random_gaussians(3), tmp_path / "a.ply")


def test_outputs_that_cannot_be_written_name_the_path(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "out").mkdir()
    g = random_gaussians(3)
    for target, message in [(tmp_path / "out", "it is a folder; give the name of the .ply file"),
                            (tmp_path / "notes.txt" / "a.ply", f"'{tmp_path / 'notes.txt'}' is a file, not a folder"),
                            (tmp_path / "notes.txt" / "x" / "a.ply", "notes.txt' is a file, not a folder"),
                            (f"{tmp_path / 'new'}/", "the name ends in a path separator"),
                            (tmp_path / ("p" * 300 + ".ply"), "File name too long")]:
        with pytest.raises(PLYError) as info:
            ply.write_ply(g, target)
        assert str(info.value).startswith(f"PLY file '{target}': cannot be written") and message in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "out"] and not any((tmp_path / "out").iterdir())


@pytest.mark.skipif(getattr(__import__("os"), "geteuid", lambda: -1)() == 0, reason="root writes anywhere")
def test_a_read_only_folder(tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        with pytest.raises(PLYError, match=r"cannot be written: no permission to write in folder"):
            ply.write_ply(random_gaussians(3), tmp_path / "ro" / "a.ply")
        assert not any((tmp_path / "ro").iterdir())
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_long_names_and_umask_permissions(tmp_path):
    import os
    import stat

    name = "p" * 246 + ".ply"  # 250 bytes: ".{name}.XXXXXXXX.tmp" would exceed 255
    old = os.umask(0o027)
    try:
        target = ply.write_ply(random_gaussians(5), tmp_path / name)
    finally:
        os.umask(old)
    assert len(ply.read_ply(target)) == 5 and [p.name for p in tmp_path.iterdir()] == [name]
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # not mkstemp's 0600


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    import os

    target = tmp_path / "scene.ply"
    target.write_bytes(b"precious")

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ply.write_ply(random_gaussians(5), target)
    assert [p.name for p in tmp_path.iterdir()] == ["scene.ply"] and target.read_bytes() == b"precious"
