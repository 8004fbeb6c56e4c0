"""bench/gpu.py, the GPU measurement a lent GPU runs, works end to end (here on the CPU, tiny network)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
@pytest.mark.torch
def test_the_gpu_bench_runs_on_the_cpu_and_writes_its_report(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--tiny", "--device", "cpu",
                             "--runs", "1", "--precisions", "fp32,bf16", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = out.read_text()
    assert report == result.stdout  # what it printed is what it wrote
    assert report.startswith("# SHARP GPU report (tiny test network)\n")
    assert "Machine: cpu" in report and "## Parity (fp32)\nskipped: the golden data are for the full-size" in report
    precisions = report.split("## Precisions")[1].split("## Levers")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in precisions.splitlines()
            if line.startswith(("| fp", "| bf"))}
    assert rows["fp32"].endswith("| reference |")
    assert set(rows) == {"fp32", "bf16"}  # as asked: fp16 is emulated on a CPU, and slow
    assert "(median relative)" in rows["bf16"] and "(p99 abs)" in rows["bf16"]
    assert report.count("SDPA: flash attention only") == 2 and report.count("SDPA: plain maths kernel") == 2
