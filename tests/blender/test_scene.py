"""Gaussians <-> splat object on real Blender (``blender.scene``): what the scene holds, what the modifier shows."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from sharp_addon import gaussians as G
from tests.conftest import ADDON_MODULE
from tests.support.blender_data import id_names
from tests.support.builders import sharp_gaussians

pytestmark = pytest.mark.blender


@pytest.fixture
def so(addon):
    return importlib.import_module(ADDON_MODULE + ".blender.scene")


@pytest.fixture
def GaussiansError(addon):  # the add-on's own class: its package is bl_ext.…, not sharp_addon
    return importlib.import_module(ADDON_MODULE + ".errors").GaussiansError


def native(bpy) -> bool:
    """Blender 5.3+: the splats render natively (no proxy instances, no material on the data)."""
    return "type" in bpy.types.PointCloud.bl_rna.properties


def instance_count(bpy) -> int:
    """How many splats render: proxy instances, or on 5.3 the evaluated native splat clouds' points."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    depsgraph.update()
    if native(bpy):
        return sum(len(i.object.data.points) for i in depsgraph.object_instances
                   if i.object.type == "POINTCLOUD" and i.object.data.type == "GAUSSIAN_SPLAT")
    return sum(1 for i in depsgraph.object_instances if i.is_instance)


def test_builds_exactly_the_object_its_frame_camera_and_shading(so, clean_scene, bpy_session):
    bpy = bpy_session
    before = id_names(bpy)
    g = sharp_gaussians()
    built = so.gaussians_to_object(g, "photo")
    obj = built.splats
    after = id_names(bpy)
    made = {k: after[k] - before[k] for k in after}
    assert made["objects"] == {"photo", "photo Photo", "photo Camera"}
    data_kind = "pointclouds" if bpy.app.version >= (5, 1, 0) else "meshes"
    assert made[data_kind] == {"photo"} and made["cameras"] == {"photo Camera"}
    assert made["node_groups"] == {"SHARP Splats"} and made["materials"] == {"SHARP Splat", "SHARP Splat Points"}
    assert sum(len(v) for v in made.values()) == 8, made
    assert obj.type == ("POINTCLOUD" if data_kind == "pointclouds" else "MESH")
    assert obj.parent.name == "photo Photo" and bpy.data.objects["photo Camera"].parent == obj.parent
    assert [m.type for m in obj.modifiers] == ["NODES"] and obj.modifiers[0].node_group.name == "SHARP Splats"
    assert bpy.context.view_layer.objects.active == obj and obj.select_get()
    assert (built.frame.name, built.camera.name) == ("photo Photo", "photo Camera")
    photo_camera_of = importlib.import_module(ADDON_MODULE + ".blender.photo_camera").PHOTO_CAMERA_OF
    assert built.camera[photo_camera_of] == obj  # found again renamed or moved (camera moves use it)
    assert not obj.visible_shadow  # emitted light: no proxy-shaped shadows, no shadow-map redraws in EEVEE
    assert built.summary().startswith("Added 'photo' with its camera: 1,000 splats (set Cycles transparent bounces")
    assert instance_count(bpy) == len(g)


@pytest.mark.parametrize("sh_degree", [0, 3])
def test_round_trip_is_exact_and_attributes_follow_blender_53(so, clean_scene, sh_degree):
    g = sharp_gaussians(500, sh_degree=sh_degree)
    obj = so.gaussians_to_object(g, "photo", create_camera=False).splats
    back = so.object_to_gaussians(obj)
    for name in ("means", "scales", "quats", "colors", "opacities", "sh_rest", "layers"):
        a, b = getattr(back, name), getattr(g, name)
        assert (a is None and b is None) or np.array_equal(a, b), name
    assert (back.focal_px, back.image_size, back.color_space) == (g.focal_px, g.image_size, g.color_space)
    attributes = obj.data.attributes
    assert attributes["rotation"].data_type == "QUATERNION" and attributes["scale"].data_type == "FLOAT_VECTOR"
    base = np.empty(len(g) * 4, np.float32)
    attributes["radiance:base"].data.foreach_get("vector" if attributes["radiance:base"].data_type == "FLOAT4"
                                                 else "color", base)
    base = base.reshape(-1, 4)
    np.testing.assert_allclose(base[:, :3], G.color_to_sh_dc(G.linear_to_srgb(g.colors)), atol=1e-5)
    np.testing.assert_array_equal(base[:, 3], g.opacities)
    sh_names = sorted(a.name for a in attributes if a.name.startswith("radiance:sh_"))
    assert len(sh_names) == (15 if sh_degree == 3 else 0)


