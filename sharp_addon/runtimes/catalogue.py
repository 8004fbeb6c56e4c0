"""The GPU runtimes on offer (CUDA builds of PyTorch), and the ones installed in a folder.

No bpy, no torch. A GPU runtime is CUDA PyTorch (2.7-3.7 GB; on Linux 17 library wheels beside
torch) that pip installed, with its dependencies, into a private folder ``<root>/<key>``; a marker
file written last says what it is and what its last probe found. Only the worker puts that folder
on its ``sys.path`` (first); the host never imports from it. One runtime at a time.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_output, size_text
from .probe import PythonProbe

MARKER = "sharp-runtime.json"  # written into a runtime folder last: a folder without it is not a runtime
PARTIAL = ".partial"
STAGING = ".staging"  # pip's temporary files, on the runtime's own disk
PLATFORMS = ("linux", "win32")  # where a GPU runtime is offered (macOS: the PyPI wheel has MPS already)



@dataclass(frozen=True)
class GpuRuntime:
    """One CUDA build of PyTorch from PyTorch's own package index."""

    key: str  # "cu130": the folder's name
    label: str  # for the menu
    covers: str  # which GPUs and drivers, in words
    torch_version: str
    index_url: str
    download_gb: dict[str, float]  # approximate download per platform, for the progress bar

    @property
    def requirement(self) -> str:
        return f"torch=={self.torch_version}"

    def expected_bytes(self) -> int:
        return int(self.download_gb.get(sys.platform, max(self.download_gb.values())) * 1e9)


RUNTIMES: dict[str, GpuRuntime] = {r.key: r for r in (
    GpuRuntime("cu126", "CUDA 12.6 (older GPUs and drivers)",
               "NVIDIA GeForce GTX 900 and 10 series (Maxwell, Pascal), Titan V (Volta) and everything up to the "
               "RTX 40 series (Ada); NVIDIA driver 525 or newer. Not for RTX 50 (Blackwell)",
               "2.9.1", "https://download.pytorch.org/whl/cu126", {"linux": 3.3, "win32": 2.6}),
    GpuRuntime("cu130", "CUDA 13.0 (current GPUs)",
               "NVIDIA RTX 20 series (Turing) and newer, RTX 50 (Blackwell) included; NVIDIA driver 580 or newer",
               "2.13.0", "https://download.pytorch.org/whl/cu130", {"linux": 2.8, "win32": 2.9}),
)}
DEFAULT_RUNTIME = "cu130"


def runtimes_offered() -> bool:
    """A GPU runtime is offered on Windows and Linux on x86-64 (macOS: the bundled PyTorch has MPS)."""
    return sys.platform.startswith(PLATFORMS) and platform.machine().lower() in ("x86_64", "amd64")


def python_tag(version: tuple[int, ...] | None = None) -> str:
    """"3.11": a runtime serves only the Python version that installed it."""
    major, minor = (version or sys.version_info)[:2]
    return f"{major}.{minor}"




# ---- installed runtimes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledRuntime:
    """A complete runtime folder (it has its marker) and what its marker says."""

    folder: Path
    key: str
    label: str
    torch: str
    python: str  # the Python version it was installed for, "3.11"
    platform: str
    bytes: int = 0
    probe: PythonProbe | None = None

    @property
    def fits_this_python(self) -> bool:
        return self.python == python_tag() and self.platform == sys.platform

    def describe(self) -> str:
        size = f", {size_text(self.bytes)}" if self.bytes else ""
        return f"GPU runtime {self.label}: PyTorch {self.torch} for Python {self.python}{size}"

    def mismatch(self) -> str | None:
        """Why this runtime cannot serve this Blender (another Python version), if it cannot."""
        if self.fits_this_python:
            return None
        return (f"the GPU runtime in {self.folder} was installed for Python {self.python} on {self.platform}; this "
                f"Blender has Python {python_tag()} on {sys.platform}: remove it and install it again")


def read_runtime(folder: Path) -> InstalledRuntime | None:
    """The runtime in ``folder``, or None when it is no complete runtime."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        probe = PythonProbe.from_json(data["probe"]) if data.get("probe") else None
        return InstalledRuntime(folder=folder, key=str(data["key"]), label=str(data["label"]),
                                torch=str(data["torch"]), python=str(data["python"]),
                                platform=str(data["platform"]), bytes=int(data.get("bytes", 0)), probe=probe)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def installed_runtime(root: str | os.PathLike[str] | None) -> InstalledRuntime | None:
    """The runtime installed under ``root`` (one at a time), if any."""
    if root is None:
        return None
    base = Path(root)
    for key in RUNTIMES:
        found = read_runtime(base / key)
        if found is not None:
            return found
    return None


def save_probe(runtime: InstalledRuntime, probe: PythonProbe) -> InstalledRuntime:
    """Remember a new check of ``runtime`` in its marker."""
    marker = runtime.folder / MARKER
    data = json.loads(marker.read_text(encoding="utf-8"))
    data["probe"] = probe.to_json()
    write_json(marker, data)
    return read_runtime(runtime.folder) or runtime


def remove_runtimes(root: str | os.PathLike[str]) -> list[Path]:
    """Delete every runtime under ``root``, complete or not; returns what was removed."""
    base = Path(root)
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for item in sorted(base.iterdir()):
        name = item.name.removesuffix(PARTIAL).removesuffix(STAGING)
        if name in RUNTIMES and item.is_dir():
            rmtree(item)
            removed.append(item)
    return removed


def folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")


def rmtree(path: Path, attempts: int = 20) -> None:
    """Remove a folder; on Windows files of a just-killed process can stay locked for a moment."""
    for attempt in range(attempts):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)


def torch_version(folder: Path) -> str:
    found = sorted(folder.glob("torch-*.dist-info"))
    if not found:
        return "unknown"
    return found[-1].name.removeprefix("torch-").removesuffix(".dist-info")




def remove_runtimes_except(root: Path, keep: Path) -> None:
    """Remove every runtime under ``root`` but ``keep`` (one runtime at a time)."""
    for item in sorted(root.iterdir()) if root.is_dir() else ():
        if item != keep and item.is_dir() and item.name.removesuffix(PARTIAL).removesuffix(STAGING) in RUNTIMES:
            rmtree(item)
