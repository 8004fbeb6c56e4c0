"""Blender's renders as arrays, for the tests and bench/fidelity.py: one EXR set-up for Cycles and EEVEE."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def eevee_id(bpy) -> str:
    """EEVEE's engine identifier: BLENDER_EEVEE_NEXT on 4.2-4.5, BLENDER_EEVEE from 5.0."""
    items = [e.identifier for e in bpy.types.RenderSettings.bl_rna.properties["engine"].enum_items]
    return "BLENDER_EEVEE_NEXT" if "BLENDER_EEVEE_NEXT" in items else "BLENDER_EEVEE"


def render_rgba(bpy, engine: str, path: Path, samples: int) -> np.ndarray:
    """(H, W, 4) linear premultiplied RGBA from the scene camera, rows top-down, sampled at pixel
    centres (as the exact renderer and the numpy reference are), the film transparent."""
    scene = bpy.context.scene
    scene.render.engine = engine
    if engine == "CYCLES":
        from sharp_addon.blender.render_setup import cycles_on_cpu

        cycles_on_cpu(scene, samples)
        scene.cycles.filter_width = 0.01
    else:
        scene.eevee.taa_render_samples = samples
        scene.render.filter_size = 0.01
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(path))
    try:
        w, h = image.size
        pixels = np.empty(w * h * 4, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(h, w, 4)[::-1]  # Blender's rows go bottom-up


def render(bpy, engine: str, path, samples: int) -> np.ndarray:
    """Linear RGB (premultiplied, on black), rows top-down."""
    return render_rgba(bpy, engine, path, samples)[..., :3]


def move_camera(camera, distance: float = 4.0, degrees: float = 8.0) -> None:
    """An orbit of ``degrees`` sideways and 3 degrees up about the point ``distance`` m ahead (where the
    scenes are), so the splats stay in view whatever the lens, and are seen from a new angle."""
    from mathutils import Matrix

    world = camera.matrix_world.copy()
    pivot = world.translation - world.col[2].xyz * distance  # cameras look down their local -Z
    turn = Matrix.Rotation(math.radians(degrees), 4, "Z") @ Matrix.Rotation(math.radians(3), 4, world.col[0].xyz)
    moved = Matrix.Translation(pivot) @ turn @ Matrix.Translation(-pivot) @ world
    camera.matrix_world = moved
