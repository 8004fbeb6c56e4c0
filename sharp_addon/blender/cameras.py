"""A Blender camera as the exact renderer's pinhole ``cameras.Camera``, in a splat object's data frame.

Blender's projection (its view plane), restated in pixels: the render is W x H pixels (resolution
times the percentage), each ``pixel_aspect_x`` by ``pixel_aspect_y`` wide and tall. The sensor fit
decides which side the sensor size spans: HORIZONTAL the width (``sensor_width``), VERTICAL the
height (``sensor_height``), AUTO the longer side in displayed units (``sensor_width`` either way).
With ``ycor = aspect_y / aspect_x`` and ``side`` = W (horizontal) or ``ycor * H`` (vertical), the
focal length in pixels is ``fx = lens / sensor * side``, ``fy = fx / ycor``; a shift moves the
principal point by ``shift * side`` (x to the left, y downwards in image rows). Blender ignores a
camera object's scale; a splat object's (even) scale scales its splats, so the pose is rigid and
the splats are scaled by ``splat_scale`` before they are rendered.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np

from .. import gaussians as G
from ..cameras import Camera
from ..errors import SharpError

# Blender camera axes (looking down -Z, +Y up) from OpenCV's (x right, y down, z forward), 4x4
OPENCV_TO_BLENDER_CAMERA_4 = np.diag([*np.diag(G.OPENCV_TO_BLENDER_CAMERA), 1.0])


def render_size(scene: bpy.types.Scene) -> tuple[int, int]:
    """The rendered image's (W, H) in pixels, as Blender computes it from resolution and percentage."""
    render = scene.render
    percentage = render.resolution_percentage
    return max(1, render.resolution_x * percentage // 100), max(1, render.resolution_y * percentage // 100)


def intrinsics(camera: bpy.types.Camera, scene: bpy.types.Scene) -> tuple[float, float, float, float, int, int]:
    """(fx, fy, cx, cy, W, H) of a perspective camera at the scene's render size (module docstring)."""
    width, height = render_size(scene)
    aspect_x, aspect_y = scene.render.pixel_aspect_x, scene.render.pixel_aspect_y
    ycor = aspect_y / aspect_x
    fit = camera.sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if aspect_x * width >= aspect_y * height else "VERTICAL"
        sensor = camera.sensor_width
    else:
        sensor = camera.sensor_width if fit == "HORIZONTAL" else camera.sensor_height
    side = width if fit == "HORIZONTAL" else ycor * height
    fx = camera.lens / sensor * side
    fy = fx / ycor
    cx = width / 2.0 - camera.shift_x * side
    cy = height / 2.0 + camera.shift_y * side / ycor
    return fx, fy, cx, cy, width, height


def splat_scale(splat_obj: bpy.types.Object) -> float:
    """The splat object's (even) world scale; ``SharpError`` for uneven scale, shear or a mirror,
    which would change the splats' shapes in ways a pinhole pose cannot say."""
    linear = np.array(splat_obj.matrix_world, dtype=np.float64)[:3, :3]
    gram = linear.T @ linear
    scale = float(np.sqrt(gram[0, 0]))
    if scale <= 1e-12:
        raise SharpError(f"Object '{splat_obj.name}' has a zero scale: there is nothing to render")
    if not np.allclose(gram / scale**2, np.eye(3), atol=1e-5):
        raise SharpError(f"Object '{splat_obj.name}' is scaled unevenly or sheared, which the exact renderer cannot "
                         "show; scale it evenly or apply its scale")
    if np.linalg.det(linear) < 0:
        raise SharpError(f"Object '{splat_obj.name}' is mirrored (a negative scale), which the exact renderer cannot "
                         "show; make its scale positive")
    return scale


def world_to_camera(camera_obj: bpy.types.Object, splat_obj: bpy.types.Object) -> np.ndarray:
    """4x4 (rigid) from the splat object's data, scaled by ``splat_scale``, to the camera's OpenCV frame."""
    camera_to_world = np.array(camera_obj.matrix_world.normalized(), dtype=np.float64)  # Blender drops its scale
    splats_to_world = np.array(splat_obj.matrix_world, dtype=np.float64)
    splats_to_world[:3, :3] /= splat_scale(splat_obj)
    return OPENCV_TO_BLENDER_CAMERA_4 @ np.linalg.inv(camera_to_world) @ splats_to_world


def camera_from_blender(camera_obj: bpy.types.Object | None, scene: bpy.types.Scene,
                        splat_obj: bpy.types.Object) -> Camera:
    """The pinhole ``Camera`` that sees ``splat_obj``'s Gaussians (scaled by ``splat_scale``, which is 1
    unless the object is scaled) as ``camera_obj`` renders ``scene``.

    Perspective cameras only: orthographic and panoramic ones raise ``SharpError`` saying so.
    """
    if camera_obj is None:
        raise SharpError(f"Scene '{scene.name}' has no camera to render through; add one and make it the scene "
                         "camera")
    data: Any = camera_obj.data
    if camera_obj.type != "CAMERA" or not isinstance(data, bpy.types.Camera):
        raise SharpError(f"Object '{camera_obj.name}' is not a camera (its type is {camera_obj.type.title()})")
    if data.type != "PERSP":
        kind = {"ORTHO": "orthographic", "PANO": "panoramic"}.get(data.type, data.type.lower())
        raise SharpError(f"Camera '{camera_obj.name}' is {kind}; the exact renderer needs a perspective camera "
                         "(set its Type to Perspective)")
    fx, fy, cx, cy, width, height = intrinsics(data, scene)
    depsgraph = bpy.context.evaluated_depsgraph_get()  # matrices as they are now, also right after a script's edit
    camera_obj, splat_obj = camera_obj.evaluated_get(depsgraph), splat_obj.evaluated_get(depsgraph)
    return Camera(fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height,
                  world_to_camera=world_to_camera(camera_obj, splat_obj))
