#!/usr/bin/env python3
"""SHARP inference at full size with the synthetic weights of tests/support/synthetic_weights.py: time and peak memory.

    .venv/blender-5.0/bin/python bench/inference.py [--runs 3] [--precision fp32|bf16|int8] [--device cpu]

Writes the synthetic checkpoint once (``--checkpoint`` to reuse one), then in a fresh child process
per configuration: checkpoint loading time, the median wall time of --runs predictions of the parity
image, its ratio to a baseline run in the same process (1 TFLOP of ViT-shaped matrix products in
the same precision), and the peak resident memory (ru_maxrss). Prints a Markdown table row.
``int8``: the float32 network with its ViT linears quantized (``bench/int8_quantization.py``;
its baseline is float32's). ``--save FILE.npz`` keeps the last run's Gaussians (error comparisons).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.child import report, run_child  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / ".venv" / "bench-synthetic-sharp.pt"
IMAGE = ROOT / "tests" / "data" / "sample_640x480.png"


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from sharp_addon.api import load_predictor

    # baseline in the same process: 1 TFLOP of ViT-shaped GEMMs in the run's precision, so that
    # figures from different days or machines can be compared as ratios
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision, torch.float32)
    a, b = torch.randn(20772, 1024, dtype=dtype), torch.randn(1024, 4096, dtype=dtype)
    gemm_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(6):  # 6 x 2 x 20772 x 1024 x 4096 = 1.05 TFLOP
            a @ b
        gemm_times.append(time.perf_counter() - t0)
    gemm_s = statistics.median(gemm_times)
    del a, b
    t0 = time.perf_counter()
    predictor = load_predictor(args.checkpoint, device=args.device,
                               precision="fp32" if args.precision == "int8" else args.precision)
    if args.precision == "int8":
        from bench.int8_quantization import quantize_vit_linears

        quantize_vit_linears(predictor.model, predictor.device)
        predictor.mapped = {}  # the replaced float weights are no longer the network's
    load_s = time.perf_counter() - t0
    times, result = [], None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        result = predictor.predict(IMAGE)
        times.append(time.perf_counter() - t0)
    assert result is not None
    if args.save:
        np.savez(args.save, means=result.means, colors=result.colors, opacities=result.opacities,
                 scales=result.scales, quats=result.quats)
    out = {"load_s": load_s, "times": times, "median_s": statistics.median(times), "gemm_s": gemm_s,
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
           "n": len(result), "finite": bool(np.isfinite(result.means).all())}
    report(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--save", type=Path, help="write the last run's Gaussians to this .npz")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    if not args.checkpoint.is_file():
        import torch

        from tests.support.synthetic_weights import official_shapes, synthetic_state_dict

        print(f"writing synthetic checkpoint {args.checkpoint} ...", flush=True)
        torch.save(synthetic_state_dict(official_shapes()), args.checkpoint)
    cmd = [sys.executable, __file__, "--child", "--runs", str(args.runs), "--device", args.device,
           "--precision", args.precision, "--checkpoint", str(args.checkpoint)]
    cmd += ["--save", str(args.save)] if args.save else []
    r = run_child(cmd)
    if r is None:
        return 1
    print(f"| {args.device} {args.precision} | {r['load_s']:.1f} s | {r['median_s']:.1f} s "
          f"({', '.join(f'{t:.1f}' for t in r['times'])}) | {r['median_s'] / r['gemm_s']:.1f}x "
          f"({r['gemm_s']:.2f} s) | {r['peak_rss_gb']:.2f} GB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
