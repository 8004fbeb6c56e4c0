"""The add-on itself: its package name, its preferences, and Blender's rule on going online.

A leaf of the Blender layer: it imports no other module of it, so every module may import it.
"""

from __future__ import annotations

from typing import Any

import bpy

ADDON_PACKAGE = __package__.rpartition(".")[0]  # the extension's package, e.g. bl_ext.user_default.sharp_from_image
ONLINE_SETTING = "Edit > Preferences > System > Network > Allow Online Access"


def get_preferences(context: Any = None) -> Any:
    """This add-on's preferences (registered under the extension's package name)."""
    preferences = (context or bpy.context).preferences
    assert preferences is not None, "Blender always has preferences"
    return preferences.addons[ADDON_PACKAGE].preferences


def preference(name: str, default: Any, context: Any = None) -> Any:
    """One preference's value, or ``default`` where the add-on is not enabled (a script that imported
    a module without registering the add-on)."""
    try:
        return getattr(get_preferences(context), name)
    except (KeyError, AttributeError):
        return default


def online_access() -> bool:
    """Blender's *Allow Online Access* (``--offline-mode`` / ``--online-mode`` applied)."""
    return bool(getattr(bpy.app, "online_access", True))


def offline_message(alternative: str = "", command_line: bool = False) -> str:
    """Why nothing was downloaded while online access is off, how to turn it on, and ``alternative``
    (another way to the same end). ``command_line``: for ``blender -c sharp``, which has no
    preferences window to point at."""
    if command_line:
        how = (f"Blender's online access is off, so nothing was downloaded: run Blender with --online-mode "
               f"(blender --online-mode -b -c sharp download ...), or turn on {ONLINE_SETTING}")
    elif getattr(bpy.app, "online_access_override", False):
        how = ("Online access is off, so nothing was downloaded: Blender was started with --offline-mode; start it "
               "without that option")
    else:
        how = f"Online access is off, so nothing was downloaded: turn on {ONLINE_SETTING}"
    return f"{how}; {alternative}" if alternative else how
