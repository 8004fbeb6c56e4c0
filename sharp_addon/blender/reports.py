"""The one way an operator tells the user that something went wrong: a report, then CANCELLED.

A ``SharpError``'s message is written for the user; it is shown as a sentence (first letter
capital). A cancel is information, not an error. Anything that is not a ``SharpError`` is a bug
and is left to Blender's own traceback report.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from ..errors import Cancelled, SharpError

Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]
F = TypeVar("F", bound=Callable[..., Any])


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def report_error(operator: Any, error: SharpError) -> Result:
    """Report ``error`` on ``operator`` (anything with Blender's ``report``) and say CANCELLED."""
    operator.report({"INFO"} if isinstance(error, Cancelled) else {"ERROR"}, sentence(str(error)))
    return {"CANCELLED"}


def reports_errors(method: F) -> F:
    """Decorate an operator's ``execute(self, context)`` or ``invoke``/``modal(self, context, event)``:
    a ``SharpError`` becomes a report. (Blender checks the argument count, so the wrapper keeps it.)"""

    if method.__code__.co_argcount == 2:

        def execute(self: Any, context: Any) -> Any:
            try:
                return method(self, context)
            except SharpError as e:
                return report_error(self, e)

        wrapper: Callable[..., Any] = execute
    else:

        def invoke(self: Any, context: Any, event: Any) -> Any:
            try:
                return method(self, context, event)
            except SharpError as e:
                return report_error(self, e)

        wrapper = invoke
    return functools.wraps(method)(wrapper)  # type: ignore[return-value]
