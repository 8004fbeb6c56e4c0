"""First use as a new user meets it: Blender's default startup scene (cube, light, camera), where the
default cube holds the world origin and the 3D cursor. The photo frame must go where nothing hides the
splats from the photo's camera (``placement.place_photo_frame``); on an empty scene it stays at the cursor."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tests.conftest import ADDON_MODULE, SAMPLE
from tests.support.builders import random_gaussians
from tests.support.renders import render_rgba

pytestmark = pytest.mark.blender

GREEN = (0.05, 0.8, 0.1)


@pytest.fixture
def so(addon):
    return importlib.import_module(ADDON_MODULE + ".blender.scene")


@pytest.fixture
def default_scene(bpy_session):
    """Blender's own startup file, as a new user opens it: Cube at the origin, Light, Camera."""
    bpy_session.ops.wm.read_homefile(use_factory_startup=True)
    scene = bpy_session.context.scene
    assert {o.name for o in scene.objects} == {"Cube", "Light", "Camera"}
    assert tuple(scene.cursor.location) == (0.0, 0.0, 0.0)
    return scene


def green_gaussians(n: int = 600):
    """Opaque green splats large enough to cover the middle of the photo."""
    g = random_gaussians(n, seed=3)
    return g.replace(colors=np.tile(np.float32(GREEN), (n, 1)), opacities=np.full(n, 0.98, np.float32),
                     scales=np.full((n, 3), 0.08, np.float32))


def splat_points(built) -> np.ndarray:
    """The splats' centres in world space."""
    position = built.splats.data.attributes["position"]
    means = np.empty(len(position.data) * 3, np.float32)
    position.data.foreach_get("vector", means)
    means = means.reshape(-1, 3)
    world = np.array(built.splats.matrix_world)
    return means @ world[:3, :3].T + world[:3, 3]


def objects_in_the_way(bpy, camera, targets: np.ndarray) -> set[str]:
    """Names of the objects a ray from the camera meets before each target. Hide the splats first:
    Blender's ray cast through 100,000 proxies takes minutes."""
    scene = bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    origin = np.array(camera.matrix_world.translation)
    hit = set()
    for target in targets:
        way = np.asarray(target, np.float64) - origin
        distance = float(np.linalg.norm(way))
        found, _, _, _, obj, _ = scene.ray_cast(depsgraph, origin.tolist(), (way / distance).tolist(),
                                                distance=distance)
        if found:
            hit.add(obj.original.name)
    return hit


def view_targets(bpy, camera, depth: float) -> np.ndarray:
    """Points at ``depth`` through the photo's centre and its four corners."""
    corners = np.array([tuple(v) for v in camera.data.view_frame(scene=bpy.context.scene)])  # camera space, z < 0
    rays = np.vstack([corners, corners.mean(axis=0)])
    rays = rays / -rays[:, 2:3] * depth
    world = np.array(camera.matrix_world)
    return rays @ world[:3, :3].T + world[:3, 3]


