"""The Flamenco job type (farm/flamenco/sharp_convert.js): its compiler under Node, and its tasks run here.

Flamenco itself cannot be installed on these machines; tests/farm/flamenco_stub.js stands in for the
API the Manager gives job scripts, and tests/farm/blender_stand_in.py for a worker's Blender with
the extension installed. Running the compiled tasks' commands the way a worker does (the
blender-render command line, the Manager's default "-b -y", two at a time) must give exactly the
files of one unsharded run, and each task must print one ``Time:`` line (a worker's step) per photo.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def compile_job(settings: dict) -> dict:
    code = ("const stub = require(process.argv[1]);"
            "const job = stub.compile(process.argv[2], {name: 'test', type: 'sharp-convert', "
            "settings: JSON.parse(process.argv[3])});"
            "process.stdout.write(JSON.stringify(job));")
    result = subprocess.run([NODE, "-e", code, str(HERE / "flamenco_stub.js"),
                             str(ROOT / "farm" / "flamenco" / "sharp_convert.js"), json.dumps(settings)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def worker_argv(command: dict) -> list[str]:
    """The process a Flamenco worker starts for a blender-render command (command_blender.go)."""
    assert command["name"] == "blender-render"
    p = command["parameters"]
    assert p["exe"] == "{blender}" and p["exeArgs"] == "{blenderArgs}"
    argv = [sys.executable, str(HERE / "blender_stand_in.py"), *shlex.split(MANAGER_BLENDER_ARGS), *p["argsBefore"]]
    if p["blendfile"]:
        argv.append(p["blendfile"])
    return argv + p["args"]


@needs_node
def test_the_job_compiler_passes_its_node_tests():
    files = sorted(str(p) for p in HERE.glob("*.test.js"))  # named, not the folder: Node 18 to 22 agree on files
    result = subprocess.run([NODE, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"^# fail 0$", result.stdout, re.M) and re.search(r"^# pass [1-9]", result.stdout, re.M), \
        result.stdout[-2000:]


@needs_node
@pytest.mark.blender
@pytest.mark.torch
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
