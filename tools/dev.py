#!/usr/bin/env python3
"""Development front door: environments, the test suite, and the headless demo.

    python3 tools/dev.py demo [--checkpoint PATH | --accept-licence]   # set up, then convert a sample photo
    python3 tools/dev.py test [--env NAME] [--quick] [-- PYTEST ARGS]
    python3 tools/dev.py setup [--env NAME]

Standard library only, so a fresh machine needs nothing but Python 3.11 (and 3.13 for the
Blender 5.2 and 5.3 environments). Every environment is a virtual environment under ``.venv/`` built
from ``requirements/*.txt`` (the four side by side) and rebuilt when those files change:

    blender-5.0   Python 3.11, bpy 5.0.1 + CPU torch   every test: Python 3.11's run, Blender 5.0; lint, types
    blender-4.2   Python 3.11, bpy 4.2 LTS, numpy < 2  the Blender-side suite (``blender``), ``without_torch``
    blender-5.2   Python 3.13, bpy 5.2.3, no torch     the Blender-side suite
    blender-5.3   Python 3.13, bpy 5.3.0, no torch     every test: Python 3.13's run, Blender 5.3 (native splats)

Tests that never touch ``bpy`` run once per Python version (in blender-5.0 and blender-5.3); the
Blender-side suite runs in all four (docs/development.md). Naming tests (a path or node id) runs
them in each chosen environment regardless. The checks (ruff, mypy, the pytest runs) go two at a
time (``--jobs``), each printed whole when it ends. ``--quick`` is the inner loop: ruff, then blender-5.0 without the
bad-input corpora and the slow tests.

The 3.13 environments have no torch: their tests that need it run inference in blender-5.0's
Python through the add-on's Python for Inference, so blender-5.0 is always built.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from chromium import ensure_chromium  # noqa: E402 - the web page's browser, beside this file

# what an environment runs (a -m expression): every test, or the Blender-side suite, which blender-4.2
# completes with the bpy-free tests that check life without torch (Python 3.11's one place without it)
EVERYTHING, BLENDER_SIDE, BLENDER_SIDE_AND_NO_TORCH = "", "blender", "blender or without_torch"


@dataclass(frozen=True)
class Env:
    name: str
    python: str  # "3.11"
    role: str
    runs: str  # EVERYTHING, or a -m expression

    @property
    def path(self) -> Path:
        return VENVS / self.name

    @property
    def python_exe(self) -> Path:
        return self.path / "bin" / "python"


ENVS = {
    e.name: e
    for e in (
        Env("blender-5.0", "3.11", "every test on Python 3.11, Blender 5.0 with CPU torch", EVERYTHING),
        Env("blender-4.2", "3.11", "the Blender-side suite on the 4.2 LTS line", BLENDER_SIDE_AND_NO_TORCH),
        Env("blender-5.2", "3.13", "the Blender-side suite on Blender 5.2 (no torch)", BLENDER_SIDE),
        Env("blender-5.3", "3.13", "every test on Python 3.13, Blender 5.3 (no torch; native splats)", EVERYTHING),
    )
}
MAIN_ENV = "blender-5.0"
QUICK = "not slow and not corpus"  # what --quick leaves out (pyproject.toml's markers)
PYTEST_TIME_LIMIT_S = 3600  # one environment's pytest; CI must fail, not hang
NOTHING_SELECTED = 5  # pytest's exit status when no test was selected


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(cmd: list[str | Path], **kwargs) -> int:
    return subprocess.run([str(c) for c in cmd], **kwargs).returncode


# ---- environments ---------------------------------------------------------------------------------


def find_python(version: str) -> Path:
    """An interpreter of this major.minor version: on PATH, or installed by pyenv."""
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))[::-1]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return Path(candidate)
    raise SystemExit(f"[dev] Python {version} is needed and was not found (tried python{version} and pyenv)")


def requirement_files(name: str) -> list[Path]:
    """A requirements file and every file it includes with -r."""
    files, todo = [], [REQUIREMENTS / f"{name}.txt"]
    while todo:
        f = todo.pop()
        files.append(f)
        todo += [f.parent / line.split(None, 1)[1].strip() for line in f.read_text().splitlines()
                 if line.startswith("-r ")]
    return files


def fingerprint(name: str, python: Path) -> str:
    h = hashlib.sha256(str(python).encode())
    for f in requirement_files(name):
        h.update(f.read_bytes())
    return h.hexdigest()


def pip_install(python: Path, args: list[str]) -> None:
    cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", "-q", *args]
    if run(cmd) != 0:
        raise SystemExit(f"[dev] pip install failed: {' '.join(map(str, args))}")


def ensure_env(env: Env) -> Path:
    """Create or refresh one environment; a stamp file skips the work when nothing changed."""
    base = find_python(env.python)
    stamp = env.path / ".sharp-stamp"
    want = fingerprint(env.name, base)
    if stamp.is_file() and stamp.read_text() == want and env.python_exe.exists():
        return env.python_exe
    log(f"setting up {env.name} ({env.role}) with {base} ...")
    t0 = time.time()
    if env.path.exists():
        shutil.rmtree(env.path)
    if run([base, "-m", "venv", env.path]) != 0:
        raise SystemExit(f"[dev] could not create the virtual environment {env.path}")
    pip_install(env.python_exe, ["-r", REQUIREMENTS / f"{env.name}.txt"])
    stamp.write_text(want)
    log(f"{env.name} ready in {time.time() - t0:.0f} s")
    return env.python_exe


def setup(names: list[str]) -> dict[str, Path]:
    """The environments (built side by side: mostly downloads and unpacking) and the npm tools."""
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=len(names) + 2) as pool:
        npm, browser = pool.submit(ensure_npm_tools), pool.submit(ensure_chromium, log)
        pythons = dict(zip(names, pool.map(lambda name: ensure_env(ENVS[name]), names)))
        npm.result()
        browser.result()
    if time.time() - t0 > 5:
        log(f"environments ready in {time.time() - t0:.0f} s")
    return pythons


# PlayCanvas' splat-transform, the third-party splat tool tests/test_ply_interop.py reads our PLYs with
NPM_TOOLS = VENVS / "npm"
# splat-transform: the round-trip oracle for every format; gltf-validator: Khronos' validator for our .glb;
# playcanvas: the engine whose glTF reader reads our .glb (splat-transform only writes GLB)
NPM_PACKAGES = ("@playcanvas/splat-transform@3.7.0", "gltf-validator@2.0.0-dev.3.10", "playcanvas@2.23.3")


def ensure_npm_tools() -> None:
    """Install the pinned npm packages into .venv/npm once (a stamp skips it after); without npm the
    interop test says it is skipped, so this only warns."""
    npm = shutil.which("npm")
    if npm is None:
        log("npm not found: the splat-transform interop test will be skipped")
        return
    stamp = NPM_TOOLS / ".sharp-stamp"
    want = " ".join(NPM_PACKAGES)
    if stamp.is_file() and stamp.read_text() == want:
        return
    log(f"installing {want} into {NPM_TOOLS} ...")
    t0 = time.time()
    NPM_TOOLS.mkdir(parents=True, exist_ok=True)
    # --ignore-scripts: no install script is needed to read and write files (one dependency builds WebGPU)
    if run([npm, "install", "--prefix", NPM_TOOLS, "--no-audit", "--no-fund", "--ignore-scripts",
            "--loglevel", "error", *NPM_PACKAGES]) != 0:
        log("npm install failed: the splat-transform interop test will be skipped")
        return
    stamp.write_text(want)
    log(f"npm tools ready in {time.time() - t0:.0f} s")


# ---- test -----------------------------------------------------------------------------------------


def names_tests(args: list[str]) -> bool:
    """Whether pytest's arguments name tests (a path or a node id) rather than only options."""
    takes_value = {"-k", "-m", "-o", "-p", "-c", "-W", "-r", "--basetemp", "--rootdir", "--junitxml", "--ignore",
                   "--deselect", "--ignore-glob", "--durations", "--maxfail", "--confcutdir", "--tb"}
    previous = ""
    for arg in args:
        if not arg.startswith("-") and previous not in takes_value and ("::" in arg or (ROOT / arg).exists()):
            return True
        previous = arg
    return False