def assert_nothing_hides_the_splats(bpy, built) -> None:
    """Rays from the photo camera to 40 of its splats, and through the photo's centre and corners to the
    farthest splat's depth, meet nothing but the splats."""
    assert bpy.context.scene.camera == built.camera
    bpy.context.view_layer.update()  # the matrices of the objects just made
    points = splat_points(built)
    depth = float(np.max(np.linalg.norm(points - np.array(built.camera.matrix_world.translation), axis=1)))
    targets = np.vstack([points[:: max(1, len(points) // 40)], view_targets(bpy, built.camera, depth)])
    built.splats.hide_viewport = True
    try:
        hit = objects_in_the_way(bpy, built.camera, targets)
    finally:
        built.splats.hide_viewport = False
    assert not hit, f"{sorted(hit)} stand between the photo camera and its splats"


# ---- the default startup scene --------------------------------------------------------------------


def test_in_the_default_scene_the_cube_does_not_hide_the_splats(so, default_scene, bpy_session):
    bpy = bpy_session
    g = random_gaussians(400)
    built = so.gaussians_to_object(g, "photo")
    assert_nothing_hides_the_splats(bpy, built)
    assert built.placement.blockers == ("Cube",)
    x = built.frame.location.x
    assert built.frame.location.y == built.frame.location.z == 0.0 and x == pytest.approx(built.placement.offset)
    # just clear, no farther: the cube's +X face (x = 1), plus the view's half-width where the view leaves
    # the cube (1 m deep; the photo's or the splats' widest angle), plus the gap
    half_width = max(g.image_size[0] / 2 / g.focal_px, float(np.max(np.abs(g.means[:, 0]) / g.means[:, 2])))
    gap = importlib.import_module(ADDON_MODULE + ".blender.placement").PLACEMENT_GAP
    assert x == pytest.approx(1.0 + half_width + gap, rel=1e-5)
    assert f"placed {x:.2f} m along X from the 3D cursor, beside 'Cube'" in built.summary()


def test_f12_in_the_default_scene_shows_the_splats_not_the_cube(so, default_scene, bpy_session, tmp_path):
    bpy = bpy_session
    so.gaussians_to_object(green_gaussians(), "photo")
    default_scene.render.resolution_percentage = 5  # 32 x 24
    rgba = render_rgba(bpy, "CYCLES", tmp_path / "f12.exr", samples=1)
    assert rgba.shape == (24, 32, 4)
    covered = rgba[..., 3] > 0.5
    assert covered.mean() > 0.15, f"the splats cover {covered.mean():.0%} of the image"
    r, g, b = (rgba[covered][:, i] / rgba[covered][:, 3] for i in range(3))  # un-premultiplied
    assert np.median(g) > 0.5 and np.median(r) < 0.25 * np.median(g) and np.median(b) < 0.25 * np.median(g), \
        f"median colour ({np.median(r):.3f}, {np.median(g):.3f}, {np.median(b):.3f}), not the splats' green"


@pytest.mark.torch
@pytest.mark.slow
def test_add_sharp_from_image_in_the_default_scene(addon, so, default_scene, bpy_session, tiny_checkpoint, capfd):
    bpy = bpy_session
    assert bpy.ops.sharp.from_image(filepath=str(SAMPLE), checkpoint=str(tiny_checkpoint), device="CPU",
                                    precision="FP32") == {"FINISHED"}
    splats = bpy.context.active_object
    frame = splats.parent
    built = so.SplatScene(splats, frame, bpy.data.objects["sample_640x480 Camera"])
    assert frame.location.x > 1.0, "the photo frame was left inside the default cube"
    assert_nothing_hides_the_splats(bpy, built)
    out = capfd.readouterr()  # background Blender prints the operator's reports
    assert "beside 'Cube', which stood in the photo camera's view there" in out.out + out.err


def test_a_second_photo_goes_beside_the_first(so, default_scene, bpy_session):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    bpy = bpy_session
    first = so.gaussians_to_object(random_gaussians(300, seed=1), "first")
    second = so.gaussians_to_object(random_gaussians(300, seed=2), "second")
    assert second.placement.blockers == ("Cube", "first")  # both stand in its view at the 3D cursor
    assert second.frame.location.x > first.frame.location.x
    far = float(random_gaussians(300, seed=2).means[:, 2].max())
    bpy.context.view_layer.update()
    seen = [tuple(world_to_camera_view(default_scene, second.camera, Vector(p))) for p in splat_points(first)]
    in_view = [(u, v, d) for u, v, d in seen if 0 <= u <= 1 and 0 <= v <= 1 and 0 < d <= far]
    assert not in_view, f"{len(in_view)} of the first photo's splats are in the second's view"
    assert_nothing_hides_the_splats(bpy, second)


# ---- where it does not move -----------------------------------------------------------------------


def test_on_an_empty_scene_the_frame_stays_at_the_origin(so, clean_scene):
    built = so.gaussians_to_object(random_gaussians(50), "photo")
    assert tuple(built.frame.location) == (0.0, 0.0, 0.0)
    assert built.placement.offset == 0.0 and built.placement.blockers == ()
    assert "placed" not in built.summary()


def test_the_frame_goes_to_the_3d_cursor(so, clean_scene):
    clean_scene.cursor.location = (2.0, -3.0, 1.5)
    built = so.gaussians_to_object(random_gaussians(50), "photo")
    assert tuple(built.frame.location) == (2.0, -3.0, 1.5)


@pytest.mark.parametrize(("where", "moves"), [
    ("in front", True),
    ("behind the camera", False),
    ("past the farthest splat", False),
    ("above the view", False),
    ("hidden", False),
])
def test_only_objects_in_the_photo_cameras_view_move_it(so, clean_scene, bpy_session, where, moves):
    bpy = bpy_session
    bpy.ops.mesh.primitive_cube_add(size=1.0, location={
        "in front": (0.0, 3.0, 0.0), "behind the camera": (0.0, -2.0, 0.0), "hidden": (0.0, 3.0, 0.0),
        "past the farthest splat": (0.0, 20.0, 0.0), "above the view": (0.0, 2.0, 5.0)}[where])
    box = bpy.context.active_object
    if where == "hidden":
        box.hide_set(True)
        box.hide_render = True
    built = so.gaussians_to_object(random_gaussians(200), "photo")
    assert (built.frame.location.x > 0) == moves, built.summary()
    assert built.placement.blockers == ((box.name,) if moves else ())
    if where != "hidden":
        assert_nothing_hides_the_splats(bpy, built)


def test_an_object_the_new_scene_replaces_is_not_in_its_way(so, default_scene):
    cube = default_scene.objects["Cube"]
    built = so.gaussians_to_object(random_gaussians(50), "photo", replacing=cube)
    assert tuple(built.frame.location) == (0.0, 0.0, 0.0)


# ---- what works from the moved frame --------------------------------------------------------------


def test_camera_moves_and_the_exact_renderers_camera_follow_the_moved_frame(addon, so, default_scene):
    moves = importlib.import_module(ADDON_MODULE + ".blender.camera_moves")
    cams = importlib.import_module(ADDON_MODULE + ".blender.cameras")
    g = random_gaussians(200)
    built = so.gaussians_to_object(g, "photo")
    assert built.frame.location.x > 1.0
    move = moves.add_camera_move(built.splats, "DOLLY_IN", 12, scene=default_scene)
    assert move.parent == built.frame
    np.testing.assert_allclose(np.array(move.matrix_world), np.array(built.camera.matrix_world), atol=1e-5)
    pinhole = cams.camera_from_blender(built.camera, default_scene, built.splats)
    np.testing.assert_allclose(pinhole.world_to_camera, np.eye(4), atol=1e-6)  # the splats' own frame
