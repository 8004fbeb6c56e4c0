#!/usr/bin/env python3
"""From pressing OK to the first progress and to the result: a fresh worker, then a kept-loaded one.

    .venv/blender-5.0/bin/python bench/cold_start.py [--runs 3] [--checkpoint FILE] [--precision fp32]

Times, in a host that never imports torch (as Blender), what SHARP from Image waits for: the
worker process starting, its first progress event (sent before the checkpoint is opened), the
network loaded (the first event after "loading"), and the result; then a second photo on the same,
kept-loaded worker (no load: its first event is "prepare"). Baselines in the same process: starting
a bare Python, and one that imports torch. Medians of --runs fresh workers. Without --checkpoint,
the tests' small network is used (the load then costs almost nothing; the full-size synthetic file
that bench/inference.py writes, .venv/bench-synthetic-sharp.pt, shows the 2.8 GB case).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGE = ROOT / "tests" / "data" / "sample_640x480.png"


def follow(worker, request) -> dict[str, float]:
    """Seconds from submit to the first event, to the first step after loading, and to the result."""
    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    def seen(stage: str, fraction: float) -> None:
        now = time.perf_counter() - t0
        marks.setdefault("first progress", now)
        if stage != "loading":
            marks.setdefault("network ready", now)

    job = worker.submit(request, on_progress=seen)
    while not job.poll():
        time.sleep(0.005)
    if job.error is not None:
        raise job.error
    marks["result"] = time.perf_counter() - t0
    return marks


def process_seconds(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--checkpoint", help="default: the tests' small network, written once")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    from sharp_addon.worker import InferenceWorker, PredictRequest

    assert "torch" not in sys.modules
    checkpoint = args.checkpoint or str(tiny_checkpoint())
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    for _ in range(args.runs):
        worker = InferenceWorker()
        try:
            cold.append(follow(worker, PredictRequest(str(IMAGE), checkpoint, device="cpu", precision=args.precision)))
            warm.append(follow(worker, PredictRequest(str(IMAGE), checkpoint, device="cpu", precision=args.precision)))
        finally:
            worker.close()
    assert "torch" not in sys.modules, "the host imported torch"
    bare = statistics.median(process_seconds("pass") for _ in range(args.runs))
    with_torch = statistics.median(process_seconds("import torch") for _ in range(args.runs))
    print(f"checkpoint: {checkpoint} ({Path(checkpoint).stat().st_size / 1e9:.2f} GB), precision {args.precision}, "
          f"median of {args.runs}")
    print("| run | first progress s | network ready s | result s |")
    print("|---|---|---|---|")
    for label, marks in (("fresh worker", cold), ("kept-loaded worker, second photo", warm)):
        cells = [statistics.median(m[k] for m in marks) for k in ("first progress", "network ready", "result")]
        print(f"| {label} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    print(f"baselines: a bare Python starts in {bare:.2f} s; one that imports torch in {with_torch:.2f} s")
    return 0


def tiny_checkpoint() -> Path:
    """The tests' small network as a file, written once by a child process (this host stays torch-free)."""
    path = Path(tempfile.gettempdir()) / "sharp-bench-tiny.pt"
    if not path.is_file():
        code = ("import sys, torch; sys.path.insert(0, sys.argv[2]); "
                "from tests.support.builders import tiny_state_dict; torch.save(tiny_state_dict(), sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(path), str(ROOT)], check=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
