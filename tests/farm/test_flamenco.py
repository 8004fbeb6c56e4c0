"""The Flamenco job type (farm/flamenco/sharp_convert.js): its compiler under Node, and its tasks run here.

Flamenco itself cannot be installed on these machines; tests/farm/flamenco_stub.js stands in for the
API the Manager gives job scripts, and tests/farm/blender_stand_in.py for a worker's Blender with
the extension installed. Running the compiled tasks' commands the way a worker does (the
blender-render command line, the Manager's default "-b -y", two at a time) must give exactly the
files of one unsharded run, and each task must print one ``Time:`` line (a worker's step) per photo.
A photo that cannot be read is listed in its task's failures file and does not fail the task; the
job type's choices are the command's own; blend-relative paths are resolved the way Flamenco's
add-on evaluates them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")


def node_major() -> int:
    try:
        out = subprocess.run([NODE or "node", "--version"], capture_output=True, text=True, timeout=30).stdout
        return int(out.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


needs_node = pytest.mark.skipif(NODE is None or node_major() < 18,
                                reason="needs Node.js 18 or later (node, with its test runner) for the Flamenco job "
                                "compiler; on Debian: apt-get install -y nodejs")
STEP = re.compile(r"^Time: ([0-9:.]+)")  # what a Flamenco worker counts as a step (command_blender.go)
SAVED = re.compile(r"^Saved: '(.*)'")  # what it takes as the task's latest image
MANAGER_BLENDER_ARGS = "-b -y"  # the Manager's default {blenderArgs}


SCRIPT = ROOT / "farm" / "flamenco" / "sharp_convert.js"


def node_json(code: str, *args: str) -> object:
    """What ``code`` (run by Node with the stub as ``stub``, ``args`` as process.argv[2:]) writes as JSON."""
    result = subprocess.run([NODE, "-e", f"const stub = require({json.dumps(str(HERE / 'flamenco_stub.js'))});{code}",
                             *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def compile_job(settings: dict) -> dict:
    job = node_json("process.stdout.write(JSON.stringify(stub.compile(process.argv[1], "
                    "{name: 'test', type: 'sharp-convert', settings: JSON.parse(process.argv[2])})));",
                    str(SCRIPT), json.dumps(settings))
    assert isinstance(job, dict)
    return job


def job_type_settings() -> dict[str, dict]:
    """JOB_TYPE's settings by key, as the Manager reads them from the script."""
    found = node_json("process.stdout.write(JSON.stringify(stub.loadJobType(process.argv[1]).JOB_TYPE));", str(SCRIPT))
    assert isinstance(found, dict)
    return {setting["key"]: setting for setting in found["settings"]}


def worker_argv(command: dict, flamenco: tuple[int, int] = (3, 8)) -> list[str]:
    """The process a Flamenco ``flamenco`` worker starts for a blender-render command (command_blender.go).

    Before 3.5 a worker refuses an empty ``blendfile`` ("missing 'blendfile' parameter": the task
    fails) and always puts it between argsBefore and args; from 3.5 it leaves an empty one out.
    """
    assert command["name"] == "blender-render"
    p = command["parameters"]
    assert p["exe"] == "{blender}" and p["exeArgs"] == "{blenderArgs}"
    assert all(isinstance(arg, str) for arg in p["args"]), p["args"]
    if flamenco < (3, 5) and not p["blendfile"]:
        raise AssertionError("a Flamenco 3.0-3.4 worker fails this task: missing 'blendfile' parameter")
    argv = [sys.executable, str(HERE / "blender_stand_in.py"), *shlex.split(MANAGER_BLENDER_ARGS), *p["argsBefore"]]
    if p["blendfile"] or flamenco < (3, 5):
        argv.append(p["blendfile"])
    return argv + p["args"]


