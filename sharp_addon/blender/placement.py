"""Where a new photo frame goes: at the 3D cursor, clear of whatever would hide the splats there.

Blender adds objects at the 3D cursor; a SHARP scene's camera sits at its photo frame's origin, so
in Blender's default startup file (a cube at the origin) the photo camera would see the cube's
inside. ``place_photo_frame`` moves the frame along +X past every shown object whose bounding box
stands in the photo camera's view, and says so in the operator's report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Vector

from .. import gaussians as G

# object types whose surfaces can stand in a camera's view (lights, cameras, empties cannot)
GEOMETRY_TYPES = frozenset({"MESH", "CURVE", "SURFACE", "META", "FONT", "CURVES", "POINTCLOUD", "VOLUME",
                            "GPENCIL", "GREASEPENCIL"})
PLACEMENT_GAP = 0.5  # metres between a photo frame's view and the object it was moved beside


@dataclass(frozen=True)
class Placement:
    """Where ``place_photo_frame`` put a new photo frame: ``offset`` metres along +X from the 3D cursor,
    clear of ``blockers`` (the objects in the photo camera's view at the cursor)."""

    location: Vector
    offset: float = 0.0
    blockers: tuple[str, ...] = ()

    def words(self) -> str:
        """The report's words: nothing when the frame is at the cursor."""
        if not self.blockers:
            return ""
        names = f"'{self.blockers[0]}'" + (f" and {len(self.blockers) - 1} more" if len(self.blockers) > 1 else "")
        return (f", placed {self.offset:.2f} m along X from the 3D cursor, beside {names}, which stood in the "
                "photo camera's view there")


def place_photo_frame(g: G.Gaussians, ignore: Iterable[bpy.types.Object] = ()) -> Placement:
    """At the 3D cursor, as Blender adds objects; where a shown object's bounding box stands in the
    photo camera's view from there (the pyramid from the camera to the farthest splat), moved along +X
    to the nearest place with none in it, ``PLACEMENT_GAP`` clear. So the default cube, which holds
    the world origin, never hides the splats, and an empty scene's frame stays at the cursor."""
    scene = bpy.context.scene
    assert scene is not None, "Blender always has a scene here"
    cursor = scene.cursor.location.copy()
    boxes = _shown_boxes(set(ignore))
    if not boxes:
        return Placement(cursor)
    pyramid = _view_pyramid(g)
    in_view = {name: span for name, lo, hi in boxes
               if (span := _offsets_in_view(lo - np.array(cursor), hi - np.array(cursor), *pyramid)) is not None}
    offset = 0.0
    for _ in range(len(in_view)):  # each span can push the frame past it once
        pushed = [hi for lo, hi in in_view.values() if lo < offset < hi]
        if not pushed:
            break
        offset = max(pushed) + PLACEMENT_GAP
    blockers = tuple(name for name, (lo, hi) in in_view.items() if lo < 0.0 < hi)
    return Placement(cursor + Vector((offset, 0.0, 0.0)), offset, blockers)


def _view_pyramid(g: G.Gaussians) -> tuple[float, float, float]:
    """The photo camera's view that holds every splat: tangents of its half-angles across (world X)
    and up (world Z), and its depth (world +Y) to the farthest splat; the photo's own field of view
    when it is wider."""
    x, y, z = g.means[:, 0], g.means[:, 1], g.means[:, 2]
    ahead = z > 1e-6
    if not ahead.any():
        return 0.0, 0.0, 0.0
    tan_x, tan_z = float(np.max(np.abs(x[ahead]) / z[ahead])), float(np.max(np.abs(y[ahead]) / z[ahead]))
    if g.focal_px and g.image_size:
        tan_x, tan_z = max(tan_x, g.image_size[0] / 2 / g.focal_px), max(tan_z, g.image_size[1] / 2 / g.focal_px)
    return tan_x, tan_z, float(z[ahead].max())


def _offsets_in_view(lo: np.ndarray, hi: np.ndarray, tan_x: float, tan_z: float,
                     depth: float) -> tuple[float, float] | None:
    """The open span of offsets along X at which a box (``lo``..``hi``, world axes, relative to the
    camera) meets the view pyramid; None when it never does. The pyramid's cross-section at depth d
    is |x| <= d tan_x, |z| <= d tan_z, and grows with d: the widest depth the box reaches decides."""
    tan_z = max(tan_z, 1e-9)  # a flat view still meets the boxes around its plane
    near, far = max(0.0, lo[1], lo[2] / tan_z, -hi[2] / tan_z), min(depth, hi[1])
    if near > far:
        return None
    return float(lo[0] - far * tan_x), float(hi[0] + far * tan_x)


def _shown_boxes(ignore: set[bpy.types.Object]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """World bounding boxes (name, lower corner, upper corner) of the objects that can be seen in the
    viewport or the render: geometry, shown in either. A box counts both as evaluated (modifiers) and as
    its data (a splat object's proxies are instances, outside its evaluated box)."""
    view_layer = bpy.context.view_layer
    if view_layer is None:
        return []
    shown = [o for o in view_layer.objects if o.type in GEOMETRY_TYPES and o not in ignore
             and (o.visible_get(view_layer=view_layer) or not o.hide_render)]
    if not shown:
        return []
    depsgraph = bpy.context.evaluated_depsgraph_get()
    boxes = []
    for obj in shown:
        evaluated = obj.evaluated_get(depsgraph)
        corners = [c for box in (evaluated.bound_box, obj.bound_box) if len({tuple(v) for v in box}) > 1
                   for c in box]
        if not corners:
            continue
        matrix = np.array(evaluated.matrix_world, dtype=np.float64)
        world = np.c_[np.array(corners, dtype=np.float64), np.ones(len(corners))] @ matrix.T
        boxes.append((obj.name, world[:, :3].min(axis=0), world[:, :3].max(axis=0)))
    return boxes
