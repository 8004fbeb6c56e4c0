"""The splat materials: each proxy shades as its Gaussian, seen along the whole view ray.

In the Gaussian's unit frame (its k-sigma ellipsoid the unit sphere: a cube's own coordinates; a
quad stores its axes in that frame, ``PROXY_FRAME_ATTRIBUTES``), for a shading point l and view
direction n the squared Mahalanobis distance of the closest point of the whole view ray is
m^2 = k^2 (|l|^2 - (l.n)^2) (the ray-marginal of docs/rendering.md, "Ray-marginal opacity"), and
alpha = min(0.99, o exp(-m^2 / 2)). Back faces are transparent so every cube is counted once; the
colour is the splat's linear RGB as emission. Points shade as spheres of radius k sigma_max.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import compat
from .node_builder import NodeBuilder
from .splat_interface import COLOR_ATTRIBUTE, PROXY_FRAME_ATTRIBUTES, extent_squared

MAX_ALPHA = 0.99  # as 3DGS rasterisers: a splat never hides everything behind it


def build_splat_material(material: bpy.types.Material, transparency: str) -> None:
    """The proxies' material, for an EEVEE transparency method (``DITHERED`` or ``BLENDED``)."""
    b = _new_material_tree(material, transparency)
    with b.stage("Splat attributes"):
        attribute = b.node("ShaderNodeAttribute", None, "Splat colour, opacity", attribute_type="INSTANCER",
                           attribute_name=COLOR_ATTRIBUTE)
        local = b.out(b.node("ShaderNodeTexCoord", None, "Point in the proxy"), "Object")
        geometry = b.node("ShaderNodeNewGeometry")
        frame = [b.out(b.node("ShaderNodeAttribute", None, f"Quad axis {'xyz'[n]} (Gaussian units)",
                              attribute_type="INSTANCER", attribute_name=name), "Vector")
                 for n, name in enumerate(PROXY_FRAME_ATTRIBUTES)]
    point, direction = _into_unit_frame(b, frame, local, b.out(geometry, "Incoming"))
    with b.stage("Ray-marginal distance"):
        direction = b.vmath("NORMALIZE", direction, label="n")
        along = b.vmath("DOT_PRODUCT", point, direction, label="l·n")
        m2_unit = b.math("SUBTRACT", b.vmath("DOT_PRODUCT", point, point, label="|l|²"),
                         b.math("MULTIPLY", along, along, "(l·n)²"), "m²(unit) = |l|² - (l·n)²")
    with b.stage("Gaussian alpha"):
        alpha = _gaussian_alpha(b, b.out(attribute, "Alpha"), m2_unit, b.out(geometry, "Backfacing"))
        inside = b.math("LESS_THAN", m2_unit, 1.0, "Ray within the extent")
        alpha = b.math("MULTIPLY", alpha, inside, "Alpha")
    _finish(b, b.out(attribute, "Color"), alpha)


def build_point_material(material: bpy.types.Material) -> None:
    """Points render as spheres of radius k sigma_max: alpha falls off towards the silhouette."""
    b = _new_material_tree(material, "DITHERED")
    with b.stage("Splat attributes"):
        attribute = b.node("ShaderNodeAttribute", None, "Splat colour, opacity", attribute_type="GEOMETRY",
                           attribute_name=COLOR_ATTRIBUTE)
        geometry = b.node("ShaderNodeNewGeometry")
    with b.stage("Ray-marginal distance"):
        # a sphere point at impact parameter b = r sqrt(1 - (N.I)^2), r = k sigma: m^2 = k^2 (1 - (N.I)^2)
        facing = b.vmath("DOT_PRODUCT", b.out(geometry, "Normal"), b.out(geometry, "Incoming"), label="N·I")
        m2_unit = b.math("SUBTRACT", 1.0, b.math("MULTIPLY", facing, facing, "(N·I)²"), "m²(unit) = 1 - (N·I)²")
    with b.stage("Gaussian alpha"):
        alpha = _gaussian_alpha(b, b.out(attribute, "Alpha"), m2_unit, b.out(geometry, "Backfacing"))
    _finish(b, b.out(attribute, "Color"), alpha)


def _new_material_tree(material: bpy.types.Material, transparency: str) -> NodeBuilder:
    tree = compat.ensure_node_tree(material)
    tree.nodes.clear()
    setattr(material, "surface_render_method", transparency)  # noqa: B010 - the stubs type it as a Literal
    compat.set_if_present(material, "use_transparency_overlap", True)
    compat.set_if_present(material, "use_backface_culling", False)
    return NodeBuilder(tree)


def _into_unit_frame(b: NodeBuilder, frame: list[Any], local: Any, incoming: Any) -> tuple[Any, Any]:
    """The shading point and the view direction in the Gaussian's unit frame: cubes are in it
    already; quads carry their axes in it (``frame``; none stored on cubes: 0)."""
    with b.stage("Into the Gaussian's unit frame"):
        is_quad = b.math("GREATER_THAN", b.vmath("LENGTH", frame[2], label="|z axis|"), 0.0, "A quad proxy")

        def to_unit(vector: Any, label: str) -> Any:
            parts = b.node("ShaderNodeSeparateXYZ", {"Vector": vector}, f"{label} x, y, z")
            mapped = None
            for axis, column in zip("XYZ", frame):
                term = b.vmath("SCALE", column, scale=b.out(parts, axis), label=f"{label} {axis.lower()} × axis")
                mapped = term if mapped is None else b.vmath("ADD", mapped, term, label=f"{label} in Gaussian units")
            mix = b.node("ShaderNodeMix", {"Factor": is_quad, "A": vector, "B": mapped}, f"{label} (quad or cube)",
                         data_type="VECTOR")
            return b.out(mix, "Result")

        to_object = b.node("ShaderNodeVectorTransform", {"Vector": incoming}, "View direction in the proxy",
                           vector_type="VECTOR", convert_from="WORLD", convert_to="OBJECT")
        return to_unit(local, "Point"), to_unit(b.out(to_object, "Vector"), "View")


def _gaussian_alpha(b: NodeBuilder, opacity: Any, m2_unit: Any, backfacing: Any) -> Any:
    """min(0.99, o exp(-k^2 m2_unit / 2)) on front faces, 0 on back faces (each splat counts once)."""
    m2 = b.math("MULTIPLY", m2_unit, extent_squared(b, opacity), "m² = k² m²(unit)")
    falloff = b.math("EXPONENT", b.math("MULTIPLY", m2, -0.5, "-m² / 2"), label="exp(-m² / 2)")
    front = b.math("SUBTRACT", 1.0, backfacing, "Front face")
    alpha = b.math("MINIMUM", b.math("MULTIPLY", opacity, falloff, "o exp(-m² / 2)"), MAX_ALPHA, "Alpha ≤ 0.99")
    return b.math("MULTIPLY", alpha, front, "Alpha, front faces only")


def _finish(b: NodeBuilder, color: Any, alpha: Any) -> None:
    """Straight-alpha 'over': emission of the linear colour mixed with transparency by alpha."""
    with b.stage("Shading"):
        emission = b.node("ShaderNodeEmission", {"Color": color, "Strength": 1.0})
        clear = b.node("ShaderNodeBsdfTransparent")
        mix = b.node("ShaderNodeMixShader", {"Fac": alpha, ("Shader", 0): b.out(clear, "BSDF"),
                                             ("Shader", 1): b.out(emission, "Emission")}, "Colour over by alpha")
        output = b.node("ShaderNodeOutputMaterial")
        b.link(b.out(mix, "Shader"), output, "Surface")
    b.arrange()
