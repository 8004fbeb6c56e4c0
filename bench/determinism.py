#!/usr/bin/env python3
"""Is SHARP's CPU inference the same, bit for bit, every time? The tiny network, in fresh processes and in one.

    .venv/blender-5.0/bin/python bench/determinism.py [--runs 4] [--threads 1 3]
    .venv/blender-5.0/bin/python bench/determinism.py --cost [--rounds 11]

Default: writes the tiny test network (synthetic weights) as a checkpoint file, then predicts the
sample photo in float32
1. in --runs fresh processes; every second one believes the machine has only 30 MB free
   (``memory.free_memory`` patched), so its row strips are cut at other heights, as they are on a
   busy machine;
2. --runs times in one process, with other work between the runs (another photo, a bfloat16
   network, a run that sees little free memory), as a long-lived worker does.
Prints a Markdown table: per run, the max absolute difference of each array from the first run;
all "0" means bit for bit. ``--threads N ...``: one more fresh process per thread count (results
do change with the thread count; docs/notes/determinism.md).

``--cost``: what the strip-independent GroupNorm statistics (``gaussian_decoder.Moments``) cost:
the statistics of one full-size map (128 x 768 x 768) summed per 8-row block (now) and per strip
(as before), in interleaved rounds, median; and for each, how far the texture and geometry heads
(random weights) move when their strips are cut at other heights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.child import report, run_child  # noqa: E402

IMAGE = ROOT / "tests" / "data" / "sample_640x480.png"
ARRAYS = ("means", "scales", "quats", "colors", "opacities")
LOW_FREE_MB = 30.0  # what a "busy machine" run believes is free: the tiny network's strips get 8-24 rows


@contextmanager
def free_memory_seen_as(megabytes: float | None) -> Iterator[None]:
    """Inside, the memory policy sees only ``megabytes`` free (None: the real figure), so strips are cut elsewhere."""
    from sharp_addon.model import memory

    real = memory.free_memory
    if megabytes is not None:
        memory.free_memory = lambda device: int(megabytes * 2**20)
    try:
        yield
    finally:
        memory.free_memory = real


def write_tiny_checkpoint(path: Path) -> Path:
    import torch

    from tests.support.builders import tiny_state_dict

    torch.save(tiny_state_dict(), path)
    return path


def predict(predictor: Any, image: Any = IMAGE, free_mb: float | None = None,
            stages: list[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of one run; ``stages`` collects the stage of every progress step (one per strip, too)."""
    with free_memory_seen_as(free_mb):
        g = predictor.predict(image, progress=None if stages is None else lambda stage, _: stages.append(stage))
    return {name: getattr(g, name) for name in ARRAYS}


def other_work(checkpoint: Path, predictor: Any, more: bool) -> None:
    """What a long-lived worker does between two runs of the same photo: another photo while memory
    is short; with ``more``, that photo again with memory to spare and a bfloat16 network's run."""
    from sharp_addon.api import load_predictor

    photo = np.random.default_rng(1).integers(0, 256, size=(301, 199, 3), dtype=np.uint8)
    predict(predictor, photo, free_mb=LOW_FREE_MB)
    if more:
        predict(predictor, photo)
        predict(load_predictor(checkpoint, device="cpu", precision="bf16"), photo)


def child(args: argparse.Namespace) -> None:
    """One fresh process: the photo's arrays into ``args.out`` (and ``again_*`` after other work with --again).

    Reports its thread count and its progress steps per stage (more steps: more strips).
    """
    import torch

    from sharp_addon.api import load_predictor

    if args.child_threads:
        torch.set_num_threads(args.child_threads)
    predictor = load_predictor(args.checkpoint, device="cpu", precision="fp32")
    stages: list[str] = []
    arrays = predict(predictor, free_mb=args.free_mb, stages=stages)
    if args.again:
        other_work(args.checkpoint, predictor, more=False)
        arrays |= {f"again_{k}": v for k, v in predict(predictor).items()}
    np.savez(args.out, **arrays)
    report({"threads": torch.get_num_threads(), "steps": {stage: stages.count(stage) for stage in set(stages)}})


def child_command(checkpoint: Path, out: Path, free_mb: float | None = None, threads: int | None = None,
                  again: bool = False) -> list[str]:
    """The command line of one fresh process (``child``)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--checkpoint", str(checkpoint), "--out", str(out)]
    cmd += ["--free-mb", str(free_mb)] if free_mb is not None else []
    cmd += ["--child-threads", str(threads)] if threads else []
    return cmd + (["--again"] if again else [])


def max_differences(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(np.abs(other[name].astype(np.float64) - ref[name]).max()) for name in ARRAYS}


def table(rows: list[tuple[str, dict[str, np.ndarray]]]) -> str:
    """Markdown: each run's max absolute difference from the first run, per array."""
    ref = rows[0][1]
    lines = ["| run | " + " | ".join(ARRAYS) + " |", "|---|" + "---|" * len(ARRAYS)]
    for label, arrays in rows:
        d = max_differences(ref, arrays)
        lines.append(f"| {label} | " + " | ".join(f"{d[n]:.2g}" for n in ARRAYS) + " |")
    return "\n".join(lines)


