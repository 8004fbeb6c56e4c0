"""Running a worker job from an operator: synchronously, or modally with progress, status and Esc.

No UI of its own. Blender's Python must not run beside threads that use it (NOTES section 3), so
the work runs in the worker process and the operator only polls it:

- synchronous (background Blender, or an operator called from a script): wait, then finish;
- modal (invoked from the UI): a timer polls the worker; the progress bar and the status text
  follow it; Esc kills the worker at once; the finished result is built in one main-thread step.

The last result is remembered: the redo panel re-runs an operator when only a display option
changed, and it then rebuilds from the remembered result instead of running SHARP again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bpy

from ..errors import Cancelled, SharpError
from ..files import file_key
from ..gaussians import Gaussians
from ..worker import Job
from . import runner
from .reports import Result, report_error

# share of the whole run per stage reported by the worker, for one progress bar
STAGES = {"starting": (0.0, 0.02), "loading": (0.02, 0.1), "prepare": (0.1, 0.12), "encoder": (0.12, 0.7),
          "depth": (0.7, 0.8), "gaussians": (0.8, 0.95), "unproject": (0.95, 1.0), "done": (1.0, 1.0)}
POLL_SECONDS = 0.1

Finish = Callable[[bpy.types.Context, Gaussians, Job], Result]  # builds the result into the scene


def overall_fraction(stage: str, fraction: float) -> float:
    start, end = STAGES.get(stage, (0.0, 0.0))
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


# ---- the remembered result ------------------------------------------------------------------------

_last: tuple[tuple, Gaussians] | None = None


def job_key(job: Job) -> tuple:
    """What decides a result: the image file as it is now and every inference setting."""
    return (file_key(job.image), job.checkpoint, job.device, job.precision, job.focal_35mm)


def remember(job: Job, gaussians: Gaussians) -> None:
    """Keep the last result (66 MB at full size) for the redo panel."""
    global _last
    _last = (job_key(job), gaussians)


def recall(job: Job) -> Gaussians | None:
    """The remembered result if ``job`` would compute the same thing."""
    try:
        return _last[1] if _last is not None and _last[0] == job_key(job) else None
    except OSError:
        return None


def forget() -> None:
    global _last
    _last = None


# ---- running --------------------------------------------------------------------------------------


def run(operator: Any, context: bpy.types.Context, job: Job, finish: Finish, keep_loaded: bool) -> Result:
    """The remembered result, or ``job`` run synchronously (background, scripts) or modally (UI).

    ``operator`` is the calling operator (its ``report``, ``options`` and, for the modal path, its
    ``modal`` must delegate to ``ModalJob.handle``: see ``WorkerJobOperator``).
    """
    remembered = recall(job)
    if remembered is not None:
        return _finish(operator, context, finish, remembered, job)
    if bpy.app.background or not operator.options.is_invoke:
        return run_blocking(operator, context, job, finish, keep_loaded)
    modal = ModalJob(operator, job, finish, keep_loaded)
    operator.modal_job = modal
    return modal.start(context)


def run_blocking(operator: Any, context: bpy.types.Context, job: Job, finish: Finish, keep_loaded: bool) -> Result:
    try:
        gaussians = runner.worker().run(job)
    except SharpError as e:
        return report_error(operator, e)
    finally:
        runner.finished_run(keep_loaded)
    return _finish(operator, context, finish, gaussians, job)


def _finish(operator: Any, context: bpy.types.Context, finish: Finish, gaussians: Gaussians, job: Job) -> Result:
    try:
        result = finish(context, gaussians, job)
    except SharpError as e:
        return report_error(operator, e)
    remember(job, gaussians)
    return result


class ModalFollower:
    """One piece of background work (a worker job, a download, a pip install) followed from a modal
    operator: a timer polls it, the progress bar and the status text follow it, Esc cancels it, and
    when it ends the result is concluded in one main-thread step. Subclasses say how to poll, cancel,
    describe and conclude their work; the operator's ``modal`` calls ``handle``."""

    def __init__(self, operator: Any) -> None:
        self.operator = operator
        self._timer: Any = None

    # ---- what a subclass provides -----------------------------------------------------------------

    def poll(self) -> bool:
        """Take in what the work reported; True once it has ended (finished, failed or cancelled)."""
        raise NotImplementedError

    def fraction(self) -> float:
        """How far the work is, 0..1, for the progress bar."""
        raise NotImplementedError

    def status(self) -> str:
        """What the status bar says while the work runs (Esc's hint is added)."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Stop the work at once (Esc, a Cancel button); the next poll sees it ended."""
        raise NotImplementedError

    def conclude(self, context: bpy.types.Context) -> Result:
        """The ended work's outcome: build its result or report its error."""
        raise NotImplementedError

    def on_change(self, context: bpy.types.Context) -> None:
        """Called at every visible change (start, progress, end): e.g. redraw the preferences."""

    # ---- the machinery ----------------------------------------------------------------------------

    def start(self, context: bpy.types.Context) -> Result:
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_SECONDS, window=context.window)
        wm.modal_handler_add(self.operator)
        wm.progress_begin(0, 100)
        self._show(context)
        return {"RUNNING_MODAL"}

    def handle(self, context: bpy.types.Context, event_type: str) -> Result:
        """The operator's ``modal`` for one event: Esc cancels, a timer tick polls the work."""
        if event_type == "ESC":
            self.cancel()
        elif event_type != "TIMER":
            return {"PASS_THROUGH"}
        if not self.poll():
            context.window_manager.progress_update(int(100 * min(max(self.fraction(), 0.0), 1.0)))
            self._show(context)
            return {"PASS_THROUGH"}
        self.end(context)
        return self.conclude(context)

    def end(self, context: bpy.types.Context) -> None:
        """Remove the timer, the progress bar and the status text (also when Blender ends the modal)."""
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
            wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        self.on_change(context)

    def _show(self, context: bpy.types.Context) -> None:
        if context.workspace is not None:
            context.workspace.status_text_set(f"{self.status()}   Esc: cancel")
        self.on_change(context)


