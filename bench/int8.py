#!/usr/bin/env python3
"""The int8 path's error against float32: Gaussian positions, colours and opacities.

    .venv/blender-5.0/bin/python bench/int8.py --tiny
    .venv/blender-5.0/bin/python bench/int8.py FP32.npz INT8.npz [OTHER.npz ...]

``--tiny``: the tiny network of the tests (synthetic weights) on the parity image, in this process.
With files: the Gaussians ``bench/inference.py --save`` wrote for the full-size network, the first
file the reference. Prints a Markdown table per comparison: max and mean absolute error, and
relative ones (positions per row, ||d|| / ||ref||; colours and opacities against the range of the
reference). ``--psnr WIDTH``: also renders both with ``sharp_addon.render.render_gaussians`` from the
photo's camera and from a moved one (sideways by 10 % of the median depth, looking at the scene's
median point) and prints the PSNR of the int8 render against float32's.
int8 is a bench option only, not a precision choice: docs/notes/int8.md says why.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
QUANTITIES = ("means", "colors", "opacities")


def error_rows(ref: dict, other: dict) -> list[str]:
    rows = []
    for name in QUANTITIES:
        a, b = np.asarray(ref[name], np.float64), np.asarray(other[name], np.float64)
        d = np.abs(a - b)
        if name == "means":
            rel = np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(a, axis=1), 1e-12)
            rel_max, rel_mean = float(rel.max()), float(rel.mean())
        else:
            span = float(a.max() - a.min()) or 1.0
            rel_max, rel_mean = float(d.max()) / span, float(d.mean()) / span
        rows.append(f"| {name} | {d.max():.2e} | {d.mean():.2e} | {rel_max:.2e} | {rel_mean:.2e} |")
    return rows


def moved_pose(means: np.ndarray) -> np.ndarray:
    """A camera 10 % of the median depth to the right of the photo's, looking at the median point."""
    from sharp_addon.cameras import look_at

    target = np.median(means, axis=0)
    return look_at((0.1 * float(target[2]), 0.0, 0.0), target)


def psnr_rows(ref: dict, other: dict, focal_px: float, size_wh: tuple[int, int], width: int) -> list[str]:
    """PSNR (dB, peak 1) of ``other``'s render against ``ref``'s, linear RGB over black, per camera."""
    from sharp_addon.cameras import Camera
    from sharp_addon.gaussians import Gaussians
    from sharp_addon.render import render_gaussians

    def splats(d: dict) -> Gaussians:
        return Gaussians(d["means"], d["scales"], d["quats"], d["colors"], d["opacities"], focal_px=focal_px,
                         image_size=size_wh)

    a, b = splats(ref), splats(other)
    matched = Camera.from_gaussians(a, width)
    rows = []
    for name, camera in (("matched", matched), ("moved", matched.moved(moved_pose(a.means)))):
        ra = np.clip(render_gaussians(a, camera)[..., :3], 0, 1)
        rb = np.clip(render_gaussians(b, camera)[..., :3], 0, 1)
        mse = float(np.mean((ra.astype(np.float64) - rb) ** 2))
        psnr = 10 * np.log10(1 / mse) if mse > 0 else float("inf")
        rows.append(f"| {name} camera, {camera.width} x {camera.height} | {psnr:.1f} dB | {ra.mean():.3f} |")
    return rows


def tiny() -> tuple[dict, dict]:
    from sharp_addon.api import load_predictor
    from sharp_addon.model.quantization import quantize_vit_linears
    from tests.helpers import tiny_state_dict
    from tests.parity import IMAGE

    sd = tiny_state_dict()
    reference = load_predictor(sd, device="cpu", precision="fp32")
    quantized = load_predictor(sd, device="cpu", precision="fp32")
    quantize_vit_linears(quantized.model)
    a, b = reference.predict(IMAGE), quantized.predict(IMAGE)
    keys = (*QUANTITIES, "scales", "quats")
    return ({k: getattr(a, k) for k in keys}, {k: getattr(b, k) for k in keys})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="reference .npz, then the ones to compare")
    parser.add_argument("--tiny", action="store_true", help="the tiny network on the parity image")
    parser.add_argument("--psnr", type=int, metavar="WIDTH", help="also compare renders this many pixels wide")
    args = parser.parse_args()
    pairs = []
    if args.tiny:
        pairs.append(("tiny network, int8 against fp32", *tiny()))
    if len(args.files) >= 2:
        ref = dict(np.load(args.files[0]))
        pairs += [(f"{f.name} against {args.files[0].name}", ref, dict(np.load(f))) for f in args.files[1:]]
    if not pairs:
        parser.error("give --tiny or at least two .npz files")
    for title, ref, other in pairs:
        print(f"\n{title} ({len(ref['means'])} Gaussians)\n")
        print("| quantity | max abs | mean abs | max relative | mean relative |\n|---|---|---|---|---|")
        print("\n".join(error_rows(ref, other)))
        if args.psnr:
            from PIL import Image

            from tests.parity import IMAGE
            from tests.weights import GOLDEN

            with Image.open(IMAGE) as im:
                size_wh = im.size
            focal_px = float(np.load(GOLDEN)["meta__f_px"])
            print("\n| view | PSNR int8 against fp32 | mean fp32 pixel |\n|---|---|---|")
            print("\n".join(psnr_rows(ref, other, focal_px, size_wh, args.psnr)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
