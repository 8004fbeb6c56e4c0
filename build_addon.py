#!/usr/bin/env python3
"""Build the SHARP from Image extension zips for Blender, with CPU PyTorch and Pillow inside.

    python build_addon.py                                  # this machine's platform and Python
    python build_addon.py --platform windows-x64 --python 3.13
    python build_addon.py --all                            # 3 platforms x 2 Python ABIs = 6 zips
    python build_addon.py --all --repository DIR           # the zips plus Blender's repository index
    python build_addon.py --no-wheels                      # one zip, no wheels (torch installed separately)

Standard library only. Wheels are resolved and fetched with pip for the *target's* tags
(``--platform/--python-version/--implementation cp/--abi``), every dependency included except
what Blender bundles itself (numpy above all: every extension shares Blender's). Each target's
resolved set is recorded in ``wheels/<target>.lock.json`` beside the wheels; a rebuild whose set
is already there uses no network. Zips are made, validated and indexed by Blender's own extension
tool (``blender_ext.py``) taken from an installed ``bpy`` module, so no Blender binary is needed
and none of Blender's code is copied here. Per-target manifests are written into a staged copy of
the sources only; the checked-in ``blender_manifest.toml`` is never edited.

Why one zip per platform *and* Python ABI, and where each torch comes from: docs/packaging.md.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import platform as host_platform
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = ROOT / "sharp_addon"
MANIFEST = ROOT / "blender_manifest.toml"

TORCH_VERSION = "2.13.0"
PILLOW_VERSION = "12.3.0"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

# Python ABI -> the Blender versions that bundle it: [min, max), max exclusive as in the manifest.
PYTHON_ABIS = {"cp311": ("4.2.0", "5.1.0"), "cp313": ("5.1.0", "5.4.0")}
PLATFORMS = ("linux-x64", "windows-x64", "macos-arm64")
PYTHONS = ("3.11", "3.13")

# Distributions Blender ships in its own Python; a vendored copy would replace Blender's for every
# add-on (all extensions' wheels share one site-packages placed before Blender's own).
BLENDER_BUNDLED = frozenset({"numpy", "requests", "certifi", "urllib3", "idna", "charset-normalizer", "cython",
                             "zstandard", "attrs", "cattrs"})

WHEEL_NAME = re.compile(r"(?P<dist>[^-]+)-(?P<ver>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl")


class BuildError(Exception):
    """One target cannot be built; the message says what is missing and how to provide it."""


# ---- targets --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One zip: a Python ABI (and the Blender versions that bundle it) on one platform."""

    python_tag: str  # "cp311"
    blender_min: str  # inclusive
    blender_max: str | None  # exclusive
    platform: str  # Blender's platform name, e.g. "linux-x64"

    @property
    def python(self) -> str:
        """The Python version, "3.11"."""
        return f"{self.python_tag[2]}.{self.python_tag[3:]}"

    @property
    def name(self) -> str:
        """The zip's and the lock file's suffix, "linux-x64-py311"."""
        return f"{self.platform}-py{self.python_tag[2:]}"

    def pip_platforms(self) -> list[str]:
        """pip ``--platform`` tags. pip expands macosx tags to older releases itself, but not
        ``manylinux_2_*`` ones, so those are listed down to manylinux2014 (which it expands)."""
        if self.platform == "linux-x64":
            return [f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)] + ["manylinux2014_x86_64"]
        if self.platform == "windows-x64":
            return ["win_amd64"]
        return ["macosx_14_0_arm64"]  # torch >= 2.12 exists for macOS 14+ only

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values of the target (pip evaluates markers for the running interpreter)."""
        system = {"linux-x64": ("posix", "linux", "Linux", "x86_64"),
                  "windows-x64": ("nt", "win32", "Windows", "AMD64"),
                  "macos-arm64": ("posix", "darwin", "Darwin", "arm64")}[self.platform]
        full = f"{self.python}.0"
        return {"os_name": system[0], "sys_platform": system[1], "platform_system": system[2],
                "platform_machine": system[3], "platform_release": "", "platform_version": "",
                "python_version": self.python, "python_full_version": full, "implementation_name": "cpython",
                "implementation_version": full, "platform_python_implementation": "CPython"}


def targets(platforms: list[str], pythons: list[str] | None = None) -> list[Target]:
    tags = [f"cp{p.replace('.', '')}" for p in (pythons or PYTHONS)]
    return [Target(tag, *PYTHON_ABIS[tag], plat) for tag in tags for plat in platforms]


def target_named(name: str) -> Target:
    """The target for "linux-x64-py311"."""
    plat, _, py = name.rpartition("-py")
    (target,) = targets([plat], [f"{py[0]}.{py[1:]}"])
    return target


def this_platform() -> str | None:
    """Blender's name for this machine's platform (None: not one we build for)."""
    system = {"linux": "linux", "darwin": "macos", "windows": "windows"}.get(host_platform.system().lower())
    machine = {"x86_64": "x64", "amd64": "x64", "arm64": "arm64", "aarch64": "arm64"}.get(
        host_platform.machine().lower())
    name = f"{system}-{machine}"
    return name if name in PLATFORMS else None


def wheel_platform(tag: str) -> str | None:
    """Blender's platform name for a wheel platform tag (None: not one we ship)."""
    if tag.endswith("_x86_64") and (tag.startswith("manylinux") or tag.startswith("linux")):
        return "linux-x64"
    if tag == "win_amd64":
        return "windows-x64"
    if tag.startswith("macosx_") and (tag.endswith("_arm64") or tag.endswith("_universal2")):
        return "macos-arm64"
    return None


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


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


