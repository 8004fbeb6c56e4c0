"""How much memory a run may take, and what it gives back between stages.

No bpy. Budgets come from what the device has free (CUDA's free memory, else the system's available
RAM from /proc); the policy frees the two ViTs' weight pages once the encoder is done and, on the
CPU, the freed heap at every stage change and after the run (see ``allocator``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .allocator import release_freed_memory
from .config import SharpConfig

CPU_PATCH_BUDGET = 512 * 2**20  # bytes of ViT activations per chunk on the CPU (speed barely changes)
CPU_STRIP_BUDGET = 1536 * 2**20  # bytes per row strip of the full-resolution decoder levels on the CPU
VIT_PREFIX = "monodepth_model.monodepth_predictor.encoder."  # the two ViTs and the encoder's convs
FALLBACK_FREE = 8 * 2**30  # no /proc (macOS, Windows): assume a modest machine


def free_memory(device: torch.device) -> int:
    """Bytes the device can still give (CUDA: free device memory; else available system RAM)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh}
        return info.get("MemAvailable", info["MemFree"])
    except (OSError, KeyError, ValueError, IndexError):
        return FALLBACK_FREE


@dataclass(frozen=True)
class MemoryPolicy:
    """One predictor's memory rules: chunk and strip sizes, and what to free when a stage ends.

    ``release_weights(prefix)`` hands the file pages of the memory-mapped weights under ``prefix``
    back to the page cache (``checkpoint.release_pages``).
    """

    device: torch.device
    release_weights: Callable[[str], None]

    def patch_chunk(self, cfg: SharpConfig, dtype: torch.dtype) -> int:
        """How many ViT patches to run at once: a quarter of the free memory (at most 512 MB on the CPU)."""
        vit = cfg.vit
        itemsize = 4 if dtype == torch.float32 else 2
        per_patch = 1.5 * (vit.grid**2 + 1) * (4 * vit.embed_dim + 2 * vit.mlp_dim) * itemsize
        budget = free_memory(self.device) / 4
        if self.device.type == "cpu":
            budget = min(budget, CPU_PATCH_BUDGET)
        return max(1, min(35, int(budget // per_patch)))

    def strip_budget(self) -> float:
        """Memory for one row strip of the finest levels: bounded on the CPU, a quarter of what is free elsewhere."""
        quarter = free_memory(self.device) / 4
        return min(CPU_STRIP_BUDGET, quarter) if self.device.type == "cpu" else quarter

    def stage_done(self, stage: str) -> None:
        """``stage`` has ended: the ViTs (2.4 GB of the 2.6) after the encoder; old buffer holes on the CPU."""
        if stage == "encoder":
            self.release_weights(VIT_PREFIX)
        if self.device.type == "cpu":  # the next stage's buffers have other sizes
            release_freed_memory()

    def run_done(self) -> None:
        """After a run, finished, failed or cancelled: a kept model holds no weight pages or activations."""
        self.release_weights("")
        if self.device.type == "cpu":
            release_freed_memory()
