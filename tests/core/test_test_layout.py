"""The tests stay easy to follow: no test module imports another test module (what two share lives in
``tests/support``), and ``bench/`` and ``tools/`` take nothing from ``tests/`` but ``tests/support``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name a file imports (``from tests import x`` counts as ``tests.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def is_test_module(name: str) -> bool:
    return name.startswith("tests.") and name.rpartition(".")[2].startswith("test_")


def test_no_test_module_imports_another():
    problems = [f"{path.relative_to(ROOT)} imports {name}"
                for path in sorted((ROOT / "tests").rglob("*.py"))
                for name in sorted(imported_modules(path)) if is_test_module(name)]
    assert not problems, "\n".join(problems)


def test_bench_and_tools_use_nothing_of_the_tests_but_their_support():
    problems = [f"{path.relative_to(ROOT)} imports {name}"
                for folder in ("bench", "tools") for path in sorted((ROOT / folder).rglob("*.py"))
                for name in sorted(imported_modules(path))
                if (name == "tests" or name.startswith("tests.")) and name not in ("tests", "tests.support")
                and not name.startswith("tests.support.")]
    assert not problems, "\n".join(problems)


def test_the_reader_sees_both_import_forms(tmp_path):
    sample = tmp_path / "test_x.py"
    sample.write_text("from tests.core import test_cli\nimport tests.blender.test_scene as s\n")
    names = imported_modules(sample)
    assert is_test_module("tests.core.test_cli") and "tests.core.test_cli" in names
    assert "tests.blender.test_scene" in names
