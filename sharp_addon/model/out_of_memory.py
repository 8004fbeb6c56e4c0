"""A device that runs out of memory becomes an ``OutOfMemory`` error with advice.

No bpy. PyTorch reports exhausted memory as ``RuntimeError`` subclasses whose text says so
(CUDA, MPS, the CPU allocator) or as Python's ``MemoryError``; anything else passes through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..errors import OutOfMemory

ADVICE = ("Try precision 'fp16' or 'bf16' (half the memory), close other programs using the device, "
          "or run on the CPU (needs about 5 GB of RAM in fp32)")


@contextmanager
def translate_out_of_memory(device: torch.device) -> Iterator[None]:
    """Turn the device's out-of-memory errors inside the block into ``OutOfMemory``."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        text = str(error).lower()
        if not (isinstance(error, MemoryError) or "out of memory" in text or "not enough memory" in text):
            raise
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise OutOfMemory(f"the {device.type.upper()} ran out of memory running SHARP. {ADVICE}") from None
