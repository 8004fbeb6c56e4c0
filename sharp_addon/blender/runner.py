"""The one inference worker of this Blender session: where it runs, and how long it lives.

No UI here. Where it runs follows the preferences: a *Python for Inference* if one is set (another
interpreter with its own torch), else Blender's own Python with the installed GPU runtime (a
private folder of CUDA PyTorch) first on the worker's path, if there is one for this Python. The
worker is rebuilt when that choice changes (never in the middle of a job). The worker process
holds the loaded network; "Keep Model Loaded" decides whether it outlives a run. It always ends
when the add-on is disabled. Blender's own process never imports from the runtime folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bpy

from .. import dependencies, runtimes
from ..errors import SharpError
from ..files import file_key
from ..worker import InferenceWorker
from ..worker import check_checkpoint as check_in_worker
from .addon import ADDON_PACKAGE, preference

_worker: InferenceWorker | None = None
_held_back: str | None = None  # why no worker may start now (a GPU runtime is being put in its place)
_probes: dict[tuple, runtimes.PythonProbe] = {}  # Python for Inference checks, per file (path, size, time)


# ---- where inference runs -------------------------------------------------------------------------


def inference_python() -> str | None:
    """The Python for Inference set in the preferences (absolute), or None for Blender's own."""
    chosen = preference("inference_python", "")
    if not chosen or not chosen.strip():
        return None
    return os.path.abspath(os.path.expanduser(bpy.path.abspath(chosen.strip())))


def runtime_root(create: bool = False) -> Path | None:
    """The folder GPU runtimes are installed in (the extension's user folder, kept across updates)."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path="runtime", create=create))
    except (ValueError, KeyError, OSError):  # not installed as an extension
        return None


def installed_runtime() -> runtimes.InstalledRuntime | None:
    """The GPU runtime installed for this Blender, if any (whether or not it fits its Python)."""
    return runtimes.installed_runtime(runtime_root())


def active_runtime() -> Path | None:
    """The runtime folder the worker puts first on its path: one that fits this Python, when no
    Python for Inference is set."""
    if inference_python() is not None:
        return None
    found = installed_runtime()
    return found.folder if found is not None and found.fits_this_python else None


def _probe_key(python: str) -> tuple:
    return (python, *file_key(python))  # the path as given too: venvs share their base interpreter's file


def remembered_probe(python: str) -> runtimes.PythonProbe | None:
    """The last check of this exact interpreter file, if any."""
    try:
        return _probes.get(_probe_key(python))
    except OSError:
        return None


def probe(python: str, refresh: bool = False) -> runtimes.PythonProbe:
    """What ``python`` offers (remembered per file; ``refresh`` checks again; takes seconds)."""
    if not refresh:
        known = remembered_probe(python)
        if known is not None:
            return known
    found = runtimes.probe_python(python)
    try:
        _probes[_probe_key(python)] = found
    except OSError:  # missing or unreadable: nothing to remember it by
        pass
    return found


def usable_probe(python: str) -> runtimes.PythonProbe:
    """The check of ``python`` a worker relies on: a remembered good one, else a fresh one (so a
    Python fixed since its last check is seen as fixed)."""
    known = remembered_probe(python)
    return known if known is not None and known.ok else probe(python, refresh=True)


def torch_status(check: bool = True) -> dependencies.Status:
    """Whether inference can start, and where: for the operators (``check``: a Python for Inference
    not yet known to work is checked now, in seconds) and the preferences' draw (``check=False``:
    only what was checked before)."""
    python = inference_python()
    if python is not None:
        found = usable_probe(python) if check else remembered_probe(python)
        if found is None:
            return dependencies.Status(False, f"Python for Inference '{python}' not checked yet: press Check")
        return dependencies.Status(found.ok, found.message if not found.ok else
                                   f"PyTorch {found.torch} in the Python for Inference ({python}, Python "
                                   f"{found.version})")
    runtime = installed_runtime()
    if runtime is not None and runtime.fits_this_python:
        return dependencies.Status(True, f"PyTorch {runtime.torch} from the GPU runtime ({runtime.label})")
    return dependencies.torch_status()


# ---- the worker -----------------------------------------------------------------------------------


def worker() -> InferenceWorker:
    """The session's worker (its process starts with the first job), built for the current choice
    of Python and runtime; ``DependencyError`` when the Python for Inference cannot serve."""
    global _worker
    if _held_back is not None:
        raise SharpError(_held_back)
    python, runtime = inference_python(), active_runtime()
    if _worker is not None and (_worker.python, _worker.runtime) != (python or sys.executable, runtime) \
            and not _worker.busy:
        _worker.close()
        _worker = None
    if _worker is None:
        if python is not None:
            found = usable_probe(python)
            if not found.ok:
                raise found.error()
        _worker = InferenceWorker(python=python, runtime=runtime)
    return _worker


def check_checkpoint(path: str | os.PathLike[str]) -> str:
    """``worker.check_checkpoint`` where inference runs (the Python for Inference or the runtime)."""
    python = inference_python()
    if python is not None:
        found = usable_probe(python)
        if not found.ok:
            raise found.error()
    return check_in_worker(os.fspath(path), python=python, runtime=active_runtime())


def release() -> None:
    """Stop an idle worker (before its runtime folder is removed); refuses while it works."""
    if _worker is not None:
        if _worker.busy:
            raise SharpError("SHARP is converting an image; wait for it or cancel it first")
        _worker.stop()


def hold_back(reason: str | None) -> None:
    """Refuse to start work in a worker for ``reason`` (None: allow it again), e.g. while a GPU runtime
    install may replace the runtime folder a worker would load its torch from."""
    global _held_back
    _held_back = reason


def finished_run() -> None:
    """After a run: free the network's memory unless the user keeps it loaded (*Keep Model Loaded*)."""
    if _worker is not None and not preference("keep_loaded", True):
        _worker.stop()


def shutdown() -> None:
    """End the worker process (add-on disabled, Blender quitting)."""
    global _worker
    if _worker is not None:
        _worker.close()
        _worker = None
