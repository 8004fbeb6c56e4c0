"""The Blender layer: registration of every class, menu entry, setting and command-line command.

Only this package imports bpy. It stays importable without torch: the engine is imported
where inference starts, so the add-on registers and its preferences can say what is missing.
"""

from __future__ import annotations

import bpy

from . import (
    camera_moves,
    depth_mesh,
    exact_render,
    long_operator,
    native_splats,
    operators,
    properties,
    remembered,
    runner,
    runtime_ui,
    splat_files,
    ui,
    weights,
)
from .preferences import SharpPreferences

CLI_COMMAND = "sharp"  # blender -c sharp ...

classes = (SharpPreferences, *operators.classes, *splat_files.classes, *ui.classes, *runtime_ui.classes,
           *weights.classes, *exact_render.classes, *native_splats.classes, *camera_moves.classes, *depth_mesh.classes)
# each feature module that adds menus, handlers or settings beyond its classes: register() after the classes
FEATURES = (properties, weights, exact_render, native_splats, camera_moves, depth_mesh)

_cli_handle = None


def cli_command(argv: list[str]) -> int:
    """``blender -c sharp ARGS``: the same front door as ``python -m sharp_addon``, plus Blender scenes."""
    from . import batch

    return batch.cli_main(argv)


def register() -> None:
    global _cli_handle
    for cls in classes:
        bpy.utils.register_class(cls)
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
    long_operator.stop_all()  # every download, install, run and render followed now ends with the add-on
    for feature in reversed(FEATURES):
        feature.unregister()
    ui.unregister_menus()
    runtime_ui.cancel_install()
    runner.shutdown()
    remembered.forget()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