def redraw_preferences(context: bpy.types.Context) -> None:
    """Redraw open preferences windows (their panels show the progress of downloads and installs)."""
    for window in context.window_manager.windows:
        for area in window.screen.areas if window.screen is not None else ():
            if area.type == "PREFERENCES":
                area.tag_redraw()


class ModalJob(ModalFollower):
    """One worker job (SHARP on a photo) followed modally; the result is built by ``finish``."""

    def __init__(self, operator: Any, job: Job, finish: Finish, keep_loaded: bool) -> None:
        super().__init__(operator)
        self.job, self.finish, self.keep_loaded = job, finish, keep_loaded
        self._cancelled = False

    def start(self, context: bpy.types.Context) -> Result:
        try:
            runner.worker().submit(self.job)
        except SharpError as e:
            return report_error(self.operator, e)
        return super().start(context)

    def poll(self) -> bool:
        job = runner.worker().poll()
        return self._cancelled or job is not self.job or job.finished  # not ours: shut down under us

    def fraction(self) -> float:
        return overall_fraction(self.job.stage, self.job.fraction)

    def status(self) -> str:
        how = f" ({self.job.detail})" if self.job.detail else ""
        return f"SHARP: {self.job.stage} {100 * self.fraction():.0f}%{how}"

    def cancel(self) -> None:
        runner.worker().cancel()
        self._cancelled = True

    def end(self, context: bpy.types.Context) -> None:
        super().end(context)
        runner.finished_run(self.keep_loaded)

    def conclude(self, context: bpy.types.Context) -> Result:
        if self._cancelled:
            return report_error(self.operator, Cancelled("SHARP cancelled: nothing was added"))
        if not self.job.finished:  # the worker was shut down under us (add-on disabled)
            return {"CANCELLED"}
        if self.job.error is not None:
            return report_error(self.operator, self.job.error)
        assert self.job.result is not None
        return _finish(self.operator, context, self.finish, self.job.result, self.job)


class WorkerJobOperator:
    """Mixin for operators that run a worker job: ``modal`` follows the job ``jobs.run`` started."""

    modal_job: ModalJob | None = None

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        assert self.modal_job is not None, "modal() runs only after jobs.run started a modal job"
        return self.modal_job.handle(context, event.type)
