"""Bad inputs through the operators, in real Blender, as a user (or a script) calls them.

The discipline of ``tests/core/test_bad_inputs.py`` and ``test_bad_checkpoints.py``, one layer up:
images, checkpoints, PLY files, output paths and objects go through ``sharp.from_image``,
``sharp.import_ply`` and ``sharp.export_ply``. Every case builds its files in its own folder, then a
driver runs with this test's interpreter (the ``bpy`` module) under a time limit and an
address-space limit. The driver starts Blender with its own empty user folder and factory
settings, installs the working tree as an extension the way ``tests/conftest.py`` does and, for each
of its cases, loads the factory startup file, prepares the scene (a splat object, a broken one, a
plain mesh, ...), records ``bpy.data`` and the scene's settings, calls ONE operator, catches the
``RuntimeError`` with which ``bpy.ops`` reports an operator's error in background mode, records
again and prints one JSON line; then it disables the add-on and exits. Each ``from_image`` case
(native image decoders and a worker process in Blender's own process; a shared Blender would keep its
worker loaded), each named pipe (which can block) and each declared huge size gets a Blender of its
own; the other import and export cases share one Blender, each with its output captured on its own
(``tests/support/corpus_runs.captured``). Then:

- the driver exited 0 (Blender did not crash, nothing hung);
- a failure is ONE line naming the file or object and saying why, in the user's terms;
- no "Traceback" anywhere;
- ``bpy.data`` and the scene's settings are exactly as before, the case folder too (an existing
  target keeps its bytes, no temporary files), and no temporary file is left behind anywhere
  (in a shared Blender: none left by the case when it ends, and none when the process exits);
- a success adds exactly the datablocks (or the file) it should.

``from_image`` needs torch (it checks for torch before anything else): its cases skip where torch is
absent, and one case of its own checks there that it says PyTorch is missing and changes nothing.
"""

from __future__ import annotations

import argparse
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
from tests.support.bad_files import (
    GOOD,
    HAS_FIFO,
    IS_ROOT,
    LONG,
    SPLAT_PROPERTIES,
    edit_header,
    edited,
    encoded,
    fifo,
    folder,
    good_state_dict,
    jpeg_with_sof_size,
    metadata_ply,
    photo,
    ply_file,
    png_damaged_idat,
    put,
    read_only_folder,
    saved,
    splat_rows,
    splats,
    with_nan,
    writable_again,
)
from tests.support.corpus_runs import listing
from tests.support.operator_driver import MARK

pytestmark = [pytest.mark.blender, pytest.mark.corpus]

TIME_LIMIT_S = 120  # per Blender process of one case; a shared one gets more (see run_cases)
MEMORY_LIMIT = 8 << 30  # bpy starts (and torch loads in the worker) well within this
SAMPLE = ROOT / "tests" / "data" / "sample_640x480.png"



@dataclass(frozen=True)
class Case:
    operator: str  # from_image, import_ply or export_ply
    make: Callable[[Path, Path | None], dict]  # (case folder, the tiny checkpoint or None) -> the operator's keywords
    scene: str = ""  # what the driver prepares: "splat", "mesh", "splat-nan-positions", ... (operator_driver.prepare)
    ok: bool = False  # the operator must succeed
    names: str = ""  # what the message must name: a path relative to the case folder, or (obj:) an object
    says: tuple[str, ...] = ()  # what the message must contain
    writes: tuple[str, ...] = ()  # files a success creates (relative to the case folder)
    adds: dict[str, set[str]] = field(default_factory=dict)  # datablocks a success adds, by kind
    prefs: Callable[[Path, Path | None], dict] | None = None  # add-on preferences to set
    torch: bool | None = None  # True: needs torch; False: runs only where torch is absent
    xfail: str = ""
    skip: str = ""
    alone: str = ""  # why it needs a Blender of its own (it could crash, hang or change a shared one)


# why a case gets a Blender of its own
WORKER = "native image decoders and a worker process (a shared Blender would keep its worker loaded)"
PIPE = "opens a named pipe, which can block"
HUGE = "declares a size that a faulty reader would allocate"
CASES: dict[str, Case] = {}


def tiny_prefs(d: Path, checkpoint: Path | None) -> dict:
    return {"checkpoint_path": str(checkpoint)}


def image_case(name: str, make: Callable[[Path], str], **kw) -> None:
    """from_image of a bad photo, with the good tiny checkpoint in the preferences."""
    CASES[f"from-image-{name}"] = Case("from_image", lambda d, c: {"filepath": make(d), "device": "CPU"},
                                       prefs=tiny_prefs, torch=True, alone=WORKER, **kw)


def checkpoint_case(name: str, make: Callable[[Path, Path], str], **kw) -> None:
    """from_image of a good photo, with a bad checkpoint in the preferences."""
    CASES[f"from-image-checkpoint-{name}"] = Case(
        "from_image", lambda d, c: {"filepath": put(d, "photo.png", encoded("PNG")), "device": "CPU"},
        prefs=lambda d, c: {"checkpoint_path": make(d, c)}, torch=True, alone=WORKER, **kw)


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
checkpoint_case("pickle-with-objects", lambda d, c: saved(d, "sharp.pt", {
    "state_dict": good_state_dict(c), "args": argparse.Namespace(lr=1e-4)}), names="sharp.pt",
                says=("is not a plain weights file", "argparse.Namespace", "not loaded, for safety"))
