"""Inference in a separate Python process, so a host (Blender) never runs torch itself.

No bpy. Why a process and not a thread: Blender's Python API must not run beside threads that
use it, torch's native libraries clash with Blender's on some platforms (OpenMP on macOS), a
crash or the out-of-memory killer then takes down the worker and not the user's scene, and a
cancel is a kill that always works at once.

``InferenceWorker`` (host side) starts ``serve()`` (worker side) and speaks JSON lines with it.
Which Python runs it (``worker_env``):

- the host's own Python (default): with the host's ``sys.path`` (so the extension's wheels are
  found), after a private runtime folder when one is given (``runtime=``: a GPU PyTorch that pip
  installed there; it comes first, so its torch wins over any other, and the host never imports it);
- any other Python 3.10+ with torch (``python=``, "Python for Inference": a conda or venv with CUDA,
  ROCm or gsplat): with only this package's parent folder added, since the host's site-packages
  and numpy build belong to another interpreter. What that Python lacks (numpy, pillow) comes
  back as a ``DependencyError`` naming it, not as a traceback.

The protocol:

    host -> worker   {"cmd": "predict", "job": id, "image": ..., "checkpoint": ..., "device": ...,
                      "precision": ..., "focal_35mm": ..., "out": file.npz}
                     {"cmd": "check", "job": id, "checkpoint": ...}    (reply: "done" with "message")
                     {"cmd": "render", "job": id, "gaussians": file.npz, "cameras": [Camera.to_dict(), ...],
                      "outputs": [file.npy per camera], "device": ..., "eps2d": ..., "backend": ...}
    worker -> host   {"event": "progress", "job": id, "stage": ..., "fraction": ..., "detail": ...}
                     {"event": "progress", "job": id, "stage": "rendering", "fraction": ..., "frame": i}
                     {"event": "alive", "job": id}                     (every second while working)
                     {"event": "done", "job": id, "out": file.npz}     (predict; render: no "out")
                     {"event": "error", "job": id, "type": "CheckpointError", "message": ..., "path": ...}

Each side refuses what it does not understand: the worker answers a malformed line or an unknown
command with a ``ProtocolError`` event, and the host fails the job on a malformed or unknown event
(events go out on a private copy of the worker's stdout, and anything a library prints, even from
native code, lands on stderr). Errors come back as the class and message they were raised with
(``errors.to_event`` / ``from_event``). A worker that says nothing for ``silence_timeout`` seconds
while working (stopped, deadlocked) is killed and the job fails: a host never waits forever.

A render (``RenderJob``) runs the exact renderer (``render.render_gaussians``) where torch is, the
worker, since Blender's own Python may have none. Its fraction runs over all frames; each frame's
(H, W, 4) float32 premultiplied RGBA goes to its .npy file (written whole, by a rename) as soon
as it is rendered, and the progress event that follows names it (``frame``), so a host can show or
save frames as they come; "done" follows the last one.

The worker keeps the last loaded network between jobs, which is how "keep the model loaded"
works: the host keeps the worker alive. Results travel as an uncompressed .npz file (66 MB for
1.18 M splats), which is faster than any pipe encoding.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from .errors import (
    Cancelled,
    DependencyError,
    GaussiansError,
    OutputError,
    ProtocolError,
    SharpError,
    WorkerCrashed,
    from_event,
    to_event,
)
from .gaussians import Gaussians

PACKAGE_DIR = Path(__file__).resolve().parent
ENV_PATH = "SHARP_WORKER_SYS_PATH"
PYTHON_SUBJECT = "Python for Inference"  # how messages name another interpreter
# The worker's first lines. A module the package needs and that interpreter lacks (numpy or pillow
# in a Python for Inference) is answered as an error event: the host reads a DependencyError.
BOOT = f"""\
import importlib, json, os, sys
sys.path[:0] = json.loads(os.environ[{ENV_PATH!r}])
try:
    worker = importlib.import_module({PACKAGE_DIR.name!r} + ".worker")
