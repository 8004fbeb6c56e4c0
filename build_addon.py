#!/usr/bin/env python3
"""Build the SHARP from Image extension zip(s) for Blender.

    python build_addon.py                      # one zip without wheels (torch installed separately)
    python build_addon.py --with-wheels        # one zip per Python ABI x platform from ./wheels

Standard library only. The zips are made and validated by Blender's own extension tool
(``blender_ext.py``) taken from an installed ``bpy`` module, so no Blender binary is needed and
none of Blender's code is copied here. Per-target manifests are written into a staged copy of
the sources only; the checked-in ``blender_manifest.toml`` is never edited.

Blender installs every extension's wheels into one shared site-packages and, in 4.2.0, does not
filter wheels by Python version, so each zip carries the wheels of exactly one Python ABI:
cp311 for Blender 4.2-5.0 and cp313 for Blender 5.1 and later.
"""

from __future__ import annotations

import argparse
import glob
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = ROOT / "sharp_addon"
MANIFEST = ROOT / "blender_manifest.toml"


@dataclass(frozen=True)
class Target:
    """One zip: a Python ABI (and the Blender versions that bundle it) on one platform."""

    python_tag: str  # "cp311"
    blender_min: str  # inclusive
    blender_max: str | None  # exclusive
    platform: str  # Blender's platform name, e.g. "linux-x64"

    @property
    def label(self) -> str:
        return f"{self.python_tag}-{self.platform.replace('-', '_')}"


PYTHON_ABIS = {"cp311": ("4.2.0", "5.1.0"), "cp313": ("5.1.0", None)}
WHEEL_NAME = re.compile(r"(?P<dist>[^-]+)-(?P<ver>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl")
PLATFORMS = ("linux-x64", "windows-x64", "macos-arm64")


def wheel_platform(tag: str) -> str | None:
    """Blender's platform name for a wheel platform tag (None: not one we ship)."""
    if tag.endswith("_x86_64") and (tag.startswith("manylinux") or tag.startswith("linux")):
        return "linux-x64"
    if tag == "win_amd64":
        return "windows-x64"
    if tag.startswith("macosx_") and (tag.endswith("_arm64") or tag.endswith("_universal2")):
        return "macos-arm64"
    return None


def find_blender_ext() -> Path:
    """blender_ext.py from a bpy module installed here or in one of the project's environments."""
    patterns = []
    try:
        import importlib.util

        spec = importlib.util.find_spec("bpy")
        if spec and spec.origin:
            patterns.append(str(Path(spec.origin).parent / "*" / "scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    except (ImportError, ValueError):
        pass
    patterns.append(str(ROOT / ".venv/*/lib/python*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[-1])
    raise SystemExit("build_addon: no installed bpy module found (needed for Blender's blender_ext.py); "
                     "run 'python3 tools/dev.py setup' first")


def valid_tags_file(blender_ext: Path) -> Path:
    """Blender's list of extension tags, next to the blender_ext.py it belongs to."""
    return blender_ext.parents[3] / "modules/_bpy_internal/extensions/tags.py"


def wheel_matches(name: str, target: Target) -> bool:
    """Does a wheel file name (PEP 427, compressed tags allowed) run on this target?"""
    m = WHEEL_NAME.fullmatch(name)
    if not m:
        return False
    pythons, abis, platforms = (m[k].split(".") for k in ("py", "abi", "plat"))
    python_ok = target.python_tag in pythons or any(p.startswith("py3") for p in pythons) or "abi3" in abis
    abi_ok = target.python_tag in abis or "abi3" in abis or "none" in abis
    platform_ok = "any" in platforms or any(wheel_platform(t) == target.platform for t in platforms)
    return python_ok and abi_ok and platform_ok


def collect_wheels(wheels_dir: Path, target: Target) -> list[Path]:
    """The wheels in ``wheels_dir`` for this target; numpy is never vendored (Blender's own is shared)."""
    return sorted(
        p for p in wheels_dir.glob("*.whl") if wheel_matches(p.name, target) and not p.name.startswith("numpy-")
    )


def manifest_text(wheels: list[Path], target: Target | None) -> str:
    """The checked-in manifest plus this target's wheels, platform and Blender range."""
    text = MANIFEST.read_text(encoding="utf-8")
    tomllib.loads(text)  # fail early on a broken manifest
    extra = []
    if target is not None:
        text = re.sub(r'(?m)^blender_version_min = ".*"$', f'blender_version_min = "{target.blender_min}"', text)
        if target.blender_max:
            extra.append(f'blender_version_max = "{target.blender_max}"')
        extra.append(f'platforms = ["{target.platform}"]')
    if wheels:
        extra.append("wheels = [\n" + "".join(f'  "./wheels/{w.name}",\n' for w in wheels) + "]")
    if not extra:
        return text
    head, sep, tail = text.partition("\n[")  # top-level keys must precede the first table
    return head.rstrip("\n") + "\n\n" + "\n".join(extra) + "\n" + sep + tail


def stage_tree(stage: Path, wheels: list[Path], target: Target | None) -> None:
    """The extension's root as Blender wants it: the package's files, the manifest, ./wheels."""
    shutil.copytree(PACKAGE_DIR, stage, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (stage / "blender_manifest.toml").write_text(manifest_text(wheels, target), encoding="utf-8")
    if wheels:
        (stage / "wheels").mkdir()
        for w in wheels:
            shutil.copy2(w, stage / "wheels" / w.name)


def build_zip(stage: Path, output: Path, blender_ext: Path) -> Path:
    """Validate and zip the staged tree with Blender's extension tool."""
    output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(blender_ext), "build", "--source-dir", str(stage), "--output-filepath", str(output),
           "--valid-tags", str(valid_tags_file(blender_ext))]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not output.is_file():
        raise SystemExit(f"build_addon: Blender's extension build failed:\n{result.stdout}{result.stderr}")
    return output


def targets(platforms: list[str]) -> list[Target]:
    return [Target(abi, lo, hi, plat) for abi, (lo, hi) in PYTHON_ABIS.items() for plat in platforms]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    parser.add_argument("--wheels-dir", type=Path, default=ROOT / "wheels")
    parser.add_argument("--with-wheels", action="store_true",
                        help="one zip per Python ABI x platform with the matching wheels of --wheels-dir")
    parser.add_argument("--platform", action="append", choices=PLATFORMS,
                        help="with --with-wheels: only these platforms (default: all)")
    args = parser.parse_args(argv)

    version = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["version"]
    blender_ext = find_blender_ext()
    builds: list[tuple[Target | None, list[Path], Path]] = []
    if not args.with_wheels:
        builds.append((None, [], args.output_dir / f"sharp_from_image-{version}.zip"))
    else:
        for target in targets(args.platform or list(PLATFORMS)):
            wheels = collect_wheels(args.wheels_dir, target)
            if not wheels:
                print(f"skip {target.label}: no wheels for it in {args.wheels_dir}")
                continue
            builds.append((target, wheels, args.output_dir / f"sharp_from_image-{version}-{target.label}.zip"))
        if not builds:
            raise SystemExit(f"build_addon: no wheels in {args.wheels_dir} match any target")
    for target, wheels, output in builds:
        with tempfile.TemporaryDirectory(prefix="sharp-build-") as tmp:
            stage = Path(tmp) / "sharp_from_image"
            stage_tree(stage, wheels, target)
            build_zip(stage, output, blender_ext)
        print(f"built {output} ({output.stat().st_size / 1e6:.1f} MB, {len(wheels)} wheels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
