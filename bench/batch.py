#!/usr/bin/env python3
"""Batch conversion (``blender -b -c sharp predict``): throughput, per-image overhead, one load per batch.

    .venv/blender-5.0/bin/python bench/batch.py [--runs 3] [--photos 20] [--processes 4]

Three measurements, each the median of --runs runs, printed as Markdown for docs/benchmarks.md:

1. throughput: --photos 640 x 480 photos with the small test model (tests.support.builders.tiny_state_dict,
   2 x 256 x 256 Gaussians per photo) through the batch command in a fresh Blender process
   (tests/farm/blender_stand_in.py: what ``blender -b -c sharp predict`` does with the bpy module),
   --format ply and --format both: images per minute from the command's own summary (converted
   images over the seconds spent on them) and over the whole process (start, model load included);
2. overhead outside inference at SHARP's full size: 1,179,648 random splats
   (tests.support.builders.random_gaussians) through what the batch does per photo besides the network:
   the empty factory scene, ``gaussians_to_object``, the atomic .blend save, and write_ply;
3. one model load per batch against one process per photo: the fixed cost of a process (Blender,
   torch, the extension, the model) from --processes photos in one process against one process per
   photo, and the load time of the full-size synthetic checkpoint (.venv/bench-synthetic-sharp.pt,
   written by bench/inference.py) where it exists.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = ROOT / "tests" / "farm" / "blender_stand_in.py"
FULL_CHECKPOINT = ROOT / ".venv" / "bench-synthetic-sharp.pt"
N_FULL = 1_179_648


def photos(folder: Path, count: int) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(folder / f"photo_{i:03d}.png")
    return folder


def run_batch(inputs: list[Path], out: Path, checkpoint: Path, fmt: str) -> tuple[float, float]:
    """(wall seconds of the whole process, images/min from the command's summary)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(STAND_IN), "-b", "-c", "sharp", "predict", "-i", *map(str, inputs), "-o", str(out),
           "--format", fmt, "-c", str(checkpoint), "--device", "cpu"]
    t0 = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
    rate = re.search(r"([0-9.]+) images/min", result.stdout)
    return wall, float(rate.group(1)) if rate else float("nan")


def throughput(args: argparse.Namespace, work: Path, checkpoint: Path) -> None:
    folder = photos(work / "photos", args.photos)
    print(f"\n### Throughput: {args.photos} photos, small model, one `blender -b -c sharp predict` process\n")
    print("| --format | images/min (command's summary) | images/min (whole process) | process wall s |")
    print("|---|---|---|---|")
    for fmt in ("ply", "both"):
        runs = [run_batch([folder], work / "out", checkpoint, fmt) for _ in range(args.runs)]
        wall = statistics.median(r[0] for r in runs)
        rate = statistics.median(r[1] for r in runs)
        print(f"| {fmt} | {rate:.1f} | {args.photos / wall * 60:.1f} | {wall:.1f} "
              f"({', '.join(f'{r[0]:.1f}' for r in runs)}) |", flush=True)


OVERHEAD_CHILD = r"""
import json, os, statistics, sys, tempfile, time
from pathlib import Path
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp()
sys.path.insert(0, sys.argv[1])
import bpy
import numpy as np
from sharp_addon.batch import atomic_output
from sharp_addon.blender import scene as splat_scene
from sharp_addon.ply import write_ply
from tests.support.builders import random_gaussians
n, runs, out = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
g = random_gaussians(n).replace(layers=(np.arange(n) >= n // 2).astype(np.uint8))
steps = {"empty factory scene": [], "build (gaussians_to_object)": [], "save .blend (atomic)": [],
         "write_ply (atomic)": []}
for i in range(runs + 1):  # the first is a warm-up
    t = [time.perf_counter()]
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    t.append(time.perf_counter())
    splat_scene.gaussians_to_object(g, "photo")
    t.append(time.perf_counter())
    with atomic_output(out / "photo.blend") as tmp:
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp), relative_remap=True, copy=True, check_existing=False)
    t.append(time.perf_counter())
    write_ply(g, out / "photo.ply")
    t.append(time.perf_counter())
    if i:
        for (name, times), a, b in zip(steps.items(), t, t[1:]):
            times.append(b - a)
sizes = {"blend": (out / "photo.blend").stat().st_size, "ply": (out / "photo.ply").stat().st_size}
print("RESULT " + json.dumps({"steps": steps, "sizes": sizes, "blender": bpy.app.version_string}))
"""


