#!/usr/bin/env python3
"""Render a splat scene in Cycles, from the matched camera and from a camera moved sideways.

    .venv/blender-5.0/bin/python tools/render_example.py                   # procedural splat scene
    .venv/blender-5.0/bin/python tools/render_example.py --image PHOTO --checkpoint sharp_2572gikvuh.pt
    .venv/blender-5.0/bin/python tools/render_example.py --ply scene.ply

Makes the README's pictures (docs/images/). Without arguments the Gaussians are a procedural
scene (a floor, a wall and three spheres covered with flat splats, about 1 M of them, in the
layout SHARP produces: OpenCV camera frame, photo metadata), because the official weights
cannot be shipped here; with ``--image`` and ``--checkpoint`` it runs SHARP on the photo, the
same pipeline as Add > SHARP from Image. Uses the add-on's modules directly (no install).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="sharp-render-"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from sharp_addon import gaussians as G  # noqa: E402

W, H, FOCAL = 640, 480, 600.0


def surface_splats(points: np.ndarray, normals: np.ndarray, colors: np.ndarray, size: float) -> dict:
    """Flat Gaussians lying in the surface: sigma ``size`` along it, a tenth of it across."""
    n = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    t1 = np.cross(n, helper)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    rotations = np.stack([t1, t2, n], axis=2)  # columns: the Gaussian's axes
    return {"means": points, "quats": G.quats_from_matrices(rotations),
            "scales": np.tile([size, size, size / 10], (len(points), 1)), "colors": colors}


def procedural_scene(seed: int = 0) -> G.Gaussians:
    """A floor, a back wall and three spheres in front of a 640 x 480 camera (OpenCV frame, metres)."""
    rng = np.random.default_rng(seed)
    parts = []
    # checkered floor 1.2 m below the camera (y down), from 1.5 m to 14 m away
    n = 400_000
    x, z = rng.uniform(-7, 7, n), rng.uniform(1.5, 14, n)
    check = (np.floor(x) + np.floor(z)) % 2
    color = np.where(check[:, None] > 0, [[0.75, 0.72, 0.65]], [[0.12, 0.12, 0.14]])
    # (surfaces get a few millimetres of depth jitter, as real ones have: exactly coplanar proxy faces
    # hide each other from Cycles' transparent rays)
    parts.append(surface_splats(np.column_stack([x, rng.normal(1.2, 0.004, n), z]), np.tile([0, -1.0, 0], (n, 1)),
                                color * (0.55 + 0.45 * np.exp(-z / 10))[:, None], 0.02))
    # back wall 14 m away with a sky-like gradient
    n = 300_000
    x, y = rng.uniform(-9, 9, n), rng.uniform(-7, 1.2, n)
    t = (y + 7) / 8.2
    color = np.column_stack([0.25 + 0.5 * t, 0.45 + 0.3 * t, 0.85 - 0.3 * t])
    parts.append(surface_splats(np.column_stack([x, y, rng.normal(14.0, 0.006, n)]), np.tile([0, 0, -1.0], (n, 1)),
                                color, 0.035))
    # three spheres standing on the floor
    for centre, radius, rgb, count in (((-1.3, 0.6, 4.5), 0.6, (0.95, 0.45, 0.08), 120_000),
                                       ((0.9, 0.4, 6.5), 0.8, (0.1, 0.25, 0.8), 150_000),
                                       ((0.1, 0.7, 3.2), 0.5, (0.15, 0.65, 0.25), 80_000)):
        normal = rng.normal(size=(count, 3))
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        shade = 0.35 + 0.65 * np.clip(normal @ np.array([-0.4, -0.8, -0.45]), 0, 1)  # light from above left
        parts.append(surface_splats(np.asarray(centre) + radius * normal, normal,
                                    np.outer(shade, rgb), 0.012 * radius / 0.5))
    merged = {k: np.concatenate([p[k] for p in parts]).astype(np.float32) for k in parts[0]}
    return G.Gaussians(**merged, opacities=np.full(len(merged["means"]), 0.9, np.float32), focal_px=FOCAL,
                       image_size=(W, H))


def render(scene, path: Path) -> float:
    import bpy

    scene.render.filepath = str(path)
    t0 = time.perf_counter()
    bpy.ops.render.render(write_still=True)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="a photo to run SHARP on (needs --checkpoint)")
    parser.add_argument("--checkpoint", help="SHARP weights (sharp_2572gikvuh.pt)")
    parser.add_argument("--ply", help="a Gaussian-splat PLY to render instead")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="output folder")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--scale", type=int, default=100, help="render size in percent of the photo's")
    args = parser.parse_args()

    import bpy

    from sharp_addon.blender import scene as splat_scene
    from sharp_addon.blender.render_setup import cycles_on_cpu

    if args.image:
        if not args.checkpoint:
            parser.error("--image needs --checkpoint")
        from sharp_addon.worker import InferenceWorker, PredictRequest

        worker = InferenceWorker()
        try:
            g = worker.run(PredictRequest(args.image, args.checkpoint))
        finally:
            worker.close()
        name = Path(args.image).stem
    elif args.ply:
        from sharp_addon.ply import read_ply

        g, name = read_ply(args.ply), Path(args.ply).stem
    else:
        g, name = procedural_scene(), "procedural"
    print(f"{len(g):,} Gaussians ({name})", flush=True)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    splat_scene.gaussians_to_object(g, name)
    scene = bpy.context.scene
    cycles_on_cpu(scene, args.samples, percentage=args.scale)
    scene.render.image_settings.file_format = "PNG"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = render(scene, out / f"{name}_matched_camera.png")
    print(f"matched camera: {out / f'{name}_matched_camera.png'} ({seconds:.1f} s)", flush=True)
    # the same scene from 0.8 m to the right, turned 12 degrees back towards it: it is 3D
    camera = scene.camera
    camera.location.x += 0.8
    camera.rotation_euler.y -= math.radians(12)  # the camera's frame is OpenCV-flipped: -y turns left
    seconds = render(scene, out / f"{name}_moved_camera.png")
    print(f"moved camera: {out / f'{name}_moved_camera.png'} ({seconds:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
