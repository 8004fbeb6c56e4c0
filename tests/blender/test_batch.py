"""``blender -b -c sharp predict --format blend|both``: scenes per photo, through real Blender (bpy).

In-process runs call the extension's registered command (``cli_command``, what ``blender -c sharp``
runs); runs that must be killed or run in parallel use tests/farm/blender_stand_in.py, which does
in a fresh process what a Blender executable with the extension installed does. Every ``.blend``
is opened in a FRESH Blender process, so what is checked is what the file holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sharp_addon import ply
from tests.conftest import ADDON_MODULE
from tests.support.builders import photos, random_gaussians

pytestmark = pytest.mark.blender

ROOT = Path(__file__).resolve().parents[2]
STAND_IN = ROOT / "tests" / "farm" / "blender_stand_in.py"
SPLATS = 2 * 256 * 256  # the tiny model's Gaussians per photo
FINAL_SUFFIXES = (".ply", ".blend", ".png")

INSPECT = r"""
import json, os, sys, tempfile
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp()
import bpy
for path in sys.argv[1:]:
    bpy.ops.wm.open_mainfile(filepath=path, load_ui=False)
    scene = bpy.context.scene
    objects = {o.name: o.type for o in scene.objects}
    splats = [o for o in scene.objects if o.type in ("MESH", "POINTCLOUD")]
    counts = [len(o.data.vertices) if o.type == "MESH" else len(o.data.points) for o in splats]
    camera = scene.camera
    print(json.dumps({
        "path": path, "objects": objects, "counts": counts,
        "modifiers": [m.name for o in splats for m in o.modifiers],
        "camera": camera.name if camera else None, "lens": camera.data.lens if camera else None,
        "parent": camera.parent.name if camera and camera.parent else None,
        "resolution": [scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage],
        "view_transform": scene.view_settings.view_transform,
        "transparent_bounces": scene.cycles.transparent_max_bounces,
        "min_transparent_bounces": scene.cycles.min_transparent_bounces,
    }))
"""


def inspect_blends(paths: list[Path]) -> dict[str, dict]:
    """What each .blend holds, read by a fresh Blender process."""
    result = subprocess.run([sys.executable, "-c", INSPECT, *map(str, paths)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(found) == len(paths), result.stdout[-3000:]
    return {Path(entry["path"]).name: entry for entry in found}


def finals(folder: Path) -> list[str]:
    """The names in ``folder`` that look like finished outputs."""
    return sorted(p.name for p in folder.iterdir() if p.suffix in FINAL_SUFFIXES)


def stand_in(*args: str) -> list[str]:
    return [sys.executable, str(STAND_IN), "-b", "-y", "-c", "sharp", "predict", *args]


def one_thread_env() -> dict[str, str]:
    """The same arithmetic in every process (results are compared byte for byte)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def check_scene(entry: dict, name: str, size: tuple[int, int]) -> None:
    assert entry["counts"] == [SPLATS], entry
    assert entry["objects"] == {f"{name} Photo": "EMPTY", name: entry["objects"][name],
                                f"{name} Camera": "CAMERA"}, entry
    assert entry["objects"][name] in ("MESH", "POINTCLOUD") and entry["modifiers"] == ["SHARP Splats"]
    assert entry["camera"] == f"{name} Camera" and entry["parent"] == f"{name} Photo"
    assert entry["resolution"] == [*size, 100]
    assert entry["view_transform"] == "Standard"
    assert entry["transparent_bounces"] == entry["min_transparent_bounces"] == 256


