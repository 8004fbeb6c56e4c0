"""The inference worker process: same result as in-process, errors, cancel, crashes, the protocol."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sharp_addon import child_process as C
from sharp_addon import worker as W
from sharp_addon.errors import Cancelled, CheckpointError, ImageError, ProtocolError, SharpError, WorkerCrashed
from sharp_addon.work import wait
from sharp_addon.worker import host, results
from tests.conftest import ROOT
from tests.support.blender_data import process_gone
from tests.support.builders import random_gaussians

SAMPLE = str(ROOT / "tests" / "data" / "sample_640x480.png")


def test_results_travel_exactly_through_the_file(tmp_path):
    g = random_gaussians(300).replace(layers=np.arange(300) % 2)
    W.save_result(g, tmp_path / "r.npz")
    back = W.load_result(tmp_path / "r.npz")
    for name in (*results.ARRAYS, "layers"):
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
@pytest.mark.slow
def test_worker_gives_the_in_process_result_and_keeps_the_model(worker, checkpoint):
    from sharp_addon.api import load_predictor

    stages: list[str] = []
    # float32 on both sides: bit-for-bit across processes (bfloat16 kernels may sum in another order)
    fp32 = W.PredictRequest(SAMPLE, checkpoint, device="cpu", precision="fp32")
    g = worker.run(fp32, progress=lambda s, f: stages.append(s))
    ref = load_predictor(checkpoint, device="cpu", precision="fp32").predict(SAMPLE)
    for name in (*results.ARRAYS, "layers"):
        np.testing.assert_array_equal(getattr(g, name), getattr(ref, name))
    assert (g.focal_px, g.image_size) == (ref.focal_px, ref.image_size)
    assert {"loading", "encoder", "gaussians"} <= set(stages)
    pid = worker.pid
    stages.clear()
    worker.run(fp32, progress=lambda s, f: stages.append(s))
    assert worker.pid == pid and "loading" not in stages  # the network stayed loaded
    assert not list(worker.scratch.glob("*")), "result files are removed once read"


@pytest.mark.torch
def test_errors_come_back_as_their_own_class_and_the_worker_survives(worker, checkpoint, tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png"):
        worker.run(W.PredictRequest(str(tmp_path / "nope.png"), checkpoint))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    with pytest.raises(ImageError, match=r"bad\.png"):
        worker.run(W.PredictRequest(str(tmp_path / "bad.png"), checkpoint))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(open(checkpoint, "rb").read()[:5000])
    with pytest.raises(CheckpointError, match=r"truncated\.pt"):
        worker.run(W.PredictRequest(SAMPLE, str(truncated)))
    assert worker.alive
    assert len(worker.run(W.PredictRequest(SAMPLE, checkpoint))) == 2 * 256 * 256


@pytest.mark.torch
def test_cancel_stops_the_run_at_once_and_leaves_nothing(worker, checkpoint):
    stages: list[str] = []
    job = worker.submit(W.PredictRequest(SAMPLE, checkpoint), on_progress=lambda stage, f: stages.append(stage))
    deadline = time.monotonic() + 60
    while "encoder" not in stages and not job.poll():  # cancel mid-network, not while torch loads
        assert time.monotonic() < deadline, stages
        time.sleep(0.01)
    pid = worker.pid
    worker.cancel()  # how fast: bench/cancel.py
    assert isinstance(job.error, Cancelled) and job.result is None and not worker.alive
    assert process_gone(pid) and not list(worker.scratch.glob("*"))
    with pytest.raises(Cancelled):  # run() honours a cancel callback the same way
        worker.run(W.PredictRequest(SAMPLE, checkpoint), cancel=lambda: True)


@pytest.mark.torch
def test_a_killed_worker_is_reported_with_a_likely_cause(worker, checkpoint):
    job = worker.submit(W.PredictRequest(SAMPLE, checkpoint))
    time.sleep(0.3)
    os.kill(worker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not job.poll() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert isinstance(job.error, WorkerCrashed)
    assert "killed (signal 9)" in str(job.error) and "out of memory" in str(job.error)
    assert len(worker.run(W.PredictRequest(SAMPLE, checkpoint))) == 2 * 256 * 256  # and a new one starts


def test_one_job_at_a_time(tmp_path):
    w = W.InferenceWorker(python=str(_stub_python(tmp_path, "import time; time.sleep(30)")))
    try:
        w.submit(W.PredictRequest("a.png", "b.pt"))
        with pytest.raises(SharpError, match="already converting"):
            w.submit(W.PredictRequest("c.png", "d.pt"))
    finally:
        w.close()


# ---- the protocol ---------------------------------------------------------------------------------


def worker_replies(*lines: str) -> list[dict]:
    """Start a real worker, send it raw lines, return its events (it exits when stdin closes)."""
    done = subprocess.run([sys.executable, "-c", host.BOOT], input="".join(lines), capture_output=True, text=True,
                          env=C.child_env(), timeout=120)
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_worker_refuses_what_it_does_not_understand():
    replies = worker_replies("this is not json\n", '["a", "list"]\n', '{"cmd": "paint", "job": 7}\n')
    assert [(r["event"], r["type"], r["job"]) for r in replies] == [
        ("error", "ProtocolError", None), ("error", "ProtocolError", None), ("error", "ProtocolError", 7)]
    assert "cannot read the request 'this is not json'" in replies[0]["message"]
    assert "does not know the command 'paint'" in replies[2]["message"]


def test_prints_from_libraries_never_reach_the_event_stream(tmp_path):
    code = ("import os, sys; sys.path[:0] = __import__('json').loads(os.environ['SHARP_WORKER_SYS_PATH']); "
            "import sharp_addon.worker.serve as w; c = w.EventChannel(); print('python print'); "
            "os.write(1, b'native print\\n'); c.send(event='done', job=1, out='x')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=C.child_env())
    assert done.stdout.splitlines() == ['{"event": "done", "job": 1, "out": "x"}'], done.stdout
    assert "python print" in done.stderr and "native print" in done.stderr


def _stub_python(tmp_path, body: str):
    """An executable that stands in for Python and runs ``body`` whatever it is asked to do."""
    script = tmp_path / "stub-python"
    script.write_text(f"#!{sys.executable}\n{body}\n")
    script.chmod(0o755)
    return script


def test_the_host_fails_a_job_on_an_event_it_does_not_understand(tmp_path):
    stub = _stub_python(tmp_path, "import sys, time\nsys.stdin.readline()\nprint('hello from a stray print', "
                                  "flush=True)\ntime.sleep(30)")
    w = W.InferenceWorker(python=str(stub))
    try:
        job = w.submit(W.PredictRequest("a.png", "b.pt"))
        deadline = time.monotonic() + 10
        while not job.poll() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert isinstance(job.error, ProtocolError) and "hello from a stray print" in str(job.error)
        assert not w.alive
    finally:
        w.close()


def test_a_worker_that_goes_silent_is_stopped_and_reported(tmp_path):
    stub = _stub_python(tmp_path, "import sys, time\nsys.stdin.readline()\ntime.sleep(60)")
    w = W.InferenceWorker(python=str(stub), silence_timeout=1.0)
    try:
        job = w.submit(W.PredictRequest("a.png", "b.pt"))
        deadline = time.monotonic() + 10
        while not job.poll() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert isinstance(job.error, WorkerCrashed) and "stopped responding (no word for 1 s)" in str(job.error)
        assert not w.alive
    finally:
        w.close()


@pytest.mark.torch
@pytest.mark.slow
def test_a_stopped_worker_is_caught_and_a_working_one_is_not(worker, checkpoint):
    """With a timeout of three heartbeats: a worker stopped mid-job (SIGSTOP) fails the job; a run
    of a working worker under the same timeout finishes (its heartbeats say it is alive)."""
    worker.silence_timeout = 3 * W.protocol.HEARTBEAT_SECONDS
    job = worker.submit(W.PredictRequest(SAMPLE, checkpoint))
    os.kill(worker.pid, signal.SIGSTOP)  # silent now: no heartbeat either
    try:
        deadline = time.monotonic() + 15
        while not job.poll() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if worker.pid:
            os.kill(worker.pid, signal.SIGCONT)
    assert isinstance(job.error, WorkerCrashed) and "stopped responding" in str(job.error)
    assert len(worker.run(W.PredictRequest(SAMPLE, checkpoint))) == 2 * 256 * 256  # heartbeats carry a whole run


@pytest.mark.torch
@pytest.mark.slow
def test_the_first_progress_says_where_and_in_what_precision_it_runs(worker, checkpoint):
    job = worker.submit(W.PredictRequest(SAMPLE, checkpoint, device="cpu", precision="fp32"))
    wait(job)
    assert job.status.detail == "on the CPU in float32 (as asked)"
    job = worker.submit(W.PredictRequest(SAMPLE, checkpoint, device="cpu"))  # auto: the CPU's flags decide, and why
    wait(job)
    detail = job.status.detail
    assert detail.startswith("on the CPU in ") and ("natively" in detail or "no native" in detail)
