"""The README's camera-move animation: the sample photo lifted onto a procedural depth, a SHARP camera
move added and rendered in Cycles by the tool, written as a small looping GIF.

The depth is procedural (near at the bottom of the photo, far at the top, a ground-plane guess), not
SHARP's prediction: the real weights are not part of this repository. Run with a Python that has bpy:

    .venv/blender-5.0/bin/python bench/camera_move_demo.py [--preset ORBIT] [--out docs/images/camera-move.gif]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "sample_640x480.png"


def lifted_photo(width: int, height: int):
    """The sample photo at ``width`` x ``height``, one Gaussian per pixel on a procedural depth."""
    from PIL import Image

    from sharp_addon import gaussians as G

    rgb = np.asarray(Image.open(PHOTO).convert("RGB").resize((width, height), Image.LANCZOS), np.float32) / 255
    v, u = np.mgrid[0:height, 0:width] + 0.5
    focal = 0.9 * width
    depth = 2.0 + 6.0 * (1.0 - v / height) ** 2  # near at the bottom, far at the top
    x, y = (u - width / 2) * depth / focal, (v - height / 2) * depth / focal
    means = np.stack([x, y, depth], axis=-1).reshape(-1, 3).astype(np.float32)
    sigma = (0.8 * depth / focal).reshape(-1, 1)  # a pixel's footprint: neighbours overlap, no gaps
    n = len(means)
    return G.Gaussians(means=means, scales=np.repeat(sigma, 3, axis=1).astype(np.float32),
                       quats=np.tile(np.float32([1, 0, 0, 0]), (n, 1)),
                       colors=G.srgb_to_linear(rgb.reshape(-1, 3)).astype(np.float32),
                       opacities=np.full(n, 0.98, np.float32), focal_px=focal, image_size=(width, height))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="ORBIT")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--width", type=int, default=120, help="the render's width (one splat per pixel)")
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--gif-width", type=int, default=240, help="the GIF's width (the render is scaled up to it)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "camera-move.gif")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    import bpy
    from PIL import Image

    from sharp_addon.blender import camera_moves, scene
    from sharp_addon.blender.render_setup import cycles_on_cpu

    height = args.width * 3 // 4
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    made = scene.gaussians_to_object(lifted_photo(args.width, height), "sample")
    camera_moves.add_camera_move(made.splats, args.preset, args.frames, loop=True)
    s = bpy.context.scene
    cycles_on_cpu(s, args.samples)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        camera_moves.render_camera_move(s, frames_dir=Path(tmp) / "frames")
        pngs = sorted((Path(tmp) / "frames").glob("*.png"))
        size = (args.gif_width, args.gif_width * 3 // 4)
        looped = pngs[:-1]  # the last frame is the first again (loop)
        frames = [Image.open(png).convert("RGB").resize(size, Image.LANCZOS) for png in looped]
        frames[0].save(args.out, save_all=True, append_images=frames[1:], duration=1000 // 12, loop=0,
                       optimize=True)
    print(f"{args.out}: {len(frames)} frames, {args.out.stat().st_size / 1024:.0f} KiB, "
          f"rendered in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
