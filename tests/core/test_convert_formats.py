"""``sharp convert`` and ``predict --format`` choose formats by extension or name, never silently."""

from __future__ import annotations

import numpy as np
import pytest

from sharp_addon import formats, ply
from sharp_addon.cli import build_parser, main
from tests.support.builders import random_gaussians


def test_an_extension_that_names_no_format_is_an_error_and_writes_nothing(tmp_path, capsys):
    src = ply.write_ply(random_gaussians(10), tmp_path / "in.ply")
    assert main(["convert", str(src), str(tmp_path / "out.xyz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: splat file '{tmp_path / 'out.xyz'}': has .xyz, which names no splat format")
    assert ".spz" in err and ".compressed.ply" in err and "--to" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ply"]


def test_to_names_the_format_whatever_the_extension(tmp_path, capsys):
    g = random_gaussians(10)
    src = ply.write_ply(g, tmp_path / "in.ply")
    assert main(["convert", str(src), str(tmp_path / "out.bin"), "--to", "ply", "--layout", "sharp"]) == 0
    again = ply.read_ply(tmp_path / "out.bin")
    assert len(again) == 10 and again.focal_px == pytest.approx(g.focal_px)


def test_the_longest_extension_wins_and_case_does_not_matter():
    assert formats.format_for("a/scene.compressed.ply").name == "compressed-ply"
    assert formats.format_for("a/scene.PLY").name == "ply"
    assert formats.format_for("x.SPZ").name == "spz"
    assert formats.format_for("x.bin", "glb").name == "glb"


@pytest.mark.parametrize("text, kinds", [("ply", ("ply",)), ("both", ("ply", "blend")),
                                         ("spz,blend", ("spz", "blend")), ("SOG, ply,sog", ("sog", "ply")),
                                         ("both,glb", ("ply", "blend", "glb"))])
def test_predict_format_takes_a_list_of_outputs(text, kinds):
    args = build_parser().parse_args(["predict", "-i", "x.jpg", "-o", "out", "--format", text])
    assert args.format == kinds


def test_an_unknown_predict_format_is_a_bad_argument(capsys):
    assert main(["predict", "-i", "x.jpg", "-o", "out", "--format", "spz,obj"]) == 2
    err = capsys.readouterr().err
    assert "argument --format: 'obj' is not one of ply, blend, both, compressed-ply, spz, glb, sog, splat, usd" in err


def test_what_a_format_cannot_keep_is_said(tmp_path):
    g = random_gaussians(10, sh_degree=3)
    assert formats.what_is_dropped(g, formats.format_named("ply")) == []
    dropped = formats.what_is_dropped(g, formats.format_named("splat"))
    assert any("view-dependent colour (SH degree 3)" in d for d in dropped)
    assert any("photo's camera" in d for d in dropped)


@pytest.mark.parametrize("name, magic", [("spz", b"\x1f\x8b"), ("glb", b"glTF"), ("ply", b"ply\n")])
def test_the_format_follows_the_extension_and_reads_back(tmp_path, capsys, name, magic):
    """``convert in.ply out.spz`` once wrote a PLY under the .spz name: now each extension gets its format."""
    g = random_gaussians(50, sh_degree=1)
    src = ply.write_ply(g, tmp_path / "in.ply")
    out = tmp_path / f"out.{name}"
    assert main(["convert", str(src), str(out)]) == 0
    assert out.read_bytes()[:4].startswith(magic)
    back = formats.read_splats(out)
    np.testing.assert_allclose(back.means, g.means, atol=1e-3)
    said = capsys.readouterr()
    assert f"wrote {out}: 50 of 50 Gaussians" in said.out
    assert ("photo's camera" in said.err) == (name == "spz")  # SPZ keeps no camera, and says so
    assert main(["info", str(out)]) == 0 and "50 Gaussians, SH degree 1" in capsys.readouterr().out


def test_spz_version_4_on_request(tmp_path):
    src = ply.write_ply(random_gaussians(20), tmp_path / "in.ply")
    assert main(["convert", str(src), str(tmp_path / "v4.spz"), "--spz-version", "4"]) == 0
    assert (tmp_path / "v4.spz").read_bytes()[:4] == b"NGSP"


def test_an_unzipped_sog_is_read_through_its_meta_json(tmp_path, capsys):
    from sharp_addon.formats import sog

    g = random_gaussians(300)
    sog.write_folder(g, tmp_path / "scene")
    back = formats.read_splats(tmp_path / "scene" / "meta.json")
    assert len(back) == 300 and formats.format_for(tmp_path / "scene" / "meta.json").name == "sog"
    assert main(["convert", str(tmp_path / "scene" / "meta.json"), str(tmp_path / "out.splat")]) == 0
    assert (tmp_path / "out.splat").stat().st_size == 300 * 32


def test_convert_web_writes_a_page_folder_and_needs_some_output(tmp_path, capsys):
    g = random_gaussians(200)
    src = ply.write_ply(g, tmp_path / "in.ply")
    assert main(["convert", str(src), "--web", str(tmp_path / "site"), "--keep-fraction", "0.5"]) == 0
    assert "a web page of" in capsys.readouterr().out
    page = (tmp_path / "site" / "index.html").read_text()
    assert "<title>in</title>" in page and (tmp_path / "site" / "viewer" / "spark" / "LICENSE").is_file()
    assert 0 < len(formats.read_splats(tmp_path / "site" / "scene.spz")) < 200
    assert main(["convert", str(src)]) == 1
    assert "convert needs an output file, --web DIR, or both" in capsys.readouterr().err
