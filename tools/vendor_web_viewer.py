#!/usr/bin/env python3
"""Refresh the web viewer vendored in ``sharp_addon/web_viewer/`` from npm (pinned versions).

    python3 tools/vendor_web_viewer.py

Spark (World Labs' Gaussian-splat renderer for three.js) and three.js, both MIT: only the files the
page imports (Spark's minified module; three's module build, OrbitControls and the Pass it needs),
with each package's licence. Needs npm; the result is committed, so users and CI need no npm for it.
After changing a version: update sharp_addon/web_viewer/README.md and run tests/core/test_web_page.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "sharp_addon" / "web_viewer"
PACKAGES = {"@sparkjsdev/spark": "2.2.0", "three": "0.187.0"}
FILES = {  # package -> (file in the package, where it goes under TARGET)
    "@sparkjsdev/spark": [("dist/spark.module.min.js", "spark/spark.module.js"), ("LICENSE", "spark/LICENSE")],
    "three": [("build/three.module.js", "three/three.module.js"), ("build/three.core.js", "three/three.core.js"),
              ("examples/jsm/controls/OrbitControls.js", "three/addons/controls/OrbitControls.js"),
              ("examples/jsm/postprocessing/Pass.js", "three/addons/postprocessing/Pass.js"),
              ("LICENSE", "three/LICENSE")],
}


def main() -> int:
    npm = shutil.which("npm")
    if npm is None:
        print("npm is needed to fetch the viewer", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        for package, version in PACKAGES.items():
            done = subprocess.run([npm, "pack", f"{package}@{version}", "--silent"], cwd=scratch,
                                  capture_output=True, text=True, check=True)
            with tarfile.open(Path(scratch) / done.stdout.strip().splitlines()[-1]) as tar:
                for inside, outside in FILES[package]:
                    member = tar.extractfile(f"package/{inside}")
                    assert member is not None, inside
                    destination = TARGET / outside
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    destination.write_bytes(member.read())
    (TARGET / "VERSIONS.txt").write_text("".join(f"{p} {v} (MIT)\n" for p, v in PACKAGES.items()))
    size = sum(p.stat().st_size for p in TARGET.rglob("*") if p.is_file())
    print(f"vendored {', '.join(f'{p}@{v}' for p, v in PACKAGES.items())} into {TARGET} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
