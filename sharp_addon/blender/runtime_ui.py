"""Preferences: where SHARP runs — a Python for Inference, or a GPU runtime installed for Blender's own.

``draw_runtime(layout, context)`` draws the section (the preferences' ``draw`` calls it). The
operators check a Python for Inference, install a GPU runtime (pip in a separate process, a
``LongOperator``: progress bar, status text, Esc or Cancel kills pip and removes what it wrote),
check it again and remove it. Installing respects Blender's *Allow Online Access*: with it off
nothing is requested and the report says how to turn it on. The work itself is in
``runtimes`` (no bpy); where the worker runs is ``runner``'s choice.
"""

from __future__ import annotations

import sys
from typing import Any

import bpy
from bpy.props import EnumProperty

from .. import runtimes
from ..errors import SharpError
from ..files import size_text
from ..work import Work
from . import runner
from .addon import get_preferences, offline_message, online_access
from .long_operator import LongOperator
from .reports import Result, reports_errors, sentence

RUNTIME_ITEMS = [(r.key, r.label, f"{r.covers}. PyTorch {r.torch_version}, about "
                  f"{max(r.download_gb.values()):.1f} GB") for r in runtimes.RUNTIMES.values()]

_install: runtimes.RuntimeInstall | None = None  # the install in progress (one at a time)


def current_install() -> runtimes.RuntimeInstall | None:
    """The GPU runtime install in progress, if any."""
    return _install if _install is not None and not _install.finished else None


# ---- drawing --------------------------------------------------------------------------------------


def draw_probe(layout: Any, probe: runtimes.PythonProbe) -> None:
    """What a probe found, one line each: Python and PyTorch, then each GPU (or why none)."""
    if not probe.ok:
        layout.label(text=sentence(probe.message), icon="ERROR")
        return
    build = f"CUDA {probe.cuda}" if probe.cuda else f"ROCm {probe.hip}" if probe.hip else "CPU"
    layout.label(text=f"Python {probe.version}, PyTorch {probe.torch} ({build} build)", icon="CHECKMARK")
    for device in probe.devices:
        layout.label(text=device.describe(), icon="ERROR" if device.supported is False else "OUTLINER_DATA_LIGHTPROBE")
    if not probe.devices:
        layout.label(text=sentence(probe.gpu_summary()), icon="INFO")


def draw_runtime(layout: Any, context: bpy.types.Context) -> None:
    """The preferences' section on where SHARP runs."""
    prefs = get_preferences(context)
    box = layout.box()
    box.label(text="Where SHARP Runs", icon="SETTINGS")
    python = runner.inference_python()
    row = box.row()
    row.prop(prefs, "inference_python")
    if python is not None:
        row.operator(SHARP_OT_check_inference_python.bl_idname, text="Check", icon="VIEWZOOM")
        probe = runner.remembered_probe(python)
        if probe is None:
            box.label(text="Not checked yet: Check runs a short test in that Python", icon="QUESTION")
        else:
            draw_probe(box, probe)
        box.label(text="The GPU runtime is not used while a Python for Inference is set", icon="INFO")
        return
    draw_gpu_runtime(box)


def draw_gpu_runtime(layout: Any) -> None:
    """Blender's own Python: the GPU runtime, installed or not."""
    if not runtimes.runtimes_offered():
        if sys.platform == "darwin":
            layout.label(text="On macOS the bundled PyTorch uses the Apple GPU (Metal) directly", icon="INFO")
        else:
            layout.label(text="No GPU runtime is offered for this platform; a Python for Inference can serve",
                         icon="INFO")
        return
    install = current_install()
    if install is not None:
        row = layout.row()
        row.label(text=f"Installing {install.runtime.label}: {install.text()} ({100 * install.fraction:.0f}%)",
                  icon="SORTTIME")
        row.operator(SHARP_OT_cancel_gpu_runtime_install.bl_idname, text="Cancel", icon="CANCEL")
        return
    installed = runner.installed_runtime()
    if installed is not None:
        layout.label(text=installed.describe(), icon="CHECKMARK" if installed.fits_this_python else "ERROR")
        mismatch = installed.mismatch()
        if mismatch:
            layout.label(text=sentence(mismatch), icon="ERROR")
        elif installed.probe is not None:
            draw_probe(layout, installed.probe)
        row = layout.row()
        row.operator(SHARP_OT_check_gpu_runtime.bl_idname, text="Check", icon="VIEWZOOM")
        row.operator(SHARP_OT_remove_gpu_runtime.bl_idname, text="Remove GPU Runtime", icon="TRASH")
        return
    layout.label(text="GPU runtime: CUDA PyTorch (2.7-3.7 GB) in this extension's own folder, used by the "
                      "SHARP worker only", icon="INFO")
    if not online_access():
        layout.label(text="Online access is off: turn on Allow Online Access in Preferences > System > Network",
                     icon="INTERNET_OFFLINE")
    layout.operator_menu_enum(SHARP_OT_install_gpu_runtime.bl_idname, "runtime", text="Install GPU Runtime",
                              icon="IMPORT")


# ---- a Python for Inference -----------------------------------------------------------------------


class SHARP_OT_check_inference_python(bpy.types.Operator):
    """Run a short test in the Python for Inference: its Python and PyTorch versions and GPUs (takes seconds)"""

    bl_idname = "sharp.check_inference_python"
    bl_label = "Check Python for Inference"
    bl_options = {"INTERNAL"}  # noqa: RUF012 - Blender reads it as a class attribute

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
        python = runner.inference_python()
        if python is None:
            raise SharpError("No Python for Inference is set: SHARP runs in Blender's own Python")
        found = runner.probe(python, refresh=True)
        if not found.ok:
            raise found.error()
        self.report({"INFO"}, sentence(found.message))
        return {"FINISHED"}


