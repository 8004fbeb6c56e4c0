"""A Python with torch for the Blender tests, wherever they run, and the tests' small checkpoint written by it.

The 3.13 environments (Blender 5.2, 5.3) have no torch: there the tests that need it set the
blender-5.0 environment's Python (3.11, CPU torch) as the Python for Inference, which is how a user
of such a Blender runs SHARP on a Python that has torch. Its fixtures are a pytest plugin
(``conftest.pytest_plugins``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from sharp_addon import runtimes as R

ROOT = Path(__file__).resolve().parents[2]
HAS_TORCH = importlib.util.find_spec("torch") is not None


def blender_50_python() -> str | None:
    """The blender-5.0 environment's Python (3.11 with CPU torch), if it is built."""
    path = os.environ.get("SHARP_TEST_INFERENCE_PYTHON") or str(ROOT / ".venv" / "blender-5.0" / "bin" / "python")
    return path if Path(path).is_file() and R.probe_python(path).ok else None


@pytest.fixture(scope="session")
def other_python(tmp_path_factory) -> str:
    """Another interpreter than Blender's, with torch, numpy and pillow: where this environment has
    torch, a fresh venv that sees this environment's packages (through a .pth file) but is a
    separate interpreter; elsewhere (Python 3.13) the blender-5.0 environment's Python."""
    if not HAS_TORCH:
        found = blender_50_python()
        if found is None:
            pytest.skip("no Python with torch to run inference in: build .venv/blender-5.0 (tools/dev.py setup)")
        return found
    folder = tmp_path_factory.mktemp("inference-venv")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    python = folder / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "blender-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return str(python)


@pytest.fixture
def torch_somewhere(prefs, other_python):
    """Inference needs torch: Blender's own where it has it, else (3.13) the blender-5.0 environment's
    Python as the Python for Inference."""
    if not HAS_TORCH:
        prefs.inference_python = other_python
    return prefs


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory, other_python) -> Path:
    """The tests' small SHARP checkpoint, written by a Python with torch (this one may have none)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    code = ("import sys, torch; from tests.support.builders import tiny_state_dict; "
            "torch.save(tiny_state_dict(), sys.argv[1])")
    subprocess.run([other_python, "-c", code, str(path)], cwd=ROOT, check=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return path


