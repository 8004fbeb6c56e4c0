"""What a Blender file holds, for tests that check that an operator added exactly its objects or nothing."""

from __future__ import annotations


def id_names(bpy) -> dict[str, set[str]]:
    """Every datablock the add-on could make, by kind."""
    kinds = ("objects", "meshes", "pointclouds", "cameras", "materials", "node_groups", "images")
    return {k: {d.name for d in getattr(bpy.data, k)} for k in kinds}


def process_gone(pid: int | None) -> bool:
    """Whether the process ``pid`` has ended (and been reaped): no child of a cancelled job lives on."""
    import os

    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process now holds the number
        return True
    return False
