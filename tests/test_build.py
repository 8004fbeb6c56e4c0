"""build_addon.py: zips Blender accepts, manifests that say the truth, wheels per Python ABI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import build_addon

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.blender  # Blender's own extension tool comes with the bpy module


def make_wheel(folder: Path, name: str) -> Path:
    """A minimal valid wheel file (metadata only) with the given PEP 427 name."""
    dist, version = name.split("-")[:2]
    info = f"{dist}-{version}.dist-info"
    path = folder / name
    with zipfile.ZipFile(path, "w") as z:
        files = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
                 f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"}
        for arc, text in files.items():
            z.writestr(arc, text)
        record = "".join(f"{arc},sha256={hashlib.sha256(t.encode()).hexdigest()},{len(t)}\n"
                         for arc, t in files.items())
        z.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return path


def read_manifest(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as z:
        return tomllib.loads(z.read("blender_manifest.toml").decode())


def test_manifest_follows_blender_rules():
    m = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    assert (m["id"], m["name"], m["type"], m["blender_version_min"]) == (
        "sharp_from_image", "SHARP from Image", "add-on", "4.2.0")
    assert len(m["tagline"]) <= 64 and m["tagline"][-1].isalnum()
    assert m["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(m["permissions"]) == {"files", "network"}
    for reason in m["permissions"].values():
        assert 0 < len(reason) <= 64 and reason[-1].isalnum()
    tags_file = build_addon.valid_tags_file(build_addon.find_blender_ext())
    valid = {}
    exec(tags_file.read_text(), valid)
    assert set(m["tags"]) <= valid["addons"]
    assert "wheels" not in m  # written into the staged copy only


def test_plain_build_contains_the_package_and_nothing_else(tmp_path):
    assert build_addon.main(["--output-dir", str(tmp_path)]) == 0
    (zip_path,) = tmp_path.glob("*.zip")
    assert zip_path.name == "sharp_from_image-0.1.0.zip"
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
    assert {"blender_manifest.toml", "__init__.py", "gaussians.py", "ply.py", "blender/__init__.py"} <= names
    assert not any("__pycache__" in n or n.startswith("tests/") or n.endswith(".zip") for n in names)
    assert "wheels" not in read_manifest(zip_path)


def test_wheel_matching_by_abi_and_platform():
    linux311 = build_addon.Target("cp311", "4.2.0", "5.1.0", "linux-x64")
    mac313 = build_addon.Target("cp313", "5.1.0", None, "macos-arm64")
    match = build_addon.wheel_matches
    assert match("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", linux311)
    assert not match("torch-2.13.0-cp313-cp313-manylinux_2_28_x86_64.whl", linux311)
    assert match("pillow-12.3.0-cp313-cp313-macosx_11_0_arm64.whl", mac313)
    assert not match("pillow-12.3.0-cp313-cp313-macosx_10_13_x86_64.whl", mac313)
    assert match("gsplat-1.5.3-py3-none-any.whl", linux311) and match("gsplat-1.5.3-py3-none-any.whl", mac313)
    assert match("x-1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", linux311)
    assert not match("not-a-wheel.whl", linux311)


def test_wheel_builds_are_split_per_python_abi_and_platform(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in ("demo_native-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                 "demo_native-1.0-cp313-cp313-manylinux_2_28_x86_64.whl",
                 "demo_native-1.0-cp313-cp313-win_amd64.whl",
                 "demo_pure-1.0-py3-none-any.whl",
                 "numpy-1.26.4-cp311-cp311-manylinux_2_28_x86_64.whl"):
        make_wheel(wheels, name)
    out = tmp_path / "dist"
    assert build_addon.main(["--with-wheels", "--wheels-dir", str(wheels), "--output-dir", str(out)]) == 0
    zips = {p.name: p for p in out.glob("*.zip")}
    assert set(zips) == {f"sharp_from_image-0.1.0-{t}.zip" for t in (
        "cp311-linux_x64", "cp313-linux_x64", "cp313-windows_x64", "cp311-windows_x64",
        "cp311-macos_arm64", "cp313-macos_arm64")}  # the pure wheel makes every target buildable
    m = read_manifest(zips["sharp_from_image-0.1.0-cp311-linux_x64.zip"])
    assert m["wheels"] == ["./wheels/demo_native-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                           "./wheels/demo_pure-1.0-py3-none-any.whl"]  # never numpy: Blender's is shared
    assert (m["blender_version_min"], m["blender_version_max"], m["platforms"]) == ("4.2.0", "5.1.0", ["linux-x64"])
    m = read_manifest(zips["sharp_from_image-0.1.0-cp313-windows_x64.zip"])
    assert (m["blender_version_min"], "blender_version_max" in m, m["platforms"]) == ("5.1.0", False, ["windows-x64"])
    for zip_path in zips.values():
        with zipfile.ZipFile(zip_path) as z:
            names = set(z.namelist())
        assert {w[2:] for w in read_manifest(zip_path)["wheels"]} <= names


INSTALL_SCRIPT = """
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
    assert build_addon.main(["--output-dir", str(tmp_path)]) == 0
    (zip_path,) = tmp_path.glob("*.zip")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    result = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(zip_path)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INSTALLED-AND-REMOVED" in result.stdout
    assert (tmp_path / "user" / "extensions" / "user_default" / "sharp_from_image" / "blender_manifest.toml").is_file()
