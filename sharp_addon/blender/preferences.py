"""Add-on preferences: checkpoint, device, precision, keep-loaded, and what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from .. import dependencies
from ..errors import CheckpointError, SharpError
from ..files import FileKey, file_key
from .reports import reports_errors, sentence

ADDON_PACKAGE = __package__.rpartition(".")[0]  # the extension's package, e.g. bl_ext.user_default.sharp_from_image

DEVICE_ITEMS = [
    ("AUTO", "Auto", "The fastest device present: CUDA, then Apple MPS, then the CPU"),
    ("CUDA", "CUDA", "An NVIDIA GPU"),
    ("MPS", "Apple GPU", "Apple silicon GPU (Metal)"),
    ("CPU", "CPU", "The processor: slow (minutes) and needs about 5 GB of memory"),
]
PRECISION_ITEMS = [
    ("AUTO", "Auto", "bfloat16 on CUDA GPUs that support it, float16 on Apple GPUs; on the CPU bfloat16 where "
     "it computes it natively (AVX512_BF16, AMX), else float32"),
    ("FP32", "Float32", "Full precision: the reference result, slowest"),
    ("FP16", "Float16", "Half precision: fast on GPUs"),
    ("BF16", "BFloat16", "Brain float: fast on recent GPUs and CPUs with bfloat16 support"),
]


class SharpPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    checkpoint_path: StringProperty(  # type: ignore[valid-type]
        name="Checkpoint",
        description=f"SHARP weights file ({dependencies.CHECKPOINT_NAME}, 2.8 GB). "
        "Empty: look in the torch hub cache where ml-sharp downloads it",
        subtype="FILE_PATH",
        default="",
    )
    device: EnumProperty(  # type: ignore[valid-type]
        name="Device", description="Where inference runs", items=DEVICE_ITEMS, default="AUTO"
    )
    precision: EnumProperty(  # type: ignore[valid-type]
        name="Precision", description="Number format of the network's weights", items=PRECISION_ITEMS, default="AUTO"
    )
    keep_loaded: BoolProperty(  # type: ignore[valid-type]
        name="Keep Model Loaded",
        description="Keep the network in memory between runs: the next image starts at once, "
        "but the memory (1.4-2.8 GB) stays in use",
        default=True,
    )
    inference_python: StringProperty(  # type: ignore[valid-type]
        name="Python for Inference",
        description="Another Python 3.10+ with PyTorch (a conda or venv with CUDA, ROCm or gsplat) that runs "
        "SHARP's worker. Empty: Blender's own Python (with the GPU runtime, if installed)",
        subtype="FILE_PATH",
        default="",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        from . import runner  # here: runner imports this module's get_preferences

        draw_status(layout, runner.torch_status(check=False))
        from .weights import draw_weights  # here: weights imports this module

        draw_weights(layout, context)
        row = layout.row()
        row.prop(self, "device")
        row.prop(self, "precision")
        if self.device in ("AUTO", "CPU"):  # the CPU's choice needs no torch in Blender's process
            layout.label(text=f"On the CPU: {cpu_precision(self.precision)}", icon="INFO")
        layout.prop(self, "keep_loaded")
        from .runtime_ui import draw_runtime  # here: runtime_ui imports this module

        draw_runtime(layout, context)


def cpu_precision(precision: str) -> str:
    """What a precision setting means on this CPU, and why (``devices.choose_precision``)."""
    from ..devices import choose_precision

    return choose_precision(precision.lower(), "cpu").describe()


def draw_status(layout: bpy.types.UILayout, status: dependencies.Status) -> None:
    """One line: a check mark or an error icon and the explanation."""
    layout.label(text=status.message, icon="CHECKMARK" if status.ok else "ERROR")


_validated: dict[FileKey, dependencies.Status] = {}


def validation_result(path: Path) -> dependencies.Status | None:
    """The last validation of this exact file (same size and time), if any."""
    try:
        return _validated.get(file_key(path))
    except OSError:
        return None


class SHARP_OT_validate_checkpoint(bpy.types.Operator):
    """Check that the checkpoint file is a complete SHARP network (every key and shape; takes seconds)"""

    bl_idname = "sharp.validate_checkpoint"
    bl_label = "Validate"
    bl_options = {"INTERNAL"}  # noqa: RUF012 - Blender reads it as a class attribute

    @reports_errors
    def execute(self, context: bpy.types.Context) -> set[str]:  # type: ignore[override]
        from .runner import check_checkpoint  # where inference runs

        path = dependencies.find_checkpoint(get_preferences(context).checkpoint_path)
        if path is None or not path.is_file():
            raise CheckpointError(dependencies.checkpoint_status(path).message)
        key = file_key(path)
        try:
            summary = check_checkpoint(str(path))
        except SharpError as e:
            _validated[key] = dependencies.Status(False, sentence(str(e)))
            raise
        _validated[key] = dependencies.Status(True, sentence(summary))
        self.report({"INFO"}, _validated[key].message)
        return {"FINISHED"}


def get_preferences(context: bpy.types.Context) -> SharpPreferences:
    """This add-on's preferences (registered under the extension's package name)."""
    preferences = context.preferences
    assert preferences is not None, "Blender always has preferences"
    return cast(SharpPreferences, preferences.addons[ADDON_PACKAGE].preferences)
