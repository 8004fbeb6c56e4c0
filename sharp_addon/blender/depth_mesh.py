"""The textured depth mesh of SHARP's visible layer: the photo draped over SHARP's depths.

The grid comes from ``sharp_addon.depth_mesh`` (numpy); this module only makes it a Blender mesh
with the photo as its texture. The object gets the same world matrix as the splat object (the
photo frame's turn from OpenCV to Blender axes, scene.py), so it lines up with the splats and the
matched camera. The material shows the photo as emission: a 3D photo should look like the photo
under any lighting, and glTF and USD export it as an emissive texture (docs/notes/depth-mesh.md).
"""

from __future__ import annotations

import os
from typing import Any

import bpy
import numpy as np

from ..depth_mesh import DEFAULT_CUT_THRESHOLD, DEFAULT_STEP, DepthMesh, build_depth_mesh
from ..errors import ImageError
from ..files import path_kind
from ..gaussians import Gaussians
from . import compat
from . import scene as splat_scene
from .scene import PHOTO_FRAME_ROTATION

UV_MAP = "UVMap"
classes: tuple[type, ...] = ()


def depth_mesh_object(
    gaussians: Gaussians,
    photo_path: str | os.PathLike[str],
    name: str,
    step: int = DEFAULT_STEP,
    cut_threshold: float = DEFAULT_CUT_THRESHOLD,
    collection: bpy.types.Collection | None = None,
    parent: bpy.types.Object | None = None,
) -> bpy.types.Object:
    """A mesh object of ``gaussians``' visible layer textured with the photo at ``photo_path``.

    ``parent`` (a splat object's photo frame) places it under that frame; without one the object
    carries the frame's rotation itself. Raises ``GaussiansError`` (not SHARP splats, bad step or
    threshold) or ``ImageError`` (photo missing or unreadable) with nothing made.
    """
    mesh = build_depth_mesh(gaussians, step=step, cut_threshold=cut_threshold)
    _check_photo(photo_path)
    collection = collection or bpy.context.collection or bpy.context.scene.collection
    with splat_scene.all_or_nothing():
        data = _new_mesh(mesh, name)
        data.materials.append(photo_material(photo_path, f"{name} Photo"))
        obj = bpy.data.objects.new(name, data)
        if parent is None:
            obj.rotation_euler = PHOTO_FRAME_ROTATION
        else:
            obj.parent = parent
        collection.objects.link(obj)
    return obj


def photo_material(photo_path: str | os.PathLike[str], name: str) -> bpy.types.Material:
    """The photo (sRGB) as the emission of a black Principled BSDF, its UVs from the mesh's "UVMap".

    Principled rather than a bare Emission shader: glTF and USD export only Principled materials
    (as emissiveTexture / emissiveColor); black, matte and without specular it shows the photo alone."""
    try:
        image = bpy.data.images.load(os.fspath(photo_path), check_existing=False)
    except RuntimeError as exc:
        raise ImageError.about(photo_path, f"Blender cannot read it as an image ({exc})") from None
    if 0 in tuple(image.size):  # type: ignore[arg-type]  # fake-bpy stub: size is an int pair
        bpy.data.images.remove(image)
        raise ImageError.about(photo_path, "Blender cannot read it as an image (no pixels)")
    image.colorspace_settings.name = "sRGB"
    material = bpy.data.materials.new(name)
    tree: Any = compat.ensure_node_tree(material)  # Any: the stubs type nodes as the base Node
    nodes, links = tree.nodes, tree.links
    nodes.clear()
    uv = nodes.new("ShaderNodeUVMap")
    uv.uv_map = UV_MAP
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.extension = "EXTEND"  # the photo's edge pixels, never the opposite edge's, at the border
    shader = nodes.new("ShaderNodeBsdfPrincipled")  # black, matte, no highlight: only the emission shows
    shader.inputs["Base Color"].default_value = (0.0, 0.0, 0.0, 1.0)
    shader.inputs["Specular IOR Level"].default_value = 0.0
    shader.inputs["Roughness"].default_value = 1.0
    shader.inputs["Emission Strength"].default_value = 1.0
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(uv.outputs["UV"], texture.inputs["Vector"])
    links.new(texture.outputs["Color"], shader.inputs["Emission Color"])
    links.new(shader.outputs["BSDF"], output.inputs["Surface"])
    for x, node in enumerate((uv, texture, shader, output)):
        node.location = (300 * x - 600, 0)
    return material


def _check_photo(photo_path: str | os.PathLike[str]) -> None:
    kind = path_kind(photo_path)
    if kind == "missing":
        raise ImageError.about(photo_path, "no such file (the photo to texture the depth mesh with)")
    if kind != "file":
        raise ImageError.about(photo_path, f"is a {kind}, not an image file")


def _new_mesh(mesh: DepthMesh, name: str) -> bpy.types.Mesh:
    data = bpy.data.meshes.new(name)
    corners = mesh.quads.reshape(-1)
    data.vertices.add(len(mesh.vertices))
    data.vertices.foreach_set("co", mesh.vertices.reshape(-1))
    data.loops.add(corners.size)
    data.loops.foreach_set("vertex_index", corners)
    data.polygons.add(mesh.face_count)
    data.polygons.foreach_set("loop_start", np.arange(0, corners.size, 4, dtype=np.int32))
    uv = data.uv_layers.new(name=UV_MAP)
    uv.data.foreach_set("uv", mesh.uvs[corners].reshape(-1))
    data.update()
    return data


def register() -> None:
    """Menus and other hooks beyond the classes (called after the classes are registered)."""


def unregister() -> None:
    """Undo register."""
