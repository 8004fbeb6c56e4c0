#!/usr/bin/env python3
"""The exact render (sharp_addon.render) at 1920 x 1080 of 1,179,648 SHARP-shaped splats: time and memory.

    .venv/blender-5.0/bin/python bench/render.py [--runs 3] [--device cpu|cuda] [--backend torch|gsplat|auto]

The scene is synthetic and shaped like a SHARP prediction: two layers of 768 x 768 splats, one
per grid cell of the image, on a smooth depth field (the second 0.4 m behind the first), each
about 1 px across on screen (sigma f / z ~ 1 px, mildly anisotropic, random rotations), opacities
0.5-1 (front) and 0.3-1 (back). In a fresh child process per configuration: the median wall time of
--runs renders (after one warm-up render), its ratio to a baseline run in the same process (ten
2048^3 float32 matrix products, 172 GFLOP, on the same device), and the peak memory (ru_maxrss; on
CUDA also torch's peak allocation). Prints a Markdown table row for docs/notes/exact-render.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WIDTH, HEIGHT, FOCAL, SIDE = 1920, 1080, 1500.0, 768


def sharp_shaped_scene():
    import numpy as np

    from sharp_addon.gaussians import Gaussians

    rng = np.random.default_rng(0)
    u, v = np.meshgrid((np.arange(SIDE) + 0.5) * WIDTH / SIDE, (np.arange(SIDE) + 0.5) * HEIGHT / SIDE)
    u, v = u.ravel(), v.ravel()
    depth = 3.0 + 0.6 * np.sin(6 * np.pi * u / WIDTH) * np.cos(4 * np.pi * v / HEIGHT)
    z = np.concatenate([depth, depth + 0.4])
    uu, vv = np.tile(u, 2), np.tile(v, 2)
    means = np.column_stack([(uu - WIDTH / 2) * z / FOCAL, (vv - HEIGHT / 2) * z / FOCAL, z])
    n = len(z)
    scales = (z / FOCAL)[:, None] * rng.uniform(0.6, 1.4, (n, 3))
    opacities = np.concatenate([rng.uniform(0.5, 1.0, n // 2), rng.uniform(0.3, 1.0, n // 2)])
    return Gaussians(means=means, scales=scales, quats=rng.normal(size=(n, 4)), colors=rng.uniform(0, 1, (n, 3)),
                     opacities=opacities, focal_px=FOCAL, image_size=(WIDTH, HEIGHT))


def child(args: argparse.Namespace) -> None:
    import torch

    from sharp_addon.cameras import Camera
    from sharp_addon.render import render_gaussians

    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # baseline in the same process and on the same device, so that figures from different days
    # or machines can be compared as ratios
    a, b = torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device)
    gemm_times = []
    for _ in range(3):
        sync()
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        sync()
        gemm_times.append(time.perf_counter() - t0)
    gemm_s = statistics.median(gemm_times)
    del a, b
    g = sharp_shaped_scene()
    camera = Camera.from_gaussians(g)
    image = render_gaussians(g, camera, backend=args.backend, device=args.device)  # warm-up
    times = []
    for _ in range(args.runs):
        sync()
        t0 = time.perf_counter()
        image = render_gaussians(g, camera, backend=args.backend, device=args.device)
        sync()
        times.append(time.perf_counter() - t0)
    out = {"times": times, "median_s": statistics.median(times), "gemm_s": gemm_s, "n": len(g),
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
           "cuda_peak_gb": torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None,
           "mean_alpha": float(image[..., 3].mean())}
    print("RESULT " + json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch", choices=("torch", "gsplat", "auto"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    cmd = [sys.executable, __file__, "--child", "--runs", str(args.runs), "--device", args.device,
           "--backend", args.backend]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        print(proc.stdout + proc.stderr)
        return 1
    r = json.loads(line[7:])
    cuda = "" if r["cuda_peak_gb"] is None else f", CUDA peak {r['cuda_peak_gb']:.2f} GB"
    print(f"| {args.device} {args.backend} | {r['n']:,} splats {WIDTH}x{HEIGHT} | {r['median_s']:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in r['times'])}) | {r['median_s'] / r['gemm_s']:.1f}x "
          f"({r['gemm_s']:.2f} s) | {r['peak_rss_gb']:.2f} GB{cuda} | mean alpha {r['mean_alpha']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
