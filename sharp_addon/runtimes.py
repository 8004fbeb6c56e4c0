"""Where inference runs, besides the host's own Python: another Python, or a private GPU runtime.

No bpy, no torch. Two ways to a GPU where the extension's own PyTorch has none:

- **Python for Inference**: any Python 3.10+ with torch (a conda or venv with CUDA, ROCm or
  gsplat) runs the worker (``worker.InferenceWorker(python=...)``). ``probe_python`` runs a short
  script in it (with the worker's path set-up) and says what it found: Python and PyTorch
  versions, CUDA / ROCm / Apple GPUs with names and memory, or why it cannot serve (missing,
  not executable, not a Python, older than 3.10, no torch, no numpy or pillow).
- **GPU runtime** (Windows and Linux): CUDA PyTorch (2.7-3.7 GB; on Linux 17 library wheels
  beside torch) installed by the host's own pip, with its dependencies, into a private folder
  (``pip install --target <folder>.partial torch==<version> --index-url <index>``, renamed to
  ``<folder>`` once complete). Only the worker puts that folder on its ``sys.path`` (first); the
  host never imports from it. ``RuntimeInstall`` runs pip as a separate process, reports
  progress from pip's output lines, and a cancel kills pip and removes everything it wrote.

For tests and unusual set-ups the package index, the requirement and the pip command can be
replaced: parameters of ``install_command`` / ``RuntimeInstall``, or the environment variables
``SHARP_RUNTIME_INDEX_URL``, ``SHARP_RUNTIME_REQUIREMENT`` and ``SHARP_RUNTIME_PIP`` (a JSON list,
e.g. ``["/usr/bin/python3", "-m", "pip", "--isolated"]``).
"""

from __future__ import annotations

import json
import os
import platform
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from .errors import Cancelled, DependencyError, SharpError
from .files import path_kind
from .worker import ENV_PATH, PYTHON_SUBJECT, cannot_start, is_foreign, worker_env

MIN_PYTHON = (3, 10)
PROBE_TIMEOUT = 90.0  # seconds; importing torch and starting CUDA can take a while on a cold disk
PROBE_MARK = "SHARP-PROBE "

ENV_INDEX = "SHARP_RUNTIME_INDEX_URL"
ENV_REQUIREMENT = "SHARP_RUNTIME_REQUIREMENT"
ENV_PIP = "SHARP_RUNTIME_PIP"
MARKER = "sharp-runtime.json"  # written into a runtime folder last: a folder without it is not a runtime
PARTIAL = ".partial"
STAGING = ".staging"  # pip's temporary files, on the runtime's own disk
PLATFORMS = ("linux", "win32")  # where a GPU runtime is offered (macOS: the PyPI wheel has MPS already)


# ---- what a Python can do -------------------------------------------------------------------------

# Runs in the probed interpreter, whatever its version: no f-strings, nothing newer than Python 2.7.
PROBE_SCRIPT = r"""
import json, os, sys
out = {"python": list(sys.version_info[:3]), "executable": sys.executable, "modules": {}}
extra = os.environ.get("@ENV@")
if extra:
    sys.path[:0] = json.loads(extra)
for name in ("numpy", "PIL"):
    try:
        module = __import__(name)
        out["modules"][name] = str(getattr(module, "__version__", "?"))
    except Exception as e:
        out["modules"][name] = None
if sys.version_info >= (3, 10):
    try:
        import torch
        out["torch"] = str(torch.__version__)
        out["torch_file"] = getattr(torch, "__file__", None)
        version = getattr(torch, "version", None)
        out["cuda"] = getattr(version, "cuda", None)
        out["hip"] = getattr(version, "hip", None)
        devices = []
        cuda = getattr(torch, "cuda", None)
        try:
            if cuda is not None and cuda.is_available():
                out["arch_list"] = list(cuda.get_arch_list())
                for i in range(cuda.device_count()):
                    p = cuda.get_device_properties(i)
                    devices.append({"kind": "ROCm" if out["hip"] else "CUDA", "index": i, "name": p.name,
                                    "memory": int(p.total_memory), "capability": "%d.%d" % (p.major, p.minor)})
        except Exception as e:
            out["gpu_error"] = "%s: %s" % (type(e).__name__, e)
        mps = getattr(getattr(torch, "backends", None), "mps", None)
        try:
            if mps is not None and mps.is_available():
                memory = None
                try:
                    memory = int(torch.mps.recommended_max_memory())
                except Exception:
                    pass
                devices.append({"kind": "MPS", "index": 0, "name": "Apple GPU (Metal)", "memory": memory})
        except Exception as e:
            out["gpu_error"] = "%s: %s" % (type(e).__name__, e)
        out["devices"] = devices
    except Exception as e:
        out["torch_error"] = "%s: %s" % (type(e).__name__, e)
sys.stdout.write("@MARK@" + json.dumps(out) + "\n")
sys.stdout.flush()
""".replace("@ENV@", ENV_PATH).replace("@MARK@", PROBE_MARK)


