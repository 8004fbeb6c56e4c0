#!/usr/bin/env python3
"""The int8 path's error against float32: Gaussian positions, colours and opacities.

    .venv/blender-5.0/bin/python bench/int8.py --tiny
    .venv/blender-5.0/bin/python bench/int8.py --linears
    .venv/blender-5.0/bin/python bench/int8.py FP32.npz INT8.npz [OTHER.npz ...]

``--tiny``: the tiny network of the tests (synthetic weights) on the parity image, in this process.
With files: the Gaussians ``bench/inference.py --save`` wrote for the full-size network, the first
file the reference. Prints a Markdown table per comparison: max and mean absolute error, and
relative ones (positions per row, ||d|| / ||ref||; colours and opacities against the range of the
reference). ``--psnr WIDTH``: also renders both with ``sharp_addon.render.render_gaussians`` from the
photo's camera and from a moved one (sideways by 10 % of the median depth, looking at the scene's
median point) and prints the PSNR of the int8 render against float32's.
``--linears``: one ViT fc1-shaped linear (8 x 577 tokens, 1024 -> 4096) in fp32, bf16 and int8
(each quantized engine), interleaved in one process, median of 5 rounds and the ratio to fp32.
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


def linear_speeds(rounds: int = 5, calls: int = 3) -> list[str]:
    """Paired speeds of one ViT-shaped linear per precision: every round runs every case once."""
    import statistics
    import time
    import warnings

    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    torch.manual_seed(0)
    x = torch.randn(8 * 577, 1024)
    layer = torch.nn.Linear(1024, 4096).eval()
    cases: dict[str, tuple] = {"fp32": (layer, x, None),
                               "bf16": (torch.nn.Linear(1024, 4096).bfloat16().eval(), x.bfloat16(), None)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for engine in ("x86", "fbgemm", "onednn"):
            if engine in torch.backends.quantized.supported_engines:
                torch.backends.quantized.engine = engine
                layer.qconfig = per_channel_dynamic_qconfig  # type: ignore[assignment]
                cases[f"int8 {engine}"] = (DynamicLinear.from_float(layer), x, engine)
    times: dict[str, list[float]] = {k: [] for k in cases}
    with torch.inference_mode():
        for r in range(rounds + 1):  # round 0 warms up
            for name, (module, inp, engine) in cases.items():
                if engine:
                    torch.backends.quantized.engine = engine
                t0 = time.perf_counter()
                for _ in range(calls):
                    module(inp)
                if r:
                    times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["fp32"])
    return [f"| {k} | {statistics.median(v):.3f} s | {statistics.median(v) / base:.2f} | "
            f"{', '.join(f'{t:.2f}' for t in v)} |" for k, v in times.items()]


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
    from bench.int8_quantization import quantize_vit_linears
    from sharp_addon.api import load_predictor
    from tests.support.builders import tiny_state_dict
    from tests.support.parity import IMAGE

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
    parser.add_argument("--linears", action="store_true", help="paired speeds of one ViT linear")
    parser.add_argument("--psnr", type=int, metavar="WIDTH", help="also compare renders this many pixels wide")
    args = parser.parse_args()
    pairs = []
    if args.tiny:
        pairs.append(("tiny network, int8 against fp32", *tiny()))
    if len(args.files) >= 2:
        ref = dict(np.load(args.files[0]))
        pairs += [(f"{f.name} against {args.files[0].name}", ref, dict(np.load(f))) for f in args.files[1:]]
    if args.linears:
        print("| case | median (3 calls) | ratio to fp32 | rounds |\n|---|---|---|---|")
        print("\n".join(linear_speeds()), flush=True)
    if not pairs and not args.linears:
        parser.error("give --tiny, --linears or at least two .npz files")
    for title, ref, other in pairs:
        print(f"\n{title} ({len(ref['means'])} Gaussians)\n")
        print("| quantity | max abs | mean abs | max relative | mean relative |\n|---|---|---|---|---|")
        print("\n".join(error_rows(ref, other)))
        if args.psnr:
            from PIL import Image

            from tests.support.parity import IMAGE
            from tests.support.synthetic_weights import GOLDEN

            with Image.open(IMAGE) as im:
                size_wh = im.size
            focal_px = float(np.load(GOLDEN)["meta__f_px"])
            print("\n| view | PSNR int8 against fp32 | mean fp32 pixel |\n|---|---|---|")
            print("\n".join(psnr_rows(ref, other, focal_px, size_wh, args.psnr)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
