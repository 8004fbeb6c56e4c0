#!/usr/bin/env python3
"""The depth mesh's numpy build at SHARP's full size (768 x 768 per layer), against a copy of the positions.

    .venv/blender-5.0/bin/python bench/depth_mesh.py [--runs 7]

Prints, per step, the median of --runs builds after one warm-up, and its ratio to the baseline run
in the same process: copying the visible layer's positions (what any mesh build must at least do).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds
from sharp_addon.depth_mesh import DEFAULT_CUT_THRESHOLD, build_depth_mesh
from tests.support.builders import grid_gaussians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    g = grid_gaussians(2.0 + 0.01 * np.random.default_rng(0).random((768, 768)))
    baseline = median_seconds(lambda: g.means[: 768 * 768].copy(), args.runs)
    print(f"baseline: copy of the visible layer's positions {baseline * 1000:.1f} ms")
    for step in (1, 2):
        build = median_seconds(lambda s=step: build_depth_mesh(g, step=s, cut_threshold=DEFAULT_CUT_THRESHOLD),
                               args.runs)
        print(f"step {step}: {build * 1000:.0f} ms ({build / baseline:.0f}x the baseline), median of {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
