#!/usr/bin/env python3
"""The PlayCanvas and web formats (SOG, compressed PLY, .splat) at SHARP's full size: 1,179,648
Gaussians (2 x 768 x 768, SH degree 0 unless --sh-degree): file size, write and read time, the
error a round trip adds per attribute, and what it does to the exact render.

    .venv/blender-5.0/bin/python bench/formats_web.py [--runs 3] [--sh-degree 0] [--width 320]

Times are the median of --runs runs after one warm-up (bytes in memory: ``encode`` and ``decode``,
no disk), wall and CPU (process) time: where other work shares the two cores, CPU time is what the
code itself costs. Errors compare each read splat with the one written (the formats reorder: SOG and
compressed PLY in Morton order, .splat by size times opacity): max and median of |means| (m),
|scale ratio - 1|, the rotation angle (deg), |linear colour|, |opacity| and |SH coefficients|. PSNR: the exact
renderer's image (``render_gaussians``, needs torch) of the read splats against that of the
written ones, over the pixels either covers, from the photo's camera and from one moved 0.5 m
right and 0.3 m up that looks at the scene's middle; --width sets the image width (4:3). The
plain PLY is the lossless reference.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sharp_addon import ply
from sharp_addon.cameras import Camera, look_at
from sharp_addon.formats import compressed_ply, sog, splat
from sharp_addon.formats.morton import morton_order
from sharp_addon.gaussians import Gaussians
from tests.support.builders import sharp_gaussians
from tests.support.fidelity import psnr

N = 2 * 768 * 768
GOAL_S, GOAL_DB = 2.0, 40.0


def splat_order(g: Gaussians) -> np.ndarray:
    return np.argsort(-(np.prod(g.scales.astype(np.float64), axis=1) * g.opacities), kind="stable")


FORMATS = {  # name: (encode, decode, the file's order of the written splats)
    "ply (lossless reference)": (lambda g: ply.encode(g, "3dgs"), ply.decode, lambda g: np.arange(len(g))),
    "sog": (sog.encode, sog.decode, lambda g: morton_order(g.means)),
    "compressed-ply": (compressed_ply.encode, compressed_ply.decode, lambda g: morton_order(g.means)),
    "splat": (splat.encode, splat.decode, splat_order),
}


def errors(want: Gaussians, back: Gaussians) -> dict[str, np.ndarray]:
    a = want.quats.astype(np.float64) / np.linalg.norm(want.quats, axis=1, keepdims=True)
    b = back.quats.astype(np.float64) / np.linalg.norm(back.quats, axis=1, keepdims=True)
    b *= np.where(np.einsum("ij,ij->i", a, b) < 0, -1.0, 1.0)[:, None]
    return {
        "means m": np.abs(back.means - want.means).ravel(),
        "scale rel": np.abs(back.scales.astype(np.float64) / want.scales - 1).ravel(),
        "rotation deg": np.degrees(4 * np.arcsin(np.clip(np.linalg.norm(a - b, axis=1) / 2, 0, 1))),
        "colour": np.abs(back.colors - want.colors).ravel(),
        "opacity": np.abs(back.opacities - want.opacities),
    } | ({} if want.sh_rest is None else {  # a format without SH: "dropped"
        "SH rest": np.abs(back.sh_rest - want.sh_rest).ravel() if back.sh_rest is not None else None})


def cameras(g: Gaussians, width: int) -> dict[str, Camera]:
    photo = Camera.from_gaussians(g, width=width)
    middle = np.median(g.means, axis=0)
    return {"photo": photo, "moved": photo.moved(look_at(np.array([0.5, -0.3, 0.0]), middle))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sh-degree", type=int, default=0, choices=(0, 1, 2, 3))
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--no-render", action="store_true", help="skip the PSNR (no torch needed)")
    args = parser.parse_args()
    g = sharp_gaussians(N, sh_degree=args.sh_degree)
    views = {} if args.no_render else cameras(g, args.width)
    originals = {name: render(g, camera) for name, camera in views.items()}
    rows = []
    for name, codec in FORMATS.items():
        rows.append(measure(name, *codec, g, args.runs, views, originals))
        print(f"done: {name}", file=sys.stderr, flush=True)
    report(rows, args)
    return 0


def timed(fn, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn`` over ``runs`` runs after a warm-up (CPU time shows the work
    where other processes share the cores)."""
    fn()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def measure(name: str, encode, decode, order, g: Gaussians, runs: int, views: dict[str, Camera],
            originals: dict[str, np.ndarray]) -> dict:
    """One format's row: size, times, per-attribute errors and PSNR of each view."""
    data = encode(g)
    back = decode(data, name)
    row = {"format": name, "MB": len(data) / 1e6, "bytes/splat": len(data) / len(g),
           "write": timed(lambda: encode(g), runs), "read": timed(lambda: decode(data, name), runs),
           "errors": errors(g.subset(order(g)), back)}
    return row | {f"PSNR {view} dB": psnr(render(back, camera), originals[view]) for view, camera in views.items()}


def render(g: Gaussians, camera: Camera) -> np.ndarray:
    from sharp_addon.render import render_gaussians

    return render_gaussians(g, camera)


def report(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, Python "
          f"{platform.python_version()}, numpy {np.__version__}; {N:,} Gaussians (tests.support.builders."
          f"sharp_gaussians), SH degree {args.sh_degree}; median of {args.runs} runs; goals: write and read "
          f"< {GOAL_S} s, PSNR >= {GOAL_DB} dB ({args.width} px wide)")
    psnr_columns = [k for k in rows[0] if k.startswith("PSNR")]
    print("\n| format | MB | bytes/splat | write s (CPU s) | read s (CPU s) | " + " | ".join(psnr_columns) + " |")
    print("|---|---|---|---|---|" + "---|" * len(psnr_columns))
    for r in rows:
        cells = [f"{r['MB']:.1f}", f"{r['bytes/splat']:.2f}", "{:.2f} ({:.2f})".format(*r["write"]),
                 "{:.2f} ({:.2f})".format(*r["read"]), *(f"{r[k]:.1f}" for k in psnr_columns)]
        print(f"| {r['format']} | " + " | ".join(cells) + " |")
    names = list(rows[0]["errors"])
    print("\n| format | " + " | ".join(f"{n} max / median" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for r in rows:
        cells = [summary(r["errors"][n]) for n in names]
        print(f"| {r['format']} | " + " | ".join(cells) + " |")


def summary(error: np.ndarray | None) -> str:
    return "dropped" if error is None else f"{error.max():.3g} / {np.median(error):.3g}"


if __name__ == "__main__":
    sys.exit(main())
