#!/usr/bin/env python3
"""The demo's Blender half: install the extension zip into a fresh Blender and convert a photo there.

    python tools/demo_blender.py --checkpoint sharp_2572gikvuh.pt --image photo.jpg --output out/

Runs inside an environment with the ``bpy`` module (tools/dev.py demo uses .venv/blender-5.0). The
extension is built by build_addon.py and installed the way a user installs it, in a throw-away
Blender user folder; the conversion goes through the add-on's ``blender -c sharp`` command.
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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sharp-demo-"))
    os.environ["BLENDER_USER_RESOURCES"] = str(work / "blender-user")  # before bpy is imported
    sys.path.insert(0, str(ROOT))
    import build_addon

    build_addon.main(["--output-dir", str(work)])
    (zip_path,) = work.glob("*.zip")

    import bpy

    # isort: split
    import addon_utils  # Blender's own module, importable once bpy is

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default", enable_on_install=True)
    print(f"Blender {bpy.app.version_string}: extension installed from {zip_path.name}", flush=True)
    try:
        cli = sys.modules[MODULE + ".blender"]._cli
        return cli(["predict", "-i", args.image, "-o", args.output, "-c", args.checkpoint])
    finally:
        addon_utils.disable(MODULE, default_set=True)


if __name__ == "__main__":
    sys.exit(main())
