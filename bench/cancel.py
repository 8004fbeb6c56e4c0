#!/usr/bin/env python3
"""How long a cancel takes: from ``InferenceWorker.cancel()`` (what Esc calls) until the worker is gone.

    .venv/blender-5.0/bin/python bench/cancel.py [--runs 5] [--checkpoint tiny.pt]

A run of the small test network is started in a real worker process, cancelled after --after
seconds (mid-encoder on the tiny model), and timed; the baseline in the same process is the
time to start and stop an idle worker. Prints min / median / max of both. The suite checks what a
cancel leaves behind (nothing); this script measures how fast it is (goal: well under a second).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGE = ROOT / "tests" / "data" / "sample_640x480.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--after", type=float, default=0.5, help="seconds into the run before cancelling")
    parser.add_argument("--checkpoint", help="a checkpoint file (default: the tests' tiny network, written once)")
    args = parser.parse_args()

    from sharp_addon.worker import InferenceWorker, PredictRequest

    checkpoint = args.checkpoint or str(tiny_checkpoint())
    cancel_s, idle_s = [], []
    for _ in range(args.runs):
        worker = InferenceWorker()
        try:
            job = worker.submit(PredictRequest(str(IMAGE), checkpoint, device="cpu"))
            time.sleep(args.after)
            job.poll()
            t0 = time.perf_counter()
            worker.cancel()
            cancel_s.append(time.perf_counter() - t0)
            assert job.result is None and not worker.alive
            t0 = time.perf_counter()
            worker.submit(PredictRequest(str(IMAGE), str(ROOT / "absent.pt")))  # starts a fresh worker, fails at once
            worker.stop()
            idle_s.append(time.perf_counter() - t0)
        finally:
            worker.close()
    for label, values in (("cancel a running job", cancel_s), ("baseline: start and stop a worker", idle_s)):
        print(f"{label}: min {min(values) * 1000:.0f} ms, median {statistics.median(values) * 1000:.0f} ms, "
              f"max {max(values) * 1000:.0f} ms ({len(values)} runs)")
    return 0


def tiny_checkpoint() -> Path:
    import torch

    from tests.support.builders import tiny_state_dict

    path = Path(tempfile.gettempdir()) / "sharp-bench-tiny.pt"
    if not path.is_file():
        torch.save(tiny_state_dict(), path)
    return path


if __name__ == "__main__":
    sys.exit(main())
