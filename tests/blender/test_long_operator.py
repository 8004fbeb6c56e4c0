"""The one mixin of every long operator (``blender/long_operator.py``) on real Blender: when it follows
work modally, and what a bug inside the work leaves behind (nothing)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest

from tests.conftest import ADDON_MODULE
from tests.support.modal import ModalDriver

pytestmark = pytest.mark.blender


def addon_module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def options(invoke: bool = True, repeat: bool = False, repeat_last: bool = False) -> SimpleNamespace:
    return SimpleNamespace(is_invoke=invoke, is_repeat=repeat, is_repeat_last=repeat_last)


@pytest.mark.parametrize(("background", "window", "opts", "modal"), [
    (False, True, options(), True),  # invoked from the UI
    (False, True, options(invoke=False), False),  # bpy.ops from a script
    (True, True, options(), False),  # background Blender
    (False, False, options(), False),  # no window to follow it in
    (False, True, options(repeat=True), False),  # the redo panel re-runs it (is_invoke stays set)
    (False, True, options(repeat_last=True), False),  # Repeat Last
])
def test_work_is_followed_modally_only_when_invoked_from_the_ui(addon, background, window, opts, modal):
    assert addon_module("blender.long_operator").runs_modally(background, window, opts) is modal


def test_this_background_blender_never_follows_work_modally(addon, bpy_session):
    operators = addon_module("blender.operators")
    invoked = SimpleNamespace(options=options())
    assert operators.SHARP_OT_from_image.follows_modally(invoked, bpy_session.context) is False


@pytest.fixture
def failing_operator(addon, bpy_session):
    """A long operator whose second step hits a bug (an OSError), registered for the test."""
    bpy = bpy_session
    long_operator, work = addon_module("blender.long_operator"), addon_module("work")
    ended: list[object] = []

    def steps():
        yield 1, 3
        raise OSError("the disk went away")

    class SHARP_OT_test_failing_steps(long_operator.LongOperator, bpy.types.Operator):
        bl_idname = "sharp.test_failing_steps"
        bl_label = "Failing Steps"

        def start_work(self, context):
            return work.Steps(steps(), lambda done, total: f"step {done} of {total}")

        def work_ended(self, context, work):
            ended.append(work)

        def finish_work(self, context, result):
            return {"FINISHED"}

    bpy.utils.register_class(SHARP_OT_test_failing_steps)
    yield SHARP_OT_test_failing_steps, ended
    bpy.utils.unregister_class(SHARP_OT_test_failing_steps)


def test_a_bug_inside_the_work_stops_it_and_leaves_no_status_before_it_propagates(bpy_session, failing_operator):
    """Blender ends a modal operator whose modal() raises without calling its cancel(): the mixin
    itself takes down the timer, the progress and the status text, and work_ended runs once."""
    long_operator = addon_module("blender.long_operator")
    cls, ended = failing_operator
    driver = ModalDriver(bpy_session, cls)
    assert driver.start() == {"RUNNING_MODAL"}
    assert driver.send("TIMER") == {"PASS_THROUGH"}
    assert long_operator.shown_status() == ["step 1 of 3   Esc: cancel"]
    with pytest.raises(OSError, match="the disk went away"):
        driver.send("TIMER")
    assert long_operator.shown_status() == [] and list(long_operator._sessions) == []
    assert len(ended) == 1 and ended[0].error is not None and ended[0].result is None
    assert driver.send("TIMER") == {"CANCELLED"} and len(ended) == 1  # a late event changes nothing


def test_an_operator_that_does_not_say_how_its_work_starts_is_refused(addon, bpy_session):
    long_operator = addon_module("blender.long_operator")
    with pytest.raises(TypeError, match="must define start_work"):
        type("SHARP_OT_test_half", (long_operator.LongOperator, bpy_session.types.Operator),
             {"bl_idname": "sharp.test_half", "bl_label": "Half", "finish_work": lambda self, c, r: {"FINISHED"}})
