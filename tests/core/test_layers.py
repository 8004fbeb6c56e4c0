"""The layers stay apart, read from the source and checked by importing.

- From the source (every import statement, lazy ones inside functions included, relative imports
  resolved): only ``sharp_addon/blender/`` imports bpy or Blender's other modules, and nothing
  outside it imports the Blender layer, but the package's ``register()``, the extension's entry
  point. The Blender layer never imports torch or the model at module level.
- By importing, in fresh interpreters: every core module imports with bpy unavailable; those
  outside ``model/`` (the model is torch code) and the renderer's backends (``render/`` but its
  ``__init__``) also with torch unavailable; none pulls either in.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sharp_addon"
BLENDER_MODULES = {"bpy", "bpy_extras", "mathutils", "addon_utils", "bmesh", "gpu", "bl_ui", "bl_operators"}
ENTRY_POINT = "sharp_addon"  # __init__.register() imports the Blender layer when Blender enables the add-on


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, bool, int]]:
    """(absolute module name, at module level?, line) for every import in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            # "from . import blender" imports the submodule blender; "from .x import y" imports x
            targets = [f"{base}.{alias.name}" for alias in node.names] if node.module is None else [base]
            found += [(t, id(node) in top_level, node.lineno) for t in targets]
    return found


def is_blender_layer(name: str) -> bool:
    return name == "sharp_addon.blender" or name.startswith("sharp_addon.blender.")


def test_the_import_reader_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    """The reader itself: a lazy relative import of the Blender layer is found (the old api.py did this)."""
    sample = tmp_path / "sharp_addon" / "api.py"
    sample.parent.mkdir()
    sample.write_text("def f():\n    from .blender.scene import gaussians_to_object\n    import bpy\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imports(sample) == [("sharp_addon.blender.scene", False, 2), ("bpy", False, 3)]


def test_only_the_blender_layer_imports_blender():
    problems = []
    for name, path in all_modules().items():
        if is_blender_layer(name):
            continue
        for target, _, line in imports(path):
            if target.split(".")[0] in BLENDER_MODULES:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
            if is_blender_layer(target) and name != ENTRY_POINT:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports the Blender layer ({target})")
    assert not problems, "\n".join(problems)


def test_the_blender_layer_imports_no_torch_at_module_level():
    heavy = ("torch", "sharp_addon.model", "sharp_addon.api")
    problems = [f"{path.relative_to(ROOT)}:{line} imports {target} at module level"
                for name, path in all_modules().items() if is_blender_layer(name)
                for target, top, line in imports(path) if top and target.startswith(heavy)]
    assert not problems, "\n".join(problems)


def run_isolated(code: str, blocked: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where importing the ``blocked`` top-level modules fails."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {blocked!r}:\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    return subprocess.run([sys.executable, "-c", blocker + code], cwd=ROOT, capture_output=True, text=True)


def is_torch_code(name: str) -> bool:
    """The model and the exact renderer's backends may import torch at module level."""
    return name.startswith(("sharp_addon.model", "sharp_addon.render."))


def core_modules(with_model: bool) -> list[str]:
    return [name for name in all_modules() if not is_blender_layer(name) and name != "sharp_addon.__main__"
            and (with_model or not is_torch_code(name))]


@pytest.mark.parametrize(("blocked", "with_model"), [(("bpy", "torch"), False), (("bpy",), True)],
                         ids=["without bpy and torch", "model without bpy"])
def test_core_modules_import_without_what_they_must_not_need(blocked, with_model):
    if with_model:
        pytest.importorskip("torch", reason="the model is torch code; this environment has no torch")
    modules = core_modules(with_model)
    code = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
    code += f"pulled = sorted(m for m in sys.modules if m.split('.')[0] in {blocked!r})\n"
    code += "assert not pulled, pulled\n"
    result = run_isolated(code, blocked)
    assert result.returncode == 0, result.stderr
    assert len(modules) > (20 if with_model else 8)


def test_cli_runs_without_torch_and_says_so():
    result = run_isolated("from sharp_addon.cli import main\nsys.exit(main(['check']))", ("bpy", "torch"))
    assert result.returncode == 1
    assert "missing PyTorch is not installed" in result.stdout


def import_graph() -> dict[str, set[str]]:
    """The package's modules and the package modules each imports (every import, lazy ones too)."""
    modules = all_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for target, _, _ in imports(path):
            while target and target not in modules:  # "from .x import y" may name an attribute: its module
                target = target.rpartition(".")[0]
            if target and target != name and target != "sharp_addon":
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_through_others():
    """No import circle anywhere in the package, lazy imports included (a package's __init__ that
    re-exports its submodules is not a circle: its submodules import their siblings, not it)."""
    graph = import_graph()
    assert len(graph) > 60 and "sharp_addon.blender.long_operator" in graph
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(group) for group in found)
