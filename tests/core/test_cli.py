"""The command line: ``python -m sharp_addon`` / ``blender -c sharp`` share ``cli.main``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from sharp_addon import ply
from sharp_addon.cli import main
from tests.helpers import random_gaussians

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
