"""The error family is whole: every ``SharpError`` subclass anywhere in the package lives in ``errors.py``
and crosses the worker's event stream as itself (class, message and file).

The subclasses are found by importing every module of the package (walking it, not a list); a
module that needs what this environment lacks (torch, bpy) is named and left out, so the walk is
complete in the full environment (blender-5.0) and as complete as it can be elsewhere.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import pkgutil
import subprocess
import sys

import pytest

import sharp_addon
from sharp_addon import errors
from sharp_addon.child_process import child_env
from sharp_addon.worker.protocol import parse_event

OPTIONAL = ("torch", "bpy", "bpy_extras", "mathutils", "gsplat")  # what some environments lack


def every_module() -> tuple[list[str], list[str]]:
    """(imported, left out for a missing optional package) over the whole package."""
    imported, left_out = [], []
    for info in pkgutil.walk_packages(sharp_addon.__path__, prefix="sharp_addon."):
        if info.name == "sharp_addon.__main__":
            continue
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except ImportError as e:
            if (e.name or "").split(".")[0] not in OPTIONAL:
                raise
            left_out.append(info.name)
    return imported, left_out


def subclasses(cls: type) -> list[type]:
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def test_every_sharp_error_subclass_in_the_package_lives_in_errors_py():
    imported, left_out = every_module()
    assert len(imported) > 40 and "sharp_addon.errors" in imported
    if importlib.util.find_spec("bpy") and importlib.util.find_spec("torch"):
        assert left_out == [], f"the full environment imports every module: {left_out}"
    found = [cls for cls in subclasses(errors.SharpError) if cls.__module__.startswith("sharp_addon.")]
    assert {c.__name__ for c in found} >= {"CameraError", "CameraMoveError", "CheckpointError", "Cancelled"}
    outside = [f"{c.__module__}.{c.__name__}" for c in found if c.__module__ != "sharp_addon.errors"]
    assert not outside, f"SharpError subclasses outside errors.py come back from the worker as SharpError: {outside}"


def test_every_error_class_crosses_the_worker_event_stream_as_itself():
    """A real worker-side event channel sends one error event per class (as ``serve`` does for a raised
    error); the host reads them as the worker's events are read (``protocol.parse_event``, ``from_event``)."""
    every_module()
    family = [c for c in subclasses(errors.SharpError) if c.__module__.startswith("sharp_addon.")]
    classes = [errors.SharpError, *family]
    code = (
        "import json, os, sys\n"
        "sys.path[:0] = json.loads(os.environ['SHARP_WORKER_SYS_PATH'])\n"
        "from sharp_addon import errors\n"
        "from sharp_addon.worker.serve import EventChannel\n"
        "channel = EventChannel()\n"
        "for name in sys.argv[1:]:\n"
        "    cls = getattr(errors, name)\n"
        "    channel.send(event='error', job=7, **errors.to_event(cls.about('/photos/x.jpg', 'something is wrong')))\n"
        "    channel.send(event='error', job=7, **errors.to_event(cls('a message without a file')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *[c.__name__ for c in classes]], capture_output=True, text=True,
                          env=child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    events = [parse_event(line) for line in done.stdout.splitlines()]
    assert len(events) == 2 * len(classes)
    for cls, about, plain in zip(classes, events[::2], events[1::2]):
        back = errors.from_event(about)
        assert type(back) is cls and str(back) == str(cls.about("/photos/x.jpg", "something is wrong"))
        assert back.path == "/photos/x.jpg"
        back = errors.from_event(plain)
        assert type(back) is cls and str(back) == "a message without a file" and back.path is None


def test_unknown_error_names_come_back_as_sharp_errors():
    back = errors.from_event(json.loads(json.dumps({"type": "KeyError", "message": "boom"})))
    assert type(back) is errors.SharpError and str(back) == "boom"


@pytest.mark.parametrize("name", ["CameraError", "CameraMoveError"])
def test_camera_errors_are_value_errors_too(name):
    """Callers that catch ValueError for bad camera arguments keep working."""
    assert issubclass(getattr(errors, name), ValueError)