except ImportError as e:
    python = sys.executable
    print(json.dumps({{"event": "error", "job": None, "type": "DependencyError", "path": python,
                      "message": "Python '%s' cannot load the module '%s' (%s): install numpy and pillow there "
                                 "with '%s -m pip install numpy pillow'" % (python, e.name, e, python)}}), flush=True)
    sys.exit(1)
worker.serve()
"""
ARRAYS = ("means", "scales", "quats", "colors", "opacities")
KILL_GRACE_SECONDS = 0.5
HEARTBEAT_SECONDS = 1.0  # how often a working worker says it is alive
SILENCE_TIMEOUT = 60.0  # seconds without a word from a working worker before the host gives up on it
EVENTS = ("progress", "alive", "done", "error")


@dataclass
class Job:
    """One photo to convert; stage, fraction and then result or error fill in as the worker reports."""

    image: str
    checkpoint: str
    device: str = "auto"
    precision: str = "auto"
    focal_35mm: float | None = None
    id: int = 0
    stage: str = "starting"
    fraction: float = 0.0
    result: Gaussians | None = None
    error: SharpError | None = None
    out: Path | None = None
    detail: str = ""  # where and in what precision it runs, and why (the worker's first progress event says)
    on_progress: Callable[[str, float], None] | None = None  # called for every progress event, in poll()

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    def request(self) -> dict[str, Any]:
        return {"cmd": "predict", "job": self.id, "image": self.image, "checkpoint": self.checkpoint,
                "device": self.device, "precision": self.precision, "focal_35mm": self.focal_35mm,
                "out": str(self.out)}

    def prepare(self, scratch: Path) -> None:
        """Before the request goes out: where the worker writes the result."""
        self.out = scratch / f"job-{self.id}.npz"

    def take_done(self, event: dict[str, Any]) -> None:
        """The worker said "done": read the result it wrote."""
        self.result = load_result(Path(event["out"]))

    def take_progress(self, event: dict[str, Any]) -> None:
        """Anything a progress event carries beyond stage and fraction (nothing for a photo)."""

    def scratch_files(self) -> list[Path]:
        """The files this job made in the worker's scratch folder (removed when it ends)."""
        return [self.out] if self.out is not None else []