def overhead(args: argparse.Namespace, work: Path) -> None:
    out = work / "overhead"
    out.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-c", OVERHEAD_CHILD, str(ROOT), str(N_FULL), str(args.runs), str(out)],
                            capture_output=True, text=True)
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-3000:])
    r = json.loads(line[7:])
    print(f"\n### Per-image work outside inference: {N_FULL:,} splats, Blender {r['blender']}\n")
    print("| step | median s (runs) |")
    print("|---|---|")
    total = 0.0
    for name, times in r["steps"].items():
        total += statistics.median(times)
        print(f"| {name} | {statistics.median(times):.3f} ({', '.join(f'{t:.3f}' for t in times)}) |")
    scene = sum(statistics.median(r["steps"][k]) for k in list(r["steps"])[:3])
    print(f"| **scene: reset + build + save** | **{scene:.3f}** |")
    print(f"| all four (--format both) | {total:.3f} |")
    print(f"\n.blend {r['sizes']['blend'] / 1e6:.1f} MB, .ply {r['sizes']['ply'] / 1e6:.1f} MB; load average now "
          f"{os.getloadavg()[0]:.1f}", flush=True)


LOAD_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from sharp_addon.api import load_predictor
p = load_predictor(sys.argv[2], device="cpu", precision=sys.argv[3])
print("RESULT " + json.dumps({"torch_import_s": t1 - t0, "load_s": time.perf_counter() - t1}))
"""


def processes(args: argparse.Namespace, work: Path, checkpoint: Path) -> None:
    folder = photos(work / "few", args.processes)
    files = sorted(folder.iterdir())
    one, many = [], []
    for _ in range(args.runs):
        one.append(run_batch([folder], work / "one", checkpoint, "ply")[0])
        many.append(sum(run_batch([f], work / "each", checkpoint, "ply")[0] for f in files))
    t1, tn = statistics.median(one), statistics.median(many)
    per_process = (tn - t1) / (len(files) - 1)
    print(f"\n### One model load per batch: {len(files)} photos, small model\n")
    print("| run | median wall s (runs) |")
    print("|---|---|")
    print(f"| one process for {len(files)} photos | {t1:.1f} ({', '.join(f'{t:.1f}' for t in one)}) |")
    print(f"| one process per photo ({len(files)} processes) | {tn:.1f} ({', '.join(f'{t:.1f}' for t in many)}) |")
    print(f"| fixed cost of a process (Blender, torch, extension, small model) | {per_process:.1f} |")
    if FULL_CHECKPOINT.is_file():
        loads = []
        for _ in range(args.runs):
            result = subprocess.run([sys.executable, "-c", LOAD_CHILD, str(ROOT), str(FULL_CHECKPOINT), "fp32"],
                                    capture_output=True, text=True)
            line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
            if result.returncode != 0 or line is None:
                raise SystemExit(result.stderr[-3000:])
            loads.append(json.loads(line[7:])["load_s"])
        full = statistics.median(loads)
        print(f"| full-size synthetic checkpoint load, fp32 (measured) | {full:.1f} "
              f"({', '.join(f'{t:.1f}' for t in loads)}) |")
    else:
        print(f"| full-size checkpoint load | not measured: {FULL_CHECKPOINT.name} is absent (bench/inference.py "
              "writes it) |")
    print(flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--only", choices=("throughput", "overhead", "processes"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    from tests.support.builders import tiny_state_dict

    work = Path(tempfile.mkdtemp(prefix="sharp-bench-batch-"))
    try:
        checkpoint = work / "tiny.pt"
        torch.save(tiny_state_dict(), checkpoint)
        print(f"machine: {os.cpu_count()} CPUs; torch {torch.__version__}; python {sys.version.split()[0]}; "
              f"load average at start {os.getloadavg()[0]:.1f}")
        if args.only in (None, "throughput"):
            throughput(args, work, checkpoint)
        if args.only in (None, "overhead"):
            overhead(args, work)
        if args.only in (None, "processes"):
            processes(args, work, checkpoint)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
