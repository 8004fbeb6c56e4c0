"""SOG (PlayCanvas, version 2): our writer and reader (zip and folder), and PlayCanvas splat-transform
both ways.

Quantisation of the format: positions take 16 bits of v' = sign(v) ln(|v| + 1) between meta's mins
and maxs, so v is at most (|v| + 1) span / (2 65535) off (dv / dv' = |v| + 1); the rotation keeps
three components c of the unit quaternion as bytes 255 (c sqrt(2)/2 + 1/2), each at most
sqrt(2) / 510 off, the quaternion d = 2 sqrt(3) sqrt(2) / 510 and the angle 4 asin(d / 2) = 0.0192
rad; the opacity is a byte (1/510); ln(scale), f_dc and the SH coefficients each become the nearest
of the 256 entries of their codebook (in meta.json); each splat's SH vector is first replaced by
its palette centroid (k-means: no bound, only a fit).
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from sharp_addon import formats, ply
from sharp_addon.errors import SplatFileError
from sharp_addon.formats import sog
from sharp_addon.formats.morton import morton_order
from sharp_addon.gaussians import SH_C0
from tests.support.builders import random_gaussians
from tests.support.web_formats import log_ratio, matching, refused, rotation_angles, splat_transform, srgb

CPU = ("-g", "cpu", "--max-workers", "0")  # its SH k-means off the GPU, no worker threads (faster here)
D = 2 * np.sqrt(3) * np.sqrt(2) / 510
ANGLE = 4 * np.arcsin(D / 2) + 1e-5


def meta_of(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return json.loads(zf.read("meta.json"))


def nearest_error(codebook, values: np.ndarray) -> np.ndarray:
    """The distance of each value to its nearest codebook entry: the least any codebook reading can be off."""
    c = np.asarray(codebook, np.float64)
    return np.abs(np.asarray(values, np.float64)[..., None] - c).min(axis=-1)


def assert_within_quantisation(back, want, meta, means_steps=0.5, angle=ANGLE, opacity_step=1 / 510):
    """``back`` read from a SOG of ``want`` (both in file order) whose meta.json is ``meta``; the
    ``*_step`` arguments widen the bounds for a writer that truncates where ours rounds."""
    assert len(back) == len(want)
    v = np.abs(want.means.astype(np.float64))
    span = np.array(meta["means"]["maxs"]) - np.array(meta["means"]["mins"])
    assert np.all(np.abs(back.means - want.means) <= (v + 1) * span * means_steps / 65535 * 1.0001 + 1e-6 * (v + 1))
    logs = np.log(want.scales.astype(np.float64))
    assert np.all(log_ratio(back.scales, want.scales) <= nearest_error(meta["scales"]["codebook"], logs) + 1e-5)
    f_dc = (srgb(want) - 0.5) / SH_C0
    assert np.all(np.abs(srgb(back) - srgb(want)) <= SH_C0 * nearest_error(meta["sh0"]["codebook"], f_dc) + 1e-5)
    assert np.abs(back.opacities - want.opacities).max() <= opacity_step + 1e-6
    assert rotation_angles(back.quats, want.quats).max() <= angle


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_round_trip_stays_within_the_quantisation_of_each_attribute(tmp_path, sh_degree):
    g = random_gaussians(3000, seed=20 + sh_degree, sh_degree=sh_degree)
    path = formats.write_splats(g, tmp_path / "scene.sog", sh_palette=len(g))  # a centroid per splat: exact SH
    data = path.read_bytes()
    back = formats.read_splats(path)
    want = g.subset(morton_order(g.means))
    meta = meta_of(data)
    assert_within_quantisation(back, want, meta)
    assert back.color_space == "srgb" and back.focal_px is None
    if sh_degree:
        assert meta["shN"]["bands"] == sh_degree and meta["shN"]["count"] == len(g)
        assert np.all(np.abs(back.sh_rest - want.sh_rest) <= nearest_error(meta["shN"]["codebook"], want.sh_rest)
                      + 1e-6)
    else:
        assert back.sh_rest is None and "shN" not in meta


def test_colours_of_fully_transparent_splats_survive_in_the_webp():
    g = random_gaussians(400, seed=29)
    g = g.replace(opacities=np.where(np.arange(400) < 100, 0, g.opacities).astype(np.float32))  # alpha 0 texels
    data = sog.encode(g)
    back = sog.decode(data, "x.sog")
    want = g.subset(morton_order(g.means))
    assert np.count_nonzero(back.opacities == 0) == 100
    assert_within_quantisation(back, want, meta_of(data))  # colour under alpha 0 too: Pillow's exact=True


@pytest.mark.parametrize("sh_degree", [1, 3])
def test_the_sh_palette_fits_the_coefficients(sh_degree):
    g = random_gaussians(6000, seed=30, sh_degree=sh_degree)
    data = sog.encode(g)
    meta = meta_of(data)
    assert meta["shN"]["count"] == 4096  # 1024 * 2^floor(log2(6000 / 1024)), PlayCanvas' size
    back = sog.decode(data, "x.sog")
    want = g.subset(morton_order(g.means))
    error = np.sqrt(np.mean((back.sh_rest - want.sh_rest) ** 2))
    # random coefficients have no structure to find: 4096 centroids for 6000 vectors still halve the
    # error of the best single centroid (the mean, about the coefficients' own RMS)
    assert error < 0.5 * np.sqrt(np.mean(want.sh_rest**2))
    assert sog.encode(g) == data  # deterministic


def test_the_zip_holds_playcanvas_names_and_texture_sizes():
    g = random_gaussians(1000, seed=31, sh_degree=1)
    data = sog.encode(g, sh_palette=300)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("meta.json"))
        from PIL import Image

        sizes = {n: Image.open(io.BytesIO(zf.read(n))).size for n in names if n.endswith(".webp")}
    assert names[0] == "meta.json" and meta["version"] == 2 and meta["count"] == 1000
    assert sizes.pop("shN_centroids.webp") == (64 * 3, 5)  # 300 centroids, 64 per row of 3 texels
    assert set(sizes) == {"means_l.webp", "means_u.webp", "quats.webp", "scales.webp", "sh0.webp", "shN_labels.webp"}
    assert set(sizes.values()) == {(32, 32)}  # ceil(sqrt(1000) / 4) * 4, ceil(1000 / 32 / 4) * 4
    assert len(meta["scales"]["codebook"]) == len(meta["sh0"]["codebook"]) == len(meta["shN"]["codebook"]) == 256


def test_a_folder_reads_as_the_zip_does(tmp_path):
    g = random_gaussians(500, seed=32, sh_degree=2)
    meta_path = sog.write_folder(g, tmp_path / "scene", sh_palette=200)
    assert meta_path == tmp_path / "scene" / "meta.json" and len(list((tmp_path / "scene").iterdir())) == 8
    from_folder = sog.decode_folder(tmp_path / "scene")
    from_zip = sog.decode(sog.encode(g, sh_palette=200), "x.sog")
    for name in ("means", "scales", "quats", "colors", "opacities", "sh_rest"):
        np.testing.assert_array_equal(getattr(from_folder, name), getattr(from_zip, name))
    np.testing.assert_array_equal(sog.decode_folder(meta_path).means, from_zip.means)


@pytest.mark.parametrize("sh_degree", [0, 2])
def test_splat_transform_reads_our_values(tmp_path, sh_degree):
    g = random_gaussians(2000, seed=33, sh_degree=sh_degree)
    ours = formats.write_splats(g, tmp_path / "ours.sog")
    mine = formats.read_splats(ours)
    for source in (ours, sog.write_folder(g, tmp_path / "folder")):
        theirs = ply.read_ply(splat_transform(source, tmp_path / "theirs.ply"))  # in the file's order
        assert_within_quantisation(theirs, g.subset(morton_order(g.means)), meta_of(ours.read_bytes()))
        np.testing.assert_allclose(theirs.means, mine.means, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(theirs.scales, mine.scales, rtol=1e-5)
        np.testing.assert_allclose(theirs.colors, mine.colors, atol=1e-5)
        np.testing.assert_allclose(theirs.opacities, mine.opacities, atol=2e-6)  # its logit clamps by 1e-6
        assert rotation_angles(theirs.quats, mine.quats).max() < 1e-5
        if sh_degree:
            np.testing.assert_allclose(theirs.sh_rest, mine.sh_rest, atol=1e-6)


@pytest.mark.parametrize("sh_degree", [0, 1])
def test_we_read_what_splat_transform_writes(tmp_path, sh_degree):
    g = random_gaussians(2000, seed=34, sh_degree=sh_degree)
    source = ply.write_ply(g, tmp_path / "source.ply", layout="3dgs")
    theirs = splat_transform(source, tmp_path / "theirs.sog", *CPU)
    back = formats.read_splats(theirs)
    want = g.subset(matching(back.means, g.means, tolerance=0.01))  # its own Morton order
    # it truncates where we round: a whole step for positions, rotation bytes and the opacity
    assert_within_quantisation(back, want, meta_of(theirs.read_bytes()), means_steps=1.0, angle=2 * ANGLE,
                               opacity_step=1 / 255)
    if sh_degree:
        error = np.sqrt(np.mean((back.sh_rest - want.sh_rest) ** 2))
        assert error < 0.5 * np.sqrt(np.mean(want.sh_rest**2))
    if not sh_degree:  # its folder of meta.json and images: the same splats
        folder = splat_transform(source, tmp_path / "folder" / "meta.json", *CPU)
        np.testing.assert_array_equal(sog.decode_folder(folder).means, back.means)


def test_writing_needs_at_least_one_splat():
    g = random_gaussians(1)
    with pytest.raises(SplatFileError, match="1 to about 268 million splats"):
        sog.encode(g.subset(np.zeros(1, bool)))


# ---- bad input ------------------------------------------------------------------------------------


def members(sh_degree: int = 1) -> dict[str, bytes]:
    return sog.encode_members(random_gaussians(100, seed=40, sh_degree=sh_degree), sh_palette=50)


def zipped(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def with_meta(change) -> bytes:
    files = members()
    meta = json.loads(files["meta.json"])
    change(meta)
    files["meta.json"] = json.dumps(meta).encode()  # NaN and Infinity as JSON's extension writes them
    return zipped(files)


def with_image(name: str, rgba: np.ndarray | None = None, raw: bytes | None = None, **save) -> bytes:
    from PIL import Image

    files = members()
    if raw is None:
        out = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(out, format="WEBP", **({"lossless": True, "exact": True} | save))
        raw = out.getvalue()
    files[name] = raw
    return zipped(files)


def with_texels(name: str, edit) -> bytes:
    from PIL import Image

    rgba = np.array(Image.open(io.BytesIO(members()[name])).convert("RGBA"))
    edit(rgba)
    return with_image(name, rgba)


def understated_size() -> bytes:
    """A member whose zip headers say 100 bytes while it inflates to 16 MB."""
    data = bytearray(zipped(members() | {"means_l.webp": bytes(16 << 20)}, zipfile.ZIP_DEFLATED))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("means_l.webp")
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(b"means_l.webp"))
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # uncompressed size, central directory
    data[info.header_offset + 22 : info.header_offset + 26] = (100).to_bytes(4, "little")  # and local header
    return bytes(data)


def truncated() -> bytes:
    data = zipped(members())
    return data[: len(data) // 2]


def delete(path: str):
    def change(meta):
        *parents, last = path.split(".")
        for key in parents:
            meta = meta[key]
        del meta[last]
    return change


def put(path: str, value):
    def change(meta):
        *parents, last = path.split(".")
        for key in parents:
            meta = meta[key]
        meta[last] = value
    return change


BAD = {
    "empty": (lambda: b"", ["not a readable zip archive"]),
    "not a zip": (lambda: ply.encode(random_gaussians(10), "3dgs"), ["not a readable zip archive"]),
    "truncated": (truncated, ["zip archive"]),
    "no meta.json": (lambda: zipped({k: v for k, v in members().items() if k != "meta.json"}), ["one meta.json"]),
    "meta.json not JSON": (lambda: zipped(members() | {"meta.json": b"{not json"}), ["not JSON"]),
    "meta.json a list": (lambda: zipped(members() | {"meta.json": b"[1, 2]"}), ["not a JSON object"]),
    "version 1": (lambda: with_meta(delete("version")), ["version 1", "splat-transform"]),
    "version 3": (lambda: with_meta(put("version", 3)), ["version 3"]),
    "count missing": (lambda: with_meta(delete("count")), ["lacks 'count'"]),
    "count zero": (lambda: with_meta(put("count", 0)), ["'count' = 0"]),
    "count a string": (lambda: with_meta(put("count", "100")), ["'count'"]),
    "a billion splats declared": (lambda: with_meta(put("count", 10**9)), ["1,000,000,000", "more than"]),
    "more splats than texels": (lambda: with_meta(put("count", 2000)), ["means_l.webp", "need"]),
    "means mins missing": (lambda: with_meta(delete("means.mins")), ["lacks 'means.mins'"]),
    "scales section missing": (lambda: with_meta(delete("scales")), ["lacks 'scales.codebook'"]),
    "codebook of 255": (lambda: with_meta(lambda m: m["sh0"]["codebook"].pop()), ["sh0.codebook", "256 numbers"]),
    "codebook of strings": (lambda: with_meta(put("scales.codebook", ["1"] * 256)), ["scales.codebook"]),
    "NaN in means mins": (lambda: with_meta(put("means.mins", [float("nan"), 0, 0])), ["NaN", "means.mins"]),
    "Infinity in a codebook": (lambda: with_meta(lambda m: m["scales"]["codebook"].__setitem__(7, float("inf"))),
                               ["infinite", "scales.codebook"]),
    "huge codebook value": (lambda: with_meta(lambda m: m["scales"]["codebook"].__setitem__(7, 1e300)),
                            ["out-of-range", "scales.codebook"]),
    "integer beyond any float": (lambda: with_meta(lambda m: m["means"]["maxs"].__setitem__(0, 10**400)),
                                 ["means.maxs"]),
    "image missing": (lambda: zipped({k: v for k, v in members().items() if k != "quats.webp"}), ["lacks quats.webp"]),
    "image outside the folder": (lambda: with_meta(put("quats.files", ["../quats.webp"])), ["plain file names"]),
    "files not a list": (lambda: with_meta(put("sh0.files", "sh0.webp")), ["'sh0.files'"]),
    "zip bomb": (lambda: zipped(members() | {"means_l.webp": bytes(16 << 20)}, zipfile.ZIP_DEFLATED),
                 ["means_l.webp", "16,777,216", "zip bomb"]),
    "zip bomb with understated size": (understated_size, ["means_l.webp"]),
    "corrupted image": (lambda: with_image("scales.webp", raw=members()["scales.webp"][:40] + bytes(200)),
                        ["scales.webp", "not a readable WebP"]),
    "not an image": (lambda: with_image("sh0.webp", raw=b"RIFF\x10\0\0\0WEBPjunkjunkjunk"), ["sh0.webp"]),
    "a PNG for an image": (lambda: with_image("sh0.webp", raw=png()), ["sh0.webp", "not a readable WebP"]),
    "image far larger than the count needs": (
        lambda: with_image("means_u.webp", np.zeros((4096, 4096, 4), np.uint8)), ["4096 x 4096", "need"]),
    "image too small": (lambda: with_image("means_u.webp", np.zeros((4, 4, 4), np.uint8)), ["4 x 4"]),
    "lossy image": (lambda: with_image("sh0.webp", np.zeros((12, 12, 4), np.uint8), lossless=False, quality=90),
                    ["lossy"]),
    "rotation tags out of range": (lambda: with_texels("quats.webp", lambda a: a.__setitem__((0, 0, 3), 17)),
                                   ["tag", "252..255"]),
    "SH labels beyond the palette": (lambda: with_texels("shN_labels.webp", lambda a: a.__setitem__((0, 0, 1), 9)),
                                     ["SH labels beyond"]),
    "SH degree 4": (lambda: with_meta(put("shN.bands", 4)), ["shN.bands 4"]),
    "palette beyond 16 bits": (lambda: with_meta(put("shN.count", 70000)), ["70,000"]),
    "centroid image of the wrong width": (
        lambda: with_meta(put("shN.bands", 2)), ["shN_centroids.webp", "512 texels wide"]),
}


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.zeros((12, 12, 4), np.uint8), "RGBA").save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("case", BAD)
def test_bad_files_give_one_error_naming_the_file(tmp_path, case):
    make, words = BAD[case]
    path = tmp_path / "bad.sog"
    path.write_bytes(make())
    refused(path, *words)


FOLDER_BAD = {
    "no meta.json": (lambda d: None, ["no meta.json"]),
    "image missing": (lambda d: (d / "scales.webp").unlink(), ["lacks scales.webp"]),
    "image a folder": (lambda d: ((d / "scales.webp").unlink(), (d / "scales.webp").mkdir()), ["scales.webp"]),
    "image far larger than the count needs": (lambda d: (d / "quats.webp").write_bytes(bytes(1 << 20)),
                                              ["quats.webp", "1,048,576", "more than"]),
    "image outside the folder": (lambda d: (d / "meta.json").write_text(
        (d / "meta.json").read_text().replace('"quats.webp"', '"../quats.webp"')), ["plain file names"]),
}


@pytest.mark.parametrize("case", FOLDER_BAD)
def test_bad_folders_give_one_error_naming_meta_json(tmp_path, case):
    change, words = FOLDER_BAD[case]
    folder = tmp_path / "scene"
    if case == "no meta.json":
        folder.mkdir()
    else:
        sog.write_folder(random_gaussians(100, seed=41), folder)
        change(folder)
    with pytest.raises(SplatFileError) as caught:
        sog.decode_folder(folder)
    message = str(caught.value)
    assert str(folder / "meta.json") in message and all(w in message for w in words), message
    error = caught.value
    assert (error.__cause__ or (None if error.__suppress_context__ else error.__context__)) is None
