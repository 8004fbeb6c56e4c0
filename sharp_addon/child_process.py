"""Child processes that a host (Blender) follows without ever blocking: start, read, poll, kill.

No bpy. Everything long this extension does outside Blender's process runs in a child: the
inference and render worker, the weights download, the GPU-runtime install (pip) and the short
checks of a Python. Why processes and not threads: Blender's Python API must not run beside
threads that use it, a crash or the out-of-memory killer then takes the child and not the
user's scene, and a cancel is a kill that always works at once.

``ChildProcess`` is the one way to run such a child: started with the environment a child of this
package needs (``child_env``), no console window on Windows, its output lines read by one thread
into a queue that the host empties whenever it polls (``take``), stderr kept in a file for the
last lines of an error message, and ``kill`` ending it (with its process group when it has one)
at once. ``run_to_end`` is the same for short children the host may wait for.

Which Python runs a child: the host's own (``host_python``; Blender's bundled Python) with the
host's ``sys.path``, so the extension's vendored wheels are found, after a private runtime folder
when one is given (a GPU PyTorch that pip installed there: it comes first, so its torch wins); or
another interpreter ("Python for Inference"), with only this package's parent folder added, since
the host's site-packages belong to another interpreter.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from .errors import DependencyError, SharpError

PACKAGE_DIR = Path(__file__).resolve().parent
ENV_PATH = "SHARP_WORKER_SYS_PATH"  # the folders a child puts in front of its sys.path (a JSON list)
PYTHON_SUBJECT = "Python for Inference"  # how messages name another interpreter
KILL_GRACE_SECONDS = 0.5  # for the reader thread to see the end of a killed child's output
KILL_WAIT_SECONDS = 5.0  # for a killed child to be gone
STDERR_TAIL_BYTES = 64 * 1024  # what is read of a child's stderr for a message


# ---- which Python, with which path ----------------------------------------------------------------


def host_python() -> str:
    """The host's interpreter (in Blender 2.91+ ``sys.executable`` is its bundled Python)."""
    exe = sys.executable
    if not exe or not Path(exe).exists():
        raise SharpError("cannot start a SHARP child process: this Python does not know its own interpreter")
    return exe


def is_foreign(python: str | os.PathLike[str] | None) -> bool:
    """Whether ``python`` is another interpreter than the host's own (None: the host's)."""
    if python is None or not os.fspath(python):
        return False

    def norm(p: str | os.PathLike[str]) -> str:
        return os.path.normcase(os.path.abspath(os.fspath(p)))

    return not sys.executable or norm(python) != norm(sys.executable)


def python_name(python: str) -> str:
    """How a message names an interpreter: the Python for Inference, or plain Python."""
    return f"{PYTHON_SUBJECT} '{python}'" if is_foreign(python) else f"Python '{python}'"


def child_sys_path(python: str | os.PathLike[str] | None = None,
                   runtime: str | os.PathLike[str] | None = None) -> list[str]:
    """What a child puts in front of its ``sys.path``: the runtime folder (if any) first, then this
    package's parent folder, then, for the host's own Python only, the host's ``sys.path``."""
    path = [os.fspath(runtime)] if runtime is not None else []
    path.append(str(PACKAGE_DIR.parent))
    if not is_foreign(python):
        path += [p for p in sys.path if p and p not in path]
    return path


