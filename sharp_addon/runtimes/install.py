"""Installing a GPU runtime: pip in a child process, followed by polling, then a probe of the result.

No bpy, no torch. The host's own pip installs CUDA PyTorch with its dependencies into
``<root>/<key>.partial`` (``pip install --target ... torch==<version> --index-url <index>``); once
pip succeeded and torch is there, the marker is written and the folder renamed to ``<root>/<key>``
(any other runtime is removed then), and the probe runs with the worker's path set-up, so the
result says which GPU the worker sees. A cancel or a failure kills pip (its whole process group)
and removes everything it wrote; the previous runtime stays as it was.

For tests and unusual set-ups the package index, the requirement and the pip command can be
replaced: parameters of ``install_command`` / ``RuntimeInstall``, or the environment variables
``SHARP_RUNTIME_INDEX_URL``, ``SHARP_RUNTIME_REQUIREMENT`` and ``SHARP_RUNTIME_PIP`` (a JSON list,
e.g. ``["/usr/bin/python3", "-m", "pip", "--isolated"]``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..child_process import ChildProcess, is_foreign, run_to_end
from ..errors import Cancelled, DependencyError, SharpError
from ..files import size_text
from .catalogue import (
    MARKER,
    PARTIAL,
    STAGING,
    GpuRuntime,
    InstalledRuntime,
    folder_bytes,
    python_tag,
    read_runtime,
    remove_runtimes_except,
    rmtree,
    save_probe,
    torch_version,
    write_json,
)
from .pip_output import PipProgress
from .probe import PROBE_TIMEOUT, PythonProbe, read_probe, start_probe

ENV_INDEX = "SHARP_RUNTIME_INDEX_URL"
ENV_REQUIREMENT = "SHARP_RUNTIME_REQUIREMENT"
ENV_PIP = "SHARP_RUNTIME_PIP"


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
        done = run_to_end([*pip, "--version"], timeout=timeout)
    except (SharpError, TimeoutError) as e:
        raise DependencyError(f"cannot run pip ({' '.join(pip)}): {e}") from None
    found = re.match(r"pip (\d+)\.(\d+)", done.stdout.strip())
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise DependencyError(f"this Python has no pip to install the GPU runtime with ({tail[0]}); "
                              f"'{pip[0]} -m ensurepip' installs it")
    return int(found[1]), int(found[2])


def interpreter_version(python: str) -> tuple[int, ...]:
    if not is_foreign(python):
        return tuple(sys.version_info[:2])
    done = run_to_end([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=60.0)
    return tuple(int(v) for v in done.stdout.strip().split("."))


class RuntimeInstall:
    """One GPU runtime install, followed by ``poll`` (``work.Work``); ``start`` begins it.

    ``state``: new, running (pip), checking (the probe), done, failed or cancelled. ``result`` is
    the ``InstalledRuntime``; its ``probe`` says which GPU the worker sees.
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
        self.state = "new"
        self.error: SharpError | None = None
        self.result: InstalledRuntime | None = None
        self.command: list[str] = []
        self._pip: ChildProcess | None = None
        self._probe: ChildProcess | None = None
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

    def status_text(self) -> str:
        return f"SHARP GPU runtime: {self.text()} {100 * self.fraction:.0f}%"

    def start(self) -> RuntimeInstall:
        """Clear leftovers, check pip and disk space, and start pip; raises ``SharpError`` if it cannot."""
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in (self.partial, self.staging):
            rmtree(leftover)
        need = 2 * self.runtime.expected_bytes()  # the packages plus pip's staging copy
        free = shutil.disk_usage(self.root).free
        if self.known_size and free < need:
            raise SharpError.about(self.root, f"the GPU runtime needs about {size_text(need)} of free disk space "
                                              f"there; {size_text(free)} are free", subject="folder")
        raw = pip_version(self.pip) >= (24, 1)  # "--progress-bar raw" came with pip 24.1
        self.command = install_command(self.runtime, self.partial, python=self.python, pip=self.pip,
                                       index_url=self.index_url, requirement=self.requirement, raw_progress=raw)
        self.staging.mkdir()
        env = dict(os.environ, PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                   TMPDIR=str(self.staging), TEMP=str(self.staging), TMP=str(self.staging))
        try:  # its own process group: a cancel ends pip and anything it started
            self._pip = ChildProcess(self.command, env=env, merge_stderr=True, own_group=True, name="sharp-pip")
        except SharpError as e:
            self._clean()
            raise DependencyError(f"cannot run pip ({self.command[0]}): {e}") from None
        self.state = "running"
        return self

    def poll(self) -> bool:
        """Take in pip's output (and finish when it ended); True when the install is over."""
        if self.state == "running":
            assert self._pip is not None
            for line in self._pip.take():
                if self.progress.feed(line) and self.on_progress is not None:
                    self.on_progress(self.progress)
            if self._pip.ended:
                self._pip_ended()
        if self.state == "checking":
            self._probe_poll()
        return self.finished

    def cancel(self) -> None:
        """Stop pip at once and remove everything it wrote; the previous runtime stays as it was.
        Once the runtime is in place (the last step only checks it), the runtime stays."""
        if self.finished:
            return
        if self.state == "checking":
            self._kill_children()
            self._checked(PythonProbe(self.python, problem="the check of the GPU runtime was cancelled: "
                                                           "press Check to run it"))
            return
        self._kill_children()
        self._clean()
        self.state = "cancelled"
        self.error = Cancelled(f"GPU runtime install cancelled: nothing was kept in {self.root}")

    # ---- steps ------------------------------------------------------------------------------------

    def _pip_ended(self) -> None:
        assert self._pip is not None
        code = self._pip.wait()
        self._pip.close()
        if code != 0:
            self._failed(self._pip_failure(code))
            return
        if not (self.partial / "torch" / "__init__.py").is_file():
            self._failed(f"pip finished but installed no torch package into {self.partial}")
            return
        try:
            self._put_in_place()
        except OSError as e:
            self._failed(f"the finished runtime could not be put in place ({e})")
            return
        self.result = read_runtime(self.final)
        self.state = self.progress.stage = "checking"
        if self.on_progress is not None:
            self.on_progress(self.progress)
        try:
            self._probe = start_probe(self.python, self.final)
        except SharpError as e:
            self._checked(PythonProbe(self.python, problem=str(e)))
            return
        self._probe_started = time.monotonic()

    def _put_in_place(self) -> None:
        """The marker, written last into the complete folder, which then takes the runtime's name."""
        rmtree(self.staging)
        marker = {"key": self.runtime.key, "label": self.runtime.label,
                  "requirement": self.command[-1], "index_url": self.command[self.command.index("--index-url") + 1],
                  "torch": torch_version(self.partial), "python": python_tag(interpreter_version(self.python)),
                  "platform": sys.platform, "bytes": folder_bytes(self.partial),
                  "installed": time.strftime("%Y-%m-%d %H:%M:%S"), "probe": None}
        write_json(self.partial / MARKER, marker)
        remove_runtimes_except(self.root, self.partial)
        os.replace(self.partial, self.final)

    def _probe_poll(self) -> None:
        probe = self._probe
        assert probe is not None
        if probe.alive:
            if time.monotonic() - self._probe_started > self.probe_timeout:
                probe.close()
                self._checked(PythonProbe(self.python, problem=f"checking the GPU runtime took longer than "
                                                               f"{self.probe_timeout:.0f} s"))
            return
        self._checked(read_probe(self.python, probe))

    def _checked(self, probe: PythonProbe) -> None:
        assert self.result is not None
        self.result = save_probe(self.result, probe)
        self.progress.stage = self.state = "done"
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
            rmtree(leftover)

    def _kill_children(self) -> None:
        for child in (self._pip, self._probe):
            if child is not None:
                child.close()
