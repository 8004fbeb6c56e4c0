"""Where SHARP runs and in what number format: the device and precision choice.

No bpy; torch is imported on first use (``require_torch``), so the names below serve the command
line and the preferences without it.

On the CPU, "auto" picks bfloat16 only where the processor computes it natively (AVX512_BF16 or
AMX): elsewhere PyTorch emulates it and a bfloat16 run is several times slower than float32
(docs/benchmarks.md). ``choose_precision`` says which was picked and why.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import DependencyError, SharpError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # Linux /proc/cpuinfo names of native bfloat16 arithmetic
NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


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


@dataclass(frozen=True)
class Precision:
    """The number format a run uses, and why, in words for the user."""

    name: str  # "fp32", "fp16" or "bf16"
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        torch = require_torch()
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.name]

    def describe(self) -> str:
        return f"{NAMES[self.name]} ({self.reason})"


def cpu_flags() -> frozenset[str]:
    """The processor's feature flags as Linux names them (/proc/cpuinfo); empty where unknown."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo") as fh:
                for line in fh:
                    if line.startswith(("flags", "Features")):
                        return frozenset(line.split(":", 1)[1].split())
        except OSError:
            pass
    return frozenset()


def choose_precision(precision: str, device: torch.device | str, flags: Iterable[str] | None = None) -> Precision:
    """What ``precision`` means on ``device``; for 'auto' the fastest correct format, with the reason.

    'auto': bfloat16 on CUDA GPUs that support it (else float16), float16 on Apple GPUs, and on the
    CPU bfloat16 only where the CPU computes it natively (``flags``: the CPU's flags, read from the
    system when None), float32 elsewhere.
    """
    precision = precision.lower()
    if precision not in PRECISIONS:
        raise SharpError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision != "auto":
        return Precision(precision, "as asked")
    kind = device if isinstance(device, str) else device.type  # a name needs no torch: the preferences
    if kind == "cuda":
        if require_torch().cuda.is_bf16_supported():
            return Precision("bf16", "the GPU computes bfloat16 natively")
        return Precision("fp16", "the GPU has no fast bfloat16")
    if kind == "mps":
        return Precision("fp16", "Apple GPUs run half precision fastest")
    native = sorted(set(flags if flags is not None else cpu_flags()) & set(NATIVE_BF16_FLAGS))
    if native:
        return Precision("bf16", f"this CPU computes bfloat16 natively: {', '.join(native)}")
    return Precision("fp32", "this CPU has no native bfloat16 (AVX512_BF16 or AMX), where bfloat16 runs "
                     "several times slower than float32")
