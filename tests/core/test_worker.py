"""The inference worker process: same result as in-process, errors, cancel, crashes."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from sharp_addon import worker as W
from sharp_addon.errors import Cancelled, CheckpointError, ImageError
from tests.conftest import ROOT
from tests.helpers import random_gaussians

SAMPLE = str(ROOT / "tests" / "data" / "sample_640x480.png")


def test_results_travel_exactly_through_the_file(tmp_path):
    g = random_gaussians(300).replace(layers=np.arange(300) % 2)
    W.save_result(g, tmp_path / "r.npz")
    back = W.load_result(tmp_path / "r.npz")
    for name in (*W.ARRAYS, "layers"):
        np.testing.assert_array_equal(getattr(back, name), getattr(g, name))
    assert (back.focal_px, back.image_size, back.color_space) == (g.focal_px, g.image_size, g.color_space)
    assert not list(tmp_path.glob("*.partial.npz"))


@pytest.fixture
def checkpoint(tiny_checkpoint) -> str:
    return str(tiny_checkpoint)


@pytest.fixture
def worker():
    w = W.InferenceWorker()
    yield w
    w.close()


@pytest.mark.torch
def test_worker_gives_the_in_process_result_and_keeps_the_model(worker, checkpoint):
    from sharp_addon.api import load_predictor

    stages: list[str] = []
    g = worker.run(W.Job(SAMPLE, checkpoint, device="cpu"), progress=lambda s, f: stages.append(s))
    ref = load_predictor(checkpoint, device="cpu").predict(SAMPLE)
    for name in (*W.ARRAYS, "layers"):
        np.testing.assert_array_equal(getattr(g, name), getattr(ref, name))
    assert (g.focal_px, g.image_size) == (ref.focal_px, ref.image_size)
    assert {"loading", "encoder", "gaussians"} <= set(stages)
    pid = worker._process.pid
    stages.clear()
    worker.run(W.Job(SAMPLE, checkpoint, device="cpu"), progress=lambda s, f: stages.append(s))
    assert worker._process.pid == pid and "loading" not in stages  # the network stayed loaded
    assert not list(worker._tmp.glob("*")), "result files are removed once read"


@pytest.mark.torch
def test_errors_come_back_as_their_own_class_and_the_worker_survives(worker, checkpoint, tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png"):
        worker.run(W.Job(str(tmp_path / "nope.png"), checkpoint))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    with pytest.raises(ImageError, match=r"bad\.png"):
        worker.run(W.Job(str(tmp_path / "bad.png"), checkpoint))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(open(checkpoint, "rb").read()[:5000])
    with pytest.raises(CheckpointError, match=r"truncated\.pt"):
        worker.run(W.Job(SAMPLE, str(truncated)))
    assert worker.alive
    assert len(worker.run(W.Job(SAMPLE, checkpoint))) == 2 * 256 * 256


@pytest.mark.torch
def test_cancel_stops_the_run_at_once_and_leaves_nothing(worker, checkpoint):
    job = worker.submit(W.Job(SAMPLE, checkpoint))
    time.sleep(0.5)
    t0 = time.perf_counter()
    worker.cancel()
    assert time.perf_counter() - t0 < 1.0
    assert isinstance(job.error, Cancelled) and job.result is None and not worker.alive
    assert not list(worker._tmp.glob("*"))
    with pytest.raises(Cancelled):  # run() honours a cancel callback the same way
        worker.run(W.Job(SAMPLE, checkpoint), cancel=lambda: True)


@pytest.mark.torch
def test_a_killed_worker_is_reported_with_a_likely_cause(worker, checkpoint):
    job = worker.submit(W.Job(SAMPLE, checkpoint))
    time.sleep(0.3)
    os.kill(worker._process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not worker.poll().finished and time.monotonic() < deadline:
        time.sleep(0.05)
    assert isinstance(job.error, W.WorkerCrashed)
    assert "killed (signal 9)" in str(job.error) and "out of memory" in str(job.error)
    assert len(worker.run(W.Job(SAMPLE, checkpoint))) == 2 * 256 * 256  # and a new one starts


def test_one_job_at_a_time(worker, tmp_path):
    worker._job = W.Job("a.png", "b.pt")  # pretend one is running
    with pytest.raises(W.SharpError, match="already converting"):
        worker.submit(W.Job("c.png", "d.pt"))