def child_env(python: str | os.PathLike[str] | None = None,
              runtime: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The environment of a child run by ``python`` (None: the host's) with ``runtime`` first on its
    path (see ``child_sys_path``)."""
    env = dict(os.environ)
    env[ENV_PATH] = json.dumps(child_sys_path(python, runtime))
    env.pop("PYTHONPATH", None)  # the path list above is the whole story
    if is_foreign(python):
        env.pop("PYTHONHOME", None)  # the host's, if set, would make another interpreter load the host's library
    env["PYTHONUNBUFFERED"] = "1"
    return env


def boot_code(module: str, call: str) -> str:
    """``python -c`` code that sets up the child's path and runs ``call`` on this package's ``module``
    (``boot_code("cli", "main(sys.argv[1:])")``)."""
    return (
        "import importlib, json, os, sys\n"
        f"sys.path[:0] = json.loads(os.environ[{ENV_PATH!r}])\n"
        f"module = importlib.import_module({PACKAGE_DIR.name!r} + '.' + {module!r})\n"
        f"sys.exit(module.{call})\n"
    )


def cannot_start(python: str, error: OSError) -> DependencyError:
    """The error for an interpreter the operating system refuses to run."""
    why = {errno.ENOENT: "no such file", errno.EACCES: "is not executable (no permission to run it)",
           errno.ENOEXEC: "is not a program (not a Python interpreter)"}
    problem = why.get(error.errno or 0, f"cannot be started ({error.strerror or error})")
    return DependencyError.about(python, problem, subject=PYTHON_SUBJECT if is_foreign(python) else "Python")


def popen_flags(own_group: bool = False) -> dict[str, Any]:
    """No console window on Windows; ``own_group``: a process group of its own, so a kill ends the
    child and everything it started (pip's build steps), and Ctrl+C in the host's terminal does not."""
    flags: dict[str, Any] = {}
    if os.name == "nt":
        creation = subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
        if own_group:
            creation |= subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        flags["creationflags"] = creation
    elif own_group:
        flags["start_new_session"] = True
    return flags


# ---- a child followed by polling ------------------------------------------------------------------


class ChildProcess:
    """One child process whose stdout lines a host takes by polling (``take``), never blocking.

    ``stdin``: whether the host writes lines to it (``send``); ``merge_stderr``: stderr joins the
    lines (pip), else it goes to a file whose last lines ``stderr_tail`` gives. A host that exits
    takes its children with it (``atexit``). Raises ``DependencyError`` when the program cannot start.
    """

    def __init__(self, argv: Sequence[str | os.PathLike[str]], *, env: dict[str, str] | None = None,
                 stdin: bool = False, merge_stderr: bool = False, own_group: bool = False,
                 name: str = "sharp-child") -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.own_group = own_group
        self.heard = time.monotonic()  # when the child last wrote a line
        self.ended = False  # its output ended (it exited); every line before was taken
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: IO[str] | None = None if merge_stderr else tempfile.TemporaryFile(
            "w+", prefix=f"{name}-stderr-", encoding="utf-8", errors="replace")
        try:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge_stderr else self._stderr, text=True, encoding="utf-8",
                errors="replace", env=env, **popen_flags(own_group))
        except OSError as e:  # a missing or not executable interpreter, a file that is no program
            self._close_stderr()
            raise cannot_start(self.argv[0], e) from None
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"{name}-lines")
        self._reader.start()
        atexit.register(self.kill)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def silent_for(self) -> float:
        """Seconds since the child last wrote a line (or started)."""
        return time.monotonic() - self.heard

    def send(self, line: str) -> bool:
        """Write one line to the child's stdin; False when it is gone (it exited already)."""
        try:
            assert self.process.stdin is not None, "started without stdin"
            self.process.stdin.write(line.rstrip("\n") + "\n")
            self.process.stdin.flush()
            return True
        except (OSError, ValueError):  # a closed pipe, or a file closed under us
            return False

    def take(self) -> Iterator[str]:
        """The lines that have arrived, without waiting; ``ended`` is set once the last one is taken."""
        while not self.ended:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self.ended = True
                return
            yield line

    def take_rest(self, timeout: float = 2.0) -> list[str]:
        """After the child exited: every line it wrote that was not taken yet (waits up to ``timeout``
        for the reader to reach the end)."""
        self._reader.join(timeout)
        return list(self.take())

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status (negative: the signal that ended it); ``subprocess.TimeoutExpired`` after ``timeout``."""
        return self.process.wait(timeout)

    def kill(self) -> None:
        """End the child now, with everything it started when it has a process group of its own; returns
        once it is gone (or after ``KILL_WAIT_SECONDS`` for a process the system cannot end at once)."""
        atexit.unregister(self.kill)
        process = self.process
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
        try:
            if self.own_group and os.name != "nt":
                os.killpg(process.pid, signal.SIGKILL)  # also when the leader is gone: its children may not be
            elif self.own_group:
                subprocess.run(["taskkill", "/T", "/F", "/PID", str(process.pid)], capture_output=True,
                               timeout=KILL_WAIT_SECONDS, **popen_flags())
            if process.poll() is None:
                process.kill()
        except (OSError, subprocess.SubprocessError):  # gone already
            pass
        try:
            process.wait(KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired:  # stuck in the kernel: it goes when the system lets it
            pass
        self._reader.join(KILL_GRACE_SECONDS)

    def stderr_lines(self) -> list[str]:
        """What the child wrote to stderr so far, its non-empty lines."""
        if self._stderr is None:
            return []
        try:
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - STDERR_TAIL_BYTES))  # a long-lived worker's stderr grows
            text = self._stderr.read()
        except (OSError, ValueError):
            return []
        lines = text.splitlines()[1 if size > STDERR_TAIL_BYTES else 0:]  # the first may be cut
        return [line.strip() for line in lines if line.strip()]

    def stderr_tail(self, lines: int = 3) -> str:
        """The child's last non-empty stderr lines joined with " | " ("" when there are none)."""
        return " | ".join(self.stderr_lines()[-lines:])

    def close(self) -> None:
        """Kill the child if it still runs and release its files."""
        self.kill()
        self._close_stderr()

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            try:
                self._stderr.close()
            except OSError:
                pass

    def _read(self) -> None:
        """Reader thread: the child's lines into the queue; None when its output ends. Never touches bpy."""
        stream = self.process.stdout
        assert stream is not None
        try:
            for line in stream:
                self.heard = time.monotonic()
                self._lines.put(line.rstrip("\n"))
        except (OSError, ValueError):  # the pipe closed under us (a kill)
            pass
        self._lines.put(None)


def run_to_end(argv: Sequence[str | os.PathLike[str]], *, env: dict[str, str] | None = None,
               input: str | None = None, timeout: float) -> subprocess.CompletedProcess[str]:
    """A short child run to its end (a probe, a check); ``DependencyError`` when it cannot start,
    ``TimeoutError`` (after killing it) when it takes longer than ``timeout``."""
    args = [os.fspath(a) for a in argv]
    try:
        return subprocess.run(args, input=input, capture_output=True, text=True, encoding="utf-8", errors="replace",
                              env=env, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL,
                              **popen_flags())
    except OSError as e:
        raise cannot_start(args[0], e) from None
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{args[0]} did not finish within {timeout:g} s and was stopped") from None
