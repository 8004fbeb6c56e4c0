"""What host and worker say to each other: one JSON object per line, requests in, events out.

No bpy, no torch.

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
command with a ``ProtocolError`` event, and the host fails the job on a malformed or unknown event.
Errors travel as the class and message they were raised with (``errors.to_event`` / ``from_event``).

A request is what the caller asks for and never changes; the files it travels with are the host's
business (``host.JobFiles``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..gaussians import Gaussians

EVENTS = ("progress", "alive", "done", "error")
HEARTBEAT_SECONDS = 1.0  # how often a working worker says it is alive


@dataclass(frozen=True)
class PredictRequest:
    """One photo to convert with SHARP: the result is its ``Gaussians``."""

    image: str
    checkpoint: str
    device: str = "auto"
    precision: str = "auto"
    focal_35mm: float | None = None

    def message(self, job: int, out: str) -> dict[str, Any]:
        return {"cmd": "predict", "job": job, "image": self.image, "checkpoint": self.checkpoint,
                "device": self.device, "precision": self.precision, "focal_35mm": self.focal_35mm, "out": out}


@dataclass(frozen=True)
class RenderRequest:
    """Splats rendered exactly through some cameras, in the worker (where torch is).

    ``gaussians``: the splats, or a result file (``results.save_result``'s format) to read them from;
    ``cameras``: ``cameras.Camera`` objects or their ``to_dict()``; ``outputs``: one .npy file per
    camera, or None for files in the worker's scratch folder (removed once read). The result is the
    (H, W, 4) float32 linear premultiplied RGBA images, in camera order; with ``keep_images`` False
    only the last one (each frame's scratch file goes once the job's ``on_frame`` has taken it, so a
    long animation never holds every frame in memory or on disk).
    """

    gaussians: Gaussians | str | os.PathLike[str]
    cameras: list[Any] = field(default_factory=list)
    outputs: list[str] | None = None
    device: str = "cpu"
    eps2d: float = 0.0
    backend: str = "auto"
    keep_images: bool = True

    def message(self, job: int, gaussians: str, outputs: list[str]) -> dict[str, Any]:
        cameras = [c.to_dict() if hasattr(c, "to_dict") else c for c in self.cameras]  # dicts go as they are
        return {"cmd": "render", "job": job, "gaussians": gaussians, "cameras": cameras, "outputs": outputs,
                "device": self.device, "eps2d": self.eps2d, "backend": self.backend}


def check_message(job: int, checkpoint: str) -> dict[str, Any]:
    return {"cmd": "check", "job": job, "checkpoint": checkpoint}


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message)


def parse_event(line: str) -> dict[str, Any]:
    """One event line from the worker; what is not a known event becomes ``{"event": "unknown", "line": ...}``."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        event = None
    if not isinstance(event, dict) or event.get("event") not in EVENTS:
        return {"event": "unknown", "job": None, "line": line.rstrip("\n")}
    return event
