#!/usr/bin/env python3
"""glTF binary (.glb, KHR_gaussian_splatting) at SHARP's full size: 1,179,648 Gaussians (2 x 768 x 768),
SH degree 0: file size, write and read time, and the error a round trip adds.

    .venv/blender-5.0/bin/python bench/formats_gltf.py [--runs 3]

The format stores float32 values unquantised, so the round trip is exact but for the float32
rounding of the sRGB curve between the file's f_dc and linear colours in memory: the render of the
read splats is the render of the written ones (PSNR infinite), and none is made here. The same for
the draft SPZ compression (``compression="spz"``: an SPZ version 2 blob inside the .glb, as lossy as
SPZ v2, whose render error the SPZ bench states). Times are the median of --runs runs after one
warm-up; the bare write and read of the same bytes are the floor.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds
from sharp_addon import formats
from sharp_addon.formats import gltf
from sharp_addon.gaussians import Gaussians, file_sh_dc
from tests.support.builders import sharp_gaussians

N = 2 * 768 * 768
GOAL_S = 2.0


def errors(g: Gaussians, back: Gaussians) -> list[tuple[str, np.ndarray]]:
    """Per-attribute absolute errors of a round trip (scales relative, rotations as angles in degrees)."""
    a = g.quats.astype(np.float64) / np.linalg.norm(g.quats, axis=1, keepdims=True)
    b = back.quats.astype(np.float64) / np.linalg.norm(back.quats, axis=1, keepdims=True)
    b *= np.where(np.einsum("ij,ij->i", a, b) < 0, -1, 1)[:, None]  # q and -q are one rotation
    angle = 4 * np.arctan2(np.linalg.norm(a - b, axis=1), np.linalg.norm(a + b, axis=1))  # 2 acos(a.b), exact at 0
    return [
        ("means (m)", np.abs(back.means - g.means)),
        ("scales (relative)", np.abs(back.scales / g.scales - 1)),
        ("rotations (degrees)", np.degrees(angle)),
        ("colours (linear)", np.abs(back.colors - g.colors)),
        ("f_dc as stored", np.abs(file_sh_dc(back) - file_sh_dc(g))),
        ("opacities", np.abs(back.opacities - g.opacities)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    g = sharp_gaussians(N)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.glb"
        formats.write_splats(g, path)
        data = path.read_bytes()
        plain = gltf.encode(g, fallback_colors=False)
        rows = [
            ("write_splats (encode + atomic write)", median_seconds(lambda: formats.write_splats(g, path), args.runs)),
            ("  encode to bytes", median_seconds(lambda: gltf.encode(g), args.runs)),
            ("  baseline: write the same bytes", median_seconds(lambda: (Path(tmp) / "raw").write_bytes(data),
                                                              args.runs)),
            ("read_splats (read + decode + validation)", median_seconds(lambda: formats.read_splats(path), args.runs)),
            ("  decode from bytes", median_seconds(lambda: gltf.decode(data, str(path)), args.runs)),
            ("  baseline: read the file's bytes", median_seconds(path.read_bytes, args.runs)),
        ]
        back = formats.read_splats(path)
        small = Path(tmp) / "small.glb"
        formats.write_splats(g, small, compression="spz")
        small_size = small.stat().st_size
        rows += [
            ("write_splats(compression='spz')",
             median_seconds(lambda: formats.write_splats(g, small, compression="spz"), args.runs)),
            ("read_splats of that file", median_seconds(lambda: formats.read_splats(small), args.runs)),
        ]
        small_back = formats.read_splats(small)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, Python "
          f"{platform.python_version()}, numpy {np.__version__}; {N:,} Gaussians, SH degree 0; "
          f"median of {args.runs} runs")
    print(f"\nfile: {len(data):,} bytes ({len(data) / N:.1f} B/splat) with COLOR_0; "
          f"{len(plain):,} ({len(plain) / N:.1f} B/splat) without (fallback_colors=False); "
          f"{small_size:,} ({small_size / N:.1f} B/splat) with compression='spz'")
    print(f"camera kept: focal {back.focal_px} px (wrote {g.focal_px}), size {back.image_size}; "
          f"layers kept: {back.layers is not None and np.array_equal(back.layers, g.layers)}")
    print("\n| step | median s | goal |\n|---|---|---|")
    for name, t in rows:
        goal = "" if name.startswith("  ") else ("met" if t < GOAL_S else "MISSED") + f" (< {GOAL_S:g} s)"
        print(f"| {name} | {t:.3f} | {goal} |")
    print("\n| attribute | max abs error | median abs error | compression='spz': max | median |\n|---|---|---|---|---|")
    for (name, e), (_, lossy) in zip(errors(g, back), errors(g, small_back)):
        print(f"| {name} | {e.max():.3g} | {np.median(e):.3g} | {lossy.max():.3g} | {np.median(lossy):.3g} |")
    print("\nPSNR of a render of the read splats against the written ones: infinite (lossless format; "
          "the only change is float32 rounding of colour, at most the 'colours' error above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