def runs_of(env: Env, pytest_args: list[str], quick: bool) -> list[tuple[str, list[str]]]:
    """The pytest runs of ``env`` as (label, -m expressions): where it runs every test, two runs (the bpy-free
    tests and the Blender-side suite) that can go side by side, else its share; --quick's cut on each. Named
    tests run as named, in one run."""
    if names_tests(pytest_args):
        return [("", [])]
    cut = [QUICK] if quick else []
    if env.runs == EVERYTHING:
        return [("bpy-free", ["not blender", *cut]), ("Blender-side", ["blender", *cut])]
    return [("", [env.runs, *cut])]


def pytest_arguments(marks: list[str], pytest_args: list[str]) -> list[str]:
    """The caller's pytest arguments with their -m folded into ``marks``: one -m expression."""
    marks, rest, args = list(marks), [], iter(pytest_args)
    for arg in args:
        if arg == "-m":
            marks.append(next(args, ""))
        elif arg.startswith("-m") and not arg.startswith("--"):
            marks.append(arg[2:].lstrip("="))
        else:
            rest.append(arg)
    expression = " and ".join(f"({m})" for m in marks if m.strip())
    return (["-m", expression] if expression else []) + rest


@dataclass
class Step:
    """One check of ``test``: a command, where its output goes, and how it ended."""

    name: str
    cmd: list[str]
    env: dict[str, str] | None = None
    basetemp: Path | None = None  # pytest's temporary folder: removed when the step passes
    status: int | None = None
    seconds: float = 0.0


