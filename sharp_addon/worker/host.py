"""The host's side: one long-lived worker process, and each request followed as a ``WorkerJob``.

No bpy. ``InferenceWorker`` starts the worker (``serve.serve`` in a ``ChildProcess``) on first use and
keeps it, with the network it loaded, until ``stop``; ``submit`` sends one request and gives the
``WorkerJob`` that follows it (``work.Work``: poll, fraction, status text, cancel, error, result).
One job runs at a time. A cancel kills the worker at once (the loaded network goes with it); a
worker that says nothing for ``silence_timeout`` seconds while working (stopped, or hung while
holding Python's lock, so its heartbeat thread is silent too) is killed and the job fails. Which Python runs the worker:
``child_process`` (the host's own, with an optional runtime folder first, or a Python for Inference).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import work
from ..child_process import ENV_PATH, KILL_WAIT_SECONDS, PACKAGE_DIR, ChildProcess, child_env, host_python, run_to_end
from ..errors import Cancelled, OutputError, ProtocolError, SharpError, WorkerCrashed, from_event
from ..gaussians import Gaussians
from .protocol import PredictRequest, RenderRequest, check_message, encode, parse_event
from .results import load_result, partial_frame_path, save_result

SILENCE_TIMEOUT = 60.0  # seconds without a word from a working worker before the host gives up on it
# The worker's first lines. A module the package needs and that interpreter lacks (numpy or pillow
# in a Python for Inference) is answered as an error event: the host reads a DependencyError.
BOOT = f"""\
import importlib, json, os, sys
sys.path[:0] = json.loads(os.environ[{ENV_PATH!r}])
try:
    serve = importlib.import_module({PACKAGE_DIR.name!r} + ".worker.serve")
except ImportError as e:
    python = sys.executable
    print(json.dumps({{"event": "error", "job": None, "type": "DependencyError", "path": python,
                      "message": "Python '%s' cannot load the module '%s' (%s): install numpy and pillow there "
                                 "with '%s -m pip install numpy pillow'" % (python, e.name, e, python)}}), flush=True)
    sys.exit(1)
serve.serve()
"""
# share of a whole SHARP run per stage the worker reports, for one progress bar
STAGES = {"starting": (0.0, 0.02), "loading": (0.02, 0.1), "prepare": (0.1, 0.12), "encoder": (0.12, 0.7),
          "depth": (0.7, 0.8), "gaussians": (0.8, 0.95), "unproject": (0.95, 1.0), "done": (1.0, 1.0)}

Request = PredictRequest | RenderRequest
Progress = Callable[[str, float], None]  # (stage, that stage's fraction)
FrameDone = Callable[[int, Path], None]  # (frame index, its complete .npy file)


def overall_fraction(stage: str, fraction: float) -> float:
    """A SHARP run's stage and that stage's fraction as the fraction of the whole run."""
    start, end = STAGES.get(stage, (0.0, 0.0))
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


@dataclass
class JobStatus:
    """What the worker has said about a job so far."""

    stage: str = "starting"
    fraction: float = 0.0  # of the current stage (predict) or of all frames (render)
    detail: str = ""  # where and in what precision it runs, and why (the worker's first progress event says)
    frames_done: list[int] = field(default_factory=list)  # a render's frames whose files are complete, in order


@dataclass
class JobFiles:
    """The files a job travels with: the result file, a render's splats and frames."""

    made: list[Path] = field(default_factory=list)  # in the worker's scratch folder: removed when the job ends
    outputs: list[Path] = field(default_factory=list)  # a render's frame files, one per camera
    result: Path | None = None  # a prediction's result file

    def leftovers(self) -> list[Path]:
        """Ours, and any frame a killed worker was still writing (``save_frame``'s partial)."""
        return self.made + [partial_frame_path(path) for path in self.outputs]


