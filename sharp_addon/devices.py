"""Where SHARP runs and in what number format: the device and precision choice.

No bpy; torch is imported on first use (``require_torch``), so the names below serve the command
line and the preferences without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import DependencyError, SharpError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def require_torch() -> Any:
    """The torch module, or ``DependencyError`` saying that inference needs it."""
    try:
        import torch
    except ImportError as e:
        raise DependencyError(f"PyTorch is needed for inference and cannot be imported ({e})") from None
    return torch


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; naming an absent device is an error."""
    torch = require_torch()
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
    torch = require_torch()
    precision = precision.lower()
    if precision not in PRECISIONS:
        raise SharpError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