RUNNING: set[subprocess.Popen] = set()  # the checks' process groups, killed on Ctrl-C


def run_step(step: Step, log_file: Path | None) -> Step:
    """Run ``step`` in its own process group (killed whole past PYTEST_TIME_LIMIT_S); its output to
    ``log_file``, or straight through when None."""
    t0 = time.time()
    with open(log_file or os.devnull, "w") as out:
        process = subprocess.Popen(step.cmd, cwd=ROOT, env=step.env, stdout=out if log_file else None,
                                   stderr=subprocess.STDOUT if log_file else None, start_new_session=True)
        RUNNING.add(process)
        try:
            step.status = process.wait(timeout=PYTEST_TIME_LIMIT_S)
        except subprocess.TimeoutExpired:
            kill(process)
            print(f"\n[dev] {step.name} killed after {PYTEST_TIME_LIMIT_S} s", file=out if log_file else sys.stdout,
                  flush=True)
            step.status = -signal.SIGKILL
        finally:
            RUNNING.discard(process)
    step.seconds = time.time() - t0
    return step


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_steps(steps: list[Step], jobs: int) -> None:
    """The steps, ``jobs`` at a time in the given order; with more than one, each one's output is printed
    whole when it ends."""
    try:
        if jobs <= 1:
            for step in steps:
                log(f"{step.name}")
                run_step(step, None)
            return
        logs = Path(tempfile.mkdtemp(prefix="sharp-dev-test-"))
        log(f"{', '.join(s.name for s in steps)}: {jobs} at a time, each printed when it ends (logs in {logs})")

        def one(step: Step) -> None:
            log_file = logs / f"{step.name.replace(' ', '-')}.log"
            run_step(step, log_file)
            print(f"\n[dev] ==== {step.name}: exit status {step.status} after {step.seconds:.0f} s ====\n"
                  + log_file.read_text(errors="replace"), end="", flush=True)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, steps))
        shutil.rmtree(logs, ignore_errors=True)
    except KeyboardInterrupt:
        for process in list(RUNNING):
            kill(process)
        raise


def test_steps(args: argparse.Namespace, names: list[str], pythons: dict[str, Path]) -> list[Step]:
    """What ``test`` runs, longest first (for two at a time): ruff; the pytest runs of the environments
    that run every test (blender-5.0's bpy-free run holds the 4-minute parity check); mypy; the rest."""
    runs = []
    for name in names:
        env = dict(os.environ, SHARP_TEST_ENV=name, PYTHONDONTWRITEBYTECODE="1",
                   SHARP_TEST_INFERENCE_PYTHON=str(pythons[MAIN_ENV]))
        for label, marks in runs_of(ENVS[name], args.pytest_args, args.quick):
            step = " ".join(filter(None, ("pytest", name, label)))
            basetemp = Path(tempfile.gettempdir()) / f"sharp-{step.replace(' ', '-')}-{os.getpid()}"
            cmd = [str(pythons[name]), "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={basetemp}",
                   *pytest_arguments(marks, args.pytest_args)]
            runs.append(Step(step, cmd, env, basetemp=basetemp))
    first = [r for r in runs if ENVS[r.name.split()[1]].runs == EVERYTHING and not r.name.endswith("bpy-free")]
    first = [r for r in runs if r.name == f"pytest {MAIN_ENV} bpy-free"] + first
    steps = first + [r for r in runs if r not in first]
    if MAIN_ENV in names and not args.no_lint:
        py = str(pythons[MAIN_ENV])
        if not args.quick:
            steps.insert(len(first), Step("mypy", [py, "-m", "mypy"]))
        steps.insert(0, Step("ruff", [py, "-m", "ruff", "check", "."]))
    return steps


def summary(steps: list[Step]) -> list[str]:
    """Print each check's verdict and time; the names of those that failed. pytest's 5 (nothing selected)
    is no failure where another pytest run found tests: a -k that picks only bpy-free tests leaves the
    Blender-side run empty."""
    empty_ok = any(step.status != NOTHING_SELECTED for step in steps if step.basetemp)
    failed = []
    for step in steps:
        empty = step.status == NOTHING_SELECTED and step.basetemp is not None and empty_ok
        verdict = "PASS" if step.status == 0 else "NONE (no test selected)" if empty else "FAIL"
        print(f"  {verdict}  {step.name}  {step.seconds:.0f} s" + (f" (exit status {step.status})"
                                                                   if verdict == "FAIL" else ""))
        if step.basetemp and (step.status == 0 or empty):
            shutil.rmtree(step.basetemp, ignore_errors=True)
        elif step.basetemp and step.basetemp.exists():
            print(f"        its temporary files: {step.basetemp}")
        if verdict == "FAIL":
            failed.append(step.name)
    return failed