checkpoint_case("wrong-keys", lambda d, c: saved(d, "sharp.pt", {
    "encoder.weight": __import__("torch").zeros(3, 3), "decoder.bias": __import__("torch").zeros(3)}), names="sharp.pt",
                says=("not a SHARP checkpoint",))
CASES["from-image-checkpoint-property-truncated"] = Case(  # the operator's own Checkpoint, not the preferences'
    "from_image", lambda d, c: {"filepath": put(d, "photo.png", encoded("PNG")), "device": "CPU",
                                "checkpoint": put(d, "sharp.pt", c.read_bytes()[:100])},
    prefs=tiny_prefs, torch=True, names="sharp.pt", says=("not a readable PyTorch checkpoint, or truncated",),
    alone=WORKER)
checkpoint_case("nan-tensor", lambda d, c: saved(d, "sharp.pt", edited(c, with_nan)), names="sharp.pt",
                says=("tensors hold NaN or Inf values",))

# ---- from_image without torch -------------------------------------------------------------------------------

CASES["from-image-without-torch"] = Case(
    "from_image", lambda d, c: {"filepath": put(d, "photo.png", encoded("PNG")), "device": "CPU"},
    prefs=lambda d, c: {"checkpoint_path": put(d, "sharp.pt", b"not looked at")}, torch=False,
    says=("PyTorch is not installed",), alone=WORKER)

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
            skip="" if HAS_FIFO else "no named pipes here", alone=PIPE)
import_case("missing", lambda d: str(d / "none.ply"), names="none.ply", says=("no such file",))
import_case("under-a-file", lambda d: put(d, "a.ply", splats()) + "/b.ply", names="a.ply/b.ply",
            says=("is a file, not a folder",))
import_case("count-beyond-the-file", lambda d: put(d, "a.ply", ply_file(
    ["element vertex 1000000000000000", *SPLAT_PROPERTIES], splat_rows(2))), names="a.ply", says=("is truncated",),
            alone=HUGE)
import_case("count-beyond-memory", lambda d: put(d, "a.ply", ply_file(
    ["element vertex 200000000", *SPLAT_PROPERTIES], splat_rows(2))), names="a.ply", says=("is truncated",),
            alone=HUGE)
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
            skip="" if HAS_FIFO else "no named pipes here", alone=PIPE)
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
                               "node_groups": {"SHARP Splats"}, "materials": {"SHARP Splat", "SHARP Splat Points"}},
    alone=WORKER)


# ---- running cases ---------------------------------------------------------------------------------------


@dataclass
class Ran:
    """A case's folder before and after, and what its Blender process said about it."""

    d: Path
    before: dict
    after: dict
    returncode: int  # the Blender process's
    output: str  # the process's own output and the case's
    got: dict | None  # the driver's JSON line for the case (None: the process died before it)
    leftovers: list[str]  # temporary files the case left, and those left when the process exited


def prepared(case: Case, d: Path, checkpoint: Path | None) -> dict:
    """The case's folder made, and what the driver needs to run it."""
    d.mkdir(parents=True)
    return {"scene": case.scene, "operator": case.operator, "kwargs": case.make(d, checkpoint),
            "prefs": case.prefs(d, checkpoint) if case.prefs else {}}


