"""Parity with Apple's reference: the parity kit's checker run against our implementation (fp32, CPU).

Slow (about 3 minutes and 9 GB on a 2-core machine) but run in CI all the same.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.torch
def test_check_parity_passes_in_fp32_on_cpu(shared_dir):
    pytest.importorskip("torch", reason="needs PyTorch, which this test environment does not have")
    result = subprocess.run(
        [sys.executable, str(shared_dir / "parity" / "check_parity.py"), "tests.parity_candidate:candidate",
         "--path", str(ROOT), "--require-all"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines[-1] == "PARITY OK", result.stdout[-6000:] + result.stderr[-3000:]
    assert not any(line.startswith(("FAIL", "SKIP")) for line in lines), "\n".join(lines)
