"""Add-on preferences: the weights and their licence, device, precision, keep-loaded, where SHARP runs.

The sections are drawn by the modules that own them (``weights_panel``, ``runtime_ui``).
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from .. import dependencies
from .addon import ADDON_PACKAGE
from .runner import torch_status
from .runtime_ui import draw_runtime
from .weights_panel import draw_status, draw_weights

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

    accept_weights_licence: BoolProperty(  # type: ignore[valid-type]
        name="Accept the Weights' Licence",
        description=f"{dependencies.LICENCE_NOTICE} ({dependencies.LICENCE_URL}). Needed before the weights are "
        "downloaded",
        default=False,
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        draw_status(layout, torch_status(check=False))
        draw_weights(layout, context)
        row = layout.row()
        row.prop(self, "device")
        row.prop(self, "precision")
        if self.device in ("AUTO", "CPU"):  # the CPU's choice needs no torch in Blender's process
            layout.label(text=f"On the CPU: {cpu_precision(self.precision)}", icon="INFO")
        layout.prop(self, "keep_loaded")
        draw_runtime(layout, context)


def cpu_precision(precision: str) -> str:
    """What a precision setting means on this CPU, and why (``devices.choose_precision``)."""
    from ..devices import choose_precision

    return choose_precision(precision.lower(), "cpu").describe()