def test_native_53_style_cloud_reads_colour_from_radiance_base(so, clean_scene):
    g = sharp_gaussians(300)
    obj = so.gaussians_to_object(g, "native", create_camera=False).splats
    obj.data.attributes.remove(obj.data.attributes["sharp_color"])
    back = so.object_to_gaussians(obj)
    np.testing.assert_allclose(back.colors, g.colors, atol=2e-6)
    np.testing.assert_array_equal(back.opacities, g.opacities)


def test_other_objects_are_refused_by_name(so, clean_scene, bpy_session, GaussiansError):
    bpy = bpy_session
    mesh = bpy.data.meshes.new("plain")
    obj = bpy.data.objects.new("plain", mesh)
    assert not so.is_splat_object(obj)
    with pytest.raises(GaussiansError, match="object 'plain': is not a splat object: it has no position, scale, rot"):
        so.object_to_gaussians(obj)
    empty = bpy.data.objects.new("nothing", None)
    with pytest.raises(GaussiansError, match=r"object 'nothing': is not a splat object \(its type is Empty\)"):
        so.object_to_gaussians(empty)


def test_camera_frames_the_splats_like_the_photo(so, clean_scene, bpy_session):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    bpy = bpy_session
    g = sharp_gaussians(200)
    obj = so.gaussians_to_object(g, "photo").splats
    scene = bpy.context.scene
    camera = scene.camera
    assert camera is not None and camera.name == "photo Camera"
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (640, 480, 100)
    assert camera.data.lens == pytest.approx(g.focal_px * 36.0 / 640, rel=1e-6)
    bpy.context.view_layer.update()
    # the photo looks along +Y with +Z up, from the origin
    direction = camera.matrix_world.to_3x3() @ Vector((0, 0, -1))
    assert tuple(direction) == pytest.approx((0, 1, 0), abs=1e-6)
    assert tuple(camera.matrix_world.translation) == pytest.approx((0, 0, 0), abs=1e-9)
    # every splat lands where the pinhole projection of the photo puts it
    w, h = g.image_size
    u = g.focal_px * g.means[:, 0] / g.means[:, 2] + w / 2
    v = g.focal_px * g.means[:, 1] / g.means[:, 2] + h / 2
    for i in range(0, len(g), 17):
        ndc = world_to_camera_view(scene, camera, obj.matrix_world @ Vector(g.means[i].tolist()))
        assert ndc.x * w == pytest.approx(u[i], abs=1e-3)
        assert (1 - ndc.y) * h == pytest.approx(v[i], abs=1e-3)
        assert ndc.z == pytest.approx(g.means[i, 2], rel=1e-5)


def test_scene_is_set_up_for_faithful_colours(so, clean_scene):
    scene = clean_scene
    scene.view_settings.view_transform = "AgX" if "AgX" in _transforms(scene) else "Filmic"
    scene.cycles.transparent_max_bounces = 8
    so.gaussians_to_object(sharp_gaussians(10), "a")
    assert scene.view_settings.view_transform == "Standard"
    bounces = importlib.import_module(ADDON_MODULE + ".blender.render_setup").CYCLES_TRANSPARENT_BOUNCES
    assert scene.cycles.transparent_max_bounces == bounces and scene.cycles.min_transparent_bounces == bounces
    scene.cycles.transparent_max_bounces = 1000  # never lowered
    so.gaussians_to_object(sharp_gaussians(10), "b", setup_render=False)
    assert scene.cycles.transparent_max_bounces == 1000


def _transforms(scene) -> list[str]:
    return [i.identifier for i in scene.view_settings.bl_rna.properties["view_transform"].enum_items]


