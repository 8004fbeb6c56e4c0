"""``blender -b -c sharp predict --format blend --move PRESET --frames N [--render]``: each saved scene gets
the camera move, and with --render its H.264 MP4; bad combinations are refused before any work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sharp_addon import cli
from tests.conftest import ADDON_MODULE
from tests.support.builders import photos, random_gaussians

pytestmark = pytest.mark.blender

INSPECT_MOVE = r"""
import json, os, sys, tempfile
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp()
import bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False)
scene = bpy.context.scene
camera = scene.camera
scene.frame_set(1)
start = [list(r) for r in camera.matrix_world]
photo = [list(r) for r in bpy.data.objects[sys.argv[2] + " Camera"].matrix_world]
scene.frame_set(scene.frame_end)
end = [list(r) for r in camera.matrix_world]
print(json.dumps({"camera": camera.name, "range": [scene.frame_start, scene.frame_end],
                  "start": start, "photo": photo, "end": end}))
"""


@pytest.mark.torch
@pytest.mark.slow
def test_move_is_saved_in_the_scene_and_rendered_to_an_mp4(addon, tiny_checkpoint, tmp_path, capfd):
    import numpy as np

    cli_command = sys.modules[ADDON_MODULE + ".blender"].cli_command
    photo = photos(tmp_path, ["one.png"], size=(40, 30)) / "one.png"
    out = tmp_path / "out"
    code = cli_command(["predict", "-i", str(photo), "-o", str(out), "--format", "blend", "--render",
                        "--move", "DOLLY_IN", "--frames", "6", "-c", str(tiny_checkpoint), "--device", "cpu"])
    said = capfd.readouterr()  # what a farm worker reads, Blender's own prints included
    assert code == 0, said.err
    assert sorted(p.name for p in out.iterdir()) == ["one.blend", "one_move.mp4", "one_render.png"]
    saved = [line for line in said.out.splitlines() if "Saved: '" in line]  # bpy prefixes its log lines
    assert not [line for line in saved if ".sharp-" in line], saved  # no thumbnail of a scratch frame
    assert (out / "one_move.mp4").read_bytes()[4:8] == b"ftyp"
    bpy = sys.modules["bpy"]
    clip = bpy.data.movieclips.load(str(out / "one_move.mp4"))
    assert clip.frame_duration == 6
    result = subprocess.run([sys.executable, "-c", INSPECT_MOVE, str(out / "one.blend"), "one"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    entry = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert entry["camera"] == "one Move" and entry["range"] == [1, 6]
    np.testing.assert_allclose(entry["start"], entry["photo"], atol=1e-5)
    assert np.array(entry["end"])[1, 3] > np.array(entry["photo"])[1, 3]  # dollied in along +Y


@pytest.mark.parametrize("args, message", [
    (["--move", "DOLLY_IN"], "--move animates the Blender scene's camera; add --format blend"),
    (["--format", "blend", "--move", "SPIN"], "invalid choice: 'SPIN'"),
    (["--format", "blend", "--move", "ORBIT", "--frames", "1"], "at least 2; got '1'"),
    (["--format", "blend", "--move", "ORBIT", "--frames", "many"], "whole number of frames"),
])
def test_bad_move_options_are_refused_before_any_work(args, message, tmp_path, capsys):
    photo = photos(tmp_path, ["one.png"]) / "one.png"
    out = tmp_path / "out"
    code = cli.main(["predict", "-i", str(photo), "-o", str(out), *args], scene_writer=lambda *a, **k: None)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_help_says_where_the_move_goes(capsys):
    try:
        cli.main(["predict", "--help"])
    except SystemExit:
        pass
    text = " ".join(capsys.readouterr().out.split())
    assert "with --render it is also rendered in Cycles to NAME_move.mp4 (H.264)" in text


def test_scene_writer_gets_the_move_only_when_asked(tmp_path, monkeypatch):
    calls: list[tuple] = []
    photo = photos(tmp_path, ["one.png"]) / "one.png"

    def writer(g, name, blend, render, **extra):
        calls.append((name, blend, render, extra))
        Path(blend).parent.mkdir(exist_ok=True)
        Path(blend).write_bytes(b"x")
        if render:
            Path(render).write_bytes(b"x")
        if extra and extra["move"].video:
            extra["move"].video.write_bytes(b"x")

    fake = random_gaussians(10)
    monkeypatch.setattr(cli._Batch, "gaussians", lambda self, image, targets, todo: fake)
    monkeypatch.setattr(cli.dependencies, "find_checkpoint", lambda path: tmp_path / "fake.pt")
    for args in ([], ["--move", "SWING", "--frames", "9"], ["--move", "RISE", "--render"]):
        calls.clear()
        assert cli.main(["predict", "-i", str(photo), "-o", str(tmp_path / "o"), "--format", "blend", *args],
                        scene_writer=writer) == 0
        (*_, extra), = calls
        if not args:
            assert extra == {}
        elif "--render" in args:
            assert extra["move"] == cli.MoveRequest("RISE", 48, tmp_path / "o" / "one_move.mp4")
        else:
            assert extra["move"] == cli.MoveRequest("SWING", 9, None)
