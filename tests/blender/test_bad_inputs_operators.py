"""Bad inputs through the operators, in real Blender, each case in a Blender process of its own.

The discipline of ``tests/core/test_bad_inputs.py`` and ``test_bad_checkpoints.py``, one layer up:
images, checkpoints, PLY files, output paths and objects go through ``sharp.from_image``,
``sharp.import_ply`` and ``sharp.export_ply`` as a user (or a script) calls them. Every case builds
its files in its own folder, then runs a driver with this test's interpreter (the ``bpy`` module)
under a time limit and an address-space limit. The driver starts Blender with its own empty user
folder and factory settings, installs the working tree as an extension the way ``tests/conftest.py``
does, prepares the scene (a splat object, a broken one, a plain mesh, ...), records ``bpy.data``
and the scene's settings, calls ONE operator, catches the ``RuntimeError`` with which ``bpy.ops``
reports an operator's error in background mode, records again, prints one JSON line, disables the
add-on and exits. Then:

- the driver exited 0 (Blender did not crash, nothing hung);
- a failure is ONE line naming the file or object and saying why, in the user's terms;
- no "Traceback" anywhere;
- ``bpy.data`` and the scene's settings are exactly as before, the case folder too (an existing
  target keeps its bytes, no temporary files), and no temporary file is left behind anywhere;
- a success adds exactly the datablocks (or the file) it should.

``from_image`` needs torch (it checks for torch before anything else): its cases skip where torch is
absent, and one case of its own checks there that it says PyTorch is missing and changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sharp_addon import ply
from tests.conftest import ADDON_ID, HAS_TORCH, ROOT
from tests.core.test_bad_inputs import (
    GOOD,
    HAS_FIFO,
    IS_ROOT,
    LONG,
    SPLAT_PROPERTIES,
    edit_header,
    encoded,
    fifo,
    folder,
    jpeg_with_sof_size,
    listing,
    metadata_ply,
    photo,
    ply_file,
    png_damaged_idat,
    put,
    read_only_folder,
    splat_rows,
    splats,
)

pytestmark = pytest.mark.blender

TIME_LIMIT_S = 120
MEMORY_LIMIT = 8 << 30  # bpy starts (and torch loads in the worker) well within this
MARK = "SHARP-CASE-RESULT "
SAMPLE = ROOT / "tests" / "data" / "sample_640x480.png"

DRIVER = r'''
import importlib, json, os, sys
from pathlib import Path

spec = json.loads(sys.argv[1])
os.environ["BLENDER_USER_RESOURCES"] = spec["user"]  # before bpy: a fresh, empty user folder
sys.path.insert(0, spec["root"])

import bpy  # noqa: E402  (first: it puts Blender's own modules on the path)
import addon_utils  # noqa: E402

ROOT = Path(spec["root"])
ADDON = "bl_ext.user_default." + spec["addon_id"]


def fail(e):
    raise e


bpy.ops.wm.read_factory_settings(use_empty=True)
# install the working tree as an extension, as tests/conftest.py does
repo = next(r for r in bpy.context.preferences.extensions.repos if r.module == "user_default")
target = Path(repo.directory) / spec["addon_id"]
target.mkdir(parents=True)
for item in (ROOT / "sharp_addon").iterdir():
    if item.name != "__pycache__":
        (target / item.name).symlink_to(item)
(target / "blender_manifest.toml").symlink_to(ROOT / "blender_manifest.toml")
addon_utils.enable(ADDON, default_set=True, handle_error=fail)
prefs = bpy.context.preferences.addons[ADDON].preferences
for key, value in spec["prefs"].items():
    setattr(prefs, key, value)

import numpy as np  # noqa: E402

from tests.helpers import random_gaussians  # noqa: E402

scene_module = importlib.import_module(ADDON + ".blender.scene")


def splat_object(photo=True):
    return scene_module.gaussians_to_object(random_gaussians(20, photo=photo), "Splats").splats


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
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)


def prepare(kind):
    if kind == "":
        return
    if kind == "mesh":
        mesh = bpy.data.meshes.new("Plain")
        mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
        make_active(bpy.data.objects.new("Plain", mesh))
        return
    obj = splat_object(photo=kind != "splat-without-photo")
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


def record():
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


prepare(spec["scene"])
before = record()
try:
    result = sorted(getattr(bpy.ops.sharp, spec["operator"])(**spec["kwargs"]))
    message = ""
except RuntimeError as e:  # bpy.ops: the operator reported an error, or its poll() refused
    result, message = ["RuntimeError"], str(e)
after = record()
print("@MARK@" + json.dumps({"result": result, "message": message, "before": before, "after": after}), flush=True)
addon_utils.disable(ADDON, default_set=True, handle_error=fail)
'''.replace("@MARK@", MARK)


@dataclass(frozen=True)
class Case:
    operator: str  # from_image, import_ply or export_ply
    make: Callable[[Path, Path | None], dict]  # (case folder, the tiny checkpoint or None) -> the operator's keywords
    scene: str = ""  # what the driver prepares: "splat", "mesh", "splat-nan-positions", ... (see DRIVER)
    ok: bool = False  # the operator must succeed
    names: str = ""  # what the message must name: a path relative to the case folder, or (obj:) an object
    says: tuple[str, ...] = ()  # what the message must contain
    writes: tuple[str, ...] = ()  # files a success creates (relative to the case folder)
    adds: dict[str, set[str]] = field(default_factory=dict)  # datablocks a success adds, by kind
    prefs: Callable[[Path, Path | None], dict] | None = None  # add-on preferences to set
    torch: bool | None = None  # True: needs torch; False: runs only where torch is absent
    xfail: str = ""
    skip: str = ""


CASES: dict[str, Case] = {}


def tiny_prefs(d: Path, checkpoint: Path | None) -> dict:
    return {"checkpoint_path": str(checkpoint)}


def image_case(name: str, make: Callable[[Path], str], **kw) -> None:
    """from_image of a bad photo, with the good tiny checkpoint in the preferences."""
    CASES[f"from-image-{name}"] = Case("from_image", lambda d, c: {"filepath": make(d), "device": "CPU"},
                                       prefs=tiny_prefs, torch=True, **kw)


def checkpoint_case(name: str, make: Callable[[Path, Path], str], **kw) -> None:
    """from_image of a good photo, with a bad checkpoint in the preferences."""
    CASES[f"from-image-checkpoint-{name}"] = Case(
        "from_image", lambda d, c: {"filepath": put(d, "photo.png", encoded("PNG")), "device": "CPU"},
        prefs=lambda d, c: {"checkpoint_path": make(d, c)}, torch=True, **kw)


def import_case(name: str, make: Callable[[Path], str], **kw) -> None:
    CASES[f"import-{name}"] = Case("import_ply", lambda d, c: {"filepath": make(d)}, **kw)


def export_case(name: str, make: Callable[[Path], str], scene: str = "splat", layout: str = "SHARP", **kw) -> None:
    CASES[f"export-{name}"] = Case("export_ply", lambda d, c: {"filepath": make(d), "layout": layout}, scene=scene,
                                   **kw)


# ---- from_image: photos ------------------------------------------------------------------------------------

image_case("missing", lambda d: str(d / "none.jpg"), names="none.jpg", says=("no such file",))
image_case("folder", lambda d: folder(d, "photos.jpg"), names="photos.jpg", says=("is a folder, not an image file",))
image_case("png-damaged-idat", lambda d: put(d, "a.png", png_damaged_idat(b"\x00\x00\x00\x05")), names="a.png",
           says=("cannot be read as an image",))
image_case("jpeg-truncated", lambda d: put(d, "a.jpg", (lambda j: j[: len(j) // 2])(encoded("JPEG"))),
           names="a.jpg", says=("image file is truncated",))
image_case("jpeg-declares-65535x65535", lambda d: put(d, "a.jpg", jpeg_with_sof_size(65535, 65535)),
           names="a.jpg", says=("exceeds limit",))
image_case("1x1-pixels", lambda d: put(d, "a.png", encoded("PNG", photo(size=(1, 1)))), names="a.png",
           says=("is 1 x 1 pixels; at least 2 x 2 are needed",))
image_case("text-named-jpg", lambda d: put(d, "a.jpg", b"hello\n"), names="a.jpg",
           says=("cannot be read as an image",))
image_case("empty-file", lambda d: put(d, "a.png", b""), names="a.png", says=("not an image format",))
image_case("named-pipe", lambda d: fifo(d, "a.png"), names="a.png", says=("is a named pipe, not an image file",),
           skip="" if HAS_FIFO else "no named pipes here")
image_case("no-file-chosen", lambda d: "", says=("No image chosen",))

# ---- from_image: checkpoints (the photo is good) -----------------------------------------------------------

checkpoint_case("missing", lambda d, c: str(d / "sharp.pt"), names="sharp.pt", says=("Checkpoint not found",))
checkpoint_case("folder", lambda d, c: folder(d, "weights.pt"), names="weights.pt",
                says=("Checkpoint is not a file",))
checkpoint_case("truncated-half", lambda d, c: put(d, "sharp.pt", (lambda b: b[: len(b) // 2])(c.read_bytes())),
                names="sharp.pt", says=("not a readable PyTorch checkpoint, or truncated",))
checkpoint_case("pickle-with-objects", lambda d, c: pickled_objects(d, c), names="sharp.pt",
                says=("is not a plain weights file", "argparse.Namespace", "not loaded, for safety"))
checkpoint_case("wrong-keys", lambda d, c: torch_saved(d, "wrong-keys", c), names="sharp.pt",
                says=("not a SHARP checkpoint",))
CASES["from-image-checkpoint-property-truncated"] = Case(  # the operator's own Checkpoint, not the preferences'
    "from_image", lambda d, c: {"filepath": put(d, "photo.png", encoded("PNG")), "device": "CPU",
                                "checkpoint": put(d, "sharp.pt", c.read_bytes()[:100])},
    prefs=tiny_prefs, torch=True, names="sharp.pt", says=("not a readable PyTorch checkpoint, or truncated",))
checkpoint_case("nan-tensor", lambda d, c: torch_saved(d, "nan", c), names="sharp.pt",
                says=("tensors hold NaN or Inf values",))

# ---- from_image without torch -------------------------------------------------------------------------------

CASES["from-image-without-torch"] = Case(
    "from_image", lambda d, c: {"filepath": put(d, "photo.png", encoded("PNG")), "device": "CPU"},
    prefs=lambda d, c: {"checkpoint_path": put(d, "sharp.pt", b"not looked at")}, torch=False,
    says=("PyTorch is not installed",))

# ---- import_ply -------------------------------------------------------------------------------------------

import_case("truncated", lambda d: put(d, "a.ply", splats()[:-5]), names="a.ply", says=("truncated",))
import_case("property-twice", lambda d: put(d, "a.ply", ply_file([*GOOD, "property float x"], splat_rows(2)
                                                                 + bytes(8))),
            names="a.ply", says=("declares property 'x' twice in element 'vertex'",))
import_case("nan-positions", lambda d: put(d, "a.ply", ply_file(GOOD, splat_rows(2, x=float("nan")))),
            names="a.ply", says=("NaN",))
import_case("not-a-ply", lambda d: put(d, "a.ply", b"solid cube\nendsolid cube\n"), names="a.ply",
            says=("not a PLY file",))
import_case("empty-file", lambda d: put(d, "a.ply", b""), names="a.ply", says=("not a PLY file",))
import_case("folder", lambda d: folder(d, "scene.ply"), names="scene.ply", says=("is a folder, not a file",))
import_case("named-pipe", lambda d: fifo(d, "a.ply"), names="a.ply", says=("is a named pipe, not a file",),
            skip="" if HAS_FIFO else "no named pipes here")
import_case("missing", lambda d: str(d / "none.ply"), names="none.ply", says=("no such file",))
import_case("under-a-file", lambda d: put(d, "a.ply", splats()) + "/b.ply", names="a.ply/b.ply",
            says=("is a file, not a folder",))
import_case("count-beyond-the-file", lambda d: put(d, "a.ply", ply_file(
    ["element vertex 1000000000000000", *SPLAT_PROPERTIES], splat_rows(2))), names="a.ply", says=("is truncated",))
import_case("count-beyond-memory", lambda d: put(d, "a.ply", ply_file(
    ["element vertex 200000000", *SPLAT_PROPERTIES], splat_rows(2))), names="a.ply", says=("is truncated",))
import_case("version-2", lambda d: put(d, "a.ply", edit_header(splats(), b"1.0", b"2.0")), names="a.ply",
            says=("only version 1.0 exists",))
import_case("no-splats", lambda d: put(d, "empty_scene.ply", ply_file(["element vertex 0", *SPLAT_PROPERTIES], b"")),
            names="empty_scene.ply", says=("has 0 vertices",))
import_case("photo-too-large-for-a-camera", lambda d: put(d, "huge.ply", metadata_ply(500, (4294967295, 1))),
            names="obj:huge", says=("larger than Blender can render", "turn off Camera"))
import_case("good", lambda d: put(d, "good.ply", splats()), ok=True,
            adds={"objects": {"good", "good Photo", "good Camera"}, "cameras": {"good Camera"},
                  "node_groups": {"SHARP Splats"}, "materials": {"SHARP Splat", "SHARP Splat Points"}})

# ---- export_ply: where to ---------------------------------------------------------------------------------

export_case("to-a-folder", lambda d: folder(d, "out.ply"), names="out.ply", says=("is a folder",))
export_case("under-a-file", lambda d: put(d, "notes.txt", b"x") + "/out.ply", names="notes.txt/out.ply",
            says=("notes.txt' is a file, not a folder",))
export_case("into-missing-folder", lambda d: str(d / "no" / "out.ply"), names="no/out.ply", says=("does not exist",))
export_case("empty-file-name", lambda d: "", names="obj:Splats", says=("no file name given to export to",))
export_case("into-read-only-folder", lambda d: read_only_folder(d, "ro") + "/out.ply", names="ro/out.ply",
            says=("no permission to write in folder",), skip="root writes anywhere" if IS_ROOT else "")
export_case("to-a-named-pipe", lambda d: fifo(d, "out.ply"), names="out.ply", says=("is a named pipe, not a file",),
            skip="" if HAS_FIFO else "no named pipes here")
export_case("name-too-long", lambda d: str(d / ("p" * 300 + ".ply")), names="p" * 300, says=("File name too long",))
export_case("sharp-layout-without-photo-keeps-existing", lambda d: put(d, "keep.ply", b"precious"),
            scene="splat-without-photo", names="obj:Splats", says=("has no photo camera", "3DGS layout"))
export_case("250-character-name", lambda d: str(d / (LONG + ".ply")), ok=True, writes=(LONG + ".ply",))

# ---- export_ply: what from ----------------------------------------------------------------------------------

for scene, says in [("splat-nan-positions", ("3 with a position that is not a number",)),
                    ("splat-negative-scales", ("2 with a negative scale",)),
                    ("splat-zero-rotations", ("20 with an all-zero rotation",)),
                    ("splat-all-points-deleted", ("has no splats (all were deleted)",))]:
    export_case(scene.removeprefix("splat-"), lambda d: str(d / "out.ply"), scene=scene, names="obj:Splats",
                says=says)
for scene, says in [
    ("splat-nan-colours", ("2 with a colour that is not a number",)),
    ("splat-scale-of-the-wrong-type", ("has a 'scale' attribute of type FLOAT", "undo the edit")),
    ("splat-focal-length-as-text", ("'sharp_focal_px' property", "a number")),
    ("splat-image-size-one-number", ("'sharp_image_size' property", "two whole numbers")),
    ("splat-image-size-as-text", ("'sharp_image_size' property of '640x480'", "two whole numbers")),
]:
    export_case(scene.removeprefix("splat-"), lambda d: str(d / "out.ply"), scene=scene, names="obj:Splats",
                says=says)
for scene in ("mesh", "camera-active", "nothing-active", "splat-without-rotation"):
    export_case(f"poll-{scene}", lambda d: str(d / "out.ply"), scene=scene,
                says=(".poll()", "not a Gaussian-splat object"))

# ---- from_image: the success ----------------------------------------------------------------------------------

CASES["from-image-good"] = Case(
    "from_image", lambda d, c: {"filepath": put(d, "photo.png", encoded("PNG")), "device": "CPU"}, prefs=tiny_prefs,
    torch=True, ok=True, adds={"objects": {"photo", "photo Photo", "photo Camera"}, "cameras": {"photo Camera"},
                               "node_groups": {"SHARP Splats"}, "materials": {"SHARP Splat", "SHARP Splat Points"}})


# ---- checkpoint builders (torch) --------------------------------------------------------------------------


def torch_saved(d: Path, kind: str, good: Path) -> str:
    """sharp.pt holding a state dict of the wrong keys ("wrong-keys"), or the good one with a NaN ("nan")."""
    import torch

    if kind == "nan":
        sd = dict(torch.load(good, map_location="cpu", weights_only=True))
        key = next(k for k, v in sd.items() if v.numel() > 1)
        sd[key] = sd[key].clone()
        sd[key].view(-1)[0] = float("nan")
    else:
        sd = {"encoder.weight": torch.zeros(3, 3), "decoder.bias": torch.zeros(3)}
    torch.save(sd, d / "sharp.pt")
    return str(d / "sharp.pt")


def pickled_objects(d: Path, good: Path) -> str:
    import argparse

    import torch

    torch.save({"state_dict": torch.load(good, map_location="cpu", weights_only=True),
                "args": argparse.Namespace(lr=1e-4)}, d / "sharp.pt")
    return str(d / "sharp.pt")


# ---- running a case ----------------------------------------------------------------------------------------


def run_driver(spec: dict, tmp: Path) -> subprocess.CompletedProcess[str]:
    def limits() -> None:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        except (ImportError, ValueError, OSError):  # no such limit here: the time limit still holds
            pass

    env = {k: v for k, v in os.environ.items() if k not in ("SHARP_CHECKPOINT", "PYTHONWARNINGS", "PYTHONPATH")}
    env |= {"TMPDIR": str(tmp), "TORCH_HOME": str(tmp / "torch-home"), "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", DRIVER, json.dumps(spec)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=TIME_LIMIT_S, preexec_fn=limits if os.name == "posix" else None)


def params() -> list:
    out = []
    for name, case in CASES.items():
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        if case.torch:
            marks.append(pytest.mark.torch)
        out.append(pytest.param(name, id=name, marks=marks))
    return out


@pytest.fixture
def checkpoint(request) -> Path | None:
    return request.getfixturevalue("tiny_checkpoint") if HAS_TORCH else None


@pytest.mark.parametrize("name", params())
def test_operator(tmp_path, checkpoint, name):
    case = CASES[name]
    if case.skip:
        pytest.skip(case.skip)
    if case.torch is False and HAS_TORCH:
        pytest.skip("checks the message where PyTorch is absent; this environment has it")
    d, tmp, user = tmp_path / "case", tmp_path / "tmp", tmp_path / "user"
    for folder_ in (d, tmp, user):
        folder_.mkdir()
    try:
        kwargs = case.make(d, checkpoint)
        prefs = case.prefs(d, checkpoint) if case.prefs else {}
        spec = {"root": str(ROOT), "addon_id": ADDON_ID, "user": str(user), "scene": case.scene,
                "operator": case.operator, "kwargs": kwargs, "prefs": prefs}
        before = listing(d)
        done = run_driver(spec, tmp)
        after = listing(d)
    finally:
        for path in [d, *d.rglob("*")]:  # undo read-only folders for the cleanup
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output, output
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    assert len(lines) == 1, output
    got = json.loads(lines[0].removeprefix(MARK))
    leftovers = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))  # worker scratch, Blender's session folder
    assert leftovers == [], f"temporary files left behind: {leftovers}"
    changed = {k for k in after if before.get(k) != after[k]} | set(before) - set(after)

    if case.ok:
        assert got["result"] == ["FINISHED"], got["message"]
        assert changed == set(case.writes), changed
        for written in case.writes:
            assert len(ply.read_ply(d / written)) == 20
        made = {k: set(got["after"][k]) - set(got["before"][k]) for k in got["after"] if k != "scene"}
        gone = {k: set(got["before"][k]) - set(got["after"][k]) for k in got["after"] if k != "scene"}
        assert not any(gone.values()), gone
        data_kind = {"pointclouds", "meshes"} & {k for k, v in made.items() if v}
        expected = dict(case.adds)
        if expected:  # the splats' data is a point cloud (Blender 5.1+) or a mesh, named as the object
            assert len(data_kind) == 1, made
            expected[data_kind.pop()] = {n for n in case.adds["objects"] if " " not in n}
        assert {k: v for k, v in made.items() if v} == expected, made
        return

    assert got["result"] == ["RuntimeError"], got
    message = got["message"].strip()
    assert len(message.splitlines()) == 1, message
    if case.names.startswith("obj:"):
        assert f"'{case.names[4:]}'" in message, (case.names, message)
    elif case.names:
        assert str(d / case.names) in message, (str(d / case.names), message)
    for text in case.says:
        assert text in message, (text, message)
    assert got["after"] == got["before"], "the scene changed: " + ", ".join(
        k for k in got["after"] if got["after"][k] != got["before"].get(k))
    assert changed == set(), "the case folder changed: " + ", ".join(sorted(changed))


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert sum(c.ok for c in CASES.values()) >= 3
    assert {c.operator for c in CASES.values()} == {"from_image", "import_ply", "export_ply"}