@pytest.mark.torch
@pytest.mark.slow
def test_a_folder_with_bad_files_converts_the_good_ones_and_fails(addon, tiny_checkpoint, tmp_path, capsys):
    cli_command = sys.modules[ADDON_MODULE + ".blender"].cli_command
    source = photos(tmp_path / "in", ["street.png", "park.jpg", "trip/street.png"])
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (source / "empty.png").write_bytes(b"")
    (source / "notes.txt").write_text("not a photo, not even tried")
    out = tmp_path / "out"
    old = os.umask(0o027)
    try:
        code = cli_command(["predict", "-i", str(source), "-o", str(out), "--format", "both",
                            "-c", str(tiny_checkpoint), "--device", "cpu"])
    finally:
        os.umask(old)
    stdout, stderr = capsys.readouterr()
    assert code == 1, stderr
    names = ["park", "street", "trip__street"]
    assert sorted(os.listdir(out)) == sorted(f"{n}{s}" for n in names for s in (".blend", ".ply"))
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, stderr
    assert f"'{source / 'broken.jpg'}'" in errors[0] and f"'{source / 'empty.png'}'" in errors[1]
    assert "2 of 5 images failed" in stderr
    assert "done: 3 converted, 0 skipped (outputs existed), 2 failed, of 5 images" in stdout
    assert "[3/5] park.jpg: " in stdout and "[5/5] trip/street.png: " in stdout and stdout.count("\nTime: ") == 5
    for name in os.listdir(out):
        assert (out / name).stat().st_mode & 0o777 == 0o640, name  # what the umask gives new files
    for n in names:
        assert len(ply.read_ply(out / f"{n}.ply")) == SPLATS
    scenes = inspect_blends([out / f"{n}.blend" for n in names])
    for n in names:
        check_scene(scenes[f"{n}.blend"], n, (64, 48))


