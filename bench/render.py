#!/usr/bin/env python3
"""Render times at 1920 x 1080 of 1,179,648 SHARP-shaped splats: the exact renderer and each Blender path.

    .venv/blender-5.0/bin/python bench/render.py [--runs 3] [--device cpu|cuda] [--backend torch|gsplat|auto]
    .venv/blender-5.0/bin/python bench/render.py --engine cycles [--samples 4]          # our proxies
    .venv/blender-5.3/bin/python bench/render.py --engine cycles --path native          # 5.3's splats

The scene is synthetic and shaped like a SHARP prediction: two layers of 768 x 768 splats, one
per grid cell of the image, on a smooth depth field (the second 0.4 m behind the first), each
about 1 px across on screen (sigma f / z ~ 1 px, mildly anisotropic, random rotations), opacities
0.5-1 (front) and 0.3-1 (back). In a fresh child process per configuration: the median wall time of
--runs renders (after one warm-up render), its ratio to a baseline run in the same process (ten
2048^3 float32 matrix products, 172 GFLOP, on the same device), and the peak memory (ru_maxrss; on
CUDA also torch's peak allocation). Prints a Markdown table row for docs/notes/exact-render.md.

``--engine cycles|eevee`` times Blender instead, in the interpreter running this script (one with
``bpy``): the splat object that ``gaussians_to_object`` builds, rendered from the photo's camera at
the photo's size (``--percentage`` of it) through our proxies or (5.3+) the native splats: the
build, the first render (geometry nodes and the BVH), then the median of --runs more; the baseline
is the same GEMM in numpy (the 3.13 Blender environments have no torch).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.child import report, run_child  # noqa: E402

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
    report(out)


def numpy_gemm_s() -> float:
    """The baseline without torch: ten 2048^3 float32 matrix products in numpy, median of three."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2048, 2048), np.float32), rng.standard_normal((2048, 2048), np.float32)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def blender_child(args: argparse.Namespace) -> None:
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="sharp-bench-"))
    import bpy

    from sharp_addon.blender import compat
    from sharp_addon.blender import scene as splat_scene
    from sharp_addon.blender.render_setup import cycles_on_cpu
    from tests.support.renders import eevee_id

    gemm_s = numpy_gemm_s()
    g = sharp_shaped_scene()
    t0 = time.perf_counter()
    built = splat_scene.gaussians_to_object(g, "sharp-shaped", transparency="BLENDED")
    build_s = time.perf_counter() - t0
    modifier = splat_scene.splat_modifier(built.splats)
    if compat.has_native_splats():
        splat_scene.set_modifier_input(modifier, "Render as Proxies", args.path == "proxies")
    scene = bpy.context.scene
    scene.render.resolution_percentage = args.percentage
    if args.engine == "cycles":
        cycles_on_cpu(scene, args.samples)
    else:
        scene.render.engine = eevee_id(bpy)
        scene.eevee.taa_render_samples = args.samples
    scene.render.film_transparent = True
    times = []
    for _ in range(args.runs + 1):  # the first one evaluates the node group and builds the BVH
        t0 = time.perf_counter()
        bpy.ops.render.render()
        times.append(time.perf_counter() - t0)
    report({"first_s": times[0], "times": times[1:], "median_s": statistics.median(times[1:]), "gemm_s": gemm_s,
            "build_s": build_s, "n": len(g), "blender": bpy.app.version_string,
            "size": [scene.render.resolution_x * args.percentage // 100,
                     scene.render.resolution_y * args.percentage // 100],
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch", choices=("torch", "gsplat", "auto"))
    parser.add_argument("--engine", default="exact", choices=("exact", "cycles", "eevee"))
    parser.add_argument("--path", default="proxies", choices=("proxies", "native"),
                        help="Blender engines: our proxies, or Blender 5.3's native splats")
    parser.add_argument("--samples", type=int, default=0, help="0: 4 for proxies in Cycles, 1024 for native "
                        "splats in Cycles, 16 in EEVEE (the fidelity figures' counts)")
    parser.add_argument("--percentage", type=int, default=100, help="render size, percent of 1920 x 1080")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine != "exact":
        args.samples = args.samples or (16 if args.engine == "eevee" else 1024 if args.path == "native" else 4)
        if args.child:
            blender_child(args)
            return 0
        r = run_child([sys.executable, __file__, "--child", "--engine", args.engine, "--path", args.path,
                       "--samples", str(args.samples), "--percentage", str(args.percentage), "--runs", str(args.runs)])
        if r is None:
            return 1
        print(f"| Blender {r['blender']} {args.engine} {args.path}, {args.samples} samples | {r['n']:,} splats "
              f"{r['size'][0]}x{r['size'][1]} | {r['median_s']:.1f} s ({', '.join(f'{t:.1f}' for t in r['times'])}); "
              f"first {r['first_s']:.1f} s, build {r['build_s']:.1f} s | {r['median_s'] / r['gemm_s']:.1f}x "
              f"({r['gemm_s']:.2f} s numpy) | {r['peak_rss_gb']:.2f} GB |")
        return 0
    if args.child:
        child(args)
        return 0
    r = run_child([sys.executable, __file__, "--child", "--runs", str(args.runs), "--device", args.device,
                   "--backend", args.backend])
    if r is None:
        return 1
    cuda = "" if r["cuda_peak_gb"] is None else f", CUDA peak {r['cuda_peak_gb']:.2f} GB"
    print(f"| {args.device} {args.backend} | {r['n']:,} splats {WIDTH}x{HEIGHT} | {r['median_s']:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in r['times'])}) | {r['median_s'] / r['gemm_s']:.1f}x "
          f"({r['gemm_s']:.2f} s) | {r['peak_rss_gb']:.2f} GB{cuda} | mean alpha {r['mean_alpha']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
