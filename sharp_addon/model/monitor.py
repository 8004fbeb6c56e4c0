"""How a forward pass reports progress and learns it should stop, without knowing who listens.

No bpy. ``Monitor.step(stage, fraction)`` is called between pieces of work; the callback may raise
(``Cancelled``) to stop promptly. ``capture`` collects named intermediates for parity checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

StepCallback = Callable[[str, float], None]


@dataclass
class Monitor:
    on_step: StepCallback | None = None
    capture: dict[str, torch.Tensor] | None = None  # when set, intermediates are stored here
    names: set[str] = field(default_factory=set)  # which intermediates to store (empty: all)

    def step(self, stage: str, fraction: float) -> None:
        if self.on_step is not None:
            self.on_step(stage, fraction)

    def wants(self, name: str) -> bool:
        """Is ``name`` to be captured? (Lets callers skip assembling large intermediates.)"""
        return self.capture is not None and (not self.names or name in self.names)

    def keep(self, name: str, value: torch.Tensor) -> None:
        if self.wants(name):
            assert self.capture is not None
            self.capture[name] = value.detach().float().cpu()


NULL_MONITOR = Monitor()