@dataclass(frozen=True)
class Device:
    """One GPU a probed PyTorch can use."""

    kind: str  # "CUDA", "ROCm", "MPS"
    index: int
    name: str
    memory: int | None = None  # bytes
    capability: str | None = None  # CUDA compute capability, "8.6"
    supported: bool | None = None  # whether this PyTorch build has kernels for it (CUDA)

    def describe(self) -> str:
        memory = f", {self.memory / 2**30:.1f} GB" if self.memory else ""
        capability = f", compute {self.capability}" if self.capability else ""
        warning = "" if self.supported is not False else " - this PyTorch build has no kernels for it"
        return f"{self.kind} {self.index}: {self.name}{memory}{capability}{warning}"


@dataclass(frozen=True)
class PythonProbe:
    """What ``probe_python`` found in one interpreter; ``problem`` says why it cannot run SHARP."""

    python: str
    problem: str | None = None
    version: str | None = None  # "3.11.7"
    torch: str | None = None  # "2.13.0+cu130"
    torch_file: str | None = None
    cuda: str | None = None  # CUDA version torch was built for ("13.0"), None for CPU builds
    hip: str | None = None  # ROCm build
    devices: tuple[Device, ...] = ()
    gpu_error: str | None = None  # the GPU was there to ask, but asking failed (driver too old, ...)
    checked: float = field(default_factory=time.time, compare=False)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def message(self) -> str:
        """One line for a report: what it is, or why it cannot serve."""
        if self.problem is not None:
            return self.problem
        return f"Python {self.version} with PyTorch {self.torch}: {self.gpu_summary()}"

    def gpu_summary(self) -> str:
        if self.devices:
            return "; ".join(d.describe() for d in self.devices)
        build = f"CUDA {self.cuda} build" if self.cuda else f"ROCm {self.hip} build" if self.hip else "CPU build"
        why = f" ({self.gpu_error})" if self.gpu_error else ""
        hint = " - is the NVIDIA driver installed and recent enough?" if self.cuda else ""
        return f"no GPU found ({build}{why}): SHARP runs on the CPU{hint}"

    def error(self) -> DependencyError:
        return DependencyError(self.problem or self.message, path=self.python)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["devices"] = [asdict(d) for d in self.devices]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PythonProbe:
        fields = dict(data)
        fields["devices"] = tuple(Device(**d) for d in fields.get("devices", ()))
        return cls(**fields)


def _name(python: str) -> str:
    return f"{PYTHON_SUBJECT} '{python}'" if is_foreign(python) else f"Python '{python}'"


def probe_python(python: str | os.PathLike[str], runtime: str | os.PathLike[str] | None = None,
                 timeout: float = PROBE_TIMEOUT) -> PythonProbe:
    """Run the probe in ``python`` with the worker's path set-up (``runtime`` first on it, as the
    worker would have it) and say what it found. Never raises for a bad interpreter."""
    python = os.fspath(python)
    problem = _unrunnable(python)
    if problem is not None:
        return PythonProbe(python, problem=f"{_name(python)}: {problem}")
    try:
        done = subprocess.run([python, "-c", PROBE_SCRIPT], capture_output=True, text=True, encoding="utf-8",
                              errors="replace", env=worker_env(python, runtime), timeout=timeout,
                              stdin=subprocess.DEVNULL, **_quiet())
    except OSError as e:
        return PythonProbe(python, problem=str(cannot_start(python, e)))
    except subprocess.TimeoutExpired:
        return PythonProbe(python, problem=f"{_name(python)}: did not answer within {timeout:.0f} s")
    return parse_probe(python, done.stdout, done.stderr, done.returncode)


