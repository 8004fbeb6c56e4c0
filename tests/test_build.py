"""build_addon.py: zips Blender accepts, manifests that say the truth, the right wheels per target.

The heavy tests drive the other Blender environments (.venv/blender-4.2, -5.0, -5.2) in
subprocesses, each with its own user folder, so they run once: in blender-5.0 (the environment
with torch). Tests that resolve or fetch over the network skip, saying why, where the index is
out of reach.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

import build_addon

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "sample_640x480.png"
VERSION = tomllib.loads((ROOT / "blender_manifest.toml").read_text())["version"]
pytestmark = pytest.mark.blender  # Blender's own extension tool comes with the bpy module

ONCE = pytest.mark.skipif(
    os.environ.get("SHARP_TEST_ENV", "blender-5.0") != "blender-5.0",
    reason="drives every Blender environment itself in subprocesses, so it runs once: in blender-5.0")


def env_python(name: str) -> Path:
    python = ROOT / ".venv" / name / "bin" / "python"
    if not python.exists():
        pytest.skip(f"the {name} environment is not set up (python3 tools/dev.py setup --env {name})")
    return python


def make_wheel(folder: Path, name: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal valid wheel file (metadata only) with the given PEP 427 name and Requires-Dist."""
    dist, version = name.split("-")[:2]
    info = f"{dist}-{version}.dist-info"
    path = folder / name
    metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as z:
        files = {f"{info}/METADATA": metadata, f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"}
        for arc, text in files.items():
            z.writestr(arc, text)
        record = "".join(f"{arc},sha256={hashlib.sha256(t.encode()).hexdigest()},{len(t)}\n"
                         for arc, t in files.items())
        z.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return path


def read_manifest(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as z:
        return tomllib.loads(z.read("blender_manifest.toml").decode())


def run_blender(python: Path, script: str, *args: str, user: Path, timeout: float = 600) -> str:
    """``script`` in a fresh bpy process of another environment, with its own Blender user folder."""
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(user))  # read before `import bpy`
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python), "-c", script, *args], env=env, cwd=user.parent, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{python}:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return done.stdout


# ---- manifest, targets, matching (fast) -----------------------------------------------------------


