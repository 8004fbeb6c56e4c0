"""What a Python can do for SHARP: run a short probe in it and read what it found.

No bpy, no torch. Any Python 3.10+ with torch (a conda or venv with CUDA, ROCm or gsplat) can run
the worker ("Python for Inference"); ``probe_python`` runs a short script in it, with the worker's
path set-up, and says what it found: Python and PyTorch versions, CUDA / ROCm / Apple GPUs with
names and memory, or why it cannot serve (missing, not executable, not a Python, older than 3.10,
no torch, no numpy or pillow). The GPU-runtime install runs the same probe as its last step.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..child_process import ENV_PATH, ChildProcess, child_env, python_name, run_to_end
from ..errors import DependencyError, SharpError
from ..files import path_kind

MIN_PYTHON = (3, 10)
PROBE_TIMEOUT = 90.0  # seconds; importing torch and starting CUDA can take a while on a cold disk
PROBE_MARK = "SHARP-PROBE "

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



def probe_python(python: str | os.PathLike[str], runtime: str | os.PathLike[str] | None = None,
                 timeout: float = PROBE_TIMEOUT) -> PythonProbe:
    """Run the probe in ``python`` with the worker's path set-up (``runtime`` first on it, as the
    worker would have it) and say what it found. Never raises for a bad interpreter."""
    python = os.fspath(python)
    problem = _unrunnable(python)
    if problem is not None:
        return PythonProbe(python, problem=f"{python_name(python)}: {problem}")
    try:
        done = run_to_end([python, "-c", PROBE_SCRIPT], env=child_env(python, runtime), timeout=timeout)
    except SharpError as e:
        return PythonProbe(python, problem=str(e))
    except TimeoutError:
        return PythonProbe(python, problem=f"{python_name(python)}: did not answer within {timeout:.0f} s")
    return parse_probe(python, done.stdout, done.stderr, done.returncode)


def start_probe(python: str, runtime: str | os.PathLike[str] | None = None) -> ChildProcess:
    """The probe as a child the caller follows (``read_probe`` once it has ended)."""
    return ChildProcess([python, "-c", PROBE_SCRIPT], env=child_env(python, runtime), name="sharp-probe")


def read_probe(python: str, child: ChildProcess) -> PythonProbe:
    """What an ended ``start_probe`` child found."""
    lines = child.take_rest()
    code = child.wait()
    stderr = "\n".join(child.stderr_lines())
    child.close()
    return parse_probe(python, "\n".join(lines), stderr, code)


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
        return PythonProbe(python, problem=f"{python_name(python)}: is not a Python interpreter "
                                           f"(it did not answer like one{said})")
    version_info = tuple(int(v) for v in data["python"][:3])
    version = ".".join(str(v) for v in version_info)
    name = python_name(python)
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


