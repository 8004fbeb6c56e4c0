#!/usr/bin/env python3
"""How faithfully each Blender path shows the splats: PSNR against the exact 3DGS renderer, and times.

    .venv/blender-5.0/bin/python bench/fidelity.py --engine eevee           # proxies, EEVEE (slow: Mesa here)
    .venv/blender-5.3/bin/python bench/fidelity.py --engine cycles eevee    # Blender 5.3's native splats
    .venv/blender-5.0/bin/python bench/fidelity.py --scenes sharp-full --width 384   # 1.18 M splats
    .venv/blender-5.0/bin/python bench/fidelity.py --engine cycles --proxies cubes   # before the quads

For each scene of ``tests/support/fidelity.py`` (and ``sharp-full``: two layers of 768^2 splats about a
pixel wide, the shape of a SHARP prediction) and each engine, renders the splat scene that
``gaussians_to_object`` builds from the photo's camera and from an orbited one (the suite's
``move_camera``), and the exact renderer's image of the same splats through the same cameras
(``blender.cameras.camera_from_blender``); prints PSNR over covered pixels and both render times
as a Markdown table for docs/benchmarks.md. The exact render runs in-process where torch is, else
in a worker with ``--inference-python`` (default: blender-5.0's Python).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="sharp-bench-"))
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from sharp_addon.blender import cameras, compat  # noqa: E402
from sharp_addon.blender import scene as splat_scene  # noqa: E402
from tests.support import fidelity  # noqa: E402
from tests.support.renders import eevee_id, render_rgba  # noqa: E402

ENGINES = {"cycles": "CYCLES", "eevee": None}  # EEVEE's identifier differs by version: eevee_id()


def render(engine: str, samples: int, path: Path) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    image = render_rgba(bpy, engine, path, samples)
    return image, time.perf_counter() - t0


def exact(g, camera, python: str, scratch: Path) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    if importlib.util.find_spec("torch") is not None:
        from sharp_addon.render import render_gaussians

        image = render_gaussians(g, camera)
    else:  # the 3.13 environments have no torch: a worker in a Python that has it
        from sharp_addon.worker import InferenceWorker, RenderRequest, save_result

        save_result(g, scratch / "splats.npz")
        worker = InferenceWorker(python=python)
        try:
            image = worker.run(RenderRequest(str(scratch / "splats.npz"), [camera]))[0]
        finally:
            worker.close()
    return image, time.perf_counter() - t0


def move_camera(camera, distance: float = 4.0) -> None:
    from tests.support.renders import move_camera as orbit

    orbit(camera, distance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", nargs="+", choices=list(ENGINES), default=["cycles", "eevee"])
    parser.add_argument("--scenes", nargs="+", choices=[*fidelity.SCENES, "sharp-full"], default=list(fidelity.SCENES))
    parser.add_argument("--width", type=int, default=384, help="render width of sharp-full (the photo is 1536 wide)")
    parser.add_argument("--samples", type=int, default=0, help="0: 4 for proxies in Cycles, 1024 for native "
                        "splats in Cycles, 16 in EEVEE")
    parser.add_argument("--paths", nargs="+", choices=["native", "proxies"], default=None,
                        help="Blender 5.3+: native splats, our proxies (Render as Proxies) or both (default)")
    parser.add_argument("--proxies", choices=["quads", "cubes"], default="quads",
                        help="proxy shape in renders: camera-facing quads (Face Camera in Renders) or cubes")
    parser.add_argument("--inference-python", default=str(ROOT / ".venv" / "blender-5.0" / "bin" / "python"))
    args = parser.parse_args()
    paths = args.paths or (["native", "proxies"] if compat.has_native_splats() else ["proxies"])
    if "native" in paths and not compat.has_native_splats():
        parser.error("native splats need Blender 5.3+")
    scratch = Path(tempfile.mkdtemp(prefix="sharp-fidelity-"))
    print(f"Blender {bpy.app.version_string}, proxies as {args.proxies}")
    print("| scene | splats | path | engine | samples | camera | PSNR (dB) | Blender render (s) | exact render (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, path, engine_name in ((n, p, e) for n in args.scenes for p in paths for e in args.engine):
        engine = ENGINES[engine_name] or eevee_id(bpy)
        native = path == "native"
        samples = args.samples or (16 if engine != "CYCLES" else 1024 if native else 4)
        bpy.ops.wm.read_homefile(use_factory_startup=True, use_empty=True)
        g = fidelity.sharp_shaped() if name == "sharp-full" else fidelity.SCENES[name]()
        built = splat_scene.gaussians_to_object(g, name, transparency="BLENDED")
        modifier = splat_scene.splat_modifier(built.splats)
        if compat.has_native_splats():
            splat_scene.set_modifier_input(modifier, "Render as Proxies", not native)
        splat_scene.set_modifier_input(modifier, "Face Camera in Renders", args.proxies == "quads")
        if name == "sharp-full":
            bpy.context.scene.render.resolution_percentage = round(100 * args.width / g.image_size[0])
        for view in ("matched", "moved"):
            if view == "moved":
                move_camera(built.camera, distance=float(np.median(g.means[:, 2])))
            bpy.context.view_layer.update()
            camera = cameras.camera_from_blender(bpy.context.scene.camera, bpy.context.scene, built.splats)
            want, exact_s = exact(g, camera, args.inference_python, scratch)
            got, blender_s = render(engine, samples, scratch / f"{name}-{view}.exr")
            print(f"| {name} | {len(g):,} | {path} | {engine_name} | {samples} | {view} | "
                  f"{fidelity.psnr(got, want):.1f} | {blender_s:.2f} | {exact_s:.2f} |", flush=True)


if __name__ == "__main__":
    main()
