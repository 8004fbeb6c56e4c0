"""The plain Python API: load SHARP once, turn photos into Gaussians.

No bpy; torch is imported on first use. ::

    from sharp_addon.api import load_predictor
    predictor = load_predictor("sharp_2572gikvuh.pt")           # device / precision "auto"
    gaussians = predictor.predict("photo.jpg")                 # Gaussians (metric, OpenCV camera)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import Cancelled, DependencyError, OutOfMemory, SharpError
from .gaussians import Gaussians, unproject
from .image import load_photo

if TYPE_CHECKING:
    import torch

    from .model.predictor import SharpPredictor

Progress = Callable[[str, float], None]
Cancel = Callable[[], bool]

DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
VIT_PREFIX = "monodepth_model.monodepth_predictor.encoder."  # the two ViTs and the encoder's convs


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise DependencyError(f"PyTorch is needed for inference and cannot be imported ({e})") from None
    return torch


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; naming an absent device is an error."""
    torch = _torch()
    device = device.lower()
    if device not in DEVICES:
        raise SharpError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SharpError("device 'cuda' was asked for, but PyTorch sees no CUDA GPU; use 'auto' or 'cpu'")
    if device == "mps" and not has_mps:
        raise SharpError("device 'mps' was asked for, but no Apple GPU is available; use 'auto' or 'cpu'")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """'auto': bfloat16 on CUDA GPUs that support it (else float16), float16 on MPS, float32 on the CPU."""
    torch = _torch()
    precision = precision.lower()
    if precision not in PRECISIONS:
        raise SharpError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def load_predictor(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any], device: str = "auto", precision: str = "auto"
) -> Predictor:
    """SHARP ready to run: ``checkpoint`` is a file or an already loaded state dict.

    Raises ``CheckpointError`` for a wrong, truncated or mismatched checkpoint.
    """
    torch = _torch()
    from .model.checkpoint import build_predictor, read_state_dict

    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    if dev.type == "cpu":
        from .model.allocator import keep_freed_memory

        keep_freed_memory()
    t0 = time.perf_counter()
    mapped_file = not isinstance(checkpoint, Mapping)
    if isinstance(checkpoint, Mapping):
        state_dict, source = {k: torch.as_tensor(v) for k, v in checkpoint.items()}, "<state dict>"
    else:
        state_dict, source = read_state_dict(checkpoint), str(checkpoint)
    with _translate_oom(dev):
        model = build_predictor(state_dict, source, dev, dtype, mapped=mapped_file)
    # parameters that are still the memory-mapped file's tensors (float32 on the CPU): their pages
    # can go back to the page cache whenever a stage is done with them
    mapped = {} if not mapped_file else {
        name: p for name, p in model.named_parameters()
        if name in state_dict and p.device.type == "cpu" and p.data_ptr() == state_dict[name].data_ptr()
    }
    del state_dict
    predictor = Predictor(model, dev, dtype, source, time.perf_counter() - t0, mapped)
    predictor.release_weights()
    return predictor


