"""The photo's camera: a Blender camera with the photo's focal length and size, in the photo frame.

The camera sits at its photo frame's origin (where SHARP's camera was), turned from OpenCV's axes
to Blender's; it marks its splat object (an ID pointer, so renames and moves keep it), becomes the
scene camera, and sets the render size to the photo's, so F12 frames the scene as it was taken.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from .. import gaussians as G
from ..errors import GaussiansError

PHOTO_CAMERA_OF = "sharp_photo_camera_of"  # on the photo camera: its splat object (an ID pointer: renames keep it)
SENSOR_WIDTH_MM = 36.0
CAMERA_IN_FRAME_ROTATION = Matrix(G.OPENCV_TO_BLENDER_CAMERA.tolist()).to_euler()


def add_photo_camera(g: G.Gaussians, name: str, splats: bpy.types.Object, collection: bpy.types.Collection,
                     scene: bpy.types.Scene) -> bpy.types.Object:
    """The photo's camera beside ``splats`` (under their frame), made the scene camera at the photo's size."""
    assert g.image_size is not None
    camera = new_camera(g, name)
    camera[PHOTO_CAMERA_OF] = splats
    camera.parent = splats.parent
    collection.objects.link(camera)
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y = g.image_size
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    return camera


def check_camera_fits(g: G.Gaussians, name: str) -> None:
    """The photo's size and focal length must be values a Blender camera and render can hold."""
    assert g.image_size is not None and g.focal_px is not None
    render: Any = bpy.types.RenderSettings.bl_rna
    limit = int(min(render.properties["resolution_x"].hard_max, render.properties["resolution_y"].hard_max))
    w, h = g.image_size
    if max(w, h) > limit:
        raise GaussiansError.about(name, f"records a photo of {w:,} x {h:,} px, larger than Blender can render "
                                   f"({limit:,} px a side); turn off Camera to import the splats alone")
    lens: Any = bpy.types.Camera.bl_rna.properties["lens"]
    mm = g.focal_px * SENSOR_WIDTH_MM / w
    if not lens.hard_min <= mm <= lens.hard_max:
        raise GaussiansError.about(name, f"records a focal length of {g.focal_px:.4g} px for a {w} px wide photo "
                                   f"({mm:.4g} mm), outside what a Blender camera takes; turn off Camera to import "
                                   "the splats alone")


def new_camera(g: G.Gaussians, name: str) -> bpy.types.Object:
    """The photo's pinhole: horizontal sensor fit, lens from focal_px, principal point centred."""
    assert g.focal_px is not None and g.image_size is not None
    width, _ = g.image_size
    camera = bpy.data.cameras.new(name)
    camera.sensor_fit = "HORIZONTAL"
    camera.sensor_width = SENSOR_WIDTH_MM
    camera.lens = g.focal_px * SENSOR_WIDTH_MM / width
    camera.clip_start = 0.01
    camera.clip_end = float(np.clip(2.0 * g.means[:, 2].max(), 100.0, 1e6))  # metres; past the farthest splat
    obj = bpy.data.objects.new(name, camera)
    obj.rotation_euler = CAMERA_IN_FRAME_ROTATION
    return obj
