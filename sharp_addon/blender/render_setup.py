"""Render settings for splats: what every splat scene needs, and quick Cycles renders on the CPU.

``setup_scene_for_splats`` is what SHARP from Image sets (and reports): enough transparent bounces
without Russian roulette, and the Standard view transform. ``cycles_on_cpu`` is the one set-up for
batch renders, demos, benches and tests: Cycles on the CPU is what every machine has (GPU workers
can render the saved .blend themselves); splats converge in a few samples, and denoising would
only blur them.
"""

from __future__ import annotations

from typing import Any

QUICK_SAMPLES = 4
CYCLES_TRANSPARENT_BOUNCES = 256  # each proxy face a ray passes costs one; fewer leave dark holes


def setup_scene_for_splats(scene: Any) -> list[str]:
    """Render settings splats need; returns what was changed, for the user's report."""
    changed = []
    cycles = getattr(scene, "cycles", None)
    if cycles is not None and cycles.transparent_max_bounces < CYCLES_TRANSPARENT_BOUNCES:
        cycles.transparent_max_bounces = CYCLES_TRANSPARENT_BOUNCES
        changed.append(f"Cycles transparent bounces {CYCLES_TRANSPARENT_BOUNCES}")
    # Russian roulette on transparent bounces turns the many faint splats a ray crosses into
    # noise (4x too dark at 1 sample, speckled at 16); without it splats converge in one sample
    if cycles is not None and cycles.min_transparent_bounces < cycles.transparent_max_bounces:
        cycles.min_transparent_bounces = cycles.transparent_max_bounces
        changed.append("no Russian roulette on transparent bounces")
    if scene.view_settings.view_transform != "Standard":
        scene.view_settings.view_transform = "Standard"
        changed.append("view transform Standard (the photo's colours, not tone-mapped)")
    return changed


def cycles_on_cpu(scene: Any, samples: int = QUICK_SAMPLES, percentage: int | None = None) -> None:
    """Render ``scene`` with Cycles on the CPU, ``samples`` per pixel, no denoising, at ``percentage``
    of its resolution when given."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    if percentage is not None:
        scene.render.resolution_percentage = percentage
