"""The worker's side: read one request per stdin line, answer with events, until stdin closes.

No bpy; torch is imported by the requests that need it. Events go out on a private copy of the
process's stdout (``EventChannel``), and file descriptor 1 itself is pointed at stderr, so nothing
a library prints, even from native code, can break the stream. While a request is worked on a
heartbeat thread says "alive" every ``HEARTBEAT_SECONDS``, so a host can tell a long step from a
stopped worker. The last loaded network is kept between requests (``keep the model loaded``: the
host keeps the worker alive).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GaussiansError, ProtocolError, SharpError, to_event
from .protocol import HEARTBEAT_SECONDS
from .results import load_result, save_frame, save_result


class EventChannel:
    """The worker's side of the event stream: a private copy of stdout, written under a lock."""

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
            answer(request, channel, cache)
        except SharpError as e:
            channel.send(event="error", job=job, **to_event(e))
        except Exception as e:  # a bug: still an answer, never a hang
            channel.send(event="error", job=job, **to_event(SharpError(f"internal error in the SHARP worker: {e!r}")))
        finally:
            channel.job = None


def answer(request: dict[str, Any], channel: EventChannel, cache: dict[tuple[str, str, str], Any]) -> None:
    """Carry out one request; raises what goes wrong."""
    job, command = request.get("job"), request.get("cmd")
    if command == "check":
        from ..api import validate_checkpoint

        channel.send(event="done", job=job, message=validate_checkpoint(str(request["checkpoint"])))
    elif command == "predict":
        _predict(request, channel, cache)
    elif command == "render":
        _render(request, channel)
        channel.send(event="done", job=job)
    else:
        raise ProtocolError(f"the SHARP worker does not know the command {command!r} (known: check, predict, "
                            "render)")


def _predict(request: dict[str, Any], channel: EventChannel, cache: dict[tuple[str, str, str], Any]) -> None:
    job = request.get("job")
    how: list[str] = []  # where and in what precision the run goes, sent with its first step

    def progress(stage: str, fraction: float) -> None:
        extra = {"detail": how.pop()} if how else {}
        channel.send(event="progress", job=job, stage=stage, fraction=fraction, **extra)

    predictor = _predictor(cache, request, progress)
    how.append(f"on the {predictor.device.type.upper()} in {predictor.precision_note}")
    g = predictor.predict(request["image"], focal_35mm=request.get("focal_35mm"), progress=progress)
    save_result(g, Path(request["out"]))
    channel.send(event="done", job=job, out=request["out"])


def _predictor(cache: dict[tuple[str, str, str], Any], request: dict[str, Any],
               progress: Callable[[str, float], None]) -> Any:
    from ..api import load_predictor

    key = (str(request["checkpoint"]), str(request.get("device", "auto")), str(request.get("precision", "auto")))
    if key not in cache:
        cache.clear()  # one network at a time: memory
        progress("loading", 0.0)
        cache[key] = load_predictor(key[0], device=key[1], precision=key[2])
    return cache[key]


def _render(request: dict[str, Any], channel: EventChannel) -> None:
    """The render command: every camera's frame to its .npy file, in order, each as soon as it is done."""
    from ..devices import resolve_device
    from ..render import render_gaussians

    job = request.get("job")
    gaussians, views, outputs = _render_inputs(request)
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
        save_frame(np.ascontiguousarray(image, dtype=np.float32), Path(str(output)))
        channel.send(event="progress", job=job, stage="rendering", fraction=(i + 1) / count, frame=i)


def _render_inputs(request: dict[str, Any]) -> tuple[Any, list[Any], list[Any]]:
    """The render request's splats, cameras and output files; ``ProtocolError`` / ``GaussiansError`` saying
    what is wrong with them."""
    from ..cameras import Camera

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
    return gaussians, views, outputs
