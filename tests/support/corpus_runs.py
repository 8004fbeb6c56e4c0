"""Bad-input cases run as a user meets them: a fresh interpreter with limits, or a shared one where nothing can crash.

A case that feeds damaged bytes to a native decoder, declares a huge allocation, opens a named pipe
or could run planted code gets a process of its own (``run_alone``): a crash, a hang or an
exhausted address space is then that case's failure and no other's. The other cases of a corpus
share one process (``run_batch``), and each is still judged on its own: its stdout and stderr are
captured at the file-descriptor level (native code's writes included), its exit status is what
``sys.exit`` or an escaping exception gives, its umask and ``TORCH_HOME`` are its own, warnings shown
once are shown again, and it has its own time limit. If a batch process dies anyway, the case it was
running fails with what the process said, and the cases after it run again in a new batch.

Both kinds run ``python -W error::RuntimeWarning`` (numpy's overflows and invalid casts are errors)
under a 4 GB address-space limit, with no default checkpoint and one thread for BLAS and OpenMP.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIME_LIMIT_S = 60  # per case, alone or in a batch
MEMORY_LIMIT = 4 << 30


@dataclass(frozen=True)
class Run:
    """One run of a ``python -c`` driver that reads ``sys.argv[1:]``, as a user would start it."""

    code: str
    args: tuple[str, ...]
    home: Path  # TORCH_HOME: no checkpoint in it
    umask: int = 0o022


@dataclass(frozen=True)
class Outcome:
    """What a run gave: as ``subprocess.CompletedProcess`` names it."""

    returncode: int
    stdout: str
    stderr: str


def listing(d: Path) -> dict[str, tuple]:
    """Every entry under ``d``: its kind and, for files, its bytes (what a failed run must not change)."""
    out: dict[str, tuple] = {}
    for path in sorted(d.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            try:
                out[str(path.relative_to(d))] = ("file", path.read_bytes())
            except PermissionError:
                out[str(path.relative_to(d))] = ("unreadable file", path.stat().st_size)
        else:
            out[str(path.relative_to(d))] = (stat.S_IFMT(mode),)
    return out


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SHARP_CHECKPOINT", "PYTHONWARNINGS")}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env | {"PYTHONPATH": path, "TORCH_HOME": str(home), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _limits(umask: int):
    def apply() -> None:
        os.umask(umask)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        except (ImportError, ValueError, OSError):  # no such limit here: the time limit still holds
            pass

    return apply if os.name == "posix" else None


def run_alone(run: Run) -> Outcome:
    """``run`` in a fresh interpreter of its own."""
    result = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", run.code, *run.args], cwd=ROOT,
                            env=_environment(run.home), capture_output=True, text=True, timeout=TIME_LIMIT_S,
                            preexec_fn=_limits(run.umask))
    return Outcome(result.returncode, result.stdout, result.stderr)


def run_batch(runs: dict[str, Run], work: Path) -> dict[str, Outcome]:
    """Every run of ``runs`` (by name) in as few interpreters as possible; ``work`` holds their files."""
    outcomes: dict[str, Outcome] = {}
    pending = list(runs)
    while pending:
        folder = work / f"batch-{len(outcomes)}"
        folder.mkdir(parents=True)
        outcomes |= _batch_process({name: runs[name] for name in pending}, folder)
        pending = [name for name in pending if name not in outcomes]
    return outcomes


def _batch_process(runs: dict[str, Run], folder: Path) -> dict[str, Outcome]:
    """One interpreter for ``runs``: the outcomes of the runs it finished and of the one it died in."""
    cases = [{"name": name, "code": r.code, "args": list(r.args), "home": str(r.home), "umask": r.umask,
              "stdout": str(folder / f"{i}.out"), "stderr": str(folder / f"{i}.err")}
             for i, (name, r) in enumerate(runs.items())]
    (folder / "cases.json").write_text(json.dumps(cases))
    results = folder / "results.jsonl"
    code = "from tests.support.corpus_runs import serve_batch; serve_batch()"
    cmd = [sys.executable, "-W", "error::RuntimeWarning", "-c", code, str(folder / "cases.json"), str(results)]
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=_environment(folder), capture_output=True, text=True,
                              timeout=TIME_LIMIT_S * (2 + len(cases) // 4), preexec_fn=_limits(0o022))
        status, said = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        status, said = -signal.SIGKILL, f"killed after {e.timeout:.0f} s"
    finished = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    status_of = {r["name"]: r["status"] for r in finished}
    outcomes = {c["name"]: Outcome(status_of[c["name"]], *_read_output(c)) for c in cases if c["name"] in status_of}
    if len(outcomes) < len(cases):  # it died running the first unfinished case: that case's failure
        case = next(c for c in cases if c["name"] not in outcomes)
        out, err = _read_output(case)
        outcomes[case["name"]] = Outcome(status or 1, out, err + f"\n[the batch process died running this case "
                                                                   f"(exit status {status}): {said[-3000:]}]")
    elif status != 0 or said.strip():  # every case finished, then the process failed: every case says so
        note = f"\n[the batch process ended with exit status {status} after its cases: {said[-3000:]}]"
        outcomes = {name: Outcome(o.returncode, o.stdout, o.stderr + note) for name, o in outcomes.items()}
    return outcomes


def _read_output(case: dict) -> tuple[str, str]:
    return tuple(Path(case[k]).read_text(errors="replace") if Path(case[k]).exists() else ""  # type: ignore[return-value]
                 for k in ("stdout", "stderr"))


# ---- inside a batch process -------------------------------------------------------------------------------


class CaseTimeout(BaseException):
    """A case ran past its time limit (a BaseException: no ``except Exception`` of the code under test hides it)."""


@contextmanager
def captured(stdout: str, stderr: str) -> Iterator[None]:
    """File descriptors 1 and 2 (and ``sys.stdout``/``sys.stderr`` on them) into these two files."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def fresh_warnings(filters: list) -> None:
    """The warning filters the process started with, and every "shown once" forgotten."""
    warnings.filters[:] = filters
    getattr(warnings, "_filters_mutated", lambda: None)()  # resets every module's __warningregistry__
    getattr(warnings, "onceregistry", {}).clear()