def test_node_group_and_materials_are_made_once_and_reused(so, clean_scene, bpy_session):
    bpy = bpy_session
    a = so.gaussians_to_object(sharp_gaussians(10), "a", create_camera=False).splats
    b = so.gaussians_to_object(sharp_gaussians(10), "b", create_camera=False).splats
    assert len(bpy.data.node_groups) == 1 and len(bpy.data.materials) == 2
    group = a.modifiers[0].node_group
    assert b.modifiers[0].node_group == group and group["sharp_version"] >= 1
    if not native(bpy):  # 5.3's native splats would shade with a data material: they get none
        assert a.active_material == b.active_material == bpy.data.materials["SHARP Splat"]
    group["sharp_version"] = 0  # a file from an older add-on keeps its group; new objects get a current one
    c = so.gaussians_to_object(sharp_gaussians(10), "c", create_camera=False).splats
    assert c.modifiers[0].node_group != group and len(bpy.data.node_groups) == 2


def test_eevee_transparency_belongs_to_each_object(so, clean_scene, bpy_session):
    """A second import with Blended leaves the first object Dithered; switching one object changes only it."""
    bpy = bpy_session
    if native(bpy):
        pytest.skip("Blender 5.3 blends its native splats itself: the proxy materials are not used")
    first = so.gaussians_to_object(sharp_gaussians(10), "first", create_camera=False).splats
    second = so.gaussians_to_object(sharp_gaussians(10), "second", create_camera=False,
                                    transparency="BLENDED").splats
    assert (so.transparency(first), so.transparency(second)) == ("DITHERED", "BLENDED")
    assert first.active_material.surface_render_method == "DITHERED"
    assert second.active_material.surface_render_method == "BLENDED"
    modifier_material = so.modifier_input(so.splat_modifier(second), "Splat Material")
    assert modifier_material == second.active_material  # what renders is what the Material tab shows
    first.sharp_transparency = "BLENDED"  # the object's own setting (Properties > Object > SHARP Splats)
    assert (so.transparency(first), so.transparency(second)) == ("BLENDED", "BLENDED")
    second.sharp_transparency = "DITHERED"
    assert (first.sharp_transparency, second.sharp_transparency) == ("BLENDED", "DITHERED")
    assert so.modifier_input(so.splat_modifier(first), "Splat Material").surface_render_method == "BLENDED"
    assert len([m for m in bpy.data.materials if m.name.startswith("SHARP Splat")]) == 3  # 2 methods + points


def test_modifier_inputs_filter_the_splats(so, clean_scene, bpy_session):
    bpy = bpy_session
    n = 2000
    g = sharp_gaussians(n)
    g = g.replace(opacities=np.where(np.arange(n) % 4 == 0, 0.001, g.opacities).astype(np.float32))
    obj = so.gaussians_to_object(g, "f", create_camera=False).splats
    modifier = so.splat_modifier(obj)
    visible = g.opacities >= 1 / 255
    assert instance_count(bpy) == visible.sum()

    so.set_modifier_input(modifier, "Keep Fraction", 0.25)
    assert instance_count(bpy) == (visible & (G.lod_keys(n) < 0.25)).sum()
    so.set_modifier_input(modifier, "Keep Fraction", 1.0)

    so.set_modifier_input(modifier, "Occluded Layer", False)
    assert instance_count(bpy) == (visible & (g.layers == 0)).sum()
    so.set_modifier_input(modifier, "Visible Layer", False)
    assert instance_count(bpy) == 0
    so.set_modifier_input(modifier, "Occluded Layer", True)
    assert instance_count(bpy) == (visible & (g.layers == 1)).sum()
    so.set_modifier_input(modifier, "Visible Layer", True)

    so.set_modifier_input(modifier, "Use Crop Box", True)
    so.set_modifier_input(modifier, "Crop Min", (-1.0, -1.0, 2.0))
    so.set_modifier_input(modifier, "Crop Max", (0.0, 1.0, 4.0))
    inside = np.all((g.means >= [-1, -1, 2]) & (g.means <= [0, 1, 4]), axis=1)
    assert instance_count(bpy) == (visible & inside).sum()
    so.set_modifier_input(modifier, "Use Crop Box", False)

    so.set_modifier_input(modifier, "Opacity Threshold", 0.5)
    assert instance_count(bpy) == (g.opacities >= 0.5).sum()


