"""The command line: ``python -m sharp_addon`` / ``blender -c sharp`` share ``cli.main``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sharp_addon import ply
from sharp_addon.cli import main
from tests.support.builders import random_gaussians

ROOT = Path(__file__).resolve().parents[2]


def test_info_describes_a_file(tmp_path, capsys):
    path = ply.write_ply(random_gaussians(100), tmp_path / "scene.ply")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "100 Gaussians, SH degree 0, colour encoding srgb" in out
    assert "photo: 640 x 480 px, focal length 554.70 px" in out


def test_convert_writes_plain_3dgs_and_filters(tmp_path, capsys):
    g = random_gaussians(4000)
    src = ply.write_ply(g, tmp_path / "in.ply")
    assert main(["convert", str(src), str(tmp_path / "out.ply"), "--min-opacity", "0.5", "--keep-fraction", "0.5"]) == 0
    out = ply.read_ply(tmp_path / "out.ply")
    expected = g.drop_transparent(0.5).decimate(0.5)
    assert len(out) == len(expected) and out.focal_px is None  # 3dgs layout: vertex element only
    np.testing.assert_array_equal(out.means, expected.means)
    assert b"element intrinsic" not in (tmp_path / "out.ply").read_bytes()[:2000]
    assert f"{len(expected)} of 4000 Gaussians, layout 3dgs" in capsys.readouterr().out


def test_errors_are_one_line_on_stderr_with_status_1(tmp_path, capsys):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"not a ply")
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: PLY file '{bad}': is not a PLY file (it does not start with 'ply')\n"
    out = tmp_path / "out.ply"
    assert main(["convert", str(ply.write_ply(random_gaussians(10), tmp_path / "in.ply")), str(out),
                 "--keep-fraction", "0"]) == 1
    assert "no Gaussians left" in capsys.readouterr().err and not out.exists()


def test_bad_arguments_give_status_2(capsys):
    assert main(["convert"]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["--help"]) == 0
    assert "info" in capsys.readouterr().out


def test_python_dash_m_entry_point(tmp_path):
    path = ply.write_ply(random_gaussians(7), tmp_path / "s.ply")
    result = subprocess.run([sys.executable, "-m", "sharp_addon", "info", str(path)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "7 Gaussians" in result.stdout, result.stderr


def test_check_names_a_missing_checkpoint(tmp_path, capsys):
    assert main(["check", "--checkpoint", str(tmp_path / "sharp.pt")]) == 1
    assert f"Checkpoint not found: {tmp_path / 'sharp.pt'}" in capsys.readouterr().out


@pytest.mark.torch
def test_check_says_how_sharp_would_run_here_and_why(tmp_path, capsys, monkeypatch):
    from sharp_addon import devices

    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))  # an Ice Lake
    main(["check", "--checkpoint", str(tmp_path / "sharp.pt"), "--device", "cpu"])
    assert ("SHARP would run on the CPU in float32 (this CPU has no native bfloat16 (AVX512_BF16 or AMX)"
            in capsys.readouterr().out)
    main(["check", "--checkpoint", str(tmp_path / "sharp.pt"), "--device", "cpu", "--precision", "bf16"])
    assert "SHARP would run on the CPU in bfloat16 (as asked)" in capsys.readouterr().out


@pytest.mark.torch
def test_predict_writes_one_sharp_ply_per_photo(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (80, 60), (120, 60, 30)).save(photos / "a.png")
    Image.new("RGB", (40, 50), (10, 200, 30)).save(photos / "b.jpg")
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert main(["predict", "-i", str(photos), "-o", str(out), "-c", str(tiny_checkpoint), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.ply", "b.ply"]
    a = ply.read_ply(out / "a.ply")
    assert len(a) == 2 * 256 * 256 and a.image_size == (80, 60)
    assert a.focal_px == pytest.approx(30 * 100 / np.hypot(36, 24), rel=1e-6)
    assert b"element intrinsic 9" in (out / "a.ply").read_bytes()[:1000]
    stdout = capsys.readouterr().out
    assert "loaded" in stdout and "[2/2] b.jpg" in stdout


@pytest.mark.torch
@pytest.mark.slow
def test_predict_writes_each_format_asked_for_and_resumes_from_the_ply(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    from sharp_addon import formats

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (64, 48), (90, 140, 30)).save(photos / "a.png")
    out = tmp_path / "out"
    args = ["predict", "-i", str(photos), "-o", str(out), "-c", str(tiny_checkpoint), "--device", "cpu"]
    assert main([*args, "--format", "spz,ply"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.ply", "a.spz"]
    assert len(formats.read_splats(out / "a.spz")) == len(ply.read_ply(out / "a.ply")) == 2 * 256 * 256
    capsys.readouterr()
    assert main([*args, "--format", "ply,glb,splat", "--skip-existing"]) == 0  # the PLY stands in for SHARP
    assert "loaded" not in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["a.glb", "a.ply", "a.splat", "a.spz"]
    assert formats.read_splats(out / "a.glb").focal_px == pytest.approx(ply.read_ply(out / "a.ply").focal_px)


@pytest.mark.torch
def test_predict_goes_on_past_a_bad_photo_and_says_so(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 32)).save(photos / "good.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "out"
    code = main(["predict", "-i", str(photos), "-o", str(out), "-c", str(tiny_checkpoint), "--focal-35mm", "50"])
    assert code == 1
    assert [p.name for p in out.iterdir()] == ["good.ply"]
    err = capsys.readouterr().err
    assert "broken.jpg': cannot be read as an image" in err and "1 of 2 images failed" in err


def test_predict_without_checkpoint_or_input_explains(tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    monkeypatch.delenv("SHARP_CHECKPOINT", raising=False)
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    assert main(["predict", "-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out")]) == 1
    assert "No checkpoint set: download sharp_2572gikvuh.pt" in capsys.readouterr().err
    assert main(["predict", "-i", str(tmp_path / "missing"), "-o", str(tmp_path / "out")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_ctrl_c_gives_cancelled_and_status_130(tmp_path, capsys, monkeypatch):
    from sharp_addon import formats

    def interrupt(path, name=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(formats, "read_splats", interrupt)
    assert main(["info", str(tmp_path / "a.ply")]) == 130
    assert capsys.readouterr().err == "cancelled\n"


def test_convert_speaks_the_users_terms(tmp_path, capsys):
    src = ply.write_ply(random_gaussians(10, photo=False), tmp_path / "in.ply", layout="3dgs")
    assert main(["convert", str(src), str(tmp_path / "out.ply"), "--layout", "sharp"]) == 1
    assert capsys.readouterr().err == (f"error: PLY file '{src}': has no photo camera (focal length and size), which "
                                       "the ml-sharp layout records; use --layout 3dgs\n")
    (tmp_path / "folder").mkdir()
    for target, says in [(tmp_path / "folder", "it is a folder"), (src / "out.ply", "in.ply' is a file, not a folder")]:
        assert main(["convert", str(src), str(target)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: PLY file '{target}': cannot be written: ") and says in err
        assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "in.ply"]


@pytest.mark.parametrize("args", [["--min-opacity", "1.5"], ["--min-opacity", "nan"], ["--keep-fraction", "-0.1"],
                                  ["--keep-fraction", "inf"], ["--keep-fraction", "lots"]])
def test_fractions_outside_0_1_are_bad_arguments_on_one_line(tmp_path, capsys, args):
    assert main(["convert", "in.ply", str(tmp_path / "out.ply"), *args]) == 2
    err = capsys.readouterr().err
    assert err == f"error: sharp convert: argument {args[0]}: must be a number from 0 to 1; got '{args[1]}' " \
                  "(see 'sharp convert --help')\n"
    assert not any(tmp_path.iterdir())


def test_predict_checks_its_output_folder_before_anything_else(tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    monkeypatch.delenv("SHARP_CHECKPOINT", raising=False)
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    (tmp_path / "out").write_bytes(b"a file")
    assert main(["predict", "-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (f"error: output '{tmp_path / 'out'}': is a file, not a folder; -o names the "
                                       "folder for the .ply files\n")
    assert main(["predict", "-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out" / "sub")]) == 1
    assert f"cannot be created: '{tmp_path / 'out'}' is a file, not a folder" in capsys.readouterr().err
    assert main(["predict", "-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "new")]) == 1  # no checkpoint
    assert "No checkpoint set" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "out"]  # "new" was not made for nothing
    assert (tmp_path / "out").read_bytes() == b"a file"


def test_predict_inputs_that_are_not_photos(tmp_path, capsys):
    import os

    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("x")
    (tmp_path / "notes" / "sub.png").mkdir()  # a folder, whatever its name
    cases = [(tmp_path / "empty", "is an empty folder"), (tmp_path / "notes", "is a folder without images")]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.jpg")
        cases.append((tmp_path / "pipe.jpg", "is a named pipe, not an image file or a folder of images"))
    for source, says in cases:
        assert main(["predict", "-i", str(source), "-o", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: image '{source}': {says}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
