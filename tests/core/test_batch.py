"""Batch conversion without Blender: the image list, ranges, output names, predict's options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sharp_addon import batch, ply
from sharp_addon.cli import main
from sharp_addon.errors import ImageError, SharpError

ROOT = Path(__file__).resolve().parents[2]


def touch(folder: Path, *names: str) -> Path:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return folder


def photos(folder: Path, *names: str, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path)
    return folder


def keys(images: list[batch.Image]) -> list[str]:
    return [image.key for image in images]


def test_folders_are_searched_recursively_in_one_case_sensitive_posix_order(tmp_path):
    touch(tmp_path / "in", "b.png", "B.JPG", "a/z.jpeg", "a/Y.tif", "a-b.webp", ".hidden.png", ".cache/c.png",
          "notes.txt", "sub/deeper/x.PNG")
    found = batch.list_images([tmp_path / "in"])
    # code-point order of the relative POSIX path: upper case before lower, '-' before '/'
    assert keys(found) == ["B.JPG", "a-b.webp", "a/Y.tif", "a/z.jpeg", "b.png", "sub/deeper/x.PNG"]
    assert all(image.path.is_absolute() and image.path.is_file() for image in found)


def test_several_inputs_share_one_order_and_duplicates_go(tmp_path):
    touch(tmp_path, "2023/img.png", "2024/img.png", "2024/other.jpg")
    (tmp_path / "link.png").symlink_to(tmp_path / "2023" / "img.png")
    found = batch.list_images([tmp_path / "2024", tmp_path / "2023", tmp_path / "2024" / "img.png",
                               str(tmp_path / "link.png")])
    assert keys(found) == ["2023/img.png", "2024/img.png", "2024/other.jpg"]  # the link is the 2023 file
    # the same order whatever order the inputs come in, and from a relative working folder
    again = batch.list_images([tmp_path / "2023", tmp_path / "2024"])
    assert keys(again) == keys(found)


def test_globs_and_plain_files(tmp_path, monkeypatch):
    touch(tmp_path, "a/1.jpg", "a/2.png", "b/3.jpg", "b/deep/4.jpg", "readme.md")
    monkeypatch.chdir(tmp_path)
    assert keys(batch.list_images(["*/*.jpg"])) == ["a/1.jpg", "b/3.jpg"]
    assert keys(batch.list_images(["b/**/*.jpg"])) == ["3.jpg", "deep/4.jpg"]
    assert keys(batch.list_images(["readme.md"])) == ["readme.md"]  # a named file is tried whatever its suffix
    with pytest.raises(ImageError, match=r"image '\*\.gif': matches no files"):
        batch.list_images(["*.gif"])
    with pytest.raises(ImageError, match="no such file or folder"):
        batch.list_images(["missing.png"])


def test_the_output_folder_inside_an_input_is_not_read_back(tmp_path):
    touch(tmp_path, "a.png", "out/a_render.png")
    assert keys(batch.list_images([tmp_path], exclude=tmp_path / "out")) == ["a.png"]


def test_output_names_are_stems_made_unique_on_the_whole_list(tmp_path):
    touch(tmp_path, "a.png", "sub/a.png", "sub/deep/a.jpg", "x/B.png", "y/b.png", "c.png", "c.jpg", "only.png")
    found = batch.list_images([tmp_path])
    names = dict(zip(keys(found), batch.output_names(found)))
    assert names == {"a.png": "a", "sub/a.png": "sub__a", "sub/deep/a.jpg": "sub__deep__a", "x/B.png": "x__B",
                     "y/b.png": "y__b", "c.jpg": "c_jpg", "c.png": "c_png", "only.png": "only"}
    # a shard sees the same names: they come from the whole list, which every shard lists
    assert batch.output_names(found) == batch.output_names(batch.list_images([tmp_path]))


def test_ranges():
    assert batch.parse_range("3-7") == (3, 7) and batch.parse_range("5") == (5, 5)
    for bad in ["7-3", "-1", "a-b", "1-2-3", ""]:
        with pytest.raises(ValueError):
            batch.parse_range(bad)
    assert list(batch.select_range(10, 8, 20)) == [8, 9]  # the end is clipped to the batch
    with pytest.raises(SharpError, match="starts past the last of the 10 images"):
        batch.select_range(10, 10, 12)


def test_blend_outside_blender_and_render_without_a_scene_are_refused(tmp_path, capsys):
    photos(tmp_path / "in", "a.png")
    out = tmp_path / "out"
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(out), "--format", "blend"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sharp predict: --format blend needs Blender: run 'blender -b -c sharp predict")
    assert err.count("\n") == 1
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(out), "--render"]) == 2
    assert "--render renders the Blender scene" in capsys.readouterr().err
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(out), "--range", "4-2"]) == 2
    assert not out.exists()


def test_python_dash_m_says_blend_needs_blender(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sharp_addon", "predict", "-i", str(tmp_path), "-o",
                             str(tmp_path / "out"), "--format", "both"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "--format blend needs Blender" in result.stderr


def test_list_prints_the_sorted_batch_with_names_without_a_checkpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SHARP_CHECKPOINT", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    touch(tmp_path / "in", "b.png", "a.png", "s/a.png")
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--list"]) == 0
    out, err = capsys.readouterr()
    assert out == "0\ta\ta.png\n1\tb\tb.png\n2\ts__a\ts/a.png\n" and err == "3 of 3 images\n"
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--list", "--range", "1-9"]) == 0
    assert capsys.readouterr().out == "1\tb\tb.png\n2\ts__a\ts/a.png\n"
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--range", "3-5"]) == 1
    assert "--range 3-5 starts past the last of the 3 images (0-2)" in capsys.readouterr().err


@pytest.mark.torch
@pytest.mark.slow
def test_ranges_and_skip_existing_resume_without_loading_the_model(tiny_checkpoint, tmp_path, capsys):
    photos(tmp_path / "in", "a.png", "b.png", "c.png", "d/a.png")
    out = tmp_path / "out"
    base = ["predict", "-i", str(tmp_path / "in"), "-o", str(out), "-c", str(tiny_checkpoint), "--device", "cpu"]
    assert main([*base, "--range", "1-2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["b.ply", "c.ply"]
    stdout = capsys.readouterr().out
    assert "[1/2] b.png: " in stdout and "[2/2] c.png: " in stdout and ", ETA " in stdout
    assert stdout.count("\nTime: ") == 2 and "done: 2 converted, 0 skipped" in stdout
    before = (out / "b.ply").stat().st_mtime_ns
    assert main([*base, "--skip-existing"]) == 0
    stdout = capsys.readouterr().out
    assert "[2/4] b.png: skipped" in stdout and "[3/4] c.png: skipped" in stdout
    assert "done: 2 converted, 2 skipped" in stdout and "[4/4] d/a.png: " in stdout
    assert (out / "b.ply").stat().st_mtime_ns == before
    assert sorted(p.name for p in out.iterdir()) == ["a.ply", "b.ply", "c.ply", "d__a.ply"]
    assert len(ply.read_ply(out / "d__a.ply")) == 2 * 256 * 256
    assert main([*base, "--skip-existing"]) == 0  # all done: the model is not even loaded
    stdout = capsys.readouterr().out
    assert "loaded" not in stdout and "done: 0 converted, 4 skipped" in stdout


@pytest.mark.torch
@pytest.mark.slow
def test_two_processes_writing_the_same_outputs_leave_whole_files(tiny_checkpoint, tmp_path):
    photos(tmp_path / "in", "a.png", "b.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def predict(out: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "sharp_addon", "predict", "-i", str(tmp_path / "in"), "-o",
                                 str(out), "-c", str(tiny_checkpoint), "--device", "cpu"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    both = [predict(tmp_path / "shared"), predict(tmp_path / "shared")]
    outputs = [p.communicate(timeout=600) for p in both]
    assert [p.returncode for p in both] == [0, 0], [err[-2000:] for _, err in outputs]
    reference = predict(tmp_path / "alone")
    assert reference.communicate(timeout=600) and reference.returncode == 0
    assert sorted(os.listdir(tmp_path / "shared")) == ["a.ply", "b.ply"]  # the later rename won; no temporaries
    for name in ("a.ply", "b.ply"):
        assert (tmp_path / "shared" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()