@needs_node
def test_the_job_compiler_passes_its_node_tests():
    files = sorted(str(p) for p in HERE.glob("*.test.js"))  # named, not the folder: Node 18 to 22 agree on files
    result = subprocess.run([NODE, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"^# fail 0$", result.stdout, re.M) and re.search(r"^# pass [1-9]", result.stdout, re.M), \
        result.stdout[-2000:]


def predict_parser() -> argparse.ArgumentParser:
    from sharp_addon import cli

    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["predict"]


@needs_node
def test_the_job_type_offers_the_predict_commands_choices_and_passes_options_it_takes():
    settings = job_type_settings()
    options = {action.dest: action for action in predict_parser()._actions}
    for key in ("device", "precision", "render_engine"):
        assert settings[key]["choices"] == list(options[key].choices), key
        assert settings[key]["default"] in options[key].choices, key
    from sharp_addon.cli import OUTPUT_KINDS

    assert settings["format"]["choices"] == list(OUTPUT_KINDS)  # --format takes a list; the job one kind
    assert settings["format"]["default"] in OUTPUT_KINDS
    assert settings["render_engine"]["default"] == options["render_engine"].default
    move = settings["move"]
    assert move["choices"][0] == move["default"] == "none"  # no move: --move left out
    assert move["choices"][1:] == list(options["move"].choices)
    frames = settings["frames"]
    assert frames["default"] == options["frames"].default
    assert options["frames"].type(str(frames["propargs"]["min"])) == frames["propargs"]["min"]
    with pytest.raises(argparse.ArgumentTypeError):
        options["frames"].type(str(frames["propargs"]["min"] - 1))
    # every option a task passes is one the command takes, with a value it accepts
    job = compile_job({"input_folder": "/p", "image_count": 2, "output_folder": "/o", "format": "both",
                       "render": True, "render_engine": "exact", "move": "KEN_BURNS", "frames": 12,
                       "checkpoint": "/m/sharp.pt", "device": "cuda", "precision": "bf16"})
    args = job["tasks"][0]["commands"][0]["parameters"]["args"]
    assert args[:2] == ["sharp", "predict"]
    parsed = predict_parser().parse_args(args[2:])
    assert (parsed.move, parsed.frames, parsed.render_engine, parsed.render) == ("KEN_BURNS", 12, "exact", True)
    assert (parsed.range, parsed.skip_existing, parsed.allow_failures) == ((0, 1), True, True)
    assert parsed.failures_file == Path("/o/sharp-failures-0-1.txt")


@needs_node
def test_workers_from_flamenco_3_0_run_the_same_blender_command_line():
    job = compile_job({"input_folder": "/shared/photos", "image_count": 5, "output_folder": "/shared/splats",
                       "chunk_size": 2})
    for task in job["tasks"]:
        (command,) = task["commands"]
        before_3_5, since_3_5 = worker_argv(command, (3, 0)), worker_argv(command, (3, 8))
        assert before_3_5 == since_3_5
        assert since_3_5[2:8] == ["-b", "-y", "-c", "sharp", "predict", "-i"]


@needs_node
def test_the_documented_api_submission_is_a_job_the_manager_takes():
    """docs/farm.md's curl example: the fields POST /api/v3/jobs requires, and settings the script accepts."""
    docs = (ROOT / "docs" / "farm.md").read_text(encoding="utf-8")
    (body,) = re.findall(r"curl -X POST http://manager:8080/api/v3/jobs .* -d '(\{.*?\})'\n", docs, re.S)
    submitted = json.loads(body)
    assert {"name", "type", "priority", "submitter_platform"} <= submitted.keys()  # SubmittedJob's required
    assert submitted["type"] == SCRIPT.stem.replace("_", "-")  # the Manager names a job type by its file
    assert set(submitted["settings"]) <= set(job_type_settings())
    job = compile_job(submitted["settings"])
    assert len(job["tasks"]) == 12 and job["tasks"][-1]["name"] == "sharp-220-239"


def addon_eval(bpy, expression: str, values: dict) -> object:
    """A setting's ``eval`` evaluated the way Flamenco's Blender add-on does at submission
    (JobTypePropertyGroup.eval_setting with its locals; its ``abspath`` is bpy.path.abspath, then
    made absolute with ``..`` resolved by BAT's make_absolute)."""

    def abspath(filepath: str | Path) -> Path:
        return Path(os.path.abspath(bpy.path.abspath(str(filepath))))

    names = {"bpy": bpy, "C": bpy.context, "jobname": "test", "Path": Path, "abspath": abspath,
             "last_n_dir_parts": None, "settings": SimpleNamespace(**values)}
    return eval(expression, {}, names)


@needs_node
@pytest.mark.blender
def test_blend_relative_folders_are_made_absolute_as_flamencos_addon_evaluates_them(bpy_session, tmp_path):
    bpy = bpy_session
    settings = job_type_settings()
    # the add-on sends every setting: what the artist picked, the rest at their defaults
    empty = {"string": "", "int32": 0, "bool": False}
    values = {key: setting.get("default", empty[setting["type"]]) for key, setting in settings.items()}
    values.update(input_folder="//photos/", output_folder="//../splats", checkpoint="/models/sharp.pt",
                  image_count=3)
    (tmp_path / "project").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "project" / "submit.blend"))
    try:
        hidden = {key: addon_eval(bpy, setting["eval"], values)
                  for key, setting in settings.items() if setting.get("visible") == "hidden"}
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)
    assert hidden == {"input_folder_resolved": str(tmp_path / "project" / "photos"),
                      "output_folder_resolved": str(tmp_path / "splats"), "checkpoint_resolved": ""}
    args = compile_job({**values, **hidden})["tasks"][0]["commands"][0]["parameters"]["args"]
    parsed = predict_parser().parse_args(args[2:])
    assert parsed.input == [str(tmp_path / "project" / "photos")]
    assert parsed.output == str(tmp_path / "splats") and parsed.checkpoint == "/models/sharp.pt"
    assert parsed.failures_file == tmp_path / "splats" / "sharp-failures-0-2.txt"


