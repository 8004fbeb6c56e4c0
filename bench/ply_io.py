#!/usr/bin/env python3
"""PLY read/write speed at SHARP's full size (1,179,648 Gaussians, ml-sharp layout).

    .venv/blender-5.0/bin/python bench/ply_io.py [--runs 7]

Baselines in the same process: the bare file read / write of the same bytes (the I/O floor)
and a plain structured numpy parse of the file without any conversion. Prints a Markdown
table for docs/benchmarks.md; the median of --runs runs after one warm-up.
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
from sharp_addon import ply
from tests.support.builders import random_gaussians

N = 1_179_648


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    g = random_gaussians(N)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.ply"
        ply.write_ply(g, path)
        data = path.read_bytes()
        header = ply.parse_header(data)
        vertex = np.dtype([(name, "<" + t) for name, t in header.elements[0].properties])

        def structured_parse():
            raw = path.read_bytes()
            return np.frombuffer(raw, vertex, count=N, offset=header.size).copy()

        rows = [
            ("read_ply (parse + activations + validation)", median_seconds(lambda: ply.read_ply(path), args.runs)),
            ("baseline: read the file's bytes", median_seconds(path.read_bytes, args.runs)),
            ("baseline: bytes + structured numpy copy, no conversion", median_seconds(structured_parse, args.runs)),
            ("write_ply (encode + atomic write)", median_seconds(lambda: ply.write_ply(g, Path(tmp) / "out.ply"),
                                                              args.runs)),
            ("baseline: write the same bytes", median_seconds(lambda: (Path(tmp) / "raw.ply").write_bytes(data),
                                                           args.runs)),
        ]
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, Python "
          f"{platform.python_version()}, numpy {np.__version__}; {N} Gaussians, {len(data)} bytes; "
          f"median of {args.runs} runs")
    print("\n| step | median s | ratio to its I/O baseline |\n|---|---|---|")
    read_floor, write_floor = rows[1][1], rows[4][1]
    for name, t in rows:
        floor = write_floor if "write" in name else read_floor
        print(f"| {name} | {t:.3f} | {t / floor:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