@pytest.mark.torch
@pytest.mark.slow
def test_render_writes_the_matched_camera_png_atomically(addon, tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    cli_command = sys.modules[ADDON_MODULE + ".blender"].cli_command
    photo = photos(tmp_path, ["one.png"], size=(40, 30)) / "one.png"
    out = tmp_path / "out"
    old = os.umask(0o007)
    try:
        code = cli_command(["predict", "-i", str(photo), "-o", str(out), "--format", "blend", "--render",
                            "-c", str(tiny_checkpoint), "--device", "cpu"])
    finally:
        os.umask(old)
    stdout = capsys.readouterr().out
    assert code == 0
    assert sorted(os.listdir(out)) == ["one.blend", "one_render.png"]  # no PLY with --format blend
    assert [(out / n).stat().st_mode & 0o777 for n in ("one.blend", "one_render.png")] == [0o660, 0o660]
    assert f"Saved: '{out / 'one_render.png'}'" in stdout.splitlines()  # Flamenco's thumbnail line
    with Image.open(out / "one_render.png") as render:
        assert render.format == "PNG" and render.size == (20, 15)  # half the photo's size
    check_scene(inspect_blends([out / "one.blend"])["one.blend"], "one", (40, 30))


def test_the_scene_writer_alone_on_every_blender(addon, tmp_path):
    """No network needed: what write_scene makes from given Gaussians (runs on 4.2, 5.0 and 5.2)."""
    import importlib

    writer = importlib.import_module(ADDON_MODULE + ".blender.batch").write_scene
    g = random_gaussians(SPLATS // 64)
    writer(g, "random", tmp_path / "random.blend", None)
    writer(g, "random", tmp_path / "again.blend", None)  # a second photo starts from an empty scene again
    assert sorted(os.listdir(tmp_path)) == ["again.blend", "random.blend"]
    scenes = inspect_blends([tmp_path / "random.blend", tmp_path / "again.blend"])
    for entry in scenes.values():
        assert entry["counts"] == [SPLATS // 64]
        entry["counts"] = [SPLATS]
        check_scene(entry, "random", (640, 480))


@pytest.mark.torch
def test_the_exact_render_engine_renders_the_splats_from_the_photo_camera(addon, tmp_path):
    """``--render-engine exact``: the PNG is the exact 3DGS renderer's image (straight alpha, sRGB)."""
    import importlib

    from PIL import Image

    from sharp_addon.cameras import Camera
    from sharp_addon.render import render_gaussians

    writer = importlib.import_module(ADDON_MODULE + ".blender.batch").write_scene
    g = random_gaussians(SPLATS // 64)
    writer(g, "random", None, tmp_path / "random_render.png", render_engine="exact")
    assert os.listdir(tmp_path) == ["random_render.png"]  # nothing else, no scratch
    with Image.open(tmp_path / "random_render.png") as png:
        assert png.size == (320, 240)  # half the photo's size, as the Cycles render
        got = np.asarray(png.convert("RGBA"), np.float32) / 255
    want = render_gaussians(g, Camera.from_gaussians(g).resized(320, 240))
    np.testing.assert_allclose(got[..., 3], want[..., 3], atol=1 / 255)
    opaque = want[..., 3] > 0.5
    straight = want[..., :3][opaque] / want[..., 3:][opaque]
    srgb = np.where(straight <= 0.0031308, 12.92 * straight, 1.055 * straight ** (1 / 2.4) - 0.055)
    assert opaque.mean() > 0.05
    np.testing.assert_allclose(got[..., :3][opaque], srgb, atol=2 / 255)


def wait_for_first_output(process: subprocess.Popen, out: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.is_dir() and finals(out):
            return
        assert process.poll() is None, "the batch ended before the first output appeared"
        time.sleep(0.02)
    raise AssertionError("no output appeared")


@pytest.mark.torch
@pytest.mark.slow
def test_kill_9_midway_then_skip_existing_finishes_every_output_once(tiny_checkpoint, tmp_path):
    source = photos(tmp_path / "in", [f"p{i}.png" for i in range(4)])
    out = tmp_path / "out"
    args = ["-i", str(source), "-o", str(out), "--format", "both", "-c", str(tiny_checkpoint), "--device", "cpu"]
    process = subprocess.Popen(stand_in(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_first_output(process, out)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    left = finals(out)
    assert 0 < len(left) < 8, left
    for name in left:  # whatever has a final name is complete
        if name.endswith(".ply"):
            assert len(ply.read_ply(out / name)) == SPLATS
    blends = [out / name for name in left if name.endswith(".blend")]
    if blends:
        assert all(entry["counts"] == [SPLATS] for entry in inspect_blends(blends).values())
    before = {name: (out / name).stat().st_mtime_ns for name in left}

    result = subprocess.run(stand_in(*args, "--skip-existing"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    names = [f"p{i}" for i in range(4)]
    assert finals(out) == sorted(f"{n}{s}" for n in names for s in (".blend", ".ply"))
    assert all((out / name).stat().st_mtime_ns == t for name, t in before.items()), "a finished file was redone"
    assert f"done: {4 - sum(n.endswith('.blend') for n in left)} converted" in result.stdout
    for n in names:
        assert len(ply.read_ply(out / f"{n}.ply")) == SPLATS
    scenes = inspect_blends([out / f"{n}.blend" for n in names])
    for n in names:
        check_scene(scenes[f"{n}.blend"], n, (64, 48))
    # the killed run may have left its unfinished file in a .sharp-*.tmp folder, nothing else
    assert all(p.suffix in (".ply", ".blend") or p.name.startswith(".sharp-") for p in out.iterdir())


@pytest.mark.torch
@pytest.mark.slow
def test_two_range_shards_in_parallel_give_one_runs_outputs(tiny_checkpoint, tmp_path):
    source = photos(tmp_path / "in", ["a.png", "b.png", "c.png", "sub/a.png", "sub/d.png"])
    common = ["-i", str(source), "--format", "both", "-c", str(tiny_checkpoint), "--device", "cpu"]
    shards = tmp_path / "shards"
    whole = tmp_path / "whole"
    runs = [subprocess.Popen(stand_in(*common, "-o", str(shards), "--range", r), env=one_thread_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in ("0-2", "3-4")]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    result = subprocess.run(stand_in(*common, "-o", str(whole)), env=one_thread_env(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    names = ["a", "b", "c", "sub__a", "d"]
    assert sorted(os.listdir(shards)) == sorted(os.listdir(whole)) == sorted(
        f"{n}{s}" for n in names for s in (".blend", ".ply"))
    for n in names:
        assert (shards / f"{n}.ply").read_bytes() == (whole / f"{n}.ply").read_bytes(), n
    scenes = inspect_blends([shards / f"{n}.blend" for n in names])
    assert all(entry["counts"] == [SPLATS] for entry in scenes.values())


@pytest.mark.torch
@pytest.mark.slow
def test_python_expr_one_liner_runs_the_same_command(tiny_checkpoint, tmp_path):
    source = photos(tmp_path / "in", ["x.png"])
    out = tmp_path / "out"
    expr = "from bl_ext.user_default.sharp_from_image.blender import batch; batch.run_from_argv()"
    result = subprocess.run([sys.executable, str(STAND_IN), "-b", "--python-expr", expr, "--", "predict", "-i",
                             str(source), "-o", str(out), "--format", "both", "-c", str(tiny_checkpoint)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out)) == ["x.blend", "x.ply"] and "[1/1] x.png: " in result.stdout
    bad = subprocess.run([sys.executable, str(STAND_IN), "-b", "--python-expr", expr, "--", "predict", "-i",
                          str(tmp_path / "missing"), "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1 and "no such file or folder" in bad.stderr