def _unrunnable(python: str) -> str | None:
    """Why ``python`` cannot even be started, before trying."""
    if not python.strip():
        return "no file given"
    kind = path_kind(python)
    if kind == "missing":
        return "no such file"
    if kind == "folder":
        return ("is a folder: choose the interpreter inside it (bin/python on Linux and macOS, "
                "python.exe on Windows)")
    if kind != "file":
        return f"is a {kind}, not a Python interpreter"
    if os.name != "nt" and not os.access(python, os.X_OK):
        return "is not executable (no permission to run it; is it the Python interpreter?)"
    return None


def parse_probe(python: str, stdout: str, stderr: str = "", returncode: int = 0) -> PythonProbe:
    """The probe's JSON line in ``stdout`` read into a ``PythonProbe``; without one, why not."""
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith(PROBE_MARK)), None)
    data: Any = None
    if line is not None:
        try:
            data = json.loads(line[len(PROBE_MARK):])
        except json.JSONDecodeError:
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("python"), list):
        lines = [ln.strip()[:120] for ln in (stderr or stdout).strip().splitlines() if ln.strip()]
        tail = " | ".join(lines[-2:])
        said = f": {tail}" if tail else f" (exit status {returncode})"
        return PythonProbe(python, problem=f"{_name(python)}: is not a Python interpreter "
                                           f"(it did not answer like one{said})")
    version_info = tuple(int(v) for v in data["python"][:3])
    version = ".".join(str(v) for v in version_info)
    name = _name(python)
    if version_info[:2] < MIN_PYTHON:
        return PythonProbe(python, version=version, problem=f"{name}: is Python {version}; SHARP needs Python "
                                                            f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer")
    torch = data.get("torch")
    if not torch:
        error = str(data.get("torch_error", ""))
        has = ("has no PyTorch" if not error or "No module named 'torch'" in error
               else f"has a PyTorch that does not import ({error[:200]})")
        return PythonProbe(python, version=version, problem=(
            f"{name}: Python {version} {has}: install it there, e.g. '{python} -m pip install torch' "
            "(CUDA and ROCm builds: https://pytorch.org/get-started/locally/)"))
    missing = [pip_name for module, pip_name in (("numpy", "numpy"), ("PIL", "pillow"))
               if not (data.get("modules") or {}).get(module)]
    arch = set(data.get("arch_list") or ())
    devices = tuple(
        Device(kind=str(d.get("kind", "GPU")), index=int(d.get("index", 0)), name=str(d.get("name", "?")),
               memory=d.get("memory"), capability=d.get("capability"),
               supported=_supported(d.get("capability"), arch) if d.get("kind") == "CUDA" else None)
        for d in data.get("devices") or ())
    probe = PythonProbe(python, version=version, torch=str(torch), torch_file=data.get("torch_file"),
                        cuda=data.get("cuda"), hip=data.get("hip"), devices=devices,
                        gpu_error=data.get("gpu_error"))
    if missing:
        return replace(probe, problem=(
            f"{name}: has PyTorch {torch} but not {' and '.join(missing)}, which SHARP needs: install "
            f"{'them' if len(missing) > 1 else 'it'} with '{python} -m pip install {' '.join(missing)}'"))
    return probe


def _supported(capability: str | None, arch: set[str]) -> bool | None:
    """Whether a CUDA build with ``arch`` (``sm_86``, ``compute_90``) runs on a GPU of ``capability``."""
    if not capability or not arch:
        return None
    major, minor = (int(v) for v in capability.split("."))
    if f"sm_{major}{minor}" in arch:
        return True
    # same major with a lower minor runs (binary compatibility), and PTX compiles for newer GPUs
    sm = [(int(a[3:-1]), int(a[-1])) for a in arch if a.startswith("sm_") and a[3:].isdigit()]
    ptx = [(int(a[8:-1]), int(a[-1])) for a in arch if a.startswith("compute_") and a[8:].isdigit()]
    return any(m == major and n <= minor for m, n in sm) or any((m, n) <= (major, minor) for m, n in ptx)


def _quiet() -> dict[str, Any]:
    """No console window for child processes on Windows."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NO_WINDOW}  # type: ignore[attr-defined]
    return {}


# ---- the GPU runtimes on offer --------------------------------------------------------------------


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


def pip_command(python: str | None = None, pip: list[str] | None = None) -> list[str]:
    """How pip is run: ``pip``, else ``$SHARP_RUNTIME_PIP`` (a JSON list), else ``<python> -m pip``."""
    if pip:
        return list(pip)
    if os.environ.get(ENV_PIP):
        try:
            value = json.loads(os.environ[ENV_PIP])
        except json.JSONDecodeError:
            value = None
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise SharpError(f"${ENV_PIP} must be a JSON list of strings, e.g. [\"python\", \"-m\", \"pip\"]")
        return value
    return [python or sys.executable, "-m", "pip"]


def install_command(runtime: GpuRuntime, target: str | os.PathLike[str], *, python: str | None = None,
                    pip: list[str] | None = None, index_url: str | None = None, requirement: str | None = None,
                    raw_progress: bool = True) -> list[str]:
    """The pip command that installs ``runtime`` into ``target``, WITH its dependencies (every CUDA
    library wheel), binary wheels only, no pip cache (3 GB would be kept twice)."""
    return [
        *pip_command(python, pip), "install",
        "--target", os.fspath(target),
        "--index-url", index_url or os.environ.get(ENV_INDEX) or runtime.index_url,
        "--only-binary", ":all:",
        "--no-cache-dir", "--no-input", "--disable-pip-version-check", "--no-warn-script-location",
        "--progress-bar", "raw" if raw_progress else "off",
        requirement or os.environ.get(ENV_REQUIREMENT) or runtime.requirement,
    ]


def pip_version(pip: list[str], timeout: float = 60.0) -> tuple[int, ...]:
    """The version of the pip that ``pip`` runs; ``DependencyError`` when there is none."""
    try:
        done = subprocess.run([*pip, "--version"], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **_quiet())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DependencyError(f"cannot run pip ({' '.join(pip)}): {e}") from None
    found = re.match(r"pip (\d+)\.(\d+)", done.stdout.strip())
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise DependencyError(f"this Python has no pip to install the GPU runtime with ({tail[0]}); "
                              f"'{pip[0]} -m ensurepip' installs it")
    return int(found[1]), int(found[2])


# ---- pip's progress -------------------------------------------------------------------------------

SIZE_UNITS = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
_DOWNLOADING = re.compile(r"^\s*Downloading (?P<what>\S+)(?:\s+\((?P<size>[\d.]+)\s*(?P<unit>bytes|kB|MB|GB)\))?")
_RAW = re.compile(r"^\s*Progress (?P<done>\d+) of (?P<total>\d+)\s*$")
_COLLECTING = re.compile(r"^\s*Collecting (?P<what>\S+)")
STAGES = {"starting": (0.0, 0.0), "resolving": (0.0, 0.05), "downloading": (0.05, 0.9),
          "installing": (0.9, 0.97), "checking": (0.97, 1.0), "done": (1.0, 1.0)}


@dataclass
class PipProgress:
    """What pip's output lines say about an install: stage, bytes, the file being fetched."""

    expected_bytes: int = 0  # what the whole download is thought to be (pip never says in advance)
    stage: str = "starting"
    file: str = ""
    file_bytes: int = 0  # size of the file being downloaded (0: unknown)
    file_done: int = 0
    finished_bytes: int = 0  # files completely downloaded
    announced_bytes: int = 0  # sizes of every file pip started
    files: int = 0
    packages: int = 0
    errors: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)  # the last lines, for messages
    _floor: float = 0.0

    def feed(self, line: str) -> bool:
        """Take in one line of pip's output; True when the progress changed."""
        self._floor = self.fraction  # the bar never goes back, even when pip announces more to fetch
        return self._feed(line)

    def _feed(self, line: str) -> bool:
        line = line.rstrip("\r\n")
        if not line.strip():
            return False
        raw = _RAW.match(line)
        if raw:
            self.file_done = int(raw["done"])
            self.file_bytes = max(self.file_bytes, int(raw["total"]))
            return True
        self.tail = [*self.tail[-19:], line]
        if line.startswith("ERROR:") or (self.errors and line.startswith(" ")):
            self.errors.append(line.removeprefix("ERROR:").strip())
            return False
        downloading = _DOWNLOADING.match(line)
        if downloading:
            self._file_complete()
            self.stage = "downloading"
            self.file = urllib.parse.unquote(downloading["what"].rsplit("/", 1)[-1])
            size = int(float(downloading["size"]) * SIZE_UNITS[downloading["unit"]]) if downloading["size"] else 0
            self.file_bytes, self.file_done = size, 0
            self.announced_bytes += size
            self.files += 1
            return True
        collecting = _COLLECTING.match(line)
        if collecting:
            self.packages += 1
            if self.stage == "starting":
                self.stage = "resolving"
            if self.stage == "resolving":
                self.file = collecting["what"]
            return True
        if line.startswith("Installing collected packages"):
            self._file_complete()
            self.stage = "installing"
            self.file = ""
            return True
        return False

    def _file_complete(self) -> None:
        if self.stage == "downloading":
            self.finished_bytes += max(self.file_bytes, self.file_done)
            self.file_bytes = self.file_done = 0

    @property
    def downloaded(self) -> int:
        return self.finished_bytes + self.file_done

    @property
    def fraction(self) -> float:
        """0..1 over the whole install (downloading is most of it)."""
        start, end = STAGES.get(self.stage, (0.0, 0.0))
        if self.stage == "downloading":
            total = max(self.expected_bytes, self.announced_bytes, 1)
            start += (end - start) * min(self.downloaded / total, 1.0)
        return max(start, self._floor)

    def text(self) -> str:
        """One line for the status bar."""
        if self.stage == "downloading":
            total = max(self.expected_bytes, self.announced_bytes)
            of = f"of about {total / 1e9:.1f} GB" if self.expected_bytes else "so far"
            return f"downloading {self.file} ({self.downloaded / 1e9:.2f} GB {of})"
        if self.stage == "resolving":
            return f"finding packages ({self.file})"
        if self.stage == "installing":
            return f"installing {self.packages} packages"
        return self.stage


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
        size = f", {self.bytes / 1e9:.1f} GB" if self.bytes else ""
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
    _write_json(marker, data)
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
            _rmtree(item)
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


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _rmtree(path: Path, attempts: int = 20) -> None:
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


