"""The Blender side of ``tests/blender/test_bad_inputs_operators.py``: one Blender process, one or more cases.

Run as ``python -m tests.support.operator_driver SPEC.json`` by the interpreter that has ``bpy``: it
starts Blender with the spec's empty user folder and factory settings, installs the working tree as
an extension the way ``tests/conftest.py`` does and, for each case, loads the factory startup file,
prepares the scene, records ``bpy.data`` and the scene's settings, calls ONE operator (catching the
``RuntimeError`` with which ``bpy.ops`` reports an operator's error in background mode), records
again and prints one line: ``MARK`` and JSON. The case's own output goes to its two files. At the end
it disables the add-on, as Blender's tests must before exit.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from tests.support.builders import random_gaussians
from tests.support.corpus_runs import captured

MARK = "SHARP-CASE-RESULT "


def fail(e: BaseException) -> None:
    raise e


def enable_addon(spec: dict) -> str:
    """Blender with factory settings and the working tree installed and enabled as an extension."""
    import bpy

    # isort: split
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    root = Path(spec["root"])
    repo = next(r for r in bpy.context.preferences.extensions.repos if r.module == "user_default")
    target = Path(repo.directory) / spec["addon_id"]
    target.mkdir(parents=True)
    for item in (root / "sharp_addon").iterdir():
        if item.name != "__pycache__":
            (target / item.name).symlink_to(item)
    (target / "blender_manifest.toml").symlink_to(root / "blender_manifest.toml")
    addon = "bl_ext.user_default." + spec["addon_id"]
    addon_utils.enable(addon, default_set=True, handle_error=fail)
    return addon


def set_attribute(obj, name, edit):
    attribute = obj.data.attributes[name]
    width = {"FLOAT_VECTOR": 3, "QUATERNION": 4}[attribute.data_type]
    key = "vector" if attribute.data_type == "FLOAT_VECTOR" else "value"
    values = np.empty(len(attribute.data) * width, np.float32)
    attribute.data.foreach_get(key, values)
    values = values.reshape(-1, width)
    edit(values)
    attribute.data.foreach_set(key, values.reshape(-1))
    obj.data.update_tag()


def delete_all_points(obj):
    import bpy

    if isinstance(obj.data, bpy.types.PointCloud):
        obj.data.resize(0)
    else:
        import bmesh

        bm = bmesh.new()
        bm.from_mesh(obj.data)
        bmesh.ops.delete(bm, geom=list(bm.verts), context="VERTS")
        bm.to_mesh(obj.data)
        bm.free()
    obj.data.update_tag()


def make_active(obj):
    import bpy

    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)


def prepare(kind: str, scene_module) -> None:
    """The scene a case starts from (see the test's Case.scene)."""
    import bpy

    if kind == "":
        return
    if kind == "mesh":
        mesh = bpy.data.meshes.new("Plain")
        mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
        make_active(bpy.data.objects.new("Plain", mesh))
        return
    obj = scene_module.gaussians_to_object(random_gaussians(20, photo=kind != "splat-without-photo"), "Splats").splats
    if kind == "splat-nan-positions":
        set_attribute(obj, "position", lambda v: v.__setitem__((slice(0, 3), 0), np.nan))
    elif kind == "splat-negative-scales":
        set_attribute(obj, "scale", lambda v: v.__setitem__((slice(0, 2), 1), -0.01))
    elif kind == "splat-zero-rotations":
        set_attribute(obj, "rotation", lambda v: v.__setitem__(slice(None), 0.0))
    elif kind == "splat-all-points-deleted":
        delete_all_points(obj)
    elif kind == "splat-nan-colours":
        colours = np.full(len(obj.data.attributes["sharp_color"].data) * 4, 0.5, np.float32)
        colours[:8] = np.nan
        obj.data.attributes["sharp_color"].data.foreach_set("color", colours)
    elif kind == "splat-without-rotation":
        obj.data.attributes.remove(obj.data.attributes["rotation"])
    elif kind == "splat-scale-of-the-wrong-type":  # a user re-made it as one float per point
        obj.data.attributes.remove(obj.data.attributes["scale"])
        obj.data.attributes.new("scale", "FLOAT", "POINT")
    elif kind == "splat-focal-length-as-text":  # custom properties can be edited to anything in the UI
        obj.data["sharp_focal_px"] = "abc"
    elif kind == "splat-image-size-one-number":
        obj.data["sharp_image_size"] = [640]
    elif kind == "splat-image-size-as-text":
        obj.data["sharp_image_size"] = "640x480"
    elif kind == "camera-active":
        bpy.context.view_layer.objects.active = bpy.data.objects["Splats Camera"]
    elif kind == "nothing-active":
        bpy.context.view_layer.objects.active = None
    else:
        assert kind in ("splat", "splat-without-photo"), kind


KINDS = ("objects", "meshes", "pointclouds", "cameras", "materials", "node_groups", "images", "collections",
         "scenes", "worlds")


def record() -> dict:
    """bpy.data's names by kind and the scene settings an operator must not change when it fails."""
    import bpy

    data = {k: sorted(d.name for d in getattr(bpy.data, k)) for k in KINDS}
    scene = bpy.context.scene
    render = scene.render
    cycles = getattr(scene, "cycles", None)
    active = bpy.context.view_layer.objects.active
    data["scene"] = {
        "camera": scene.camera.name if scene.camera else None,
        "resolution": [render.resolution_x, render.resolution_y, render.resolution_percentage],
        "view_transform": scene.view_settings.view_transform,
        "transparent_bounces": None if cycles is None else [cycles.transparent_max_bounces,
                                                            cycles.min_transparent_bounces],
        "active": active.name if active else None,
        "selected": sorted(o.name for o in bpy.context.view_layer.objects.selected),
    }
    return data


def temporary_files() -> set[str]:
    return {str(p) for p in Path(os.environ["TMPDIR"]).rglob("*")}


def run_case(case: dict, prefs, scene_module) -> dict:
    """One case from the factory startup file; what it gave, and the temporary files it left."""
    import bpy

    bpy.ops.wm.read_homefile(use_factory_startup=True, use_empty=True)
    defaults = {key: getattr(prefs, key) for key in case["prefs"]}
    for key, value in case["prefs"].items():
        setattr(prefs, key, value)
    temporary = temporary_files()
    with captured(case["stdout"], case["stderr"]):
        prepare(case["scene"], scene_module)
        before = record()
        try:
            result = sorted(getattr(bpy.ops.sharp, case["operator"])(**case["kwargs"]))
            message = ""
        except RuntimeError as e:  # bpy.ops: the operator reported an error, or its poll() refused
            result, message = ["RuntimeError"], str(e)
        after = record()
    for key, value in defaults.items():
        setattr(prefs, key, value)
    return {"name": case["name"], "result": result, "message": message, "before": before, "after": after,
            "left": sorted(temporary_files() - temporary)}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    os.environ["BLENDER_USER_RESOURCES"] = spec["user"]  # before bpy: a fresh, empty user folder
    sys.path.insert(0, spec["root"])
    import bpy  # first: it puts Blender's own modules (addon_utils) on the path

    # isort: split
    import addon_utils

    addon = enable_addon(spec)
    prefs = bpy.context.preferences.addons[addon].preferences
    scene_module = importlib.import_module(addon + ".blender.scene")
    for case in spec["cases"]:
        print(MARK + json.dumps(run_case(case, prefs, scene_module)), flush=True)
    addon_utils.disable(addon, default_set=True, handle_error=fail)


if __name__ == "__main__":
    main()
