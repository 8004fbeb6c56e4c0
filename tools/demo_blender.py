#!/usr/bin/env python3
"""The demo's Blender half: install the extension zip into a fresh Blender and convert a photo there.

    python tools/demo_blender.py --checkpoint sharp_2572gikvuh.pt --image photo.jpg --output out/

Runs inside an environment with the ``bpy`` module (tools/dev.py demo uses .venv/blender-5.0). The
extension is built by build_addon.py and installed the way a user installs it, in a throw-away
Blender user folder. Then, as a user would:
1. ``blender -c sharp predict`` writes the photo's Gaussians as a PLY (the batch command);
2. Add > SHARP from Image (``bpy.ops.sharp.from_image``) builds the splat object and the photo's
   camera; the scene is saved as a .blend and rendered in Cycles from that camera (a PNG).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = "bl_ext.user_default.sharp_from_image"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--no-scene", action="store_true", help="only the PLY, no .blend and render")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sharp-demo-"))
    os.environ["BLENDER_USER_RESOURCES"] = str(work / "blender-user")  # before bpy is imported
    sys.path.insert(0, str(ROOT))
    import build_addon

    build_addon.main(["--no-wheels", "--output-dir", str(work)])  # torch comes from this environment
    (zip_path,) = work.glob("*.zip")

    import bpy

    # isort: split
    import addon_utils  # Blender's own module, importable once bpy is

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default", enable_on_install=True)
    print(f"Blender {bpy.app.version_string}: extension installed from {zip_path.name}", flush=True)
    try:
        cli = sys.modules[MODULE + ".blender"].cli_command
        code = cli(["predict", "-i", args.image, "-o", args.output, "-c", args.checkpoint])
        if code != 0 or args.no_scene:
            return code
        return build_scene(bpy, args)
    finally:
        addon_utils.disable(MODULE, default_set=True)


def build_scene(bpy, args: argparse.Namespace) -> int:
    """The splat object from the photo, saved as a .blend and rendered from the photo's camera."""
    out = Path(args.output).resolve()
    stem = Path(args.image).stem
    try:
        bpy.ops.sharp.from_image(filepath=str(Path(args.image).resolve()), checkpoint=str(args.checkpoint))
    except RuntimeError as e:  # the operator's report
        print(f"error: {e}", file=sys.stderr)
        return 1
    obj = bpy.context.active_object
    print(f"scene: '{obj.name}' with {len(obj.data.attributes['position'].data):,} splats, "
          f"camera '{bpy.context.scene.camera.name}'", flush=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / f"{stem}.blend"))
    scene = bpy.context.scene
    sys.modules[MODULE + ".blender.render_setup"].cycles_on_cpu(scene, percentage=50)
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(out / f"{stem}_render.png")
    bpy.ops.render.render(write_still=True)
    print(f"saved {out / f'{stem}.blend'} and the Cycles render {out / f'{stem}_render.png'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