class WorkerJob:
    """One request to the worker, followed to its end (``work.Work``).

    ``on_progress(stage, fraction)`` and ``on_frame(index, path)`` are called in ``poll``, on the
    caller's thread, for every progress event and for each frame as soon as its file is complete.
    """

    def __init__(self, worker: InferenceWorker, request: Request, job_id: int, files: JobFiles,
                 on_progress: Progress | None = None, on_frame: FrameDone | None = None) -> None:
        self.worker, self.request, self.id, self.files = worker, request, job_id, files
        self.on_progress, self.on_frame = on_progress, on_frame
        self.status = JobStatus()
        self.result: Any = None
        self.error: SharpError | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    @property
    def fraction(self) -> float:
        if isinstance(self.request, PredictRequest):
            return overall_fraction(self.status.stage, self.status.fraction)
        return self.status.fraction

    def poll(self) -> bool:
        if not self.finished:
            self.worker.take_events(self)
        return self.finished

    def cancel(self) -> None:
        """Stop now: the worker is killed (its loaded network goes with it)."""
        if not self.finished:
            what = "Exact render" if isinstance(self.request, RenderRequest) else "SHARP"
            self.error = Cancelled(f"{what} cancelled: nothing was added")
            self.worker.stop()

    def status_text(self) -> str:
        how = f" ({self.status.detail})" if self.status.detail else ""
        if isinstance(self.request, RenderRequest):
            count = len(self.request.cameras)
            frame = min(len(self.status.frames_done) + 1, count)
            return f"Exact render: frame {frame}/{count} {100 * self.fraction:.0f}%{how}"
        return f"SHARP: {self.status.stage} {100 * self.fraction:.0f}%{how}"

    def output(self, frame: int) -> Path:
        """Where a render's frame ``frame`` is (complete once it is in ``status.frames_done``)."""
        return self.files.outputs[frame]

    def take(self, event: dict[str, Any]) -> None:
        """One event of this job from the worker."""
        kind = event.get("event")
        if kind == "progress":
            self._progress(event)
        elif kind == "done":
            try:
                self.result = self._read_result()
            except (OSError, ValueError, KeyError, SharpError) as e:
                self.error = WorkerCrashed(f"the SHARP worker's result could not be read ({e})")
        elif kind == "error":
            self.error = from_event(event)
        elif kind != "alive":
            line = event.get("line", str(event))
            self.error = ProtocolError(f"the SHARP worker sent something this add-on does not understand: "
                                       f"{line[:200]!r}; the worker was stopped")

    def _progress(self, event: dict[str, Any]) -> None:
        status = self.status
        status.stage, status.fraction = str(event["stage"]), float(event["fraction"])
        status.detail = str(event.get("detail", status.detail))
        frame = event.get("frame")
        if isinstance(frame, int) and 0 <= frame < len(self.files.outputs) and frame not in status.frames_done:
            status.frames_done.append(frame)
            path = self.files.outputs[frame]
            if self.on_frame is not None:
                self.on_frame(frame, path)
            if self._drops_frames() and frame < len(self.files.outputs) - 1 and path in self.files.made:
                path.unlink(missing_ok=True)
        if self.on_progress is not None:
            self.on_progress(status.stage, status.fraction)

    def _drops_frames(self) -> bool:
        return isinstance(self.request, RenderRequest) and not self.request.keep_images

    def _read_result(self) -> Any:
        if isinstance(self.request, RenderRequest):
            kept = self.files.outputs[-1:] if self._drops_frames() else self.files.outputs
            return [np.load(path, allow_pickle=False) for path in kept]
        assert self.files.result is not None
        return load_result(self.files.result)


