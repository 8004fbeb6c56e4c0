"""What the splat object, its node group and its materials agree on: the attribute names, the
modifier's inputs, and the Gaussian's visible extent.

The node group reads the attribute names of Blender 5.3's native splats (``position``,
``scale``, ``rotation``) plus ``sharp_color`` (linear RGB, alpha = opacity), ``sharp_lod`` and
``sharp_layer`` written by the splat object. A splat is drawn out to k = min(3, sqrt(2 ln(255 o)))
standard deviations (beyond it o exp(-r^2/2) < 1/255): the proxies are that large and the
materials measure distance in those units, so both build k with ``extent_squared``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy

from . import compat
from .node_builder import NodeBuilder

COLOR_ATTRIBUTE = "sharp_color"
LOD_ATTRIBUTE = "sharp_lod"
LAYER_ATTRIBUTE = "sharp_layer"
MAX_EXTENT = 3.0  # standard deviations
# per quad proxy: the quad's x, y, z axes in the Gaussian's unit frame (where its k-sigma ellipsoid is
# the unit sphere), so the material finds the ray-marginal distance whatever the proxy's shape
PROXY_FRAME_ATTRIBUTES = ("sharp_proxy_x", "sharp_proxy_y", "sharp_proxy_z")


@dataclass(frozen=True)
class Input:
    """One modifier input of the node group."""

    name: str
    socket_type: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    subtype: str = "NONE"


INPUTS = (
    Input("Show as Points", "NodeSocketBool", False,
          "Fast display: one round point per splat instead of the exact Gaussian falloff"),
    Input("Points in Viewport", "NodeSocketBool", False,
          "Points in the viewport only; renders (F12) still draw the exact Gaussians"),
    Input("Face Camera in Renders", "NodeSocketBool", True,
          "Renders (F12) draw each splat as a flat proxy facing the scene camera, so overlapping splats blend "
          "in 3DGS's depth order; the viewport keeps cubes, which look right from every view"),
    Input("Splat Size", "NodeSocketFloat", 1.0, "Scale every Gaussian by this factor", 0.0, 100.0),
    Input("Opacity Threshold", "NodeSocketFloat", 1 / 255, "Hide splats less opaque than this", 0.0, 1.0,
          "FACTOR"),
    Input("Keep Fraction", "NodeSocketFloat", 1.0,
          "Show this fraction of the splats, always the same ones (a light viewport)", 0.0, 1.0, "FACTOR"),
    Input("Visible Layer", "NodeSocketBool", True, "Show SHARP's first depth layer (the visible surfaces)"),
    Input("Occluded Layer", "NodeSocketBool", True, "Show SHARP's second depth layer (what lies behind)"),
    Input("Use Crop Box", "NodeSocketBool", False, "Hide splats whose centre lies outside the crop box"),
    Input("Crop Min", "NodeSocketVector", (-1000.0, -1000.0, 0.0),
          "Lower corner of the crop box, in the photo's camera frame (x right, y down, z depth; metres)"),
    Input("Crop Max", "NodeSocketVector", (1000.0, 1000.0, 1000.0), "Upper corner of the crop box"),
    Input("Splat Material", "NodeSocketMaterial", None, "Material of the Gaussian proxies"),
    Input("Point Material", "NodeSocketMaterial", None, "Material of the fast point display"),
)  # fmt: skip


# Blender 5.3+ only, where the splat object is a native splat cloud
NATIVE_INPUTS = (
    Input("Render as Proxies", "NodeSocketBool", False,
          "Draw SHARP's proxies instead of Blender's native splats: they blend overlapping splats in 3DGS's "
          "depth order and are exact in a few samples, where native splats need hundreds"),
)


def modifier_inputs() -> tuple[Input, ...]:
    """The node group's inputs in this Blender (``NATIVE_INPUTS`` too where splats are native)."""
    return INPUTS + NATIVE_INPUTS if compat.has_native_splats() else INPUTS


def extent_squared(b: NodeBuilder, opacity: Any) -> bpy.types.NodeSocket:
    """k^2 = min(9, 2 ln(255 o)): the squared extent in standard deviations where o e^(-r^2/2) = 1/255."""
    log = b.math("LOGARITHM", b.math("MULTIPLY", opacity, 255.0, "255 o"), 2.718281828459045, "ln(255 o)")
    twice = b.math("MULTIPLY", log, 2.0, "2 ln(255 o)")
    return b.math("MINIMUM", b.math("MAXIMUM", twice, 0.0, "max(0, 2 ln(255 o))"), MAX_EXTENT**2,
                  "k² = min(9, 2 ln(255 o))")
