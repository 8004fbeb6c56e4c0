#!/usr/bin/env python3
"""Gaussians -> ready splat object in Blender at SHARP's full size (1,179,648 splats).

    .venv/blender-5.0/bin/python bench/blender_build.py [--runs 5]     # mesh path (Blender < 5.1)
    .venv/blender-5.2/bin/python bench/blender_build.py [--runs 5]     # PointCloud path (5.1+)

Times ``gaussians_to_object`` (data, attributes, photo frame, camera, node group, materials,
modifier) plus the first evaluated depsgraph (the geometry nodes run), for each display mode.
Every run is a fresh Python process, so its peak RSS (``ru_maxrss``) belongs to that run alone;
"added" is the peak minus the RSS just before the build, with the Gaussians already in memory.
Baseline in the same process: a bare object of the same points with positions only (the least
any import must do), so the ratio says what the splat attributes and shading cost on top.
Prints a Markdown table for docs/benchmarks.md (medians of --runs runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N = 1_179_648
MODES = {
    "proxies (default)": {},
    "points (Show as Points)": {"Show as Points": True},
    "proxies, Keep Fraction 0.1": {"Keep Fraction": 0.1},
}


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_run(mode: str) -> dict:
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="sharp-bench-")
    sys.path.insert(0, str(ROOT))
    import bpy
    import numpy as np

    from sharp_addon.blender import compat, scene
    from tests.support.builders import random_gaussians

    bpy.ops.wm.read_factory_settings(use_empty=True)
    g = random_gaussians(N).replace(layers=(np.arange(N) >= N // 2).astype(np.uint8))
    before = rss_mb()
    t0 = time.perf_counter()
    obj = scene.gaussians_to_object(g, "bench").splats
    modifier = scene.splat_modifier(obj)
    for name, value in MODES[mode].items():
        scene.set_modifier_input(modifier, name, value)
    t_built = time.perf_counter()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    obj.evaluated_get(depsgraph)
    t_ready = time.perf_counter()
    instances = sum(1 for i in depsgraph.object_instances if i.is_instance)
    peak = peak_mb()

    # baseline: the same points, positions only
    t1 = time.perf_counter()
    if compat.can_size_pointclouds():
        data = bpy.data.pointclouds.new("baseline")
        data.resize(N)
        data.attributes["position"].data.foreach_set("vector", g.means.ravel())
    else:
        data = bpy.data.meshes.new("baseline")
        data.vertices.add(N)
        data.attributes["position"].data.foreach_set("vector", g.means.ravel())
    bpy.context.collection.objects.link(bpy.data.objects.new("baseline", data))
    bpy.context.evaluated_depsgraph_get()
    baseline = time.perf_counter() - t1
    return {"build": t_built - t0, "ready": t_ready - t0, "baseline": baseline, "peak": peak,
            "added": peak - before, "instances": instances, "blender": bpy.app.version_string,
            "kind": obj.type}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child)))
        return 0
    print(f"{N:,} Gaussians, {args.runs} fresh processes per mode, medians\n")
    print("| display mode | object built s | + first depsgraph = ready s | ratio to baseline | "
          "peak RSS MB | added MB | instances |")
    print("|---|---|---|---|---|---|---|")
    for mode in MODES:
        runs = []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, __file__, "--child", mode], capture_output=True, text=True,
                                 check=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))

        def med(key: str, runs: list = runs) -> float:
            return statistics.median(r[key] for r in runs)

        print(f"| {mode} | {med('build'):.3f} | {med('ready'):.3f} | {med('ready') / med('baseline'):.1f}x | "
              f"{med('peak'):.0f} | {med('added'):.0f} | {runs[0]['instances']:,} |")
    print(f"\nBlender {runs[0]['blender']}, splat data: {runs[0]['kind']}; baseline (positions-only object, "
          f"same process): {statistics.median(r['baseline'] for r in runs):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
