"""Gaussians as the attributes of a point cloud (Blender 5.1+) or a vertices-only mesh, and back.

One numpy path each way: every attribute is written with one ``foreach_set`` of a flat C-order
array and read with one ``foreach_get``; no per-point Python. The names follow Blender 5.3's native
splats (``position``, ``scale``, ``rotation``, ``radiance:base``, ``radiance:sh_*``), plus
``sharp_color`` (linear RGB + opacity), ``sharp_lod`` and ``sharp_layer``. Reading checks what an
edit may have broken (types, NaN, negative sizes) and says so in the user's terms.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np

from .. import gaussians as G
from ..errors import GaussiansError
from . import compat, splat_shading

FOCAL_PX = "sharp_focal_px"
IMAGE_SIZE = "sharp_image_size"
COLOR_SPACE = "sharp_color_space"


def new_splat_data(g: G.Gaussians, name: str) -> bpy.types.Mesh | bpy.types.PointCloud:
    """A point cloud (5.1+; 5.3: a native Gaussian splat cloud) or a vertices-only mesh holding ``g``."""
    n = len(g)
    data: bpy.types.Mesh | bpy.types.PointCloud
    if compat.can_size_pointclouds():
        data = bpy.data.pointclouds.new(name)
        data.resize(n)  # n > 0: gaussians_to_object refuses empty sets
    else:
        data = bpy.data.meshes.new(name)
        data.vertices.add(n)
    fill_attributes(data, g)
    if compat.has_native_splats():
        data.type = "GAUSSIAN_SPLAT"  # Blender 5.3+: EEVEE and Cycles render it natively
    data.update_tag()
    return data


def fill_attributes(data: bpy.types.Mesh | bpy.types.PointCloud, g: G.Gaussians) -> None:
    """Every attribute and the photo's metadata (custom properties of the data) of ``g``."""
    attributes = data.attributes
    write(attributes, "position", "FLOAT_VECTOR", g.means)
    write(attributes, "scale", "FLOAT_VECTOR", g.scales)
    write(attributes, "rotation", "QUATERNION", g.quats)
    # Blender 5.3 decodes radiance:base as the SH DC of sRGB-encoded colours whatever the file said
    # (measured by rendering, docs/rendering.md): native clouds always get that encoding
    srgb = g.color_space == "srgb" or compat.has_native_splats()
    encoded = G.linear_to_srgb(g.colors) if srgb else g.colors
    base = np.concatenate([G.color_to_sh_dc(encoded), g.opacities[:, None]], axis=1)
    write(attributes, "radiance:base", compat.float4_attribute_type(), base)
    if g.sh_rest is not None:
        for k in range(g.sh_rest.shape[1]):
            write(attributes, f"radiance:sh_{k}", "FLOAT_VECTOR", g.sh_rest[:, k])
    write(attributes, splat_shading.COLOR_ATTRIBUTE, "FLOAT_COLOR",
           np.concatenate([g.colors, g.opacities[:, None]], axis=1))
    write(attributes, splat_shading.LOD_ATTRIBUTE, "FLOAT", G.lod_keys(len(g)))
    if g.layers is not None:
        write(attributes, splat_shading.LAYER_ATTRIBUTE, "INT8", g.layers)
    if g.focal_px is not None:
        data[FOCAL_PX] = float(g.focal_px)
    if g.image_size is not None:  # ID properties hold 32-bit ints: larger sizes go in as (exact) doubles
        fits = max(g.image_size) < 2**31
        data[IMAGE_SIZE] = list(g.image_size) if fits else [float(v) for v in g.image_size]
    data[COLOR_SPACE] = "srgb" if srgb else g.color_space  # how radiance:base is encoded


def write(attributes: Any, name: str, data_type: str, values: np.ndarray) -> None:
    """One point attribute, made if missing, filled with one ``foreach_set``."""
    attribute = attributes.get(name)
    if attribute is None:
        attribute = attributes.new(name, data_type, "POINT")
    dtype = np.int32 if data_type in ("INT", "INT8") else np.float32
    flat = np.ascontiguousarray(values, dtype=dtype).reshape(-1)
    attribute.data.foreach_set(compat.attribute_value_key(data_type), flat)


# what each attribute must be to be read (an edit or script may have re-made one as another type)
ATTRIBUTE_TYPES = {"position": ("FLOAT_VECTOR",), "scale": ("FLOAT_VECTOR",), "rotation": ("QUATERNION",),
                   splat_shading.COLOR_ATTRIBUTE: ("FLOAT_COLOR",), "radiance:base": ("FLOAT4", "FLOAT_COLOR"),
                   splat_shading.LAYER_ATTRIBUTE: ("INT8", "INT"), splat_shading.LOD_ATTRIBUTE: ("FLOAT",)}


def read(attributes: Any, name: str, n: int, width: int, dtype: Any = np.float32, owner: str = "") -> np.ndarray:
    """One point attribute as an (n, width) array; ``GaussiansError`` naming ``owner`` when an edit re-made it."""
    attribute = attributes[name]
    allowed = ATTRIBUTE_TYPES.get(name, ("FLOAT_VECTOR",) if name.startswith("radiance:sh_") else ())
    if attribute.data_type not in allowed or attribute.domain != "POINT":
        raise GaussiansError.about(owner or "?", f"has a '{name}' attribute of type {attribute.data_type} on "
                                   f"{attribute.domain.lower()}s; a splat object keeps it as {' or '.join(allowed)} "
                                   "on points (undo the edit that changed it)")
    out = np.empty(n * width, dtype=dtype)
    attribute.data.foreach_get(compat.attribute_value_key(attribute.data_type), out)
    return out.reshape(n, width)


def missing_attributes(attributes: Any) -> str | None:
    """Which attributes a splat object lacks, as words for a message; None when it has them all."""
    missing = [a for a in ("position", "scale", "rotation") if a not in attributes]
    if missing:
        return ", ".join(missing)
    if splat_shading.COLOR_ATTRIBUTE not in attributes and "radiance:base" not in attributes:
        return f"{splat_shading.COLOR_ATTRIBUTE} or radiance:base"
    return None


def check_edits(name: str, arrays: dict[str, np.ndarray]) -> None:
    """Say in the user's terms which splats an edit has broken (non-numbers, negative sizes, null rotations)."""
    problems = []
    for attribute, values in arrays.items():
        bad = int(np.count_nonzero(~np.isfinite(values).all(axis=1)))
        if bad:
            article = "an" if attribute[0] in "aeiou" else "a"
            problems.append(f"{bad:,} with {article} {attribute} that is not a number (NaN or Inf)")
    negative = int(np.count_nonzero((arrays["scale"] < 0).any(axis=1)))
    if negative:
        problems.append(f"{negative:,} with a negative scale")
    null = int(np.count_nonzero(np.einsum("ij,ij->i", arrays["rotation"], arrays["rotation"]) == 0))
    if null:
        problems.append(f"{null:,} with an all-zero rotation")
    if problems:
        raise GaussiansError.about(name, f"has splats that cannot be used, perhaps after an edit: "
                                   f"{'; '.join(problems)} (of {len(arrays['position']):,} splats); "
                                   "undo the edit or delete those points")