# ---- the GPU runtime ------------------------------------------------------------------------------


def start_install(key: str) -> runtimes.RuntimeInstall:
    """Begin installing the runtime ``key`` (nothing is requested when online access is off)."""
    global _install
    if not runtimes.runtimes_offered():
        raise SharpError(f"no GPU runtime is offered for {sys.platform}: set a Python for Inference instead")
    if not online_access():
        raise SharpError(offline_message("or set a Python for Inference that has a GPU PyTorch"))
    if current_install() is not None:
        raise SharpError("a GPU runtime is being installed already; wait for it or cancel it")
    root = runner.runtime_root(create=True)
    if root is None:
        raise SharpError("the GPU runtime needs the add-on installed as an extension (it has no user folder)")
    runner.release()  # the worker must not hold the old runtime's files, nor start on them meanwhile
    install = runtimes.RuntimeInstall(runtimes.RUNTIMES[key], root)
    _install = install.start()
    runner.hold_back("a GPU runtime is being installed: SHARP runs once it is done or cancelled")
    return install


class SHARP_OT_install_gpu_runtime(LongOperator, bpy.types.Operator):
    """Download CUDA PyTorch into this extension's own folder for the SHARP worker (2.7-3.7 GB)"""

    bl_idname = "sharp.install_gpu_runtime"
    bl_label = "Install GPU Runtime"
    bl_options = {"INTERNAL"}  # noqa: RUF012 - Blender reads it as a class attribute
    redraws_preferences = True

    runtime: EnumProperty(  # type: ignore[valid-type]
        name="CUDA Build", items=RUNTIME_ITEMS, default=runtimes.DEFAULT_RUNTIME,
        description="Which CUDA build of PyTorch to install",
    )

    @classmethod
    def description(cls, context: bpy.types.Context, properties: Any) -> str:
        chosen = runtimes.RUNTIMES.get(getattr(properties, "runtime", ""), None)
        if chosen is None:
            return str(cls.__doc__)
        return (f"Install {chosen.label}: PyTorch {chosen.torch_version} for {chosen.covers} "
                f"(about {size_text(chosen.expected_bytes())}, into this extension's own folder)")

    def start_work(self, context: bpy.types.Context) -> Work:
        return start_install(self.runtime)

    def work_ended(self, context: bpy.types.Context, work: Work) -> None:
        runner.hold_back(None)

    def finish_work(self, context: bpy.types.Context, result: runtimes.InstalledRuntime) -> Result:
        found = result.probe
        seen = found.gpu_summary() if found is not None and found.ok else found.message if found else "not checked"
        self.report({"INFO"}, f"Installed the {result.describe()}. The SHARP worker sees: {seen}")
        return {"FINISHED"}


class SHARP_OT_cancel_gpu_runtime_install(bpy.types.Operator):
    """Stop the GPU runtime install and remove what it downloaded"""

    bl_idname = "sharp.cancel_gpu_runtime_install"
    bl_label = "Cancel GPU Runtime Install"
    bl_options = {"INTERNAL"}  # noqa: RUF012

    def execute(self, context: bpy.types.Context) -> Result:
        install = current_install()
        if install is None:
            self.report({"INFO"}, "No GPU runtime is being installed")
            return {"CANCELLED"}
        install.cancel()  # the install's modal operator reports it at its next tick
        return {"FINISHED"}


class SHARP_OT_check_gpu_runtime(bpy.types.Operator):
    """Check again which GPU the SHARP worker sees with the installed runtime (takes seconds)"""

    bl_idname = "sharp.check_gpu_runtime"
    bl_label = "Check GPU Runtime"
    bl_options = {"INTERNAL"}  # noqa: RUF012

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
        installed = runner.installed_runtime()
        if installed is None:
            raise SharpError("No GPU runtime is installed")
        mismatch = installed.mismatch()
        if mismatch:
            raise SharpError(mismatch)
        found = runtimes.probe_python(sys.executable, runtime=installed.folder)
        runtimes.save_probe(installed, found)
        if not found.ok:
            raise found.error()
        self.report({"INFO"}, f"The SHARP worker sees: {found.gpu_summary()}")
        return {"FINISHED"}


class SHARP_OT_remove_gpu_runtime(bpy.types.Operator):
    """Delete the GPU runtime (the worker then uses Blender's own PyTorch again)"""

    bl_idname = "sharp.remove_gpu_runtime"
    bl_label = "Remove GPU Runtime"
    bl_options = {"INTERNAL"}  # noqa: RUF012

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
        root = runner.runtime_root()
        if current_install() is not None:
            raise SharpError("a GPU runtime is being installed; cancel it first")
        runner.release()  # an idle worker lets go of the runtime's files first
        removed = runtimes.remove_runtimes(root) if root is not None else []
        if not removed:
            self.report({"INFO"}, "No GPU runtime was installed")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Removed the GPU runtime ({', '.join(p.name for p in removed)})")
        return {"FINISHED"}


def cancel_install() -> None:
    """Stop an install in progress (add-on disabled)."""
    install = current_install()
    if install is not None:
        install.cancel()
    runner.hold_back(None)


classes = (SHARP_OT_check_inference_python, SHARP_OT_install_gpu_runtime, SHARP_OT_cancel_gpu_runtime_install,
           SHARP_OT_check_gpu_runtime, SHARP_OT_remove_gpu_runtime)
