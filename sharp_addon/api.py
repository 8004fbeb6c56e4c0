"""The plain Python API: load SHARP once, turn photos into Gaussians.

No bpy; torch is imported on first use. ::

    from sharp_addon.api import load_predictor
    predictor = load_predictor("sharp_2572gikvuh.pt")           # device / precision "auto"
    gaussians = predictor.predict("photo.jpg")                 # Gaussians (metric, OpenCV camera)

The pieces live in their own modules: device and precision choice (``devices``), strict loading
with released weight pages (``model.checkpoint``), memory budgets and the per-stage policy
(``model.memory``), out-of-memory advice (``model.out_of_memory``). Blender's side (splat objects)
is ``sharp_addon.blender.scene``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .devices import DEVICES, PRECISIONS, choose_precision, require_torch, resolve_device
from .errors import Cancelled
from .gaussians import Gaussians, unproject
from .image import Photo, load_photo

if TYPE_CHECKING:
    import torch

    from .model.memory import MemoryPolicy
    from .model.monitor import Monitor
    from .model.predictor import SharpPredictor

__all__ = ["DEVICES", "PRECISIONS", "Predictor", "load_predictor", "validate_checkpoint"]

Progress = Callable[[str, float], None]
Cancel = Callable[[], bool]
NETWORK_ARRAYS = ("means", "scales", "quats", "colors", "opacities")  # what the network hands to unprojection


def load_predictor(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any], device: str = "auto", precision: str = "auto"
) -> Predictor:
    """SHARP ready to run: ``checkpoint`` is a file or an already loaded state dict.

    Raises ``CheckpointError`` for a wrong, truncated or mismatched checkpoint.
    """
    require_torch()
    from .model.allocator import keep_freed_memory
    from .model.checkpoint import load_network
    from .model.out_of_memory import translate_out_of_memory

    dev = resolve_device(device)
    choice = choose_precision(precision, dev)
    dtype = choice.dtype
    if dev.type == "cpu":
        keep_freed_memory()
    with translate_out_of_memory(dev):
        loaded = load_network(checkpoint, dev, dtype)
    return Predictor(loaded.model, dev, dtype, loaded.source, loaded.seconds, loaded.mapped, choice.describe())


def validate_checkpoint(checkpoint: str | os.PathLike[str]) -> str:
    """A one-line summary of a usable SHARP checkpoint, or ``CheckpointError`` saying what is wrong.

    Reads only the file's index (memory-mapped) and checks every key and shape; seconds, not minutes.
    """
    require_torch()
    from .model.checkpoint import check_state_dict, read_state_dict

    state_dict = read_state_dict(checkpoint)
    cfg = check_state_dict(state_dict, str(checkpoint)).cfg
    params = sum(v.numel() for v in state_dict.values())
    size = "full size" if cfg.vit.embed_dim == 1024 else f"a reduced ViT ({cfg.vit.embed_dim} wide)"
    return (f"valid SHARP checkpoint: {len(state_dict)} tensors, {params / 1e6:.1f} M parameters, {size}, "
            f"{cfg.num_gaussians:,} Gaussians per image")


@dataclass
class Predictor:
    """A loaded SHARP network on one device in one precision."""

    model: SharpPredictor
    device: torch.device
    dtype: torch.dtype
    source: str
    load_seconds: float
    mapped: Mapping[str, torch.Tensor] = field(default_factory=dict)  # weights living in the file mapping
    precision_note: str = ""  # the precision in words, and why it was chosen ("float32 (as asked)")

    @property
    def memory(self) -> MemoryPolicy:
        from .model.memory import MemoryPolicy

        return MemoryPolicy(self.device, self.release_weights)

    def release_weights(self, prefix: str = "") -> None:
        """Drop the resident pages of memory-mapped weights under ``prefix`` (see ``release_pages``)."""
        from .model.checkpoint import release_pages

        release_pages(t for name, t in self.mapped.items() if name.startswith(prefix))

    def predict(
        self,
        image: Any,
        focal_px: float | None = None,
        focal_35mm: float | None = None,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
    ) -> Gaussians:
        """Gaussians for one photo (path, PIL image or [H, W, 3] uint8 array).

        ``focal_px`` / ``focal_35mm`` override the EXIF focal length. ``progress(stage, fraction)`` is
        called as work advances; when ``cancel()`` returns True the run stops with ``Cancelled``.
        """
        from .model.monitor import Monitor

        photo = load_photo(image, focal_px=focal_px, focal_35mm=focal_35mm)
        step = _Steps(self.memory, progress, cancel)
        step("prepare", 0.0)
        normalised = self.network_output(photo, Monitor(on_step=step))
        step("unproject", 0.0)
        gaussians = unproject(**normalised, focal_px=photo.focal_px, size_wh=photo.size_wh,
                              layer_count=self.model.cfg.depth_layers)
        step("done", 1.0)
        return gaussians

    def network_output(self, photo: Photo, monitor: Monitor) -> dict[str, np.ndarray]:
        """The network's Gaussians for ``photo`` in SHARP's normalised camera space, before unprojection.

        ``monitor`` receives progress steps, and the named intermediates when it captures (parity checks).
        """
        torch = require_torch()
        from .model.out_of_memory import translate_out_of_memory

        size = self.model.cfg.internal_size
        memory = self.memory
        try:
            with torch.inference_mode(), translate_out_of_memory(self.device):
                x = torch.tensor(photo.pixels, device=self.device).permute(2, 0, 1)[None].float() / 255.0
                x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
                monitor.keep("image_1536", x[0])
                composed = self.model(x, photo.focal_px / photo.size_wh[0], monitor,
                                      memory.patch_chunk(self.model.cfg, self.dtype), memory.strip_budget())
                del x
                return {k: getattr(composed, k).float().cpu().numpy() for k in NETWORK_ARRAYS}
        finally:  # also when cancelled or failed
            memory.run_done()


@dataclass
class _Steps:
    """The network's progress callback: frees memory when a stage ends, honours cancel, reports progress."""

    memory: MemoryPolicy
    progress: Progress | None
    cancel: Cancel | None
    stage: str = ""

    def __call__(self, stage: str, fraction: float) -> None:
        if stage != self.stage:
            self.memory.stage_done(self.stage)
            self.stage = stage
        if self.cancel is not None and self.cancel():
            raise Cancelled("SHARP run cancelled")
        if self.progress is not None:
            self.progress(stage, fraction)