def _exit_status(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    print(e.code, file=sys.stderr)
    return 1


def _run_driver(code: object) -> int:
    """The driver as ``python -c`` runs it: its exit status, a traceback on stderr if it raised."""
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})  # our own drivers
        return 0
    except SystemExit as e:
        return _exit_status(e)
    except BaseException:  # what the interpreter prints, then exits 1
        traceback.print_exc()
        return 1


def _on_alarm(signum, frame) -> None:
    raise CaseTimeout(f"the case ran past its time limit of {TIME_LIMIT_S} s")


def serve_batch() -> None:
    """The batch process: run each case of ``sys.argv[1]`` (JSON), one result line each to ``sys.argv[2]``."""
    cases = json.loads(Path(sys.argv[1]).read_text())
    filters = list(warnings.filters)
    compiled: dict[str, object] = {}
    signal.signal(signal.SIGALRM, _on_alarm)
    with open(sys.argv[2], "a") as results:
        for case in cases:
            code = compiled.setdefault(case["code"], compile(case["code"], "<string>", "exec"))
            fresh_warnings(filters)
            os.umask(case["umask"])
            os.environ["TORCH_HOME"] = case["home"]
            sys.argv = ["-c", *case["args"]]
            with captured(case["stdout"], case["stderr"]):
                signal.alarm(TIME_LIMIT_S)
                try:
                    status = _run_driver(code)
                finally:
                    signal.alarm(0)
            results.write(json.dumps({"name": case["name"], "status": status}) + "\n")
            results.flush()
