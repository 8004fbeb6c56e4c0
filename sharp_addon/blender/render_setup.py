"""Quick Cycles renders on the CPU: the one set-up for batch renders, demos, benches and tests.

Cycles on the CPU is what every machine has (GPU workers can render the saved .blend themselves).
Splats need no Russian roulette (``scene.setup_scene_for_splats``), so they converge in a few
samples; denoising would only blur them.
"""

from __future__ import annotations

from typing import Any

QUICK_SAMPLES = 4


def cycles_on_cpu(scene: Any, samples: int = QUICK_SAMPLES, percentage: int | None = None) -> None:
    """Render ``scene`` with Cycles on the CPU, ``samples`` per pixel, no denoising, at ``percentage``
    of its resolution when given."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    if percentage is not None:
        scene.render.resolution_percentage = percentage
