"""SHARP from Image: one photo to a 3D Gaussian-splat scene in Blender.

This file only registers the Blender layer. Nothing heavy is imported here, so that the
model and data core (``gaussians``, ``ply``, ...) import without Blender and the Blender
layer registers without torch.
"""


def register() -> None:
    from . import blender

    blender.register()


def unregister() -> None:
    from . import blender

    blender.unregister()