class InferenceWorker:
    """A long-lived worker process (started on first use) that serves one request at a time."""

    def __init__(self, python: str | None = None, silence_timeout: float = SILENCE_TIMEOUT,
                 runtime: str | os.PathLike[str] | None = None) -> None:
        self.python = python or host_python()
        self.runtime = None if runtime is None else Path(runtime)  # first on the worker's sys.path
        self.silence_timeout = silence_timeout
        self._child: ChildProcess | None = None
        self._job: WorkerJob | None = None
        self._next_id = 1
        self.scratch = Path(tempfile.mkdtemp(prefix="sharp-worker-"))  # result files, removed once read

    @property
    def alive(self) -> bool:
        return self._child is not None and self._child.alive

    @property
    def pid(self) -> int | None:
        """The worker process's id while it runs."""
        return self._child.pid if self._child is not None and self._child.alive else None

    @property
    def busy(self) -> bool:
        return self._job is not None and not self._job.finished

    def submit(self, request: Request, *, on_progress: Progress | None = None,
               on_frame: FrameDone | None = None) -> WorkerJob:
        """Send ``request`` (the worker starts if needed); the job that follows it."""
        if self.busy:
            raise SharpError("SHARP is already converting an image; wait for it or cancel it first")
        child = self._start()
        job_id, self._next_id = self._next_id, self._next_id + 1
        try:
            message, files = _prepare(request, job_id, self.scratch)
        except (OSError, ValueError) as e:
            raise OutputError.about(self.scratch, f"cannot hold the job's files ({e})", subject="folder") from None
        job = self._job = WorkerJob(self, request, job_id, files, on_progress, on_frame)
        child.heard = time.monotonic()  # a new request: a new wait for its first word
        if not child.send(encode(message)):  # it exited already: perhaps it said why first
            self._fail(job, last_words=True)
        return job

    def run(self, request: Request, progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
            on_frame: FrameDone | None = None) -> Any:
        """Submit and wait (background Blender, scripts, the tests): the result, or raises the error."""
        return work.wait(self.submit(request, on_progress=progress, on_frame=on_frame), cancel=cancel)

    def cancel(self) -> None:
        """Stop the current job at once (the worker is killed: the loaded network goes with it)."""
        if self.busy:
            self.stop()

    def stop(self) -> None:
        """End the worker (a running job is cancelled) and free its memory."""
        child, self._child = self._child, None
        if child is not None:
            child.close()
        if self._job is not None:  # a job still running is cancelled; its files go either way
            self._end(self._job, Cancelled("SHARP run cancelled"))

    def close(self) -> None:
        self.stop()
        for leftover in self.scratch.glob("*"):
            leftover.unlink(missing_ok=True)
        try:
            self.scratch.rmdir()
        except OSError:
            pass

    # ---- following ----------------------------------------------------------------------------

    def take_events(self, job: WorkerJob) -> None:
        """Take in what the worker said about ``job`` (``WorkerJob.poll``)."""
        child = self._child
        if job is not self._job or job.finished:
            return
        if child is None:
            self._end(job, Cancelled("SHARP run cancelled"))
            return
        for line in child.take():
            event = parse_event(line)
            if event.get("job") not in (job.id, None):  # None: the worker could not read a request
                continue
            job.take(event)
            if event["event"] == "unknown":
                self.stop()
            if job.finished:
                self._end(job)
                return
        if child.ended:
            self._fail(job)
        elif child.silent_for() > self.silence_timeout:
            self._fail(job, silent=True)

    def _start(self) -> ChildProcess:
        if self._child is not None and self._child.alive:
            return self._child
        if self._child is not None:
            self._child.close()
        # its own process group: a cancel ends what it started too (a gsplat build), and Ctrl+C in the
        # host's terminal reaches the host, which cancels the job, rather than killing the worker under it
        self._child = ChildProcess([self.python, "-c", BOOT], env=child_env(self.python, self.runtime), stdin=True,
                                   own_group=True, name="sharp-worker")
        return self._child

    def _fail(self, job: WorkerJob, silent: bool = False, last_words: bool = False) -> None:
        """The worker is gone (or went silent and is stopped now): say why as well as we can tell.
        ``last_words``: read what it wrote before it exited (an error event says why best)."""
        child, self._child = self._child, None
        assert child is not None
        if silent:
            child.kill()
        try:
            code = child.wait(KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired:  # its output ended but it lives on: end it
            child.kill()
            code = child.process.returncode if child.process.returncode is not None else -9
        for line in child.take_rest() if last_words else ():
            event = parse_event(line)
            if event["event"] == "error" and event.get("job") in (job.id, None):
                child.close()
                self._end(job, from_event(event))
                return
        tail = child.stderr_tail()
        child.close()
        if silent:
            why = f"it stopped responding (no word for {self.silence_timeout:.0f} s) and was stopped"
        elif code < 0 and -code == getattr(signal, "SIGKILL", 9):
            why = "it was killed (signal 9), most likely because the system ran out of memory"
        elif code < 0:
            why = f"it crashed (signal {-code})"
        else:
            why = f"it exited with code {code}"
        said = f" Last output: {tail}" if tail else ""
        self._end(job, WorkerCrashed(f"the SHARP worker process stopped unexpectedly: {why}.{said}"))

    def _end(self, job: WorkerJob, error: SharpError | None = None) -> None:
        """The job is over: its error (if not set already) and no scratch file of it left."""
        if error is not None and not job.finished:
            job.error = error
        for path in job.files.leftovers():
            path.unlink(missing_ok=True)


def _prepare(request: Request, job_id: int, scratch: Path) -> tuple[dict[str, Any], JobFiles]:
    """The request's message and its files: the result file, a render's splats and frame files (the
    caller's, or new ones in ``scratch``)."""
    if isinstance(request, PredictRequest):
        out = scratch / f"job-{job_id}.npz"  # and the partial file a killed worker leaves while writing it
        return request.message(job_id, str(out)), JobFiles(made=[out, out.with_suffix(".partial.npz")], result=out)
    files = JobFiles()
    if isinstance(request.gaussians, Gaussians):
        source = scratch / f"render-{job_id}.npz"
        save_result(request.gaussians, source)
        files.made.append(source)
    else:
        source = Path(request.gaussians)
    if request.outputs is None:
        files.outputs = [scratch / f"render-{job_id}-{i}.npy" for i in range(len(request.cameras))]
        files.made += files.outputs
    else:
        files.outputs = [Path(p) for p in request.outputs]
    return request.message(job_id, str(source), [str(p) for p in files.outputs]), files


def check_checkpoint(checkpoint: str, python: str | None = None, timeout: float = 300.0,
                     runtime: str | os.PathLike[str] | None = None) -> str:
    """``api.validate_checkpoint`` in a short-lived worker (the host never imports torch)."""
    python = python or host_python()
    try:
        done = run_to_end([python, "-c", BOOT], env=child_env(python, runtime),
                          input=encode(check_message(0, checkpoint)) + "\n", timeout=timeout)
    except TimeoutError:
        raise WorkerCrashed(f"checking '{checkpoint}' took longer than {timeout:.0f} s and was stopped") from None
    for line in reversed(done.stdout.splitlines()):
        event = parse_event(line)
        if event["event"] == "done":
            return str(event["message"])
        if event["event"] == "error":
            raise from_event(event)
    tail = " | ".join(done.stderr.strip().splitlines()[-3:])
    raise WorkerCrashed(f"the SHARP worker stopped while checking '{checkpoint}' (exit code {done.returncode}). "
                        f"{tail}")