def validate_checkpoint(checkpoint: str | os.PathLike[str]) -> str:
    """A one-line summary of a usable SHARP checkpoint, or ``CheckpointError`` saying what is wrong.

    Reads only the file's index (memory-mapped) and checks every key and shape; seconds, not minutes.
    """
    _torch()
    from .model.checkpoint import check_state_dict, read_state_dict

    state_dict = read_state_dict(checkpoint)
    model = check_state_dict(state_dict, str(checkpoint))
    cfg = model.cfg
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
        capture: dict[str, Any] | None = None,
    ) -> Gaussians:
        """Gaussians for one photo (path, PIL image or [H, W, 3] uint8 array).

        ``focal_px`` / ``focal_35mm`` override the EXIF focal length. ``progress(stage, fraction)`` is
        called as work advances; when ``cancel()`` returns True the run stops with ``Cancelled``.
        ``capture``, when given, receives the network's named intermediates (for parity checks).
        """
        torch = _torch()
        from .model.allocator import release_freed_memory
        from .model.monitor import Monitor

        photo = load_photo(image, focal_px=focal_px, focal_35mm=focal_35mm)
        w, h = photo.size_wh

        last_stage = [""]

        def on_step(stage: str, fraction: float) -> None:
            if stage != last_stage[0]:
                if last_stage[0] == "encoder":  # the two ViTs (2.4 GB of the 2.6) are done for this image
                    self.release_weights(VIT_PREFIX)
                if self.device.type == "cpu":  # the next stage's buffers have other sizes: free the old holes
                    release_freed_memory()
                last_stage[0] = stage
            if cancel is not None and cancel():
                raise Cancelled("SHARP run cancelled")
            if progress is not None:
                progress(stage, fraction)

        monitor = Monitor(on_step=on_step, capture=capture)
        on_step("prepare", 0.0)
        size = self.model.cfg.internal_size
        try:
            with torch.inference_mode(), _translate_oom(self.device):
                x = torch.tensor(photo.pixels, device=self.device).permute(2, 0, 1)[None].float() / 255.0
                x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
                monitor.keep("image_1536", x[0])
                composed = self.model(x, photo.focal_px / w, monitor,
                                      patch_chunk(self.model, self.device, self.dtype), strip_budget(self.device))
                del x
                arrays = {k: getattr(composed, k).float().cpu().numpy() for k in
                          ("means", "scales", "quats", "colors", "opacities")}
            del composed
        finally:  # also when cancelled or failed: a kept model holds no weight pages between runs
            self.release_weights()
            if self.device.type == "cpu":
                release_freed_memory()
        if capture is not None:
            capture.update({"ndc_mean": arrays["means"], "ndc_scales": arrays["scales"],
                            "ndc_quaternions": arrays["quats"], "disparity_factor": np.float64(photo.focal_px / w)})
        on_step("unproject", 0.0)
        gaussians = unproject(**arrays, focal_px=photo.focal_px, size_wh=(w, h),
                              layer_count=self.model.cfg.depth_layers)
        on_step("done", 1.0)
        return gaussians


CPU_PATCH_BUDGET = 512 * 2**20  # bytes of ViT activations per chunk on the CPU (speed barely changes)
CPU_STRIP_BUDGET = 1536 * 2**20  # bytes per row strip of the full-resolution decoder levels on the CPU


def free_memory(device: torch.device) -> int:
    """Bytes the device can still give (CUDA: free device memory; else available system RAM)."""
    torch = _torch()
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh}
        return info.get("MemAvailable", info["MemFree"])
    except (OSError, KeyError, ValueError, IndexError):
        return 8 * 2**30  # no /proc (macOS, Windows): assume a modest machine


def patch_chunk(model: SharpPredictor, device: torch.device, dtype: torch.dtype) -> int:
    """How many ViT patches to run at once: a quarter of the free memory (at most 512 MB on the CPU)."""
    vit = model.cfg.vit
    itemsize = 4 if dtype == _torch().float32 else 2
    per_patch = 1.5 * (vit.grid**2 + 1) * (4 * vit.embed_dim + 2 * vit.mlp_dim) * itemsize
    budget = free_memory(device) / 4
    if device.type == "cpu":
        budget = min(budget, CPU_PATCH_BUDGET)
    return max(1, min(35, int(budget // per_patch)))


def strip_budget(device: torch.device) -> float:
    """Memory for one row strip of the finest levels: bounded on the CPU, a quarter of what is free elsewhere."""
    quarter = free_memory(device) / 4
    return min(CPU_STRIP_BUDGET, quarter) if device.type == "cpu" else quarter


@contextmanager
def _translate_oom(device: torch.device) -> Iterator[None]:
    """Turn the device's out-of-memory errors into ``OutOfMemory`` with advice."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        text = str(error).lower()
        if not (isinstance(error, MemoryError) or "out of memory" in text or "not enough memory" in text):
            raise
        if device.type == "cuda":
            _torch().cuda.empty_cache()
        raise OutOfMemory(
            f"the {device.type.upper()} ran out of memory running SHARP. Try precision 'fp16' or 'bf16' "
            "(half the memory), close other programs using the device, or run on the CPU (needs about 9 GB "
            "of RAM in fp32)"
        ) from None


# ---- Blender ---------------------------------------------------------------------------------------
# Importable without bpy: these two import the Blender layer on first call, inside Blender.


def gaussians_to_object(gaussians: Gaussians, name: str, collection: Any = None, create_camera: bool = True,
                        **options: Any) -> Any:
    """A Blender splat object (with photo frame and, optionally, camera); see ``blender.splat_object``."""
    from .blender.splat_object import gaussians_to_object as build

    return build(gaussians, name, collection=collection, create_camera=create_camera, **options)


def object_to_gaussians(obj: Any) -> Gaussians:
    """The Gaussians of a splat object, exactly as they went in; see ``blender.splat_object``."""
    from .blender.splat_object import object_to_gaussians as read

    return read(obj)