# ---- where the wheels come from -------------------------------------------------------------------


@dataclass
class Sources:
    """Where pip looks, besides its own configuration (index, find-links from pip.conf / PIP_*)."""

    torch_index_url: str | None = None  # None: the platform's default; "": none
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False  # only find-links (and the cache)
    torch_version: str | None = None  # None: the platform's default
    pillow_version: str = PILLOW_VERSION
    with_torch: bool = True
    _unreachable: dict[str, str] = field(default_factory=dict)

    def torch_index(self, target: Target) -> str | None:
        if self.torch_index_url is not None:
            return self.torch_index_url or None
        # PyPI's Linux torch is the CUDA build (+2.2 GB of nvidia wheels); the CPU one is on PyTorch's index.
        return CPU_TORCH_INDEX if target.platform == "linux-x64" else None

    def requirements(self, target: Target) -> list[str]:
        reqs = [f"pillow=={self.pillow_version}"]
        if self.with_torch:
            default = f"{TORCH_VERSION}+cpu" if target.platform == "linux-x64" else TORCH_VERSION
            reqs.insert(0, f"torch=={self.torch_version or default}")
        return reqs

    def describe(self, target: Target) -> str:
        index = self.torch_index(target) if self.with_torch else None
        if self.no_index:
            return "find-links only (--no-index)"
        parts = [f"torch from {index} (extra index)" if index else "PyPI"]
        if index in self._unreachable:
            parts[0] += f" [unreachable: {self._unreachable[index]}]"
        parts += [f"--find-links {d}" for d in self.find_links]
        return ", ".join(parts)

    def pip_options(self, target: Target) -> list[str]:
        options: list[str] = []
        for d in self.find_links:
            options += ["--find-links", d]
        if self.no_index:
            return [*options, "--no-index"]
        index = self.torch_index(target) if self.with_torch else None
        if index and self.reachable(index):
            options += ["--extra-index-url", index]
        return options

    def reachable(self, url: str) -> bool:
        """Probe an HTTP index once; an unreachable one is left out (pip would retry it per package)."""
        if not url.startswith(("http://", "https://")):
            return True
        if url in self._unreachable:
            return False
        try:
            with urllib.request.urlopen(urllib.request.Request(url.rstrip("/") + "/", method="HEAD"), timeout=15):
                pass
        except urllib.error.HTTPError:
            pass  # it answered
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = str(getattr(e, "reason", e))
            self._unreachable[url] = reason
            print(f"warning: {url} cannot be reached ({reason}); looking in --find-links and pip's own "
                  "configuration only", file=sys.stderr)
            return False
        return True


@dataclass(frozen=True)
class Wheel:
    name: str  # distribution name as its metadata spells it
    version: str
    file: str
    sha256: str
    url: str


@dataclass
class Resolution:
    target: Target
    requirements: list[str]
    wheels: list[Wheel]  # what goes into the zip
    excluded: list[Wheel]  # resolved but bundled by Blender, so not vendored
    environment: dict[str, str]  # the marker environment pip resolved for (from its report)