@dataclass
class RenderJob:
    """Splats rendered exactly through some cameras, in the worker (where torch is).

    ``gaussians``: the splats, or a result file (``save_result``'s format) to read them from;
    ``cameras``: ``cameras.Camera`` objects or their ``to_dict()``; ``outputs``: one .npy file per
    camera, or None for files in the worker's scratch folder (removed once read). ``result``: the
    (H, W, 4) float32 linear premultiplied RGBA images, in camera order. ``on_frame(index, path)``
    is called (in poll) for each frame as soon as its file is complete.
    """

    gaussians: Gaussians | str | os.PathLike[str]
    cameras: list[Any]
    outputs: list[str] | None = None
    device: str = "cpu"
    eps2d: float = 0.0
    backend: str = "auto"
    id: int = 0
    stage: str = "starting"
    fraction: float = 0.0
    result: list[np.ndarray] | None = None
    error: SharpError | None = None
    detail: str = ""  # where it renders (the worker's first progress event says)
    frames_done: list[int] = field(default_factory=list)  # frames whose files are complete, in order
    on_progress: Callable[[str, float], None] | None = None
    on_frame: Callable[[int, Path], None] | None = None
    _made: list[Path] = field(default_factory=list)  # our scratch files
    _gaussians_file: Path | None = None
    _output_files: list[Path] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    def prepare(self, scratch: Path) -> None:
        """The splats' file and the frames' files: the caller's, or new ones in ``scratch``."""
        self._made = []
        if isinstance(self.gaussians, Gaussians):
            self._gaussians_file = scratch / f"render-{self.id}.npz"
            save_result(self.gaussians, self._gaussians_file)
            self._made.append(self._gaussians_file)
        else:
            self._gaussians_file = Path(self.gaussians)
        if self.outputs is None:
            self._output_files = [scratch / f"render-{self.id}-{i}.npy" for i in range(len(self.cameras))]
            self._made += self._output_files
        else:
            self._output_files = [Path(p) for p in self.outputs]

    def request(self) -> dict[str, Any]:
        cameras = [c.to_dict() if hasattr(c, "to_dict") else c for c in self.cameras]  # dicts go as they are
        return {"cmd": "render", "job": self.id, "gaussians": str(self._gaussians_file), "cameras": cameras,
                "outputs": [str(p) for p in self._output_files], "device": self.device, "eps2d": self.eps2d,
                "backend": self.backend}

    def output(self, frame: int) -> Path:
        """Where frame ``frame``'s image is (complete once it is in ``frames_done``)."""
        return self._output_files[frame]

    def take_progress(self, event: dict[str, Any]) -> None:
        frame = event.get("frame")
        if isinstance(frame, int) and 0 <= frame < len(self._output_files) and frame not in self.frames_done:
            self.frames_done.append(frame)
            if self.on_frame is not None:
                self.on_frame(frame, self._output_files[frame])

    def take_done(self, event: dict[str, Any]) -> None:
        self.result = [np.load(path, allow_pickle=False) for path in self._output_files]

    def scratch_files(self) -> list[Path]:
        """Ours in scratch, and any frame a killed worker was still writing (``_save_frame``'s partial)."""
        return list(self._made) + [partial_frame_path(path) for path in self._output_files]


AnyJob = TypeVar("AnyJob", bound="Job | RenderJob")