def run_driver(spec: dict, work: Path) -> tuple[int, str]:
    """One Blender process for the cases of ``spec``: its exit status and output (a timeout is its failure)."""
    def limits() -> None:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        except (ImportError, ValueError, OSError):  # no such limit here: the time limit still holds
            pass

    (work / "spec.json").write_text(json.dumps(spec))
    tmp = work / "tmp"
    env = {k: v for k, v in os.environ.items() if k not in ("SHARP_CHECKPOINT", "PYTHONWARNINGS", "PYTHONPATH")}
    env |= {"TMPDIR": str(tmp), "TORCH_HOME": str(tmp / "torch-home"), "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1"}
    limit = TIME_LIMIT_S * (1 + len(spec["cases"]) // 10)
    try:
        done = subprocess.run([sys.executable, "-m", "tests.support.operator_driver", str(work / "spec.json")],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit,
                              preexec_fn=limits if os.name == "posix" else None)
        return done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        return -9, f"killed after {limit} s; it said: {e.stdout!r} {e.stderr!r}"


def run_cases(specs: dict[str, dict], work: Path, shared: bool) -> dict[str, tuple[int, str, dict | None, list[str]]]:
    """Each case of ``specs`` (by name) in one Blender process; a case the process died in fails with what it
    said, and the cases after it run again in a new process. By name: (exit status, output, result, leftovers:
    the temporary files left when the process exited and, where it is ``shared``, those each case left)."""
    outcomes: dict[str, tuple[int, str, dict | None, list[str]]] = {}
    while pending := [name for name in specs if name not in outcomes]:
        folder = work / f"blender-{len(outcomes)}"
        for sub in ("tmp", "user", "output"):
            (folder / sub).mkdir(parents=True)
        cases = [{**specs[name], "name": name, "stdout": str(folder / "output" / f"{i}.out"),
                  "stderr": str(folder / "output" / f"{i}.err")} for i, name in enumerate(pending)]
        status, said = run_driver({"root": str(ROOT), "addon_id": ADDON_ID, "user": str(folder / "user"),
                                   "cases": cases}, folder)
        got = {g["name"]: g for g in (json.loads(line.removeprefix(MARK)) for line in said.splitlines()
                                      if line.startswith(MARK))}
        after_exit = sorted(str(p.relative_to(folder / "tmp")) for p in (folder / "tmp").rglob("*"))
        process_output = "\n".join(line for line in said.splitlines() if not line.startswith(MARK))
        survived = 0 if len(got) < len(cases) else status  # the cases before a death; all: its exit status
        for case in cases:
            name = case["name"]
            if name not in got:  # the process died running it: its failure; the cases after it run again
                outcomes[name] = (status or 1, f"the Blender process died running this case (exit status {status}):"
                                               f" {process_output}", None, after_exit)
                break
            own = "".join(Path(case[k]).read_text(errors="replace") for k in ("stdout", "stderr"))
            left = got[name]["left"] if shared else []
            outcomes[name] = (survived, process_output + own, got[name], left + after_exit)
    return outcomes


def selected_names(request: pytest.FixtureRequest) -> list[str]:
    """The cases of ``test_operator`` that this session runs (after -k and -m)."""
    return [item.callspec.params["name"] for item in request.session.items
            if getattr(item, "originalname", "") == "test_operator" and getattr(item, "module", None) is request.module]


def runnable(case: Case) -> bool:
    return not case.skip and not (case.torch is False and HAS_TORCH) and not (case.torch and not HAS_TORCH)


def finished(d: Path, before: dict, outcome: tuple[int, str, dict | None, list[str]]) -> Ran:
    try:
        after = listing(d)
    finally:
        writable_again(d)
    return Ran(d, before, after, *outcome)


@pytest.fixture(scope="module")
def shared_runs(request, tmp_path_factory) -> dict[str, Ran]:
    """Every selected case that nothing can crash or change for the next, run in one shared Blender."""
    names = [n for n in selected_names(request) if not CASES[n].alone and runnable(CASES[n])]
    root = tmp_path_factory.mktemp("operators")
    specs = {name: prepared(CASES[name], root / name / "case", None) for name in names}
    befores = {name: listing(root / name / "case") for name in names}
    outcomes = run_cases(specs, root / "processes", shared=True)
    return {name: finished(root / name / "case", befores[name], outcomes[name]) for name in names}


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
def test_operator(request, tmp_path, checkpoint, name):
    case = CASES[name]
    if case.skip:
        pytest.skip(case.skip)
    if case.torch is False and HAS_TORCH:
        pytest.skip("checks the message where PyTorch is absent; this environment has it")
    if case.alone:
        d = tmp_path / "case"
        spec = prepared(case, d, checkpoint)
        before = listing(d)
        ran = finished(d, before, run_cases({name: spec}, tmp_path / "process", shared=False)[name])
    else:
        ran = request.getfixturevalue("shared_runs")[name]
    d, got = ran.d, ran.got
    assert ran.returncode == 0, ran.output
    assert "Traceback" not in ran.output, ran.output
    assert got is not None, ran.output
    assert ran.leftovers == [], f"temporary files left behind: {ran.leftovers}"
    changed = {k for k in ran.after if ran.before.get(k) != ran.after[k]} | set(ran.before) - set(ran.after)

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


def test_what_could_crash_or_change_a_shared_blender_has_its_own():
    for name, case in CASES.items():
        if case.operator == "from_image":
            assert case.alone == WORKER, name
        elif "named-pipe" in name:
            assert case.alone == PIPE, name
    assert sum(not c.alone for c in CASES.values()) >= 25


def test_a_blender_that_dies_fails_the_case_it_was_running_and_the_cases_after_it_run_again(tmp_path):
    missing = {"scene": "", "operator": "import_ply", "kwargs": {"filepath": str(tmp_path / "none.ply")}, "prefs": {}}
    dies = {**missing, "kwargs": {"no_such_property": 1}}  # a TypeError out of bpy.ops: the driver dies
    got = run_cases({"before": missing, "dies": dies, "after": missing}, tmp_path / "work", shared=True)
    for name in ("before", "after"):
        status, output, result, leftovers = got[name]
        assert (status, result["result"], leftovers) == (0, ["RuntimeError"], []), output
    status, output, result, _ = got["dies"]
    assert status != 0 and result is None and "died running this case" in output and "no_such_property" in output
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["blender-0", "blender-2"]