# pip evaluates environment markers for the interpreter it runs in; this runs pip with the target's.
MARKER_SHIM = """\
import json, runpy, sys
target_env = json.loads(sys.argv.pop(1))
from pip._vendor.packaging import markers
host_environment = markers.default_environment
def default_environment():
    env = host_environment()
    env.update(target_env)
    return env
markers.default_environment = default_environment
sys.argv[0] = "pip"
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""


def pip_command(target: Target, *args: str, shim: bool = True) -> list[str]:
    head = [sys.executable, "-c", MARKER_SHIM, json.dumps(target.marker_environment())] if shim else \
        [sys.executable, "-m", "pip"]
    tags = [f"--platform={p}" for p in target.pip_platforms()]
    return [*head, *args, "--only-binary=:all:", *tags, "--python-version", target.python, "--implementation", "cp",
            "--abi", target.python_tag, "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]


def resolve(target: Target, sources: Sources) -> Resolution:
    """The wheel set pip picks for the target, from ``pip install --dry-run --report`` (no install)."""
    reqs = sources.requirements(target)
    with tempfile.TemporaryDirectory(prefix="sharp-resolve-") as tmp:
        report_path = Path(tmp) / "report.json"
        cmd = pip_command(target, "install", "--dry-run", "--ignore-installed", "--report", str(report_path),
                          "--target", str(Path(tmp) / "target"), *sources.pip_options(target), *reqs)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not report_path.is_file():
            if "No module named pip" in done.stderr:
                raise BuildError(f"{target.name}: {sys.executable} has no pip (python -m ensurepip installs it)")
            raise BuildError(missing_message(target, sources, reqs, done.stdout + done.stderr))
        report = json.loads(report_path.read_text(encoding="utf-8"))
    wheels, excluded = [], []
    for item in report["install"]:
        info = item["download_info"]
        url = info["url"]
        file = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        sha256 = info.get("archive_info", {}).get("hashes", {}).get("sha256", "")
        wheel = Wheel(item["metadata"]["name"], item["metadata"]["version"], file, sha256, url)
        if not wheel_matches(file, target):
            raise BuildError(f"{target.name}: pip picked {file}, which does not run on {target.platform} with "
                             f"Python {target.python}")
        (excluded if canonical(wheel.name) in BLENDER_BUNDLED else wheels).append(wheel)
    return Resolution(target, reqs, wheels, excluded, report.get("environment", {}))


def missing_message(target: Target, sources: Sources, reqs: list[str], pip_output: str) -> str:
    """What pip could not find for the target, where it looked, and how to provide it."""
    missing = re.findall(r"(?:No matching distribution found for|Cannot install) (\S+)", pip_output)
    looked = [line.strip() for line in pip_output.splitlines() if line.startswith("Looking in ")]
    errors = [line.strip() for line in pip_output.splitlines() if line.startswith("ERROR")]
    what = missing[0] if missing else " ".join(reqs)
    lines = [f"{target.name}: pip found no {what} for Python {target.python} on {target.platform}"]
    where = [f"  sources: {sources.describe(target)}", *(f"  pip: {line}" for line in looked)]
    if canonical(re.split(r"[=<>!~;\[ ]", what)[0]) == "torch":
        index = sources.torch_index(target) or "https://pypi.org/simple"
        pin = next(r for r in reqs if r.startswith("torch"))
        file = f"torch-{pin.split('==', 1)[-1]}-{target.python_tag}-{target.python_tag}-{target.pip_platforms()[0]}.whl"
        lines[0] += f" (a wheel like {file})"
        lines += [
            *where,
            f"  To provide it: on a machine that reaches {index}, run",
            f"    pip download --no-deps --only-binary=:all: --platform {target.pip_platforms()[0]} "
            f"--python-version {target.python} --implementation cp --abi {target.python_tag} "
            f"--index-url {index} -d DIR '{pin}'",
            "  then build with --find-links DIR (or point --torch-index-url at a mirror that has it)."]
    else:
        lines += [*where, *(f"  pip: {line}" for line in errors[-3:])]
    return "\n".join(lines)


# ---- the wheel cache ------------------------------------------------------------------------------


def lock_path(wheels_dir: Path, target: Target) -> Path:
    return wheels_dir / f"{target.name}.lock.json"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def read_locks(wheels_dir: Path, target: Target) -> dict:
    """The target's lock file: one entry per requirement set it was resolved for."""
    try:
        locks = json.loads(lock_path(wheels_dir, target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return locks if isinstance(locks, dict) else {}


def cached(wheels_dir: Path, target: Target, reqs: list[str]) -> Resolution | None:
    """The locked set when it was resolved for these requirements and every file is there intact."""
    lock = read_locks(wheels_dir, target).get(" ".join(reqs))
    if not isinstance(lock, dict):
        return None
    try:
        wheels = [Wheel(**w) for w in lock["wheels"]]
        excluded = [Wheel(**w) for w in lock.get("excluded", [])]
    except (KeyError, TypeError):
        return None
    for w in wheels:
        file = wheels_dir / w.file
        if not file.is_file() or sha256_of(file) != w.sha256:
            return None
    return Resolution(target, reqs, wheels, excluded, lock.get("environment", {}))


def fetch(resolution: Resolution, wheels_dir: Path) -> None:
    """Download the resolved wheels that are not in ``wheels_dir`` yet (exact files, hash-checked)."""
    wheels_dir.mkdir(parents=True, exist_ok=True)
    todo = [w for w in resolution.wheels if not ((wheels_dir / w.file).is_file() and
                                                 sha256_of(wheels_dir / w.file) == w.sha256)]
    if todo:
        urls = [w.url.split("#")[0] + (f"#sha256={w.sha256}" if w.sha256 else "") for w in todo]
        cmd = pip_command(resolution.target, "download", "--no-deps", "-d", str(wheels_dir), *urls, shim=False)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildError(f"{resolution.target.name}: downloading the wheels failed:\n{done.stdout}{done.stderr}")
    for w in resolution.wheels:
        file = wheels_dir / w.file
        if not file.is_file():
            raise BuildError(f"{resolution.target.name}: {w.file} is missing after the download")
        if w.sha256 and sha256_of(file) != w.sha256:
            raise BuildError(f"{resolution.target.name}: {w.file} does not have the sha256 its index gave")


def write_lock(resolution: Resolution, wheels_dir: Path) -> None:
    locks = read_locks(wheels_dir, resolution.target)
    locks[" ".join(resolution.requirements)] = {
        "wheels": [vars(w) for w in resolution.wheels], "excluded": [vars(w) for w in resolution.excluded],
        "environment": resolution.environment}
    path = lock_path(wheels_dir, resolution.target)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(locks, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def wheels_for(target: Target, sources: Sources, wheels_dir: Path, refresh: bool = False) -> Resolution:
    """The target's wheels in ``wheels_dir``: from the cache when locked and intact, else resolved and fetched."""
    reqs = sources.requirements(target)
    hit = None if refresh else cached(wheels_dir, target, reqs)
    if hit is not None:
        print(f"{target.name}: wheels from the cache ({lock_path(wheels_dir, target).name}; no network)")
        return hit
    print(f"{target.name}: resolving {' '.join(reqs)} ({sources.describe(target)}) ...", flush=True)
    resolution = resolve(target, sources)
    if resolution.excluded:
        print(f"{target.name}: not vendored, Blender bundles them: "
              + ", ".join(f"{w.name} {w.version}" for w in resolution.excluded))
    fetch(resolution, wheels_dir)
    write_lock(resolution, wheels_dir)
    return resolution


# ---- Blender's extension tool ---------------------------------------------------------------------


def find_blender_exts() -> list[Path]:
    """Every blender_ext.py of a bpy module installed here or in the project's environments, this
    interpreter's first."""
    patterns = []
    try:
        import importlib.util

        spec = importlib.util.find_spec("bpy")
        if spec and spec.origin:
            patterns.append(str(Path(spec.origin).parent / "*" / "scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    except (ImportError, ValueError):
        pass
    patterns.append(str(ROOT / ".venv/*/lib/python*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    found: list[Path] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern), reverse=True):
            if Path(path).resolve() not in {p.resolve() for p in found}:
                found.append(Path(path))
    return found


def find_blender_ext() -> Path:
    """blender_ext.py from a bpy module installed here or in one of the project's environments."""
    found = find_blender_exts()
    if not found:
        raise SystemExit("build_addon: no installed bpy module found (needed for Blender's blender_ext.py); "
                         "run 'python3 tools/dev.py setup' first")
    return found[0]


def valid_tags_file(blender_ext: Path) -> Path:
    """Blender's list of extension tags, next to the blender_ext.py it belongs to."""
    return blender_ext.parents[3] / "modules/_bpy_internal/extensions/tags.py"


def blender_version_of(blender_ext: Path) -> str:
    return blender_ext.parents[4].name  # .../bpy/<X.Y>/scripts/addons_core/bl_pkg/cli/blender_ext.py


def run_blender_ext(blender_ext: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(blender_ext), *args], capture_output=True, text=True)


# ---- staging and zipping --------------------------------------------------------------------------


def manifest_text(wheels: list[Path], target: Target | None) -> str:
    """The checked-in manifest plus this target's wheels, platform and Blender range."""
    text = MANIFEST.read_text(encoding="utf-8")
    tomllib.loads(text)  # fail early on a broken manifest
    extra = []
    if target is not None:
        text = re.sub(r'(?m)^blender_version_min = ".*"\n', f'blender_version_min = "{target.blender_min}"\n', text)
        text = re.sub(r'(?m)^blender_version_max = .*\n', "", text)
        if target.blender_max:
            extra.append(f'blender_version_max = "{target.blender_max}"')
        extra.append(f'platforms = ["{target.platform}"]')
        if target.platform == "macos-arm64":
            extra.append("# macOS 14 or later: torch >= 2.12 is built for macOS 14+ only (docs/packaging.md)")
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
            try:
                os.link(w, stage / "wheels" / w.name)  # no copy of a 200 MB wheel where a link will do
            except OSError:
                shutil.copy2(w, stage / "wheels" / w.name)


def build_zip(stage: Path, output: Path, blender_ext: Path) -> Path:
    """Zip the staged tree with Blender's extension tool."""
    output.parent.mkdir(parents=True, exist_ok=True)
    result = run_blender_ext(blender_ext, "build", "--source-dir", str(stage), "--output-filepath", str(output),
                             "--valid-tags", str(valid_tags_file(blender_ext)))
    if result.returncode != 0 or not output.is_file():
        raise SystemExit(f"build_addon: Blender's extension build failed:\n{result.stdout}{result.stderr}")
    return output


def validate_zip(output: Path, blender_exts: list[Path]) -> list[str]:
    """``blender_ext.py validate`` of every installed Blender version on the zip; the versions it passed."""
    passed = []
    for blender_ext in blender_exts:
        tags = str(valid_tags_file(blender_ext))
        result = run_blender_ext(blender_ext, "validate", str(output), "--valid-tags", tags)
        if result.returncode != 0:
            output.unlink()  # never leave a zip behind that a Blender would refuse
            raise BuildError(f"{output.name}: Blender {blender_version_of(blender_ext)}'s validator refused it:\n"
                             f"{result.stdout}{result.stderr}")
        passed.append(blender_version_of(blender_ext))
    return passed


def make_zip(output: Path, wheels: list[Path], target: Target | None, blender_exts: list[Path]) -> list[str]:
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sharp-build-", dir=output.parent) as tmp:
        stage = Path(tmp) / "sharp_from_image"
        stage_tree(stage, wheels, target)
        build_zip(stage, output, blender_exts[0])
    return validate_zip(output, blender_exts)


def server_generate(repo_dir: Path, blender_ext: Path) -> Path:
    """Blender's repository index (``index.json``, plus ``index.html``) over the zips in ``repo_dir``."""
    result = run_blender_ext(blender_ext, "server-generate", "--repo-dir", str(repo_dir), "--html")
    index = repo_dir / "index.json"
    if result.returncode != 0 or not index.is_file():
        raise SystemExit(f"build_addon: Blender's server-generate failed for {repo_dir}:\n"
                         f"{result.stdout}{result.stderr}")
    for line in (result.stdout + result.stderr).splitlines():
        if line.startswith("WARN"):  # e.g. two zips of one id for the same platform, Python and Blender range
            print(f"warning: server-generate: {line.removeprefix('WARN:').strip()}", file=sys.stderr)
    return index


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


# ---- command line ---------------------------------------------------------------------------------


def chosen_targets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Target]:
    if args.all:
        if args.platform or args.python:
            parser.error("--all builds every target; leave out --platform and --python")
        return targets(list(PLATFORMS))
    platforms = args.platform or [this_platform()]
    if None in platforms:
        parser.error(f"this machine ({host_platform.system()} {host_platform.machine()}) is none of "
                     f"{', '.join(PLATFORMS)}: pass --platform")
    pythons = args.python or ["{}.{}".format(*sys.version_info[:2])]
    if not set(pythons) <= set(PYTHONS):
        parser.error(f"this Python ({pythons[0]}) is not one Blender bundles ({', '.join(PYTHONS)}): pass --python")
    return targets(platforms, pythons)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Targets, torch sources and the wheel cache: docs/packaging.md")
    which = parser.add_argument_group("targets (default: this machine's platform and Python)")
    which.add_argument("--platform", action="append", choices=PLATFORMS, help="repeatable")
    which.add_argument("--python", action="append", choices=PYTHONS,
                       help="3.11: Blender 4.2-5.0, 3.13: Blender 5.1-5.3 (repeatable)")
    which.add_argument("--all", action="store_true", help="every platform x Python (6 zips)")
    which.add_argument("--no-wheels", action="store_true",
                       help="one zip for every platform without wheels (PyTorch and Pillow installed separately)")
    which.add_argument("--no-torch", action="store_true",
                       help="vendor Pillow only (a small zip, e.g. to try a repository)")
    source = parser.add_argument_group("where the wheels come from")
    source.add_argument("--torch-index-url", metavar="URL",
                        help=f"extra index for torch (default: {CPU_TORCH_INDEX} for linux-x64, PyPI otherwise; "
                             "'' for none)")
    source.add_argument("--find-links", metavar="DIR", action="append", default=[],
                        help="also look for wheels here (repeatable), e.g. a downloaded CPU torch")
    source.add_argument("--no-index", action="store_true", help="no index at all: --find-links and the cache only")
    source.add_argument("--torch-version", metavar="VER",
                        help=f"torch version to pin (default: {TORCH_VERSION}+cpu on linux-x64, {TORCH_VERSION} "
                             "otherwise)")
    source.add_argument("--pillow-version", metavar="VER", default=PILLOW_VERSION)
    source.add_argument("--wheels-dir", type=Path, default=ROOT / "wheels",
                        help="the wheel cache: wheels plus one <target>.lock.json each (default: ./wheels)")
    source.add_argument("--refresh", action="store_true", help="resolve again even when the cache has the target")
    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    out.add_argument("--repository", type=Path, metavar="DIR",
                     help="write the zips into DIR and Blender's repository index (index.json) over all zips there")
    args = parser.parse_args(argv)

    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    ext_id, version = manifest["id"], manifest["version"]
    blender_exts = find_blender_exts()
    if not blender_exts:
        find_blender_ext()  # exits with the reason
    output_dir = args.repository or args.output_dir

    if args.no_wheels:
        if args.all or args.platform or args.python or args.no_torch:
            parser.error("--no-wheels builds one zip for every platform; leave out the target options")
        output = output_dir / f"{ext_id}-{version}.zip"
        passed = make_zip(output, [], None, blender_exts)
        print(f"built {output} ({mb(output.stat().st_size)}, no wheels; validated by Blender {', '.join(passed)})")
        built = 1
        failed: list[tuple[Target, str]] = []
    else:
        sources = Sources(torch_index_url=args.torch_index_url, find_links=[str(Path(d).resolve()) for d in
                          args.find_links], no_index=args.no_index, torch_version=args.torch_version,
                          pillow_version=args.pillow_version, with_torch=not args.no_torch)
        built, failed = 0, []
        for target in chosen_targets(args, parser):
            try:
                resolution = wheels_for(target, sources, args.wheels_dir, refresh=args.refresh)
                files = [args.wheels_dir / w.file for w in resolution.wheels]
                output = output_dir / f"{ext_id}-{version}-{target.name}.zip"
                passed = make_zip(output, files, target, blender_exts)
            except BuildError as e:
                print(f"error: {e}", file=sys.stderr)
                failed.append((target, str(e).splitlines()[0].removeprefix(f"{target.name}: ")))
                continue
            built += 1
            print(f"built {output} ({mb(output.stat().st_size)}, Blender {target.blender_min} to "
                  f"{target.blender_max} exclusive; validated by Blender {', '.join(passed)}), wheels:")
            for f in files:
                print(f"    {f.name} ({mb(f.stat().st_size)})")
    if args.repository and built:
        index = server_generate(args.repository, blender_exts[0])
        zips = sorted(p.name for p in args.repository.glob("*.zip"))
        print(f"repository index {index} lists {len(zips)} zip(s): {', '.join(zips)}")
    if failed:
        print(f"\nbuilt {built} of {built + len(failed)}; NOT built:", file=sys.stderr)
        for target, reason in failed:
            print(f"  {target.name}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
