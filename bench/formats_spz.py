#!/usr/bin/env python3
"""SPZ at SHARP's full size (1,179,648 splats, SH degree 0): file size, write and read time, the error
each attribute gets, and what the exact renderer sees of it.

    .venv/blender-5.0/bin/python bench/formats_spz.py [--runs 3] [--width 320]

The scene is ``tests/support/fidelity.sharp_shaped`` (two layers of 768 x 768 splats on a smooth depth
field, each about a photo pixel wide, procedural colours, opacities 0.5-1) with random rotations (a
SHARP prediction's are as varied; the identity would hide the rotation encoding). Times are medians of
--runs runs after one warm-up (``encode``/``decode``: bytes in memory, as ``write_splats``/``read_splats``
less the file I/O). PSNR: the exact renderer (``render_gaussians``, CPU) of the read-back splats against
the original, from the photo's camera and from a camera moved 0.4 m right and 0.2 m up, turned to look
at the scene's centre. Needs torch (the blender-5.0 environment). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds
from sharp_addon.cameras import Camera, look_at
from sharp_addon.formats import spz
from sharp_addon.gaussians import Gaussians, file_sh_dc
from sharp_addon.render import render_gaussians
from tests.support.fidelity import psnr, sharp_shaped

VERSIONS = (3, 4)


def scene() -> Gaussians:
    g = sharp_shaped()
    quats = np.random.default_rng(1).normal(size=(len(g), 4))
    return g.replace(quats=(quats / np.linalg.norm(quats, axis=1, keepdims=True)).astype(np.float32))


def errors(got: Gaussians, want: Gaussians) -> dict[str, np.ndarray]:
    """Per splat: how far each attribute moved (metres, relative, degrees, colour units)."""
    a = got.quats / np.linalg.norm(got.quats, axis=1, keepdims=True)
    b = want.quats / np.linalg.norm(want.quats, axis=1, keepdims=True)
    cos = np.minimum(1.0, np.abs(np.einsum("ij,ij->i", a.astype(np.float64), b)))
    return {
        "position (m)": np.abs(got.means - want.means).max(axis=1),
        "scale (relative)": np.abs(got.scales / want.scales - 1).max(axis=1),
        "rotation (degrees)": np.degrees(2 * np.arccos(cos)),
        "colour (linear RGB)": np.abs(got.colors - want.colors).max(axis=1),
        "f_dc (file's SH DC)": np.abs(file_sh_dc(got) - file_sh_dc(want)).max(axis=1),
        "opacity": np.abs(got.opacities - want.opacities),
    }


def cameras(g: Gaussians, width: int) -> dict[str, Camera]:
    photo = Camera.from_gaussians(g, width=width)
    centre = np.median(g.means, axis=0)
    return {"photo camera": photo, "moved camera": photo.moved(look_at((0.4, -0.2, 0.0), centre))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--width", type=int, default=320, help="render width in pixels (the height follows)")
    args = parser.parse_args()
    g = scene()
    views = cameras(g, args.width)
    originals = {name: render_gaussians(g, camera, device="cpu") for name, camera in views.items()}
    rows, error_rows = [], []
    for version in VERSIONS:
        data = spz.encode(g, version=version)
        back = spz.decode(data)
        write_s = median_seconds(lambda v=version: spz.encode(g, version=v), args.runs)
        read_s = median_seconds(lambda d=data: spz.decode(d), args.runs)
        quality = [psnr(render_gaussians(back, camera, device="cpu"), originals[name])
                   for name, camera in views.items()]
        rows.append((version, len(data), write_s, read_s, *quality))
        error_rows += [(version, name, float(e.max()), float(np.median(e))) for name, e in errors(back, g).items()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}; "
          f"Python {platform.python_version()}, numpy {np.__version__}; {len(g):,} splats, SH degree 0; "
          f"median of {args.runs} runs; renders {views['photo camera'].width} x {views['photo camera'].height}")
    print("\n| SPZ version | size (MB) | bytes / splat | write s | read s | PSNR photo camera (dB) | "
          "PSNR moved camera (dB) |\n|---|---|---|---|---|---|---|")
    for version, size, write_s, read_s, photo_db, moved_db in rows:
        print(f"| {version} | {size / 1e6:.2f} | {size / len(g):.2f} | {write_s:.2f} | {read_s:.2f} | "
              f"{photo_db:.1f} | {moved_db:.1f} |")
    print("\n| SPZ version | attribute | max error | median error |\n|---|---|---|---|")
    for version, name, worst, typical in error_rows:
        print(f"| {version} | {name} | {worst:.3g} | {typical:.3g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
