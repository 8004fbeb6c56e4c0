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


class ModalJob:
    """One worker job followed from a modal operator: timer, progress bar, status text, Esc."""

    def __init__(self, operator: Any, job: Job, finish: Finish, keep_loaded: bool) -> None:
        self.operator, self.job, self.finish, self.keep_loaded = operator, job, finish, keep_loaded
        self._timer: Any = None

    def start(self, context: bpy.types.Context) -> Result:
        try:
            runner.worker().submit(self.job)
        except SharpError as e:
            return report_error(self.operator, e)
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_SECONDS, window=context.window)
        wm.modal_handler_add(self.operator)
        wm.progress_begin(0, 100)
        self._status(context)
        return {"RUNNING_MODAL"}

    def handle(self, context: bpy.types.Context, event_type: str) -> Result:
        """The operator's ``modal`` for one event: Esc cancels, a timer tick polls the worker."""
        if event_type == "ESC":
            runner.worker().cancel()
            self._end(context)
            return report_error(self.operator, Cancelled("SHARP cancelled: nothing was added"))
        if event_type != "TIMER":
            return {"PASS_THROUGH"}
        job = runner.worker().poll()
        if job is not self.job:  # the worker was shut down under us (add-on disabled)
            self._end(context)
            return {"CANCELLED"}
        if not job.finished:
            context.window_manager.progress_update(int(100 * overall_fraction(job.stage, job.fraction)))
            self._status(context)
            return {"PASS_THROUGH"}
        self._end(context)
        if job.error is not None:
            return report_error(self.operator, job.error)
        assert job.result is not None
        return _finish(self.operator, context, self.finish, job.result, job)

    def _status(self, context: bpy.types.Context) -> None:
        if context.workspace is not None:
            percent = 100 * overall_fraction(self.job.stage, self.job.fraction)
            context.workspace.status_text_set(f"SHARP: {self.job.stage} {percent:.0f}%   Esc: cancel")

    def _end(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        runner.finished_run(self.keep_loaded)


class WorkerJobOperator:
    """Mixin for operators that run a worker job: ``modal`` follows the job ``jobs.run`` started."""

    modal_job: ModalJob | None = None

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        assert self.modal_job is not None, "modal() runs only after jobs.run started a modal job"
        return self.modal_job.handle(context, event.type)
