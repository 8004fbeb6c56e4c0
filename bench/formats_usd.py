#!/usr/bin/env python3
"""OpenUSD particle field (``.usda``) at SHARP's full size (1,179,648 splats, SH degree 0): file size, write
and read time, the error each attribute gets; with usd-core installed, the time to read a file as Pixar's
library writes it; in a Blender 5.3 environment, the time Blender's own USD import takes.

    .venv/blender-5.0/bin/python bench/formats_usd.py [--runs 3]     # with usd-core: also Pixar's text
    .venv/blender-5.3/bin/python bench/formats_usd.py --blender      # also Blender 5.3's wm.usd_import

The scene is ``tests/support/fidelity.sharp_shaped`` (two layers of 768 x 768 splats on a smooth depth
field) with random rotations (a SHARP prediction's are as varied). Times are medians of --runs runs after
one warm-up (``encode``/``decode``: bytes in memory, as a write or read less the file I/O), as wall time
and as CPU time of all threads: this machine's 2 cores are shared, and the load average is printed.
No PSNR: the format is lossless up to float32 rounding of the colour (the errors table).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sharp_addon.formats import usd
from sharp_addon.formats.axes import to_axes
from sharp_addon.gaussians import Gaussians, file_sh_dc
from tests.support.fidelity import sharp_shaped
from tests.support.web_formats import rotation_angles


def scene() -> Gaussians:
    g = sharp_shaped()
    quats = np.random.default_rng(1).normal(size=(len(g), 4))
    return g.replace(quats=(quats / np.linalg.norm(quats, axis=1, keepdims=True)).astype(np.float32))


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds (all threads) of ``fn`` over ``runs`` runs after a warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def errors(got: Gaussians, want: Gaussians) -> dict[str, np.ndarray]:
    """Per splat: how far each attribute moved (metres, relative, degrees, colour units)."""
    return {
        "position (m)": np.abs(got.means - want.means).max(axis=1),
        "scale (relative)": np.abs(got.scales / want.scales - 1).max(axis=1),
        "rotation (degrees)": np.degrees(rotation_angles(got.quats, want.quats)),
        "colour (linear RGB)": np.abs(got.colors - want.colors).max(axis=1),
        "f_dc (file's SH DC)": np.abs(file_sh_dc(got) - file_sh_dc(want)).max(axis=1),
        "opacity": np.abs(got.opacities - want.opacities),
    }


def pixars_text(g: Gaussians) -> bytes | None:
    """The same splats as usd-core writes them (shortest numbers, one line an array); None without it."""
    try:
        from pxr import Usd, UsdGeom, UsdVol, Vt
    except ImportError:
        return None
    rub = to_axes(g, "RUB")
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    prim = UsdVol.ParticleField3DGaussianSplat.Define(stage, "/splats").GetPrim()
    for name, values in (("positions", rub.means), ("scales", rub.scales), ("radiance:sphericalHarmonicsCoefficients",
                                                                           file_sh_dc(rub))):
        prim.GetAttribute(name).Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(values)))
    prim.GetAttribute("orientations").Set(Vt.QuatfArray.FromNumpy(np.ascontiguousarray(rub.quats[:, [1, 2, 3, 0]])))
    prim.GetAttribute("opacities").Set(Vt.FloatArray.FromNumpy(rub.opacities))
    prim.GetAttribute("radiance:sphericalHarmonicsDegree").Set(0)
    return stage.GetRootLayer().ExportToString().encode("ascii")


def blender_import_seconds(data: bytes) -> tuple[str, float, int] | None:
    """Blender's own ``wm.usd_import`` of the file: (version, seconds, splats); None where bpy < 5.3."""
    try:
        import bpy
    except ImportError:
        return None
    if bpy.app.version < (5, 3, 0):
        return None
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scene.usda"
        path.write_bytes(data)
        t0 = time.perf_counter()
        bpy.ops.wm.usd_import(filepath=str(path))
        seconds = time.perf_counter() - t0
    (obj,) = bpy.data.objects
    return bpy.app.version_string, seconds, len(obj.data.points)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--blender", action="store_true", help="also time Blender's own USD import (bpy 5.3+)")
    args = parser.parse_args()
    g = scene()
    data = usd.encode(g)
    back = usd.decode(data, "scene.usda")
    write = timed(lambda: usd.encode(g), args.runs)
    read = timed(lambda: usd.decode(data, "scene.usda"), args.runs)
    rows = [("ours (fixed width)", len(data), f"{write[0]:.2f} / {write[1]:.2f}", f"{read[0]:.2f} / {read[1]:.2f}")]
    theirs = pixars_text(g)
    if theirs is not None:
        other = timed(lambda: usd.decode(theirs, "pixar.usda"), 1)
        rows.append(("usd-core's text", len(theirs), "-", f"{other[0]:.2f} / {other[1]:.2f}"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}; "
          f"Python {platform.python_version()}, numpy {np.__version__}; {len(g):,} splats, SH degree 0; "
          f"median of {args.runs} runs")
    print("\n| file | size (MB) | bytes / splat | write s (wall / CPU) | read s (wall / CPU) |\n|---|---|---|---|---|")
    for name, size, write_s, read_s in rows:
        print(f"| {name} | {size / 1e6:.1f} | {size / len(g):.1f} | {write_s} | {read_s} |")
    print("\n| attribute | max error | median error |\n|---|---|---|")
    for name, e in errors(back, g).items():
        print(f"| {name} | {float(e.max()):.3g} | {float(np.median(e)):.3g} |")
    if args.blender:
        found = blender_import_seconds(data)
        print("\nBlender's USD import: " + (f"Blender {found[0]}, {found[1]:.1f} s for {found[2]:,} splats"
                                            if found else "needs bpy 5.3+ in this environment"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
