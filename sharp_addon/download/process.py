"""The download command run in a child process and followed by polling, so a host (Blender) never blocks.

No bpy. ``DownloadProcess`` starts ``sharp download ... --progress json`` (``command``) in a
``ChildProcess`` and takes its JSON events whenever it is polled (``work.Work``). A cancel kills the
child at once: what it fetched stays in the ``.part`` file for the next run to resume (an empty
one is removed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..child_process import ChildProcess, boot_code, child_env, host_python
from ..errors import Cancelled, DownloadError, SharpError, from_event
from ..files import size_text
from .checks import Expected, file_size
from .http_fetch import TIMEOUT_SECONDS, part_path

BOOT = boot_code("cli", "main(sys.argv[1:])")
EVENTS = ("progress", "done", "error")


def _arguments(expected: Expected) -> list[str]:
    args = ["--min-bytes", str(expected.min_bytes)]
    if expected.size is not None:
        args += ["--size", str(expected.size)]
    if expected.sha256:
        args += ["--sha256", expected.sha256]
    return args


class DownloadProcess:
    """``sharp download ... --progress json`` in a child process, followed by ``poll`` (``work.Work``).

    ``result`` is the command's "done" event (path, size, summary, resumed_from, downloaded);
    ``what`` names the work in status texts ("SHARP weights"); ``on_event`` sees every event ``poll``
    takes in.
    """

    def __init__(self, arguments: list[str], part: Path | None = None, python: str | None = None,
                 what: str = "SHARP weights", on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.part, self.what, self.on_event = part, what, on_event
        self.stage, self.done = "starting", 0
        self.total: int | None = None
        self.result: dict[str, Any] | None = None
        self.error: SharpError | None = None
        executable = python or host_python()
        self._child = ChildProcess([executable, "-c", BOOT, "download", *arguments, "--progress", "json"],
                                   env=child_env(), own_group=True, name="sharp-download")

    @classmethod
    def download(cls, url: str, target: str | os.PathLike[str], expected: Expected, timeout: float = TIMEOUT_SECONDS,
                 python: str | None = None, accept_licence: bool = False,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> DownloadProcess:
        target = Path(target)
        licence = ["--accept-licence"] if accept_licence else []
        return cls(["--url", url, "--to", str(target), "--timeout", str(timeout), *_arguments(expected), *licence],
                   part=part_path(target), python=python, on_event=on_event)

    @classmethod
    def check(cls, source: str | os.PathLike[str], expected: Expected, python: str | None = None) -> DownloadProcess:
        return cls(["--from", str(source), *_arguments(expected)], python=python, what=f"Checking {Path(source).name}")

    @property
    def pid(self) -> int:
        return self._child.pid

    @property
    def alive(self) -> bool:
        return self._child.alive

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def poll(self) -> bool:
        """Take in what the child reported; True once it finished (``result`` or ``error`` is set)."""
        if self.finished:
            return True
        for line in self._child.take():
            self._handle(line)
            if self.finished:
                self._child.close()
                return True
        if self._child.ended and not self.finished:
            code = self._child.wait()
            tail = self._child.stderr_tail()
            said = f" Last output: {tail}" if tail else ""
            self.error = DownloadError(f"the download process stopped unexpectedly (exit code {code}).{said}")
            self._child.close()
        return self.finished

    def cancel(self) -> None:
        """Stop now (kill). The ``.part`` is kept for resuming, or removed when empty."""
        if self.finished:
            return
        self._child.kill()
        for line in self._child.take_rest():  # it may have finished just before the kill: then that is the outcome
            self._handle(line)
        if not self.finished:
            self.error = Cancelled(self._cancel_message())
        self._child.close()

    def status_text(self) -> str:
        stage, done, total, what = self.stage, self.done, self.total, self.what
        if stage == "download":
            of = f" of {size_text(total)} ({100 * done / total:.0f}%)" if total else ""
            return f"{what}: {size_text(done)}{of}"
        if stage in ("verify", "hash"):
            return f"{what}: checking checksums" + (f" ({100 * done / total:.0f}%)" if total else "")
        if stage == "check":
            return f"{what}: checking keys and shapes"
        return f"{what}: starting"

    def _cancel_message(self) -> str:
        if self.part is None:
            return "check cancelled"
        kept = file_size(self.part)
        if kept == 0:
            self.part.unlink(missing_ok=True)
            return "download cancelled; nothing had arrived yet"
        of = f" of {size_text(self.total)}" if self.total else ""
        return f"download cancelled: {size_text(kept)}{of} kept in '{self.part}'; download again to resume"

    def _handle(self, line: str) -> None:
        """One line of the child's output: a JSON event (other lines are ignored)."""
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(event, dict) or event.get("event") not in EVENTS:
            return
        if self.on_event is not None:
            self.on_event(event)
        kind = event["event"]
        if kind == "progress":
            self.stage, self.done = str(event.get("stage", "")), int(event.get("done") or 0)
            total = event.get("total")
            self.total = int(total) if total is not None else None
        elif kind == "done":
            self.result = event
        else:
            self.error = from_event(event)