class InferenceWorker:
    """A long-lived worker process (started on first use) that converts one photo at a time."""

    def __init__(self, python: str | None = None, silence_timeout: float = SILENCE_TIMEOUT,
                 runtime: str | os.PathLike[str] | None = None) -> None:
        self.python = python or _python_executable()
        self.runtime = None if runtime is None else Path(runtime)  # first on the worker's sys.path
        self.silence_timeout = silence_timeout
        self._process: subprocess.Popen[str] | None = None
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._heard = time.monotonic()  # when the worker last said anything (set by the reader thread)
        self._stderr: IO[str] | None = None
        self._job: Job | RenderJob | None = None
        self._next_id = 1
        self.scratch = Path(tempfile.mkdtemp(prefix="sharp-worker-"))  # result files, removed once read

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The worker process's id while it runs."""
        return self._process.pid if self.alive and self._process is not None else None

    @property
    def busy(self) -> bool:
        return self._job is not None and not self._job.finished

    def _start(self) -> subprocess.Popen[str]:
        if self.alive:
            assert self._process is not None
            return self._process
        self._stderr = tempfile.TemporaryFile("w+", prefix="sharp-worker-stderr-")
        self._events = queue.Queue()
        popen_flags: dict[str, Any] = {}
        if os.name == "nt":
            popen_flags["creationflags"] = subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
        try:
            process = subprocess.Popen(
                [self.python, "-c", BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                text=True, encoding="utf-8", env=worker_env(self.python, self.runtime), **popen_flags,
            )
        except OSError as e:  # a missing or not executable interpreter, a file that is no program
            raise cannot_start(self.python, e) from None
        threading.Thread(target=self._pump, args=(process.stdout, self._events), daemon=True,
                         name="sharp-worker-events").start()
        self._process = process
        return process

    def stop(self) -> None:
        """End the worker (a running job is abandoned) and free its memory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                assert process.stdin is not None
                process.stdin.close()
            except OSError:
                pass
            process.terminate()
            try:
                process.wait(KILL_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._job is not None and not self._job.finished:
            self._job.error = Cancelled("SHARP run cancelled")
        self._cleanup_job()

    def close(self) -> None:
        self.stop()
        for leftover in self.scratch.glob("*"):
            leftover.unlink(missing_ok=True)
        try:
            self.scratch.rmdir()
        except OSError:
            pass

    # ---- jobs ---------------------------------------------------------------------------------

    def submit(self, job: AnyJob) -> AnyJob:
        """Start ``job`` (the worker starts if needed); follow it with ``poll``."""
        if self.busy:
            raise SharpError("SHARP is already converting an image; wait for it or cancel it first")
        process = self._start()
        job.id, self._next_id = self._next_id, self._next_id + 1
        self._job = job
        try:
            job.prepare(self.scratch)
        except (OSError, ValueError) as e:
            job.error = OutputError.about(self.scratch, f"cannot hold the job's files ({e})", subject="folder")
            self._cleanup_job()
            raise job.error from None
        self._heard = time.monotonic()
        try:
            assert process.stdin is not None
            process.stdin.write(json.dumps(job.request()) + "\n")
            process.stdin.flush()
        except OSError:  # it exited already: perhaps it said why first
            self._fail(job, last_words=True)
        return job

    def poll(self) -> Job | RenderJob | None:
        """Take in what the worker reported; returns the current job (finished or not)."""
        job = self._job
        if job is None:
            return None
        while not job.finished:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                if time.monotonic() - self._heard > self.silence_timeout:
                    self._fail(job, silent=True)
                break
            if event is None:  # the worker's output ended: it exited
                self._fail(job)
            elif event.get("job") in (job.id, None):  # None: the worker could not read a request
                self._handle(job, event)
        return job

    def run(self, job: Job | RenderJob, progress: Callable[[str, float], None] | None = None,
            cancel: Callable[[], bool] | None = None, interval: float = 0.05) -> Any:
        """Submit and wait: the synchronous path (background Blender, scripts, the tests); the job's
        result (``Gaussians`` for a ``Job``, the images for a ``RenderJob``)."""
        job.on_progress = progress
        self.submit(job)
        while True:
            self.poll()
            if job.finished:
                break
            if cancel is not None and cancel():
                self.stop()
                break
            time.sleep(interval)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def cancel(self) -> None:
        """Stop the current job at once (the worker is killed: the loaded network goes with it)."""
        if self.busy:
            self.stop()

    def _handle(self, job: Job | RenderJob, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "progress":
            job.stage, job.fraction = str(event["stage"]), float(event["fraction"])
            job.detail = str(event.get("detail", job.detail))
            job.take_progress(event)
            if job.on_progress is not None:
                job.on_progress(job.stage, job.fraction)
        elif kind == "done":
            try:
                job.take_done(event)
            except (OSError, ValueError, KeyError, SharpError) as e:
                job.error = WorkerCrashed(f"the SHARP worker's result could not be read ({e})")
            self._cleanup_job()
        elif kind == "error":
            job.error = from_event(event)
            self._cleanup_job()
        elif kind != "alive":
            line = event.get("line", json.dumps(event))
            job.error = ProtocolError(f"the SHARP worker sent something this add-on does not understand: "
                                      f"{line[:200]!r}; the worker was stopped")
            self.stop()

    def _fail(self, job: Job | RenderJob, silent: bool = False, last_words: bool = False) -> None:
        """The worker is gone (or went silent and is stopped now): say why as well as we can tell.
        ``last_words``: read what it wrote before it exited (an error event says why best)."""
        process = self._process
        if silent and process is not None:
            process.kill()
        code = None if process is None else process.wait()
        while last_words:
            try:
                event = self._events.get(timeout=2.0)
            except queue.Empty:
                break
            if event is None:
                break
            if event.get("event") == "error" and event.get("job") in (job.id, None):
                job.error = from_event(event)
                self._process = None
                self._cleanup_job()
                return
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            lines = [line for line in self._stderr.read().splitlines() if line.strip()]
            tail = " Last output: " + " | ".join(lines[-3:]) if lines else ""
        if silent:
            why = f"it stopped responding (no word for {self.silence_timeout:.0f} s) and was stopped"
        elif code is not None and code < 0 and -code == getattr(signal, "SIGKILL", 9):
            why = "it was killed (signal 9), most likely because the system ran out of memory"
        elif code is not None and code < 0:
            why = f"it crashed (signal {-code})"
        else:
            why = f"it exited with code {code}"
        job.error = WorkerCrashed(f"the SHARP worker process stopped unexpectedly: {why}.{tail}")
        self._process = None
        self._cleanup_job()

    def _cleanup_job(self) -> None:
        job = self._job
        if job is not None:
            for path in job.scratch_files():
                path.unlink(missing_ok=True)

    def _pump(self, stream: IO[str] | None, events: queue.Queue[dict[str, Any] | None]) -> None:
        """Reader thread: the worker's event lines into a queue; None when it exits. Never touches bpy."""
        assert stream is not None
        for line in stream:
            self._heard = time.monotonic()
            events.put(parse_event(line))
        events.put(None)


def parse_event(line: str) -> dict[str, Any]:
    """One event line from the worker; what is not a known event becomes ``{"event": "unknown", "line": ...}``."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        event = None
    if not isinstance(event, dict) or event.get("event") not in EVENTS:
        return {"event": "unknown", "job": None, "line": line.rstrip("\n")}
    return event


def _python_executable() -> str:
    """The host's Python interpreter (in Blender 2.91+ ``sys.executable`` is its bundled Python)."""
    exe = sys.executable
    if not exe or not Path(exe).exists():
        raise SharpError("cannot start the SHARP worker: this Python does not know its own interpreter")
    return exe


def is_foreign(python: str | os.PathLike[str] | None) -> bool:
    """Whether ``python`` is another interpreter than the host's own (None: the host's)."""
    if python is None or not os.fspath(python):
        return False

    def norm(p: str | os.PathLike[str]) -> str:
        return os.path.normcase(os.path.abspath(os.fspath(p)))

    return not sys.executable or norm(python) != norm(sys.executable)


def worker_sys_path(python: str | os.PathLike[str] | None = None,
                    runtime: str | os.PathLike[str] | None = None) -> list[str]:
    """What the worker puts in front of its ``sys.path``: the runtime folder (if any) first, then
    this package's parent folder, then, for the host's own Python only, the host's ``sys.path``."""
    path = [os.fspath(runtime)] if runtime is not None else []
    path.append(str(PACKAGE_DIR.parent))
    if not is_foreign(python):
        path += [p for p in sys.path if p and p not in path]
    return path


def worker_env(python: str | os.PathLike[str] | None = None,
               runtime: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The environment of a worker run by ``python`` (None: the host's) with ``runtime`` first on
    its path (see ``worker_sys_path``)."""
    env = dict(os.environ)
    env[ENV_PATH] = json.dumps(worker_sys_path(python, runtime))
    env.pop("PYTHONPATH", None)  # the path list above is the whole story
    if is_foreign(python):
        env.pop("PYTHONHOME", None)  # the host's, if set, would make another interpreter load the host's library
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cannot_start(python: str, error: OSError) -> DependencyError:
    """The error for an interpreter the operating system refuses to run."""
    why = {errno.ENOENT: "no such file", errno.EACCES: "is not executable (no permission to run it)",
           errno.ENOEXEC: "is not a program (not a Python interpreter)"}
    problem = why.get(error.errno or 0, f"cannot be started ({error.strerror or error})")
    return DependencyError.about(python, problem, subject=PYTHON_SUBJECT if is_foreign(python) else "Python")


def check_checkpoint(checkpoint: str, python: str | None = None, timeout: float = 300.0,
                     runtime: str | os.PathLike[str] | None = None) -> str:
    """``api.validate_checkpoint`` in a short-lived worker (the host never imports torch)."""
    request = json.dumps({"cmd": "check", "job": 0, "checkpoint": checkpoint}) + "\n"
    python = python or _python_executable()
    try:
        done = subprocess.run([python, "-c", BOOT], input=request, capture_output=True,
                              text=True, encoding="utf-8", env=worker_env(python, runtime), timeout=timeout)
    except OSError as e:
        raise cannot_start(python, e) from None
    except subprocess.TimeoutExpired:
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


# ---- results --------------------------------------------------------------------------------------


def save_result(g: Gaussians, path: Path) -> None:
    extra: dict[str, Any] = {"color_space": np.array(g.color_space)}
    if g.focal_px is not None:
        extra["focal_px"] = np.array(g.focal_px)
    if g.image_size is not None:
        extra["image_size"] = np.array(g.image_size)
    if g.layers is not None:
        extra["layers"] = g.layers
    if g.sh_rest is not None:
        extra["sh_rest"] = g.sh_rest
    tmp = path.with_suffix(".partial.npz")
    np.savez(tmp, **{k: getattr(g, k) for k in ARRAYS}, **extra)
    os.replace(tmp, path)


def load_result(path: Path) -> Gaussians:
    with np.load(path, allow_pickle=False) as data:
        return Gaussians(
            **{k: data[k] for k in ARRAYS},
            focal_px=float(data["focal_px"]) if "focal_px" in data else None,
            image_size=tuple(int(v) for v in data["image_size"]) if "image_size" in data else None,  # type: ignore[arg-type]
            color_space=str(data["color_space"]),
            layers=data["layers"] if "layers" in data else None,
            sh_rest=data["sh_rest"] if "sh_rest" in data else None,
        )


# ---- the worker process -----------------------------------------------------------------------


class EventChannel:
    """The worker's side of the event stream: a private copy of stdout, written under a lock.

    File descriptor 1 itself is pointed at stderr, so whatever a library prints (Python or native
    code) cannot break the stream.
    """

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._lock = threading.Lock()
        self.job: Any = None  # the request being worked on (heartbeats name it)

    def send(self, **event: Any) -> None:
        with self._lock:
            self._out.write(json.dumps(event) + "\n")
            self._out.flush()

    def heartbeat(self) -> None:
        """Thread: 'alive' every HEARTBEAT_SECONDS while a request is being worked on."""
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            job = self.job
            if job is not None:
                self.send(event="alive", job=job)


def serve() -> None:
    """The worker's main loop: one request per stdin line until stdin closes."""
    channel = EventChannel()
    threading.Thread(target=channel.heartbeat, daemon=True, name="sharp-worker-heartbeat").start()
    cache: dict[tuple[str, str, str], Any] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            channel.send(event="error", job=None, **to_event(ProtocolError(
                f"the SHARP worker cannot read the request {line.strip()[:200]!r} (not a JSON object)")))
            continue
        job = request.get("job")
        channel.job = job
        try:
            _answer(request, channel, cache)
        except SharpError as e:
            channel.send(event="error", job=job, **to_event(e))
        except Exception as e:  # a bug: still an answer, never a hang
            channel.send(event="error", job=job, **to_event(SharpError(f"internal error in the SHARP worker: {e!r}")))
        finally:
            channel.job = None


def _answer(request: dict[str, Any], channel: EventChannel, cache: dict[tuple[str, str, str], Any]) -> None:
    """Carry out one request; raises what goes wrong."""
    job, command = request.get("job"), request.get("cmd")
    if command == "check":
        from .api import validate_checkpoint

        channel.send(event="done", job=job, message=validate_checkpoint(str(request["checkpoint"])))
    elif command == "predict":
        how: list[str] = []  # where and in what precision the run goes, sent with its first step

        def progress(stage: str, fraction: float) -> None:
            extra = {"detail": how.pop()} if how else {}
            channel.send(event="progress", job=job, stage=stage, fraction=fraction, **extra)

        predictor = _predictor(cache, request, progress)
        how.append(f"on the {predictor.device.type.upper()} in {predictor.precision_note}")
        g = predictor.predict(request["image"], focal_35mm=request.get("focal_35mm"), progress=progress)
        save_result(g, Path(request["out"]))
        channel.send(event="done", job=job, out=request["out"])
    elif command == "render":
        _render(request, channel)
        channel.send(event="done", job=job)
    else:
        raise ProtocolError(f"the SHARP worker does not know the command {command!r} (known: check, predict, "
                            "render)")


def _render(request: dict[str, Any], channel: EventChannel) -> None:
    """The render command: every camera's frame to its .npy file, in order, each as soon as it is done."""
    from .cameras import Camera
    from .devices import resolve_device
    from .render import render_gaussians

    job = request.get("job")
    try:
        source, cameras, outputs = Path(str(request["gaussians"])), request["cameras"], request["outputs"]
    except KeyError as e:
        raise ProtocolError(f"the render request has no {e.args[0]!r}") from None
    if not isinstance(cameras, list) or not isinstance(outputs, list) or len(cameras) != len(outputs):
        raise ProtocolError("the render request needs a list of cameras and a list of as many output files")
    try:
        gaussians = load_result(source)
    except FileNotFoundError:
        raise GaussiansError.about(source, "no such file (the splats to render)") from None
    except (OSError, ValueError, KeyError) as e:
        raise GaussiansError.about(source, f"cannot be read as splats to render ({e})") from None
    views = []
    for i, described in enumerate(cameras):
        try:
            views.append(Camera.from_dict(described))
        except (SharpError, KeyError, TypeError, ValueError) as e:  # CameraError says what is wrong
            raise ProtocolError(f"camera {i + 1} of the render request cannot be used: {e}") from None
    device = str(resolve_device(str(request.get("device", "cpu"))))
    backend, eps2d = str(request.get("backend", "auto")), float(request.get("eps2d", 0.0))
    count = len(views)
    detail = [f"on the {device.upper()}, {len(gaussians):,} splats, {count} frame{'s' if count != 1 else ''}"]
    for i, (camera, output) in enumerate(zip(views, outputs)):

        def progress(*args: Any, frame: int = i) -> None:
            fraction = float(args[-1]) if args else 0.0  # the renderer's own fraction of this frame
            extra = {"detail": detail.pop()} if detail else {}
            channel.send(event="progress", job=job, stage="rendering",
                         fraction=(frame + min(max(fraction, 0.0), 1.0)) / count, **extra)

        progress(0.0)
        image = render_gaussians(gaussians, camera, eps2d=eps2d, backend=backend, device=device, progress=progress)
        _save_frame(np.ascontiguousarray(image, dtype=np.float32), Path(str(output)))
        channel.send(event="progress", job=job, stage="rendering", fraction=(i + 1) / count, frame=i)


def partial_frame_path(path: Path) -> Path:
    """Where ``_save_frame`` writes a frame before it is whole (a cancel may kill it mid-write)."""
    return path.with_name(f".{path.name}.partial")


def _save_frame(image: np.ndarray, path: Path) -> None:
    """One frame's .npy, complete under its name or not there at all."""
    tmp = partial_frame_path(path)
    try:
        with open(tmp, "wb") as f:
            np.save(f, image, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError.about(path, f"cannot be written ({e.strerror or e})") from None


def _predictor(cache: dict[tuple[str, str, str], Any], request: dict[str, Any],
               progress: Callable[[str, float], None]) -> Any:
    from .api import load_predictor

    key = (str(request["checkpoint"]), str(request.get("device", "auto")), str(request.get("precision", "auto")))
    if key not in cache:
        cache.clear()  # one network at a time: memory
        progress("loading", 0.0)
        cache[key] = load_predictor(key[0], device=key[1], precision=key[2])
    return cache[key]