def test_manifest_follows_blender_rules():
    m = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    assert (m["id"], m["name"], m["type"]) == ("sharp_from_image", "SHARP from Image", "add-on")
    assert (m["blender_version_min"], m["blender_version_max"]) == ("4.2.0", "5.4.0")  # max exclusive: 5.3.x in
    assert len(m["tagline"]) <= 64 and m["tagline"][-1].isalnum()
    assert m["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(m["permissions"]) == {"files", "network"}
    for reason in m["permissions"].values():
        assert 0 < len(reason) <= 64 and reason[-1].isalnum()
    tags_file = build_addon.valid_tags_file(build_addon.find_blender_ext())
    valid = {}
    exec(tags_file.read_text(), valid)
    assert set(m["tags"]) <= valid["addons"]
    assert "wheels" not in m and "platforms" not in m  # written into the staged copies only


def test_six_targets_each_with_its_blender_range_tags_and_name():
    targets = {t.name: t for t in build_addon.targets(list(build_addon.PLATFORMS))}
    assert set(targets) == {f"{p}-py{v}" for p in ("linux-x64", "windows-x64", "macos-arm64") for v in (311, 313)}
    for name, t in targets.items():
        assert build_addon.target_named(name) == t
        text = build_addon.manifest_text([Path("w/x-1.0-py3-none-any.whl")], t)
        m = tomllib.loads(text)
        want = ("4.2.0", "5.1.0") if t.python_tag == "cp311" else ("5.1.0", "5.4.0")
        assert (m["blender_version_min"], m["blender_version_max"], m["platforms"]) == (*want, [t.platform])
        assert m["wheels"] == ["./wheels/x-1.0-py3-none-any.whl"]
        assert ("# macOS 14 or later" in text) == (t.platform == "macos-arm64")
    assert targets["linux-x64-py311"].pip_platforms()[0] == "manylinux_2_28_x86_64"
    assert "manylinux2014_x86_64" in targets["linux-x64-py311"].pip_platforms()  # pip expands only that one
    assert targets["macos-arm64-py313"].pip_platforms() == ["macosx_14_0_arm64"]
    assert targets["windows-x64-py313"].marker_environment()["sys_platform"] == "win32"
    sources = build_addon.Sources()
    assert sources.requirements(targets["linux-x64-py311"]) == ["torch==2.13.0+cpu", "pillow==12.3.0"]
    assert sources.requirements(targets["windows-x64-py313"]) == ["torch==2.13.0", "pillow==12.3.0"]
    assert sources.torch_index(targets["linux-x64-py313"]) == "https://download.pytorch.org/whl/cpu"
    assert sources.torch_index(targets["macos-arm64-py311"]) is None  # PyPI
    assert build_addon.Sources(torch_index_url="").torch_index(targets["linux-x64-py311"]) is None


def test_wheel_matching_by_abi_and_platform():
    linux311 = build_addon.Target("cp311", "4.2.0", "5.1.0", "linux-x64")
    mac313 = build_addon.Target("cp313", "5.1.0", "5.4.0", "macos-arm64")
    match = build_addon.wheel_matches
    assert match("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", linux311)
    assert not match("torch-2.13.0-cp313-cp313-manylinux_2_28_x86_64.whl", linux311)
    assert match("pillow-12.3.0-cp313-cp313-macosx_11_0_arm64.whl", mac313)
    assert not match("pillow-12.3.0-cp313-cp313-macosx_10_13_x86_64.whl", mac313)
    assert match("gsplat-1.5.3-py3-none-any.whl", linux311) and match("gsplat-1.5.3-py3-none-any.whl", mac313)
    assert match("x-1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", linux311)
    assert not match("not-a-wheel.whl", linux311)


def test_plain_build_contains_the_package_and_nothing_else(tmp_path):
    assert build_addon.main(["--no-wheels", "--output-dir", str(tmp_path)]) == 0
    (zip_path,) = tmp_path.glob("*.zip")
    assert zip_path.name == f"sharp_from_image-{VERSION}.zip"
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
    assert {"blender_manifest.toml", "__init__.py", "gaussians.py", "ply.py", "blender/__init__.py"} <= names
    assert not any("__pycache__" in n or n.startswith("tests/") or n.endswith(".zip") for n in names)
    m = read_manifest(zip_path)
    assert "wheels" not in m and "platforms" not in m
    assert (m["blender_version_min"], m["blender_version_max"]) == ("4.2.0", "5.4.0")


# ---- the whole pipeline on fake wheels (pip, markers, exclusions, cache; no network) --------------


@pytest.mark.slow
@ONCE  # build_addon's resolution runs in this Python whatever Blender sits beside it
def test_every_target_gets_its_own_wheels_numpy_never_and_a_rebuild_needs_no_network(tmp_path, monkeypatch,
                                                                                    capsys):
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # this machine's pip.conf (find-links, caps) stays out
    links = tmp_path / "links"
    links.mkdir()
    requires = ("numpy", "demo-dep", 'winonly; platform_system == "Windows"', 'newpy; python_version >= "3.13"')
    for tags in ("cp311-cp311-manylinux_2_28_x86_64", "cp311-cp311-win_amd64", "cp313-cp313-win_amd64",
                 "cp311-cp311-macosx_14_0_arm64", "cp313-cp313-macosx_14_0_arm64"):  # no Linux cp313 torch
        make_wheel(links, f"torch-1.0.0-{tags}.whl", requires)
    for name in ("pillow-1.0.0", "numpy-1.0.0", "demo_dep-1.0", "winonly-1.0", "newpy-1.0"):
        make_wheel(links, f"{name}-py3-none-any.whl")
    cache, out = tmp_path / "wheels", tmp_path / "dist"
    args = ["--all", "--no-index", "--find-links", str(links), "--torch-version", "1.0.0", "--pillow-version",
            "1.0.0", "--wheels-dir", str(cache), "--output-dir", str(out)]

    assert build_addon.main(args) == 1  # one target could not be built
    first = capsys.readouterr()
    zips = {p.name: p for p in out.glob("*.zip")}
    built = {"linux-x64-py311", "windows-x64-py311", "windows-x64-py313", "macos-arm64-py311", "macos-arm64-py313"}
    assert set(zips) == {f"sharp_from_image-{VERSION}-{t}.zip" for t in built}
    assert "NOT built:\n  linux-x64-py313: pip found no torch==1.0.0" in first.err
    assert "--find-links DIR" in first.err  # how to provide the missing wheel
    assert first.out.count("not vendored, Blender bundles them: numpy 1.0.0") == 5
    for name in built:
        target = build_addon.target_named(name)
        m = read_manifest(zips[f"sharp_from_image-{VERSION}-{name}.zip"])
        wheels = sorted(w.removeprefix("./wheels/") for w in m["wheels"])
        want = {f"torch-1.0.0-{target.python_tag}-{target.python_tag}-{target.pip_platforms()[0]}.whl",
                "pillow-1.0.0-py3-none-any.whl", "demo_dep-1.0-py3-none-any.whl"}
        if target.platform == "windows-x64":
            want.add("winonly-1.0-py3-none-any.whl")  # the target's markers, not this machine's
        if target.python_tag == "cp313":
            want.add("newpy-1.0-py3-none-any.whl")
        assert wheels == sorted(want), name
        assert (m["platforms"], m["blender_version_min"]) == ([target.platform], target.blender_min)
        with zipfile.ZipFile(zips[f"sharp_from_image-{VERSION}-{name}.zip"]) as z:
            assert {f"wheels/{w}" for w in wheels} <= set(z.namelist())
        lock = json.loads((cache / f"{name}.lock.json").read_text())
        assert [e["name"] for e in lock["torch==1.0.0 pillow==1.0.0"]["excluded"]] == ["numpy"]
    assert f"built {out / f'sharp_from_image-{VERSION}-linux-x64-py311.zip'} (" in first.out  # size follows

    shutil.rmtree(links)  # nothing left to resolve from: the rebuild must come from the cache
    assert build_addon.main(args) == 1
    second = capsys.readouterr()
    assert second.out.count("wheels from the cache") == 5
    assert [line.split(":")[0] for line in second.out.splitlines() if "resolving" in line] == ["linux-x64-py313"]
    assert {p.name for p in out.glob("*.zip")} == set(zips)


# ---- (1) the real resolution of every target: right tags, torch and Pillow, never numpy ----------


@pytest.mark.slow
@ONCE
@pytest.mark.parametrize("name", [t.name for t in build_addon.targets(list(build_addon.PLATFORMS))])
def test_the_real_wheel_set_of_each_target_has_its_tags_torch_and_pillow_and_no_numpy(name):
    """pip install --dry-run --report for the target's tags and markers: metadata only, nothing installed.

    Where the index serves no PEP 658 metadata (this machine's PyPI mirror), pip downloads the
    torch wheel itself to read it: about 111 MB (macOS) or 122 MB (Windows) per target."""
    target = build_addon.target_named(name)
    t0 = time.monotonic()
    try:
        resolution = build_addon.resolve(target, build_addon.Sources())
    except build_addon.BuildError as e:
        pytest.skip(f"this machine cannot resolve {name}: " + " / ".join(str(e).splitlines()[:2]))
    seconds = time.monotonic() - t0
    names = {build_addon.canonical(w.name): w for w in resolution.wheels}
    assert {"torch", "pillow"} <= set(names), names
    assert not set(names) & build_addon.BLENDER_BUNDLED and "numpy" not in names
    assert not any(n.startswith(("nvidia-", "cuda-", "triton")) for n in names), names  # CPU builds only
    for w in resolution.wheels:
        py, abi, plat = w.file[:-4].split("-")[-3:]
        assert abi in (target.python_tag, "none", "abi3") and (target.python_tag in py.split(".") or "py3" in py)
        assert plat == "any" or any(build_addon.wheel_platform(p) == target.platform for p in plat.split(".")), w
    assert resolution.environment["sys_platform"] == target.marker_environment()["sys_platform"]
    assert resolution.environment["python_version"] == target.python
    torch = names["torch"]
    assert torch.version == ("2.13.0+cpu" if target.platform == "linux-x64" else "2.13.0")
    if target.platform == "macos-arm64":
        assert torch.file.endswith("-macosx_14_0_arm64.whl")  # hence macOS 14+
    print(f"{name}: {len(names)} wheels resolved in {seconds:.1f} s")


# ---- (2) the zip for this machine runs SHARP in Blender from its own wheels -----------------------


INSTALL_SCRIPT = """
import os, sys, tomllib
import bpy
zip_path = sys.argv[-1]
bpy.ops.wm.read_factory_settings(use_empty=True)
result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
assert result == {"FINISHED"}, result
module = "bl_ext.user_default.sharp_from_image"
assert module in bpy.context.preferences.addons, "not enabled after install"
site = os.path.join(os.environ["BLENDER_USER_RESOURCES"], "extensions", ".local", "lib",
                    "python%d.%d" % sys.version_info[:2], "site-packages")
found = set(os.listdir(site))
assert {"torch", "PIL"} <= found, sorted(found)
assert not any(n == "numpy" or n.startswith("numpy-") for n in found), sorted(found)  # Blender's own is shared
import addon_utils
addon_utils.disable(module, default_set=True)
print("INSTALLED", bpy.app.version_string)
"""

RUN_SCRIPT = """
import importlib, os, sys
import bpy, addon_utils
checkpoint, image = sys.argv[-2:]
module = "bl_ext.user_default.sharp_from_image"
bpy.ops.wm.read_factory_settings(use_empty=True)
addon_utils.enable(module, default_set=True)
assert module in bpy.context.preferences.addons, "the installed extension does not enable"
site = os.path.realpath(os.path.join(os.environ["BLENDER_USER_RESOURCES"], "extensions", ".local", "lib",
                                     "python%d.%d" % sys.version_info[:2], "site-packages"))
prefs = bpy.context.preferences.addons[module].preferences
prefs.keep_loaded = True  # the worker stays up, so its loaded libraries can be read below
assert bpy.ops.sharp.from_image(filepath=image, checkpoint=checkpoint, device="CPU") == {"FINISHED"}
obj = bpy.context.active_object
count = len(obj.data.points) if obj.type == "POINTCLOUD" else len(obj.data.vertices)
assert (obj.name, count) == ("sample_640x480", 2 * 256 * 256), (obj.name, count)
camera = bpy.context.scene.camera
assert camera is not None and camera.name == "sample_640x480 Camera", camera
assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == (640, 480)
assert "torch" not in sys.modules  # the host never imports torch: the worker runs it
pid = importlib.import_module(module + ".blender.runner").worker().pid
libs = {line.split()[-1] for line in open("/proc/%d/maps" % pid) if "/libtorch" in line}
assert libs and all(p.startswith(site + os.sep) for p in libs), (site, libs)  # the zip's torch, no other
addon_utils.disable(module, default_set=True)
print("RAN", bpy.app.version_string, count, sorted(libs)[0])
"""


@pytest.fixture(scope="module")
def this_machines_zip(tmp_path_factory) -> Path:
    if (build_addon.this_platform(), sys.version_info[:2]) != ("linux-x64", (3, 11)):
        pytest.skip("builds the linux-x64 Python 3.11 zip and reads /proc: a Linux x86_64 Python 3.11 test")
    out = tmp_path_factory.mktemp("dist")
    # default sources and the project's wheel cache (wheels/): CPU torch from PyTorch's index or a
    # find-links folder (/opt/wheels here), Pillow and the rest from PyPI
    code = build_addon.main(["--platform", "linux-x64", "--python", "3.11", "--output-dir", str(out)])
    assert code == 0, "the zip for this machine could not be built (its wheels are out of reach?)"
    (zip_path,) = out.glob("*.zip")
    assert zip_path.name == f"sharp_from_image-{VERSION}-linux-x64-py311.zip"
    return zip_path


@pytest.mark.slow
@pytest.mark.torch  # for the checkpoint; the Blender processes take torch from the zip
@ONCE
@pytest.mark.parametrize("env", ["blender-4.2", "blender-5.0"])
def test_zip_with_wheels_installs_and_runs_sharp_from_its_own_torch(env, this_machines_zip, tiny_checkpoint,
                                                                    tmp_path):
    python = env_python(env)
    user = tmp_path / "user"
    names = [w.removeprefix("./wheels/") for w in read_manifest(this_machines_zip)["wheels"]]
    assert any(n.startswith("torch-2.13.0+cpu-cp311-") for n in names) and any(n.startswith("pillow-") for n in
                                                                                  names)
    assert "INSTALLED" in run_blender(python, INSTALL_SCRIPT, str(this_machines_zip), user=user)
    # a new session, as after a restart: on the session that installs the first wheels Blender
    # appends their site-packages after Python's own, where bpy 5.0's environment has its own torch
    assert "RAN" in run_blender(python, RUN_SCRIPT, str(tiny_checkpoint), str(SAMPLE), user=user)


RUN_313_SCRIPT = """
import os, sys
import bpy, addon_utils
checkpoint, image, inference_python = sys.argv[-3:]
module = "bl_ext.user_default.sharp_from_image"
bpy.ops.wm.read_factory_settings(use_empty=True)
addon_utils.enable(module, default_set=True)
assert module in bpy.context.preferences.addons, "the installed extension does not enable"
prefs = bpy.context.preferences.addons[module].preferences
prefs.inference_python = inference_python
assert bpy.ops.sharp.from_image(filepath=image, checkpoint=checkpoint, device="CPU") == {"FINISHED"}
obj = bpy.context.active_object
count = len(obj.data.points) if obj.type == "POINTCLOUD" else len(obj.data.vertices)
assert (obj.name, count) == ("sample_640x480", 2 * 256 * 256), (obj.name, count)
assert bpy.context.scene.camera.name == "sample_640x480 Camera"
assert "torch" not in sys.modules
installed = os.path.realpath(os.environ["BLENDER_USER_RESOURCES"])
assert os.path.realpath(sys.modules[module].__file__).startswith(installed)  # the zip's extension ran
addon_utils.disable(module, default_set=True)
print("RAN", bpy.app.version_string, count)
"""


@pytest.mark.slow
@pytest.mark.torch  # the Python for Inference (this environment's) has the CPU torch
@ONCE
@pytest.mark.parametrize("env", ["blender-5.2", "blender-5.3"])
def test_python_313_zip_installs_and_runs_sharp_through_python_for_inference(env, tiny_checkpoint, tmp_path):
    """No CPU torch wheel for Python 3.13 is reachable from this machine, so the cp313 zip is built with
    Pillow alone (``--no-torch``) and SHARP's worker runs in this test environment's Python 3.11 with
    CPU torch, set as *Python for Inference*: the extension is the installed zip's, torch the other
    Python's."""
    python = env_python(env)
    out = tmp_path / "dist"
    assert build_addon.main(["--platform", "linux-x64", "--python", "3.13", "--no-torch", "--output-dir",
                             str(out)]) == 0
    (zip_path,) = out.glob("*.zip")
    assert zip_path.name == f"sharp_from_image-{VERSION}-linux-x64-py313.zip"
    user = tmp_path / "user"
    install = INSTALL_SCRIPT.replace('assert {"torch", "PIL"} <= found', 'assert {"PIL"} <= found')
    assert "INSTALLED" in run_blender(python, install, str(zip_path), user=user)
    assert "RAN" in run_blender(python, RUN_313_SCRIPT, str(tiny_checkpoint), str(SAMPLE), sys.executable,
                                user=user)


# ---- (3) a studio repository: every Blender picks the zip for its platform and Python -------------


REPO_SCRIPT = """
import os, sys, tomllib
import bpy, addon_utils
url = sys.argv[-1]
bpy.ops.wm.read_factory_settings(use_empty=True)
prefs = bpy.context.preferences
prefs.system.use_online_access = True  # remote repositories need online access (the UI asks for it)
assert bpy.app.online_access
assert bpy.ops.preferences.extension_repo_add(name="Studio", remote_url=url, type="REMOTE") == {"FINISHED"}
index, repo = next((i, r) for i, r in enumerate(prefs.extensions.repos) if r.remote_url == url)
assert bpy.ops.extensions.repo_sync(repo_index=index) == {"FINISHED"}
assert bpy.ops.extensions.package_install(repo_index=index, pkg_id="sharp_from_image") == {"FINISHED"}
module = "bl_ext.%s.sharp_from_image" % repo.module
assert module in prefs.addons, "not enabled after install"
m = tomllib.load(open(os.path.join(repo.directory, "sharp_from_image", "blender_manifest.toml"), "rb"))
addon_utils.disable(module, default_set=True)
print("PICKED", m["platforms"][0], m["wheels"][0].rsplit("/", 1)[-1])
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def http_server(folder: Path):
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@ONCE
def test_repository_gives_each_blender_the_zip_for_its_platform_and_python(tmp_path):
    repo = tmp_path / "repo"
    args = ["--no-torch", "--platform", "linux-x64", "--platform", "windows-x64", "--python", "3.11", "--python",
            "3.13", "--repository", str(repo)]
    if build_addon.main(args) != 0:  # Pillow for four targets, from PyPI or the cache
        pytest.skip("Pillow wheels for linux-x64 and windows-x64 could not be fetched (no index in reach?)")
    index = json.loads((repo / "index.json").read_text())
    entries = {(e["platforms"][0], e["python_versions"][0]): e for e in index["data"]}
    assert set(entries) == {(p, v) for p in ("linux-x64", "windows-x64") for v in ("3.11", "3.13")}
    assert entries["linux-x64", "3.13"]["archive_url"] == f"./sharp_from_image-{VERSION}-linux-x64-py313.zip"
    assert (entries["linux-x64", "3.11"]["blender_version_min"], entries["linux-x64", "3.11"]["blender_version_max"]
            ) == ("4.2.0", "5.1.0")
    with http_server(repo) as url:
        # a web server for 4.2 and 5.2, a shared folder (file://) for 5.0
        for env, abi, index_url in (("blender-4.2", "cp311", f"{url}/index.json"),
                                    ("blender-5.2", "cp313", f"{url}/index.json"),
                                    ("blender-5.0", "cp311", (repo / "index.json").as_uri())):
            out = run_blender(env_python(env), REPO_SCRIPT, index_url, user=tmp_path / f"user-{env}")
            picked = out[out.index("PICKED"):].split()
            assert picked[1] == "linux-x64" and f"-{abi}-{abi}-manylinux" in picked[2], (env, picked)


# ---- the plain zip installs ----------------------------------------------------------------------


INSTALL_PLAIN_SCRIPT = """
import os, sys
import bpy, addon_utils
bpy.ops.wm.read_factory_settings(use_empty=True)
result = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
module = "bl_ext.user_default.sharp_from_image"
assert result == {"FINISHED"}, result
assert module in bpy.context.preferences.addons, "not enabled after install"
prefs = bpy.context.preferences.addons[module].preferences
assert prefs.device == "AUTO", prefs.device
addon_utils.disable(module, default_set=True)
assert module not in bpy.context.preferences.addons
print("INSTALLED-AND-REMOVED", bpy.app.version_string)
"""


def test_built_zip_installs_enables_and_disables_in_blender(tmp_path):
    assert build_addon.main(["--no-wheels", "--output-dir", str(tmp_path)]) == 0
    (zip_path,) = tmp_path.glob("*.zip")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    result = subprocess.run([sys.executable, "-c", INSTALL_PLAIN_SCRIPT, str(zip_path)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INSTALLED-AND-REMOVED" in result.stdout
    assert (tmp_path / "user" / "extensions" / "user_default" / "sharp_from_image" / "blender_manifest.toml").is_file()
