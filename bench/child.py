"""Measure in a fresh child process: each configuration starts cold, and its peak memory is its own.

The child prints one ``RESULT {json}`` line (``report``); the parent runs it and reads that line
(``run_child``), showing everything the child printed when it failed.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

PREFIX = "RESULT "


def report(result: dict[str, Any]) -> None:
    """The child's side: its one result line."""
    print(PREFIX + json.dumps(result), flush=True)


def run_child(cmd: list[str], timeout: float | None = None, env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The child's result, or None (after printing its output) when it failed or printed none."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        print(f"timed out after {timeout:.0f} s: {' '.join(cmd)}")
        print((exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or "")
        return None
    line = next((x for x in proc.stdout.splitlines() if x.startswith(PREFIX)), None)
    if proc.returncode != 0 or line is None:
        print(proc.stdout + proc.stderr)
        return None
    result: dict[str, Any] = json.loads(line[len(PREFIX):])
    return result
