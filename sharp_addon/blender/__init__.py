"""The Blender layer: registration of every class, menu entry and command-line command.

Only this package imports bpy. It stays importable without torch: the engine is imported
where inference starts, so the add-on registers and its preferences can say what is missing.
"""

from __future__ import annotations

import bpy

from . import (
    camera_moves,
    depth_mesh,
    exact_render,
    jobs,
    native_splats,
    operators,
    properties,
    runner,
    runtime_ui,
    ui,
    weights,
)
from .preferences import SHARP_OT_validate_checkpoint, SharpPreferences

CLI_COMMAND = "sharp"  # blender -c sharp ...

classes = (SharpPreferences, SHARP_OT_validate_checkpoint, *operators.classes, *ui.classes, *runtime_ui.classes,
           *weights.classes, *exact_render.classes, *native_splats.classes, *camera_moves.classes,
           *depth_mesh.classes)
# each feature module that adds menus or handlers beyond its classes: register() after the classes
FEATURES = (exact_render, native_splats, camera_moves, depth_mesh)

_cli_handle = None


def cli_command(argv: list[str]) -> int:
    """``blender -c sharp ARGS``: the same front door as ``python -m sharp_addon``, plus Blender scenes."""
    from . import batch

    return batch.cli_main(argv)


def register() -> None:
    global _cli_handle
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register()
    ui.register_menus()
    for feature in FEATURES:
        feature.register()
    _cli_handle = bpy.utils.register_cli_command(CLI_COMMAND, cli_command)


def cli_registered() -> bool:
    """Is ``blender -c sharp`` registered (between register and unregister)?"""
    return _cli_handle is not None


def unregister() -> None:
    global _cli_handle
    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    for feature in reversed(FEATURES):
        feature.unregister()
    ui.unregister_menus()
    properties.unregister()
    runtime_ui.cancel_install()  # a running pip ends with the add-on
    runner.shutdown()
    jobs.forget()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
