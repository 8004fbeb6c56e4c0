"""The layers stay apart: the core imports without Blender, nothing imports torch eagerly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE_MODULES = ["sharp_addon", "sharp_addon.errors", "sharp_addon.gaussians", "sharp_addon.ply",
                "sharp_addon.dependencies", "sharp_addon.cli"]


def run_isolated(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where importing bpy or torch fails."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('bpy', 'torch'):\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    return subprocess.run([sys.executable, "-c", blocker + code], cwd=ROOT, capture_output=True, text=True)


def test_core_imports_without_bpy_and_without_torch():
    code = f"import importlib\nfor m in {CORE_MODULES!r}:\n    importlib.import_module(m)\n"
    code += "assert not any(m.split('.')[0] in ('bpy', 'torch') for m in sys.modules), sorted(sys.modules)\n"
    result = run_isolated(code)
    assert result.returncode == 0, result.stderr


def test_core_modules_say_no_bpy():
    for module in CORE_MODULES[1:]:
        source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
        assert "import bpy" not in source and "from bpy" not in source, module


def test_cli_runs_without_torch_and_says_so():
    result = run_isolated("from sharp_addon.cli import main\nsys.exit(main(['check']))")
    assert result.returncode == 1
    assert "missing PyTorch is not installed" in result.stdout
