"""The one shape of long work that a host follows: poll, fraction, status text, cancel, error, result.

No bpy. Inference and exact renders (a worker job), the weights download, the GPU-runtime install
and the renders of a camera move all take this shape, so one operator mixin
(``blender/long_operator.py``) follows any of them modally from Blender's UI, and ``wait`` runs any
of them synchronously (background Blender, scripts, the command line, tests).

A piece of work is made by whatever starts it (``InferenceWorker.submit``, ``DownloadProcess``,
``RuntimeInstall.start``); what the caller asked for (the request) and what the work reports as it
goes (its status) are separate objects, and the caller's callbacks are given when the work is made
and never replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from .errors import Cancelled, SharpError

POLL_SECONDS = 0.05


class Work(Protocol):
    """Anything long that a host follows by polling. ``poll`` never blocks for long."""

    @property
    def error(self) -> SharpError | None:
        """Why it failed (``Cancelled`` when it was cancelled); None while it runs or when it succeeded."""

    @property
    def result(self) -> Any:
        """What it made, once it has succeeded."""

    @property
    def fraction(self) -> float:
        """How far it is, 0..1."""

    def poll(self) -> bool:
        """Take in what happened since the last poll; True once it has ended (succeeded, failed, cancelled)."""

    def status_text(self) -> str:
        """One line for a status bar: what it does now."""

    def cancel(self) -> None:
        """Stop it at once; the next ``poll`` returns True and ``error`` is ``Cancelled``."""


def wait(work: Work, *, cancel: Callable[[], bool] | None = None, interval: float = POLL_SECONDS,
         report: Callable[[str], None] | None = None, report_seconds: float = 5.0) -> Any:
    """Follow ``work`` to its end and return its result, or raise its error (the synchronous path).

    ``cancel()`` is asked at every poll; ``report`` gets the status text every ``report_seconds``
    (a log line in background Blender). Ctrl+C cancels the work before it propagates.
    """
    last = time.monotonic()
    try:
        while not work.poll():
            if cancel is not None and cancel():
                work.cancel()
                continue
            if report is not None and time.monotonic() - last >= report_seconds:
                last = time.monotonic()
                report(f"{work.status_text()} ({100 * work.fraction:.0f}%)")
            time.sleep(interval)
    except BaseException:
        work.cancel()
        raise
    if work.error is not None:
        raise work.error
    return work.result


class Finished:
    """Work that is done before it starts (a remembered result): it ends at the first poll."""

    def __init__(self, result: Any, text: str = "done") -> None:
        self.result, self.error, self.fraction, self._text = result, None, 1.0, text

    def poll(self) -> bool:
        return True

    def status_text(self) -> str:
        return self._text

    def cancel(self) -> None:
        """Nothing runs."""


class Steps:
    """Work done on the host's own thread one step per poll (Blender renders, which must run on its
    main thread): ``steps`` yields (done, total) after each step; closing it cleans up."""

    def __init__(self, steps: Iterator[tuple[int, int]], describe: Callable[[int, int], str],
                 result: Any = None, cancelled: str = "cancelled") -> None:
        self._steps, self._describe, self._cancelled = steps, describe, cancelled
        self._done, self._total = 0, 0
        self.error: SharpError | None = None
        self.result: Any = None
        self._result = result
        self._ended = False

    @property
    def fraction(self) -> float:
        return self._done / self._total if self._total else 0.0

    def poll(self) -> bool:
        if self._ended:
            return True
        try:
            self._done, self._total = next(self._steps)
        except StopIteration:
            self._ended, self.result = True, self._result
        except SharpError as e:
            self._ended, self.error = True, e
            self._close()
        except Exception:  # a bug: ended, never taken for success, and the caller sees it
            self._ended, self.error = True, SharpError("the work stopped on an internal error")
            self._close()
            raise
        return self._ended

    def status_text(self) -> str:
        return self._describe(self._done, self._total)

    def cancel(self) -> None:
        if not self._ended:
            self._ended = True
            self.error = Cancelled(self._cancelled)
            self._close()

    def _close(self) -> None:
        close = getattr(self._steps, "close", None)
        if close is not None:
            close()
