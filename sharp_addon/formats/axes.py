"""The axes splat files use, and moving splats between them (SH colour included).

"RDF": x right, y down, z forward — the photo's OpenCV frame, ml-sharp's and every 3DGS PLY's.
"RUB": x right, y up, z back — three.js and OpenGL, what SPZ names and glTF's camera convention
(Blender's world (x, y, z) is glTF's (x, z, -y), so the photo frame W maps to (x, -y, -z) in
glTF, the same as RUB). Between the two is a half turn about x, a proper rotation.
"""

from __future__ import annotations

import numpy as np

from ..gaussians import Gaussians

HALF_TURN_ABOUT_X = np.diag([1.0, -1.0, -1.0])


def to_axes(g: Gaussians, axes: str) -> Gaussians:
    """``g`` (in RDF) expressed in ``axes``."""
    return g if axes == "RDF" else g.transformed(HALF_TURN_ABOUT_X)


def from_axes(g: Gaussians, axes: str) -> Gaussians:
    """Splats read in ``axes``, expressed in RDF."""
    return g if axes == "RDF" else g.transformed(HALF_TURN_ABOUT_X)