def cmd_test(args: argparse.Namespace) -> int:
    t0 = time.time()
    names = args.env or ([MAIN_ENV] if args.quick else list(ENVS))
    pythons = setup([MAIN_ENV, *[n for n in names if n != MAIN_ENV]])
    steps = test_steps(args, names, pythons)
    run_steps(steps, 1 if len(steps) == 1 else args.jobs)
    print()
    failed = summary(steps)
    print(f"\n{'all checks passed' if not failed else 'FAILED: ' + ', '.join(failed)} "
          f"in {time.time() - t0:.0f} s")
    return 1 if failed else 0


# ---- demo -----------------------------------------------------------------------------------------


def locate_checkpoint(explicit: str | None, python: Path, accept_licence: bool) -> Path:
    """The checkpoint to use: --checkpoint, a default location, or (with --accept-licence) a download by the
    add-on's own ``download`` command (resumable, checked); else stop and explain."""
    from sharp_addon import dependencies as deps

    if explicit:
        path = Path(explicit).expanduser()
        status = deps.checkpoint_status(path)
        if not status.ok:
            raise SystemExit(f"[dev] {status.message}")
        return path
    found = deps.find_checkpoint()
    if found:
        log(deps.checkpoint_status(found).message)
        return found
    target = deps.default_checkpoint_paths()[-1]
    how = (f"To get them, on a machine with internet access run\n\n"
           f"    python -m sharp_addon download --accept-licence --to {deps.CHECKPOINT_NAME}\n\n"
           f"(or download {deps.CHECKPOINT_URL}), then either copy the file to {target}\n"
           f"or run:  python3 tools/dev.py demo --checkpoint /path/to/{deps.CHECKPOINT_NAME}\n")
    if not accept_licence:
        raise SystemExit(
            f"\nThe official SHARP weights ({deps.CHECKPOINT_NAME}, 2.8 GB) are not on this machine.\n"
            f"{deps.LICENCE_NOTICE}.\nRead it at {deps.LICENCE_URL}; to accept it and let the demo download "
            f"them, run\n\n"
            f"    python3 tools/dev.py demo --accept-licence\n\n{how}")
    log(f"SHARP weights not found; downloading them (2.8 GB) to {target} ...")
    if run([python, "-m", "sharp_addon", "download", "--accept-licence", "--to", target], cwd=ROOT) == 0:
        return target
    raise SystemExit(f"\nThe official SHARP weights could not be downloaded (the reason is above). {how}")


def cmd_demo(args: argparse.Namespace) -> int:
    python = setup([MAIN_ENV])[MAIN_ENV]
    log(f"environment ready: {python}")
    checkpoint = locate_checkpoint(args.checkpoint, python, args.accept_licence)
    log(f"converting {args.image} headlessly in Blender (CPU inference takes a few minutes) ...")
    cmd = [python, ROOT / "tools" / "demo_blender.py", "--checkpoint", checkpoint, "--image", args.image,
           "--output", args.output]
    code = run(cmd, cwd=ROOT)
    if code == 0:
        log(f"done: the splats (.ply), the scene (.blend) and its render (.png) are in {args.output}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="create or refresh the virtual environments")
    p.add_argument("--env", action="append", choices=list(ENVS))
    p = sub.add_parser("test", help="lint, type-check and run the test suite in every environment")
    p.add_argument("--env", action="append", choices=list(ENVS), help="only these environments")
    p.add_argument("--no-lint", action="store_true", help="skip ruff and mypy")
    p.add_argument("--quick", action="store_true", help=f"the inner loop: ruff, then blender-5.0 (or --env) "
                   f"with -m '{QUICK}'")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="checks run at once (default: 2, or 1 on one core; 1 streams their output)")
    p.add_argument("pytest_args", nargs="*", help="passed to pytest (put them after --)")
    p = sub.add_parser("demo", help="set up, then convert a sample photo headlessly in Blender")
    p.add_argument("--checkpoint", help="a local sharp_2572gikvuh.pt (default: find it, or download it "
                   "with --accept-licence)")
    p.add_argument("--accept-licence", "--accept-license", dest="accept_licence", action="store_true",
                   help="accept the weights' research-only licence, so that the demo may download them")
    p.add_argument("--image", default=str(ROOT / "tests" / "data" / "sample_640x480.png"))
    p.add_argument("--output", default=str(ROOT / "output"))
    args = parser.parse_args(argv)
    if args.command == "setup":
        setup(args.env or list(ENVS))
        return 0
    return {"test": cmd_test, "demo": cmd_demo}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
