#!/usr/bin/env python3
"""The int8 path's error against float32: Gaussian positions, colours and opacities.

    .venv/blender-5.0/bin/python bench/int8.py --tiny
    .venv/blender-5.0/bin/python bench/int8.py FP32.npz INT8.npz [OTHER.npz ...]

``--tiny``: the tiny network of the tests (synthetic weights) on the parity image, in this process.
With files: the Gaussians ``bench/inference.py --save`` wrote for the full-size network, the first
file the reference. Prints a Markdown table per comparison: max and mean absolute error, and
relative ones (positions per row, ||d|| / ||ref||; colours and opacities against the range of the
reference). int8 is a bench option only, not a precision choice: docs/notes/int8.md says why.
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
    return ({k: getattr(a, k) for k in QUANTITIES}, {k: getattr(b, k) for k in QUANTITIES})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="reference .npz, then the ones to compare")
    parser.add_argument("--tiny", action="store_true", help="the tiny network on the parity image")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