@needs_node
@pytest.mark.blender
@pytest.mark.torch
@pytest.mark.slow
def test_a_task_lists_its_bad_photos_and_fails_only_when_every_photo_failed(tiny_checkpoint, tmp_path):
    from PIL import Image

    photos, out = tmp_path / "photos", tmp_path / "splats"
    photos.mkdir()
    for name in ("a.png", "c.png"):
        Image.new("RGB", (48, 36), (120, 60, 30)).save(photos / name)
    (photos / "bad.jpg").write_bytes(b"\xff\xd8\xff not a JPEG")
    (photos / "zero.png").write_bytes(b"")
    job = compile_job({"input_folder": str(photos), "image_count": 4, "output_folder": str(out), "format": "ply",
                       "chunk_size": 3, "device": "cpu", "checkpoint": str(tiny_checkpoint)})
    good_and_bad, only_bad = (task["commands"][0] for task in job["tasks"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def run(command: dict, flamenco: tuple[int, int] = (3, 8)) -> subprocess.CompletedProcess:
        return subprocess.run(worker_argv(command, flamenco), env=env, capture_output=True, text=True, timeout=600)

    def listed(name: str) -> list[list[str]]:
        header, *rows = (out / name).read_text(encoding="utf-8").splitlines()
        assert header == "index\tphoto\terror"
        return [row.split("\t") for row in rows]

    result = run(good_and_bad)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"failures: 1 of 3 images, listed in '{out / 'sharp-failures-0-2.txt'}'" in result.stdout
    assert sum(bool(STEP.match(line)) for line in result.stdout.splitlines()) == good_and_bad["totalStepCount"] == 3
    (row,) = listed("sharp-failures-0-2.txt")
    assert row[:2] == ["1", str(photos / "bad.jpg")] and "cannot be read as an image" in row[2]
    result = run(only_bad, flamenco=(3, 0))  # every photo failed: the task fails, Flamenco retries it
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert [row[:2] for row in listed("sharp-failures-3-3.txt")] == [["3", str(photos / "zero.png")]]
    result = run(good_and_bad)  # a retry: nothing left to convert, the bad photo still listed, not a failure
    assert result.returncode == 0 and "done: 0 converted, 2 skipped (outputs existed), 1 failed" in result.stdout
    assert [row[0] for row in listed("sharp-failures-0-2.txt")] == ["1"]
    assert sorted(os.listdir(out)) == ["a.ply", "c.ply", "sharp-failures-0-2.txt", "sharp-failures-3-3.txt"]


@needs_node
@pytest.mark.blender
@pytest.mark.torch
@pytest.mark.slow
def test_compiled_tasks_run_two_at_a_time_give_one_unsharded_runs_outputs(tiny_checkpoint, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    rng = np.random.default_rng(3)
    for name in ["a.png", "b.jpg", "c.png", "x/a.png", "x/d.png", "y/e.png", "y/z/f.png"]:
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (36, 48, 3), dtype=np.uint8)).save(photos / name)
    # the count the job needs, the documented way
    listing = subprocess.run([sys.executable, "-m", "sharp_addon", "predict", "-i", str(photos), "-o",
                              str(tmp_path / "farm"), "--list"], cwd=ROOT, capture_output=True, text=True)
    assert listing.returncode == 0 and listing.stderr == "7 of 7 images\n", listing.stderr
    job = compile_job({"input_folder": str(photos), "image_count": 7, "output_folder": str(tmp_path / "farm"),
                       "format": "ply", "chunk_size": 3, "device": "cpu", "checkpoint": str(tiny_checkpoint)})
    assert [task["name"] for task in job["tasks"]] == ["sharp-0-2", "sharp-3-5", "sharp-6-6"]

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def run(task: dict) -> tuple[dict, subprocess.CompletedProcess]:
        (command,) = task["commands"]
        return command, subprocess.run(worker_argv(command), env=env, capture_output=True, text=True, timeout=600)

    with ThreadPoolExecutor(max_workers=2) as pool:  # two workers
        for command, result in pool.map(run, job["tasks"]):
            assert result.returncode == 0, result.stderr[-3000:]
            lines = result.stdout.splitlines()
            assert sum(bool(STEP.match(line)) for line in lines) == command["totalStepCount"]
            assert not any(SAVED.match(line) for line in lines)  # no images: PLYs never displace a thumbnail

    reference = subprocess.run([sys.executable, "-m", "sharp_addon", "predict", "-i", str(photos), "-o",
                                str(tmp_path / "one"), "-c", str(tiny_checkpoint), "--device", "cpu"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    farm, one = sorted(os.listdir(tmp_path / "farm")), sorted(os.listdir(tmp_path / "one"))
    assert farm == one == sorted(["a.ply", "x__a.ply", "b.ply", "c.ply", "d.ply", "e.ply", "f.ply"])
    for name in one:
        assert (tmp_path / "farm" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    # a re-queued task (a worker lost midway) finishes only what is missing and leaves the rest
    (tmp_path / "farm" / "d.ply").unlink()
    before = {n: (tmp_path / "farm" / n).stat().st_mtime_ns for n in os.listdir(tmp_path / "farm")}
    command, result = run(job["tasks"][1])
    assert result.returncode == 0 and "done: 1 converted, 2 skipped" in result.stdout, result.stderr[-2000:]
    assert all((tmp_path / "farm" / n).stat().st_mtime_ns == t for n, t in before.items())
    assert (tmp_path / "farm" / "d.ply").read_bytes() == (tmp_path / "one" / "d.ply").read_bytes()
