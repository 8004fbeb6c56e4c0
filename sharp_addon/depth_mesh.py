"""A textured grid mesh of SHARP's visible layer: the photo draped over SHARP's depths.

No bpy, no torch. SHARP predicts its visible layer (layer 0) as a square grid of splats in
row-major pixel order over the whole photo (docs/model.md, "Composer": Gaussian n = layer · G² +
row · G + column, G = 768 for the released model). So the splat centres are already a depth map
in 3D: joining grid neighbours gives a surface, and each vertex's pixel gives its UV on the photo.
Faces across a depth jump (a foreground edge against the background) would be long stretched
sheets, so they are cut by a relative depth test that does not depend on the scene's scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import GaussiansError
from .gaussians import Gaussians

DEFAULT_STEP = 2  # every 2nd splat: 384² vertices for the released model, a quarter of the full grid
# A face is cut when its corners' depths differ by more than this fraction (max / min > 1 + cut).
# 0.1 keeps continuous surfaces whole down to grazing angles (a ground plane's neighbouring rows at
# step 2 differ by 10 % only within ~20 rows of the horizon) and cuts object edges, whose depths
# differ by tens of percent (docs/notes/depth-mesh.md).
DEFAULT_CUT_THRESHOLD = 0.1


@dataclass(eq=False)
class DepthMesh:
    """A grid mesh: vertices in the photo's OpenCV camera frame, quads, UVs per vertex."""

    vertices: np.ndarray  # [V, 3] float32 metres, OpenCV camera frame (as the splats' means)
    uvs: np.ndarray  # [V, 2] float32, pixel centres in [0, 1], v = 0 at the photo's bottom (Blender)
    quads: np.ndarray  # [F, 4] int32 vertex indices, counter-clockwise as seen from the camera in Blender
    grid_size: int  # splats per side of SHARP's layer
    step: int

    @property
    def face_count(self) -> int:
        return int(self.quads.shape[0])


def visible_layer_grid(gaussians: Gaussians) -> np.ndarray:
    """The visible layer's splat centres as a [G, G, 3] grid (row, column); ``GaussiansError`` when
    the splats are not a SHARP prediction (no layers, or layer 0 is not a square grid)."""
    if gaussians.layers is None:
        raise GaussiansError("a depth mesh needs SHARP's depth layers (a prediction or an ml-sharp PLY "
                             "of 2 x 768² splats); these splats have none, e.g. a generic 3DGS file")
    visible = np.flatnonzero(gaussians.layers == 0)
    side = int(np.sqrt(visible.size) + 0.5)
    if visible.size < 4 or side * side != visible.size:
        raise GaussiansError(f"a depth mesh needs SHARP's visible layer as a square grid of splats; layer 0 has "
                             f"{visible.size:,} splats")
    if visible[-1] - visible[0] + 1 != visible.size:
        raise GaussiansError("a depth mesh needs SHARP's visible layer as one block in pixel order; layer 0's "
                             "splats are scattered (edited or re-ordered splats)")
    return gaussians.means[visible[0]: visible[-1] + 1].reshape(side, side, 3)


def build_depth_mesh(gaussians: Gaussians, step: int = DEFAULT_STEP,
                     cut_threshold: float = DEFAULT_CUT_THRESHOLD) -> DepthMesh:
    """The grid mesh over every ``step``-th splat of the visible layer, minus faces whose corners'
    depths differ by more than ``cut_threshold`` (relative) and the vertices no face uses."""
    if int(step) != step or step < 1:
        raise GaussiansError(f"the depth mesh step must be a whole number of splats >= 1; got {step!r}")
    if not (np.isfinite(cut_threshold) and cut_threshold >= 0):
        raise GaussiansError(f"the depth mesh cut threshold must be a fraction >= 0; got {cut_threshold!r}")
    grid = visible_layer_grid(gaussians)
    side = grid.shape[0]
    picked = np.arange(0, side, int(step))
    if picked[-1] != side - 1:
        picked = np.append(picked, side - 1)  # reach the photo's last row and column
    points = grid[np.ix_(picked, picked)]  # [n, n, 3]
    n = picked.size
    index = np.arange(n * n, dtype=np.int64).reshape(n, n)
    # quad corners: top-left, bottom-left, bottom-right, top-right in the photo (rows go down), which
    # is counter-clockwise once Blender's frame flips y: the normals face the camera
    corners = np.stack([index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]], axis=-1).reshape(-1, 4)
    depth = points[..., 2].reshape(-1)[corners]
    near, far = depth.min(axis=1), depth.max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = (near > 0) & np.isfinite(far) & (far <= near * (1.0 + cut_threshold))
    corners = corners[keep]
    used = np.zeros(n * n, dtype=bool)
    used[corners.ravel()] = True
    new_index = np.cumsum(used) - 1
    u = (picked + 0.5) / side
    uv_grid = np.stack(np.broadcast_arrays(u[None, :], 1.0 - u[:, None]), axis=-1).reshape(-1, 2)
    return DepthMesh(
        vertices=np.ascontiguousarray(points.reshape(-1, 3)[used], dtype=np.float32),
        uvs=np.ascontiguousarray(uv_grid[used], dtype=np.float32),
        quads=new_index[corners].astype(np.int32),
        grid_size=side,
        step=int(step),
    )
