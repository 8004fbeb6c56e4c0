#!/usr/bin/env python3
"""Development front door: environments, the test suite, and the headless demo.

    python3 tools/dev.py demo [--checkpoint PATH]   # set up, then convert a sample photo in Blender
    python3 tools/dev.py test [--env NAME] [-- PYTEST ARGS]
    python3 tools/dev.py setup [--env NAME]

Standard library only, so a fresh machine needs nothing but Python 3.11 (and 3.13 for the
Blender 5.2 and 5.3 environments). Every environment is a virtual environment under ``.venv/`` built
from ``requirements/*.txt`` and rebuilt when those files change:

    blender-5.0   Python 3.11, bpy 5.0.1 + CPU torch   the full suite, lint and type check
    blender-4.2   Python 3.11, bpy 4.2 LTS, numpy < 2  the Blender-side suite
    blender-5.2   Python 3.13, bpy 5.2.3, no torch     the Blender-side suite
    blender-5.3   Python 3.13, bpy 5.3.0, no torch     the Blender-side suite (native splats)

The 3.13 environments have no torch: their tests that need it run inference in blender-5.0's
Python through the add-on's Python for Inference, so blender-5.0 is always built first.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements"
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Env:
    name: str
    python: str  # "3.11"
    role: str

    @property
    def path(self) -> Path:
        return VENVS / self.name

    @property
    def python_exe(self) -> Path:
        return self.path / "bin" / "python"


ENVS = {
    e.name: e
    for e in (
        Env("blender-5.0", "3.11", "full suite: Blender 5.0 with CPU torch, lint, type check"),
        Env("blender-4.2", "3.11", "Blender-side suite on the 4.2 LTS line"),
        Env("blender-5.2", "3.13", "Blender-side suite on Blender 5.2 (no torch)"),
        Env("blender-5.3", "3.13", "Blender-side suite on Blender 5.3 (no torch; native splats)"),
    )
}
MAIN_ENV = "blender-5.0"


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
        raise SystemExit(f"[dev] pip install failed: {' '.join(args)}")


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
    pythons = {name: ensure_env(ENVS[name]) for name in names}
    ensure_npm_tools()
    return pythons


# PlayCanvas' splat-transform, the third-party splat tool tests/test_ply_interop.py reads our PLYs with
NPM_TOOLS = VENVS / "npm"
NPM_PACKAGES = ("@playcanvas/splat-transform@3.7.0",)


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


def cmd_test(args: argparse.Namespace) -> int:
    names = args.env or list(ENVS)
    # blender-5.0 first, always: the 3.13 environments' torch tests run inference in its Python
    pythons = setup([MAIN_ENV, *[n for n in names if n != MAIN_ENV]])
    results: list[tuple[str, int]] = []
    if MAIN_ENV in names and not args.no_lint:
        py = pythons[MAIN_ENV]
        log("ruff check")
        results.append(("ruff", run([py, "-m", "ruff", "check", "."], cwd=ROOT)))
        log("mypy (sharp_addon against fake-bpy-module)")
        results.append(("mypy", run([py, "-m", "mypy"], cwd=ROOT)))
    for name in names:
        log(f"pytest in {name}: {ENVS[name].role}")
        env = dict(os.environ, SHARP_TEST_ENV=name, PYTHONDONTWRITEBYTECODE="1",
                   SHARP_TEST_INFERENCE_PYTHON=str(pythons[MAIN_ENV]))
        code = run([pythons[name], "-m", "pytest", "-p", "no:cacheprovider", *args.pytest_args], cwd=ROOT, env=env)
        results.append((f"pytest {name}", code))
    print()
    for what, code in results:
        print(f"  {'PASS' if code == 0 else 'FAIL'}  {what}" + ("" if code == 0 else f" (exit status {code})"))
    failed = [what for what, code in results if code != 0]
    print(f"\n{'all checks passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 1 if failed else 0


# ---- demo -----------------------------------------------------------------------------------------


def download(url: str, target: Path) -> str | None:
    """Fetch ``url`` to ``target`` (via a .part file); the reason on failure, None on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done, last = 0, 0.0
            while chunk := response.read(1 << 22):
                out.write(chunk)
                done += len(chunk)
                if time.time() - last > 5:
                    log(f"  {done / 1e9:.2f} of {total / 1e9:.2f} GB")
                    last = time.time()
        os.replace(part, target)
        return None
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        return str(getattr(e, "reason", e))


def locate_checkpoint(explicit: str | None) -> Path:
    """The checkpoint to use: --checkpoint, a default location, or a fresh download; else stop and explain."""
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
    log(f"SHARP weights not found; downloading {deps.CHECKPOINT_URL} (2.8 GB) to {target} ...")
    reason = download(deps.CHECKPOINT_URL, target)
    if reason is None:
        return target
    raise SystemExit(
        f"\nThe official SHARP weights ({deps.CHECKPOINT_NAME}, 2.8 GB) are not on this machine and could not\n"
        f"be downloaded ({reason}). To get them, on a machine with internet access run\n\n"
        f"    curl -L -o {deps.CHECKPOINT_NAME} {deps.CHECKPOINT_URL}\n\n"
        f"then either copy the file to {target}\n"
        f"or run:  python3 tools/dev.py demo --checkpoint /path/to/{deps.CHECKPOINT_NAME}\n"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    python = setup([MAIN_ENV])[MAIN_ENV]
    log(f"environment ready: {python}")
    checkpoint = locate_checkpoint(args.checkpoint)
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
    p.add_argument("pytest_args", nargs="*", help="passed to pytest (put them after --)")
    p = sub.add_parser("demo", help="set up, then convert a sample photo headlessly in Blender")
    p.add_argument("--checkpoint", help="a local sharp_2572gikvuh.pt (default: find or download it)")
    p.add_argument("--image", default=str(ROOT / "tests" / "data" / "sample_640x480.png"))
    p.add_argument("--output", default=str(ROOT / "output"))
    args = parser.parse_args(argv)
    if args.command == "setup":
        setup(args.env or list(ENVS))
        return 0
    return {"test": cmd_test, "demo": cmd_demo}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
