"""One way for every long operator: start the work, follow it, finish it, and stop it whoever asks.

Blender's Python must not run beside threads that use it, so long work runs elsewhere (a child
process, or one step per timer tick for Blender's own renders) and the operator only follows it
(``work.Work``). ``LongOperator`` owns ``execute``, ``invoke``, ``modal`` and ``cancel`` and decides
in one place how the work is followed:

- synchronously in background Blender and when a script calls the operator: wait, then finish;
- modally when invoked from the UI: a timer polls the work, the progress bar and the status text
  follow it, Esc stops it at once, and the result is built in one main-thread step.

An operator writes only ``start_work`` (check its input, start the work) and ``finish_work`` (use
the result), and where it must, ``work_ended`` (clean up after success, failure and cancel alike).
When Blender ends a modal operator itself (a file is loaded, the window closes) it calls
``cancel``: the work is stopped and the timer, progress bar and status text go. Disabling the
add-on stops every followed work silently (``stop_all``).
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar

import bpy

from ..errors import SharpError
from ..work import Work, wait
from .reports import Result, report_error, reports_errors

POLL_SECONDS = 0.1
ESC_HINT = "   Esc: cancel"

_sessions: weakref.WeakSet[ModalSession] = weakref.WeakSet()  # every work followed modally now
_status: dict[int, str] = {}  # the status text each session shows (tests read it: there is no getter in bpy)


def shown_status() -> list[str]:
    """The status texts long operators show now."""
    return list(_status.values())


def redraw_preferences(context: Any) -> None:
    """Redraw open preferences windows (their panels show the progress of downloads and installs)."""
    for window in context.window_manager.windows:
        for area in window.screen.areas if window.screen is not None else ():
            if area.type == "PREFERENCES":
                area.tag_redraw()


class ModalSession:
    """One piece of work followed from a modal operator: timer, progress bar, status text, Esc."""

    def __init__(self, operator: Any, work: Work) -> None:
        self.operator, self.work = operator, work
        self.silent = False  # stopped by the add-on itself (disabled): no report
        self._timer: Any = None
        self._ended = False

    def start(self, context: Any) -> Result:
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_SECONDS, window=context.window)
        self.operator.add_modal_handler(context)
        wm.progress_begin(0, 100)
        _sessions.add(self)
        self._show(context)
        return {"RUNNING_MODAL"}

    def handle(self, context: Any, event_type: str) -> Result:
        """The operator's ``modal`` for one event: Esc cancels, a timer tick polls the work. A bug (an
        exception other than ``SharpError``) stops the work and takes down what shows it before it
        propagates: Blender ends the operator then without calling ``cancel``."""
        if self._ended:
            return {"CANCELLED"}
        if event_type not in ("ESC", "TIMER"):
            return {"PASS_THROUGH"}
        try:
            if event_type == "ESC":
                self.work.cancel()
            if not self.work.poll():
                context.window_manager.progress_update(int(100 * min(max(self.work.fraction, 0.0), 1.0)))
                self._show(context)
                return {"PASS_THROUGH"}
        except Exception:
            self.abort(context, silent=True)
            raise
        self.end(context)
        if self.silent:
            return {"CANCELLED"}
        return self.operator.conclude(context, self.work)

    def abort(self, context: Any, silent: bool = False) -> None:
        """Stop the work now and take down what shows it (Blender ended the operator, the add-on is
        disabled, or the work raised a bug), whatever stopping it raises."""
        self.silent = self.silent or silent
        try:
            self.work.cancel()
        finally:
            self.end(context)

    def end(self, context: Any) -> None:
        """Remove the timer, the progress bar and the status text; the operator's ``work_ended`` runs once."""
        if self._ended:
            return
        self._ended = True
        _sessions.discard(self)
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
            wm.progress_end()
        _status.pop(id(self), None)
        if context.workspace is not None:  # another work still followed keeps the status bar
            context.workspace.status_text_set(next(reversed(_status.values()), None))
        self.operator.work_ended(context, self.work)
        if self.operator.redraws_preferences:
            redraw_preferences(context)

    def _show(self, context: Any) -> None:
        text = f"{self.work.status_text()}{ESC_HINT}"
        _status[id(self)] = text
        if context.workspace is not None:
            context.workspace.status_text_set(text)
        if self.operator.redraws_preferences:
            redraw_preferences(context)


class LongOperator:
    """Mixin for an operator whose work runs in the background (see the module docstring).

    A subclass writes ``start_work(context) -> Work`` and ``finish_work(context, result) -> Result``
    (both may raise ``SharpError``, which becomes a report); ``work_ended(context, work)`` is called
    once the work is over, whatever the outcome, before ``finish_work``.
    """

    redraws_preferences: ClassVar[bool] = False  # the preferences show this work's progress
    _session: ModalSession | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """An operator (not an intermediate mixin) must say how its work starts and what its result becomes."""
        super().__init_subclass__(**kwargs)
        if issubclass(cls, bpy.types.Operator):
            for name in ("start_work", "finish_work"):
                if getattr(cls, name) is getattr(LongOperator, name):
                    raise TypeError(f"{cls.__name__} must define {name}()")

    # ---- what a subclass writes -------------------------------------------------------------------

    def start_work(self, context: Any) -> Work:
        raise NotImplementedError

    def finish_work(self, context: Any, result: Any) -> Result:
        raise NotImplementedError

    def work_ended(self, context: Any, work: Work) -> None:
        """After the work ended (succeeded, failed or was cancelled): clean up."""

    # ---- Blender's side ---------------------------------------------------------------------------

    @reports_errors
    def execute(self, context: Any) -> Result:
        work = self.start_work(context)
        if self.follows_modally(context):
            self._session = ModalSession(self, work)
            return self._session.start(context)
        try:
            wait(work, report=print if bpy.app.background else None)
        except SharpError:
            pass  # conclude() reports it
        finally:
            self.work_ended(context, work)
        return self.conclude(context, work)

    def invoke(self, context: Any, event: Any) -> Result:
        return self.execute(context)

    def modal(self, context: Any, event: Any) -> Result:
        assert self._session is not None, "modal() runs only after execute() started following the work"
        return self._session.handle(context, event.type)

    def cancel(self, context: Any) -> None:
        """Blender ends the modal operator itself (a file loads, the window closes): stop the work."""
        if self._session is not None:
            self._session.abort(context)

    def follows_modally(self, context: Any) -> bool:
        return runs_modally(bpy.app.background, context.window is not None, self.options)  # type: ignore[attr-defined]

    def add_modal_handler(self, context: Any) -> None:
        context.window_manager.modal_handler_add(self)

    def conclude(self, context: Any, work: Work) -> Result:
        """The ended work's outcome: its error as a report, or ``finish_work`` with its result."""
        if work.error is not None:
            return report_error(self, work.error)
        try:
            return self.finish_work(context, work.result)
        except SharpError as e:
            return report_error(self, e)


def runs_modally(background: bool, has_window: bool, options: Any) -> bool:
    """The one decision: modal when invoked from Blender's UI; synchronous in background Blender, from
    scripts, and when Blender repeats the operator (the redo panel, Repeat Last: ``is_invoke`` stays set
    then, and a redo that went modal would be a failed redo to Blender)."""
    if background or not has_window or not options.is_invoke:
        return False
    return not (options.is_repeat or options.is_repeat_last)


def stop_all(context: Any = None) -> None:
    """Stop every work followed modally, silently (the add-on is disabled)."""
    for session in list(_sessions):
        session.abort(context or bpy.context, silent=True)