def _torch_version(folder: Path) -> str:
    found = sorted(folder.glob("torch-*.dist-info"))
    if not found:
        return "unknown"
    return found[-1].name.removeprefix("torch-").removesuffix(".dist-info")


# ---- installing -----------------------------------------------------------------------------------


class RuntimeInstall:
    """One GPU runtime install: pip in a separate process, followed by ``poll`` (or ``wait``).

    ``<root>/<key>.partial`` receives the packages; when pip succeeded and torch is there, the
    marker is written and the folder renamed to ``<root>/<key>`` (any other runtime is removed
    then), and the probe runs with the worker's path set-up: ``result.probe`` says which GPU the
    worker sees. ``cancel`` (or a failure) kills pip and removes everything it wrote.
    """

    def __init__(self, runtime: GpuRuntime, root: str | os.PathLike[str], *, python: str | None = None,
                 pip: list[str] | None = None, index_url: str | None = None, requirement: str | None = None,
                 on_progress: Callable[[PipProgress], None] | None = None,
                 probe_timeout: float = PROBE_TIMEOUT) -> None:
        self.runtime = runtime
        self.root = Path(root)
        self.python = python or sys.executable
        self.pip = pip_command(self.python, pip)
        self.index_url, self.requirement = index_url, requirement
        self.on_progress = on_progress
        self.probe_timeout = probe_timeout
        self.final = self.root / runtime.key
        self.partial = self.root / (runtime.key + PARTIAL)
        self.staging = self.root / (runtime.key + STAGING)
        # what is known of the download: the build's own requirement only (another one's size is not)
        self.known_size = not (requirement or os.environ.get(ENV_REQUIREMENT))
        self.progress = PipProgress(expected_bytes=runtime.expected_bytes() if self.known_size else 0)
        self.state = "new"  # running, checking, done, failed, cancelled
        self.error: SharpError | None = None
        self.result: InstalledRuntime | None = None
        self.command: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._probe: subprocess.Popen[str] | None = None
        self._probe_started = 0.0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @property
    def fraction(self) -> float:
        return 1.0 if self.state == "done" else self.progress.fraction

    def text(self) -> str:
        if self.state == "checking":
            return "checking that the worker sees the GPU"
        return self.progress.text()

    def start(self) -> RuntimeInstall:
        """Clear leftovers, check pip and disk space, and start pip; raises ``SharpError`` if it cannot."""
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in (self.partial, self.staging):
            _rmtree(leftover)
        need = 2 * self.runtime.expected_bytes()  # the packages plus pip's staging copy
        free = shutil.disk_usage(self.root).free
        if self.known_size and free < need:
            raise SharpError.about(self.root, f"the GPU runtime needs about {need / 1e9:.0f} GB of free disk space "
                                              f"there; {free / 1e9:.1f} GB are free", subject="folder")
        raw = pip_version(self.pip) >= (24, 1)  # "--progress-bar raw" came with pip 24.1
        self.command = install_command(self.runtime, self.partial, python=self.python, pip=self.pip,
                                       index_url=self.index_url, requirement=self.requirement, raw_progress=raw)
        self.staging.mkdir()
        env = dict(os.environ, PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                   TMPDIR=str(self.staging), TEMP=str(self.staging), TMP=str(self.staging))
        flags: dict[str, Any] = _quiet()
        if os.name == "nt":
            flags["creationflags"] = flags.get("creationflags", 0) | subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            flags["start_new_session"] = True  # its own process group: a cancel ends pip and anything it started
        try:
            self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
                                             env=env, **flags)
        except OSError as e:
            self._clean()
            raise DependencyError(f"cannot run pip ({self.command[0]}): {e}") from None
        threading.Thread(target=_pump, args=(self._process.stdout, self._lines), daemon=True,
                         name="sharp-runtime-pip").start()
        self.state = "running"
        return self

    def poll(self) -> bool:
        """Take in pip's output (and finish when it ended); True when the install is over."""
        while self.state == "running":
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._pip_ended()
            elif self.progress.feed(line) and self.on_progress is not None:
                self.on_progress(self.progress)
        if self.state == "checking":
            self._probe_poll()
        return self.finished

    def wait(self, cancel: Callable[[], bool] | None = None, interval: float = 0.1) -> InstalledRuntime:
        """Poll until done (the synchronous path: scripts, background Blender, tests)."""
        while not self.poll():
            if cancel is not None and cancel():
                self.cancel()
                break
            time.sleep(interval)
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def cancel(self) -> None:
        """Stop pip at once and remove everything it wrote; the previous runtime stays as it was.
        Once the runtime is in place (the last step only checks it), the runtime stays."""
        if self.finished:
            return
        if self.state == "checking":
            self._kill(self._probe)
            self._checked(PythonProbe(self.python, problem="the check of the GPU runtime was cancelled: "
                                                           "press Check to run it"))
            return
        self._kill(self._process)
        self._kill(self._probe)
        self._clean()
        self.state = "cancelled"
        self.error = Cancelled(f"GPU runtime install cancelled: nothing was kept in {self.root}")

    # ---- steps ------------------------------------------------------------------------------------

    def _pip_ended(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        if code != 0:
            self._failed(self._pip_failure(code))
            return
        if not (self.partial / "torch" / "__init__.py").is_file():
            self._failed(f"pip finished but installed no torch package into {self.partial}")
            return
        try:
            _rmtree(self.staging)
            marker = {"key": self.runtime.key, "label": self.runtime.label,
                      "requirement": self.command[-1], "index_url": self.command[self.command.index("--index-url") + 1],
                      "torch": _torch_version(self.partial), "python": python_tag(_interpreter_version(self.python)),
                      "platform": sys.platform, "bytes": folder_bytes(self.partial),
                      "installed": time.strftime("%Y-%m-%d %H:%M:%S"), "probe": None}
            _write_json(self.partial / MARKER, marker)
            remove_runtimes_except(self.root, self.partial)
            os.replace(self.partial, self.final)
        except OSError as e:
            self._failed(f"the finished runtime could not be put in place ({e})")
            return
        self.result = read_runtime(self.final)
        self.state = "checking"
        self.progress.stage = "checking"
        if self.on_progress is not None:
            self.on_progress(self.progress)
        try:
            self._probe = subprocess.Popen([self.python, "-c", PROBE_SCRIPT], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           encoding="utf-8", errors="replace",
                                           env=worker_env(self.python, self.final), **_quiet())
        except OSError as e:
            self._checked(PythonProbe(self.python, problem=str(cannot_start(self.python, e))))
            return
        self._probe_started = time.monotonic()

    def _probe_poll(self) -> None:
        assert self._probe is not None
        if self._probe.poll() is None:
            if time.monotonic() - self._probe_started > self.probe_timeout:
                self._kill(self._probe)
                self._checked(PythonProbe(self.python, problem=f"checking the GPU runtime took longer than "
                                                               f"{self.probe_timeout:.0f} s"))
            return
        stdout, stderr = self._probe.communicate()
        self._checked(parse_probe(self.python, stdout, stderr, self._probe.returncode))

    def _checked(self, probe: PythonProbe) -> None:
        assert self.result is not None
        self.result = save_probe(self.result, probe)
        self.progress.stage = "done"
        self.state = "done"
        if self.on_progress is not None:
            self.on_progress(self.progress)

    def _pip_failure(self, code: int) -> str:
        said = [e for e in self.progress.errors if e] or self.progress.tail[-3:] or [f"exit status {code}"]
        message = " ".join(said)[:600]
        hint = ""
        if "No matching distribution" in message or "Could not find a version" in message:
            hint = (f" ({self.runtime.label} has no {self.command[-1]} for Python {python_tag()} on "
                    f"{sys.platform}; try the other build)")
        elif re.search(r"(?i)connection|resolve|timed out|network|proxy|SSL", message):
            hint = " (is this computer online? a proxy can be set with the HTTPS_PROXY environment variable)"
        return f"pip could not install {self.command[-1]}: {message}{hint}"

    def _failed(self, why: str) -> None:
        self._clean()
        self.state = "failed"
        self.error = DependencyError(f"installing the GPU runtime {self.runtime.label} failed: {why}")

    def _clean(self) -> None:
        for leftover in (self.partial, self.staging):
            _rmtree(leftover)

    @staticmethod
    def _kill(process: subprocess.Popen[str] | None) -> None:
        if process is None or process.poll() is not None:
            return
        try:
            if os.name != "nt":
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        except OSError:
            process.kill()
        process.wait()


def remove_runtimes_except(root: Path, keep: Path) -> None:
    """Remove every runtime under ``root`` but ``keep`` (one runtime at a time)."""
    for item in sorted(root.iterdir()) if root.is_dir() else ():
        if item != keep and item.is_dir() and item.name.removesuffix(PARTIAL).removesuffix(STAGING) in RUNTIMES:
            _rmtree(item)


def _interpreter_version(python: str) -> tuple[int, ...]:
    if not is_foreign(python):
        return tuple(sys.version_info[:2])
    done = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, **_quiet())
    return tuple(int(v) for v in done.stdout.strip().split("."))


def _pump(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
    """Reader thread: pip's output lines into a queue; None when it ends."""
    assert stream is not None
    for line in stream:
        lines.put(line)
    lines.put(None)
