"""Drives a long operator as Blender's event loop would, where there is none (the bpy module has no event
loop): the one driver for every modal test.

An operator's Python instance cannot be made outside Blender's operator machinery, so ``OperatorStandIn``
binds the operator class's own methods (``execute``, ``modal``, ``cancel``, ``start_work`` ...) to a plain
object holding the operator's properties: the code under test is the operator's, unchanged; only the
window's event handler is left out (``add_modal_handler``) and the work is followed modally, as it is
when a user invokes the operator from Blender's UI.
"""

from __future__ import annotations

import inspect
import time
import types
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any


class OperatorStandIn:
    """An instance of ``cls`` as Blender's UI would invoke it, with ``properties`` set and the rest at
    their defaults; ``reports`` collects what it reports."""

    def __init__(self, cls: type, **properties: Any) -> None:
        self.__dict__["_cls"] = cls
        self.reports: list[tuple[set[str], str]] = []
        self.options = SimpleNamespace(is_invoke=True)
        import bpy

        module, name = cls.bl_idname.split(".")  # type: ignore[attr-defined]
        for prop in getattr(getattr(bpy.ops, module), name).get_rna_type().properties:
            if prop.identifier != "rna_type" and not getattr(prop, "is_array", False):
                setattr(self, prop.identifier, getattr(prop, "default", None))
        for name, value in properties.items():
            setattr(self, name, value)
        self.properties = SimpleNamespace(is_property_set=lambda name: name in properties)

    def __getattr__(self, name: str) -> Any:
        """What the instance does not hold comes from the operator class, its methods bound to this object."""
        value = inspect.getattr_static(self._cls, name)
        if isinstance(value, (classmethod, staticmethod)):
            return getattr(self._cls, name)
        if isinstance(value, types.FunctionType):
            return types.MethodType(value, self)
        return getattr(self._cls, name)

    def report(self, kind: set[str], text: str) -> None:
        self.reports.append((kind, text))

    def follows_modally(self, context: Any) -> bool:
        return True

    def add_modal_handler(self, context: Any) -> None:
        """No window to deliver events: the driver sends them."""


class ModalDriver:
    """Invokes ``operator`` (a class) with ``properties`` and follows it with hand-made events."""

    def __init__(self, bpy: Any, operator: type, **properties: Any) -> None:
        self.bpy, self.context = bpy, bpy.context
        self.operator = OperatorStandIn(operator, **properties)

    @property
    def reports(self) -> list[tuple[set[str], str]]:
        return self.operator.reports

    @property
    def session(self) -> Any:
        return self.operator.__dict__.get("_session")

    @property
    def work(self) -> Any:
        return self.session.work

    def start(self) -> set[str]:
        """What invoking the operator does: check, start the work, begin following it."""
        return self.operator.execute(self.context)  # type: ignore[no-any-return]

    def send(self, event_type: str) -> set[str]:
        return self.operator.modal(self.context, SimpleNamespace(type=event_type))  # type: ignore[no-any-return]

    def tick_until(self, done: Callable[[], bool] = lambda: False, timeout: float = 120.0,
                   interval: float = 0.02) -> set[str]:
        """Timer ticks until the operator ends or ``done()``; fails past ``timeout`` (no loop without a deadline)."""
        deadline = time.monotonic() + timeout
        while (result := self.send("TIMER")) == {"PASS_THROUGH"} and not done():
            assert time.monotonic() < deadline, f"still running after {timeout:.0f} s: {self.reports}"
            time.sleep(interval)
        return result

    def blender_cancels(self) -> None:
        """What Blender does when it ends a modal operator itself (a file loads, the window closes)."""
        self.operator.cancel(self.context)