def repeatability(runs: int, thread_counts: list[int]) -> None:
    import torch

    from sharp_addon.api import load_predictor

    with tempfile.TemporaryDirectory(prefix="sharp-determinism-") as tmp:
        checkpoint = write_tiny_checkpoint(Path(tmp) / "tiny.pt")
        rows = []
        plans: list[tuple[str, float | None, int | None]] = [
            (f"fresh process {i + 1}" + (f", {LOW_FREE_MB:.0f} MB free" if i % 2 else ""),
             LOW_FREE_MB if i % 2 else None, None) for i in range(runs)]
        plans += [("fresh process, thread count set", None, n) for n in thread_counts]
        for i, (label, free_mb, threads) in enumerate(plans):
            out = Path(tmp) / f"run{i}.npz"
            result = run_child(child_command(checkpoint, out, free_mb, threads), timeout=600)
            if result is None:
                raise SystemExit(f"{label} failed")
            with np.load(out) as data:
                rows.append((f"{label} (threads: {result['threads']})", {k: data[k] for k in ARRAYS}))
        print(f"Fresh processes (this process has {torch.get_num_threads()} threads):\n\n{table(rows)}\n")

        predictor = load_predictor(checkpoint, device="cpu", precision="fp32")
        rows = [("run 1", predict(predictor))]
        for i in range(1, runs):
            other_work(checkpoint, predictor, more=True)
            rows.append((f"run {i + 1}, after other work", predict(predictor, free_mb=LOW_FREE_MB if i % 2 else None)))
        print(f"One process, other work between runs:\n\n{table(rows)}\n")


def per_strip_moments() -> type:
    """``gaussian_decoder.Moments`` as it was: summed in float32 per strip, so the sums change with the strip height."""
    import torch

    from sharp_addon.model.gaussian_decoder import Moments

    class PerStripMoments(Moments):
        def add(self, x: torch.Tensor) -> None:
            pixels = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]).float()
            ones = pixels.new_ones((1, pixels.shape[0]))
            self.sum = self.sum + (ones @ pixels)[0].double()
            self.sum_sq = self.sum_sq + (ones @ (pixels * pixels))[0].double()
            self.count += pixels.shape[0]

    return PerStripMoments


def both_heads(kind: type, heads: list, fused: Any, rows: int) -> list:
    """The texture and geometry heads on ``fused`` in strips of ``rows``, statistics summed by ``kind``."""
    from sharp_addon.model import gaussian_decoder as gd
    from sharp_addon.model.strips import strips

    saved = gd.Moments
    setattr(gd, "Moments", kind)  # noqa: B010 - run_residual_block makes its own
    try:
        moments = kind()
        for strip in strips(fused.shape[2], rows, 0):
            moments.add(fused[..., strip.rows(), :])
        return [gd.run_head(head, fused, moments, rows) for head in heads]
    finally:
        setattr(gd, "Moments", saved)  # noqa: B010


def cost(rounds: int) -> None:
    import torch

    from sharp_addon.model import gaussian_decoder as gd
    from sharp_addon.model.config import SharpConfig
    from sharp_addon.model.memory import CPU_STRIP_BUDGET
    from sharp_addon.model.strips import strip_rows, strips

    cfg = SharpConfig()
    dim, g = cfg.gaussian_decoder_dim, cfg.grid_size
    torch.manual_seed(0)
    heads = [gd.feature_head(dim, cfg.head_dim, cfg.norm_groups).eval().requires_grad_(False) for _ in range(2)]
    fused = torch.randn(1, dim, g, g).contiguous(memory_format=torch.channels_last)
    rows = strip_rows(7 * dim * g * 4, CPU_STRIP_BUDGET / 2, g, 1)  # what a full-size CPU run uses
    kinds = {"per 8-row block (now)": gd.Moments, "per strip (before)": per_strip_moments()}
    times: dict[str, list[float]] = {name: [] for name in kinds}
    with torch.inference_mode():
        for _ in range(rounds):  # interleaved: both kinds see the same machine load
            for name, kind in kinds.items():
                t0 = time.perf_counter()
                moments = kind()
                for strip in strips(g, rows, 0):
                    moments.add(fused[..., strip.rows(), :])
                times[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reference = {name: both_heads(kind, heads, fused, rows) for name, kind in kinds.items()}
        heads_s = (time.perf_counter() - t0) / len(kinds)
        spread = {name: max(float((a - b).abs().max()) for other in (32, g)
                            for a, b in zip(both_heads(kind, heads, fused, other), reference[name]))
                  for name, kind in kinds.items()}
    maps = 1 + 2 * 2 * len(heads)  # the fused map, and each residual block's hidden and output map
    print(f"GroupNorm statistics of one {dim} x {g} x {g} map in {rows}-row strips (a full-size run sums {maps} "
          f"such maps; both heads together took {heads_s:.1f} s here), {rounds} interleaved rounds, "
          f"{torch.get_num_threads()} threads:\n\n| statistics summed | one map, median | per run ({maps} maps) | "
          f"rounds | heads with {32}- and {g}-row strips against {rows}-row ones, max abs |\n|---|---|---|---|---|")
    for name in kinds:
        median = statistics.median(times[name])
        print(f"| {name} | {median * 1e3:.0f} ms | {maps * median:.2f} s | "
              f"{', '.join(f'{t * 1e3:.0f}' for t in times[name])} | {spread[name]:.2g} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--threads", type=int, nargs="*", default=[], help="also a fresh process with these counts")
    parser.add_argument("--cost", action="store_true", help="time the heads' statistics, per block and per strip")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--free-mb", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--again", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.child:
        child(args)
    elif args.cost:
        cost(args.rounds)
    else:
        repeatability(args.runs, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
