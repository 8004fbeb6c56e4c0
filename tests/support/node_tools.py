"""The npm tools the interop tests run (installed into .venv/npm by ``tools/dev.py setup``): where they
are, and a skip that says why one is missing (a failure under CI=1, which must run them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".venv" / "npm" / "node_modules"
SUPPORT = Path(__file__).resolve().parent


def require_package(name: str, env: str | None = None) -> Path:
    """The folder of npm package ``name`` in .venv/npm (or the folder ``$env`` names), with node to
    run it; else the test is skipped saying why, or fails when CI is set."""
    folder = Path(os.environ[env]) if env and os.environ.get(env) else NODE_MODULES / name
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed"
    elif not folder.is_dir():
        hint = f" or set {env} to its folder" if env else ""
        missing = f"npm package {name} is not installed in {folder.parent} (run tools/dev.py setup{hint})"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the interop tests: {missing}")
        pytest.skip(missing)
    return folder


def run_node(script: str, *args: str | os.PathLike[str], timeout: float = 120) -> str:
    """Run ``tests/support/<script>`` with node; its stdout (the test fails with its output otherwise)."""
    done = subprocess.run(["node", str(SUPPORT / script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