def test_points_display_makes_one_point_per_kept_splat(so, clean_scene, bpy_session):
    bpy = bpy_session
    g = sharp_gaussians(400)
    obj = so.gaussians_to_object(g, "p", create_camera=False).splats
    modifier = so.splat_modifier(obj)
    so.set_modifier_input(modifier, "Show as Points", True)
    so.set_modifier_input(modifier, "Splat Size", 2.0)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    depsgraph.update()
    clouds = [i.object for i in depsgraph.object_instances if i.object.type == "POINTCLOUD"
              and i.object.original == obj]
    assert len(clouds) == 1 and instance_count(bpy) == (0 if obj.type == "POINTCLOUD" else 1)
    points = clouds[0].data
    assert len(points.points) == len(g)
    radius = np.empty(len(g), np.float32)
    points.attributes["radius"].data.foreach_get("value", radius)
    k = np.minimum(3.0, np.sqrt(np.maximum(2 * np.log(255 * g.opacities), 0)))
    np.testing.assert_allclose(radius, 2.0 * k * g.scales.max(axis=1), rtol=1e-5)
    assert points.materials[0].name == "SHARP Splat Points"


def test_a_failed_build_leaves_blender_data_unchanged(so, clean_scene, bpy_session, monkeypatch):
    bpy = bpy_session
    before = id_names(bpy)

    def broken_camera(*args, **kwargs):
        bpy.data.cameras.new("half made")
        raise RuntimeError("simulated failure while making the camera")

    monkeypatch.setattr(importlib.import_module(ADDON_MODULE + ".blender.photo_camera"), "new_camera", broken_camera)
    with pytest.raises(RuntimeError, match="simulated"):
        so.gaussians_to_object(sharp_gaussians(50), "broken")
    assert id_names(bpy) == before
    assert clean_scene.camera is None


def test_empty_gaussians_are_refused(so, clean_scene, bpy_session, GaussiansError):
    before = id_names(bpy_session)
    with pytest.raises(GaussiansError, match="no splats"):
        so.gaussians_to_object(sharp_gaussians(10).subset(np.zeros(10, bool)), "none")
    assert id_names(bpy_session) == before


def test_photo_frame_turns_opencv_into_blender_axes(so, clean_scene, bpy_session):
    obj = so.gaussians_to_object(sharp_gaussians(10), "axes", create_camera=False).splats
    bpy_session.context.view_layer.update()
    np.testing.assert_allclose(np.array(obj.matrix_world.to_3x3()), G.OPENCV_TO_BLENDER_WORLD, atol=1e-7)
    assert obj.parent.rotation_euler[0] == pytest.approx(-math.pi / 2)


@pytest.mark.parametrize(("change", "message"), [
    ({"image_size": (4_294_967_295, 1)}, "larger than Blender can render"),
    ({"focal_px": 1e-3}, "outside what a Blender camera takes"),
])
def test_extreme_photo_metadata_is_refused_before_anything_is_made(so, clean_scene, bpy_session, GaussiansError,
                                                                 change, message):
    before = id_names(bpy_session)
    g = sharp_gaussians(20).replace(**change)
    with pytest.raises(GaussiansError, match=f"object 'huge': records .*{message}.*turn off Camera"):
        so.gaussians_to_object(g, "huge")
    assert id_names(bpy_session) == before
    splats = so.gaussians_to_object(g, "huge", create_camera=False)  # the splats alone are fine
    assert splats.camera is None
    back = so.object_to_gaussians(splats.splats)
    assert (back.image_size, back.focal_px) == (g.image_size, g.focal_px)  # kept exactly, for export


def test_edited_splats_that_cannot_be_used_are_named_in_user_terms(so, clean_scene, GaussiansError):
    obj = so.gaussians_to_object(sharp_gaussians(30), "edited", create_camera=False).splats
    positions = np.zeros(30 * 3, np.float32)
    obj.data.attributes["position"].data.foreach_get("vector", positions)
    positions[:6] = np.nan  # two splats moved to NaN, as a broken edit or script leaves them
    obj.data.attributes["position"].data.foreach_set("vector", positions)
    with pytest.raises(GaussiansError) as info:
        so.object_to_gaussians(obj)
    assert str(info.value) == ("object 'edited': has splats that cannot be used, perhaps after an edit: 2 with a "
                               "position that is not a number (NaN or Inf) (of 30 splats); undo the edit or delete "
                               "those points")
