"""Render Splats (Exact) on real Blender: the Blender camera as the renderer's pinhole (checked
against Blender's own projection), the operator's image and files against the renderer, cancel,
and every refusal leaving the scene and the files as they were.

Where this Blender's Python has no torch (3.13 environments), the render runs in the blender-5.0
environment's Python as the Python for Inference, and the reference images come from a worker there.
"""

from __future__ import annotations

import importlib
import time

import numpy as np
import pytest

from sharp_addon import worker as W
from tests.conftest import ADDON_MODULE, HAS_TORCH
from tests.support.blender_data import id_names, process_gone
from tests.support.builders import random_gaussians
from tests.support.inference_python import blender_50_python
from tests.support.modal import ModalDriver

pytestmark = pytest.mark.blender

WIDTH, HEIGHT = 64, 48


def addon_module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def small_gaussians():
    g = random_gaussians(300, seed=5)
    return g.replace(scales=g.scales * 20, focal_px=55.47, image_size=(WIDTH, HEIGHT))


@pytest.fixture(scope="module")
def inference(addon, bpy_session):
    """Where renders run: Blender's own Python when it has torch, else the blender-5.0 one. One worker
    serves the module's tests (it starts in seconds; a test that stops it gets a new one)."""
    prefs = bpy_session.context.preferences.addons[ADDON_MODULE].preferences
    python = None
    if not HAS_TORCH:
        python = blender_50_python()
        if python is None:
            pytest.skip("no Python with torch to render in: build .venv/blender-5.0 (tools/dev.py setup)")
        prefs.inference_python = python
    prefs.device = "CPU"
    yield python
    prefs.inference_python = ""
    addon_module("blender.runner").shutdown()


def reference(python, g, cameras):
    """render_gaussians of each camera, in-process or in a worker of the Python with torch."""
    if python is None:
        from sharp_addon.cameras import Camera
        from sharp_addon.render import render_gaussians

        return [render_gaussians(g, Camera.from_dict(c.to_dict()), device="cpu") for c in cameras]
    worker = W.InferenceWorker(python=python)
    try:
        return worker.run(W.RenderRequest(g, [c.to_dict() for c in cameras]))
    finally:
        worker.close()


def built(bpy, g):
    so = addon_module("blender.scene")
    return so.gaussians_to_object(g, "s", collection=bpy.context.scene.collection)


def image_pixels(image) -> np.ndarray:
    w, h = image.size
    pixels = np.empty(w * h * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    return pixels.reshape(h, w, 4)


# ---- the camera --------------------------------------------------------------------------------


def test_the_photos_camera_is_the_photos_pinhole(addon, clean_scene, bpy_session):
    Camera = addon_module("cameras").Camera
    cams = addon_module("blender.cameras")
    g = small_gaussians()
    made = built(bpy_session, g)
    got = cams.camera_from_blender(made.camera, clean_scene, made.splats)
    want = Camera.from_gaussians(g)
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(got, name) == pytest.approx(getattr(want, name), rel=1e-6), name  # Blender's lens: float32
    assert (got.width, got.height) == (want.width, want.height)
    np.testing.assert_allclose(got.world_to_camera, np.eye(4), atol=1e-6)


@pytest.mark.parametrize("change", ["moved camera", "moved splats", "shift", "vertical fit", "auto fit tall",
                                    "pixel aspect", "percentage"])
def test_the_camera_projects_as_blender_does(addon, clean_scene, bpy_session, change):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Euler, Vector

    bpy = bpy_session
    cams = addon_module("blender.cameras")
    g = small_gaussians()
    made = built(bpy, g)
    scene, cam, splats = clean_scene, made.camera, made.splats
    if change == "moved camera":
        cam.location = (0.3, -0.2, 0.5)
        cam.rotation_euler = Euler((np.radians(175), np.radians(10), np.radians(-5)))
    elif change == "moved splats":
        made.frame.location = (1.0, 2.0, -0.5)
        splats.rotation_euler = Euler((0.1, -0.2, 0.3))
        splats.scale = (1.5, 1.5, 1.5)
    elif change == "shift":
        cam.data.shift_x, cam.data.shift_y = 0.1, -0.07
    elif change == "vertical fit":
        cam.data.sensor_fit, cam.data.sensor_height = "VERTICAL", 20.0
        cam.data.shift_y = 0.05
    elif change == "auto fit tall":
        cam.data.sensor_fit = "AUTO"
        scene.render.resolution_x, scene.render.resolution_y = 40, 64
        cam.data.shift_x = 0.05
    elif change == "pixel aspect":
        scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = 1.0, 1.5
        cam.data.shift_y = 0.05
    elif change == "percentage":
        scene.render.resolution_percentage = 50
    bpy.context.view_layer.update()
    camera = cams.camera_from_blender(cam, scene, splats)
    points = g.means[:50].astype(np.float64)
    ours = camera.project(points * cams.splat_scale(splats))
    world = np.array(splats.matrix_world) @ np.column_stack([points, np.ones(len(points))]).T
    theirs = np.array([world_to_camera_view(scene, cam, Vector(p[:3]))[:2] for p in world.T])
    blender_px = np.column_stack([theirs[:, 0] * camera.width, (1.0 - theirs[:, 1]) * camera.height])
    np.testing.assert_allclose(ours, blender_px, atol=1e-3)
    if change == "moved camera":  # the pose by hand: OpenCV camera -> Blender camera -> world -> splat data
        by_hand = np.diag([1.0, -1.0, -1.0, 1.0]) @ np.linalg.inv(np.array(cam.matrix_world)) \
            @ np.array(splats.matrix_world)
        np.testing.assert_allclose(camera.world_to_camera, by_hand, atol=1e-6)
    if change == "percentage":
        assert (camera.width, camera.height) == (WIDTH // 2, HEIGHT // 2)


def test_orthographic_and_panoramic_cameras_are_refused(addon, clean_scene, bpy_session):
    SharpError = addon_module("errors").SharpError
    cams = addon_module("blender.cameras")
    made = built(bpy_session, small_gaussians())
    made.camera.data.type = "ORTHO"
    with pytest.raises(SharpError, match=r"orthographic.*perspective"):
        cams.camera_from_blender(made.camera, clean_scene, made.splats)


# ---- the operator --------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_operators_image_is_the_exact_render_from_the_photo_and_a_moved_camera(
        addon, clean_scene, bpy_session, inference):
    bpy = bpy_session
    cams = addon_module("blender.cameras")
    exact = addon_module("blender.exact_render")
    g = small_gaussians()
    made = built(bpy, g)
    for move in (False, True):
        if move:
            made.camera.location = (0.2, 0.1, -0.3)
            made.camera.rotation_euler[2] += np.radians(6)
            bpy.context.view_layer.update()
        assert bpy.ops.sharp.render_exact() == {"FINISHED"}
        camera = cams.camera_from_blender(made.camera, clean_scene, made.splats)
        want = reference(inference, g, [camera])[0]
        assert float(want[..., 3].max()) > 0.5
        got = image_pixels(bpy.data.images[exact.IMAGE_NAME])
        np.testing.assert_allclose(got, exact.rows_bottom_up(want), atol=1e-5)


@pytest.mark.slow
def test_an_animation_writes_one_file_per_frame(addon, clean_scene, bpy_session, inference, tmp_path):
    bpy = bpy_session
    cams = addon_module("blender.cameras")
    exact = addon_module("blender.exact_render")
    scene = clean_scene
    g = small_gaussians()
    made = built(bpy, g)
    cam = made.camera
    scene.frame_start, scene.frame_end, scene.frame_current = 1, 3, 2
    for frame, x in ((1, -0.2), (3, 0.2)):
        cam.location = (x, 0.0, 0.0)
        cam.keyframe_insert("location", frame=frame)
    scene.render.filepath = str(tmp_path / "frame_")
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    assert bpy.ops.sharp.render_exact(animation=True) == {"FINISHED"}
    assert scene.frame_current == 2  # the scene's frame is as it was
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["frame_0001.exr", "frame_0002.exr", "frame_0003.exr"]
    cameras = []
    for frame in (1, 2, 3):
        scene.frame_set(frame)
        cameras.append(cams.camera_from_blender(cam, scene, made.splats))
    scene.frame_set(2)
    assert not np.allclose(cameras[0].world_to_camera, cameras[2].world_to_camera)
    for name, want in zip(files, reference(inference, g, cameras)):
        back = bpy.data.images.load(str(tmp_path / name))
        try:
            np.testing.assert_allclose(image_pixels(back), exact.rows_bottom_up(want), atol=1e-5)
        finally:
            bpy.data.images.remove(back)
    assert exact.SCRATCH_IMAGE_NAME not in bpy.data.images


def test_it_renders_what_the_modifier_shows(addon, clean_scene, bpy_session, inference):
    """The modifier's filters and Splat Size hold for the exact render as for Cycles and EEVEE."""
    bpy = bpy_session
    so = addon_module("blender.scene")
    cams = addon_module("blender.cameras")
    exact = addon_module("blender.exact_render")
    G = addon_module("gaussians")
    g = small_gaussians()
    g = g.replace(layers=(np.arange(len(g)) % 2).astype(np.int8))
    made = built(bpy, g)
    modifier = so.splat_modifier(made.splats)
    for name, value in (("Occluded Layer", False), ("Opacity Threshold", 0.3), ("Use Crop Box", True),
                        ("Crop Min", (-1.0, -1.0, 0.0)), ("Crop Max", (0.05, 1.0, 100.0)), ("Keep Fraction", 0.8),
                        ("Splat Size", 1.5)):
        so.set_modifier_input(modifier, name, value)
    shown = ((g.layers == 0) & (g.opacities >= 0.3) & (g.means[:, 0] <= 0.05)
             & (G.lod_keys(len(g)) < 0.8))
    assert 10 < shown.sum() < len(g) // 2
    want_g = g.subset(shown).replace(scales=g.scales[shown] * 1.5)
    assert bpy.ops.sharp.render_exact() == {"FINISHED"}
    camera = cams.camera_from_blender(made.camera, clean_scene, made.splats)
    want, everything = reference(inference, want_g, [camera])[0], reference(inference, g, [camera])[0]
    got = image_pixels(bpy.data.images[exact.IMAGE_NAME])
    assert np.abs(exact.rows_bottom_up(everything) - got).max() > 0.1  # the filters matter here
    np.testing.assert_allclose(got, exact.rows_bottom_up(want), atol=1e-5)
    so.set_modifier_input(modifier, "Opacity Threshold", 1.0)  # hides every splat
    with pytest.raises(RuntimeError, match="shows no splats"):
        bpy.ops.sharp.render_exact()
    # a node group from an older add-on without an input: that filter takes its default (all kept)
    interface = modifier.node_group.interface
    for name in ("Opacity Threshold", "Keep Fraction"):
        interface.remove(next(i for i in interface.items_tree if i.item_type == "SOCKET" and i.name == name))
    assert bpy.ops.sharp.render_exact() == {"FINISHED"}
    shown = (g.layers == 0) & (g.means[:, 0] <= 0.05) & (g.opacities >= 1 / 255)
    want = reference(inference, g.subset(shown).replace(scales=g.scales[shown] * 1.5), [camera])[0]
    np.testing.assert_allclose(image_pixels(bpy.data.images[exact.IMAGE_NAME]), exact.rows_bottom_up(want), atol=1e-5)


def test_cancel_leaves_no_files(addon, clean_scene, bpy_session, inference, tmp_path):
    Cancelled = addon_module("errors").Cancelled
    bpy = bpy_session
    exact = addon_module("blender.exact_render")
    made = built(bpy, small_gaussians())
    clean_scene.render.filepath = str(tmp_path / "frame_")
    before = id_names(bpy)
    frames = list(range(1, 41))
    outputs = [tmp_path / f"f{i}.png" for i in frames]
    written: list[bool] = []

    def once_a_file_is_written() -> bool:  # cancel once at least one frame's file exists
        written.append(any(p.exists() for p in outputs))
        return written[-1]

    with pytest.raises(Cancelled):
        exact.render_exact(clean_scene, made.splats, made.camera, frames, outputs, cancel=once_a_file_is_written)
    assert written[-1], "a frame's file existed when the render was cancelled"
    assert list(tmp_path.iterdir()) == []
    assert id_names(bpy) == before


def test_refusals_are_reported_and_change_nothing(addon, clean_scene, bpy_session, tmp_path):
    bpy = bpy_session
    scene = clean_scene
    with pytest.raises(RuntimeError, match="no splat object to render"):
        bpy.ops.sharp.render_exact()
    made = built(bpy, small_gaussians().replace(focal_px=None, image_size=None))  # no camera made
    before = id_names(bpy)
    with pytest.raises(RuntimeError, match="no camera to render through"):
        bpy.ops.sharp.render_exact()
    camera_data = bpy.data.cameras.new("ortho")
    camera_data.type = "ORTHO"
    camera = bpy.data.objects.new("ortho", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    before = id_names(bpy)
    with pytest.raises(RuntimeError, match="orthographic"):
        bpy.ops.sharp.render_exact()
    camera_data.type = "PERSP"
    scene.render.filepath = str(tmp_path / "no_such_folder" / "frame_")
    with pytest.raises(RuntimeError, match=r"no_such_folder.*no such folder"):
        bpy.ops.sharp.render_exact(animation=True)
    assert id_names(bpy) == before and list(tmp_path.iterdir()) == []
    assert made.splats.name in bpy.data.objects


def test_the_render_menu_and_the_panel_offer_it(addon, bpy_session):
    bpy = bpy_session
    exact = addon_module("blender.exact_render")
    assert bpy.ops.sharp.render_exact.get_rna_type().name == "Render Splats (Exact)"
    assert exact.draw_render_menu in bpy.types.TOPBAR_MT_render._dyn_ui_initialize()
    assert exact.draw_panel_button in bpy.types.SHARP_PT_splat_object._dyn_ui_initialize()


def test_a_png_frame_is_saved_as_the_scene_shows_it(addon, clean_scene, bpy_session, inference, tmp_path):
    bpy = bpy_session
    exact = addon_module("blender.exact_render")
    gaussians = addon_module("gaussians")
    scene = clean_scene
    g = small_gaussians()
    made = built(bpy, g)  # sets the Standard view transform
    scene.render.filepath = str(tmp_path / "still_")
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.dither_intensity = 0.0
    images = exact.render_exact(scene, made.splats, made.camera, [scene.frame_current],
                                [tmp_path / "still.png"])
    back = bpy.data.images.load(str(tmp_path / "still.png"))
    try:
        got = image_pixels(back)
    finally:
        bpy.data.images.remove(back)
    rows = exact.rows_bottom_up(images[0])
    straight = rows.copy()  # PNG keeps straight alpha
    np.divide(rows[..., :3], rows[..., 3:], out=straight[..., :3], where=rows[..., 3:] > 0)
    seen = straight[..., 3] > 0.05  # where the colour survives 8-bit alpha
    np.testing.assert_allclose(got[..., 3], straight[..., 3], atol=1 / 255 + 1e-6)
    want = gaussians.linear_to_srgb(np.clip(straight[..., :3], 0, 1))
    assert np.abs(got[..., :3][seen] - want[seen]).max() <= 1.5 / 255
    assert [p.name for p in tmp_path.iterdir()] == ["still.png"]


def follow_render(bpy, **properties) -> ModalDriver:
    """Render Splats (Exact) invoked from the UI on the active splat object."""
    driver = ModalDriver(bpy, addon_module("blender.exact_render").SHARP_OT_render_exact, **properties)
    assert driver.start() == {"RUNNING_MODAL"}, driver.reports
    return driver


def animation_to_files(bpy, scene, tmp_path, frames: int = 40) -> None:
    """The scene's frame range 1..frames to PNG files in ``tmp_path`` (the render's outputs)."""
    scene.frame_start, scene.frame_end = 1, frames
    scene.render.filepath = str(tmp_path / "f")
    scene.render.image_settings.file_format = "PNG"


def test_escape_in_the_modal_render_cancels_and_leaves_no_files(addon, clean_scene, bpy_session, inference,
                                                               tmp_path):
    bpy = bpy_session
    built(bpy, small_gaussians())
    animation_to_files(bpy, clean_scene, tmp_path)
    before = id_names(bpy)
    driver = follow_render(bpy, animation=True)
    assert driver.send("MOUSEMOVE") == {"PASS_THROUGH"}
    frame_written = driver.tick_until(lambda: bool(driver.work.job.status.frames_done), timeout=60)
    assert frame_written == {"PASS_THROUGH"}  # at least one frame written before Esc
    assert any(tmp_path.iterdir())
    assert driver.send("ESC") == {"CANCELLED"}
    assert driver.reports == [({"INFO"}, "Exact render cancelled: no files were left")]
    assert list(tmp_path.iterdir()) == [] and id_names(bpy) == before


def test_blender_ending_the_modal_render_stops_the_worker_and_leaves_nothing(addon, clean_scene, bpy_session,
                                                                            inference, tmp_path):
    """A file is loaded or the window closes mid-render: Blender calls the operator's cancel()."""
    bpy = bpy_session
    runner = addon_module("blender.runner")
    built(bpy, small_gaussians())
    animation_to_files(bpy, clean_scene, tmp_path)
    before = id_names(bpy)
    driver = follow_render(bpy, animation=True)
    driver.tick_until(lambda: bool(driver.work.job.status.frames_done), timeout=60)
    assert any(tmp_path.iterdir()) and addon_module("blender.long_operator").shown_status() != []
    worker = runner.worker()
    pid = worker.pid
    assert pid is not None
    driver.blender_cancels()
    assert process_gone(pid), "no worker process left"
    assert list(tmp_path.iterdir()) == [], "no frame file left"
    assert list(worker.scratch.iterdir()) == [], "no scratch file left"
    assert addon_module("blender.long_operator").shown_status() == [], "no status text left"
    assert id_names(bpy) == before and driver.reports == []  # the scratch image is gone too


def test_the_modal_render_shows_the_image_when_done(addon, clean_scene, bpy_session, inference):
    bpy = bpy_session
    exact = addon_module("blender.exact_render")
    built(bpy, small_gaussians())
    driver = follow_render(bpy)
    texts = []
    deadline = time.monotonic() + 60
    while (result := driver.send("TIMER")) == {"PASS_THROUGH"} and time.monotonic() < deadline:
        texts += addon_module("blender.long_operator").shown_status()
        time.sleep(0.02)
    assert result == {"FINISHED"}, driver.reports
    assert any("Exact render: frame 1/1" in t and "on the CPU" in t for t in texts), texts
    got = image_pixels(bpy.data.images[exact.IMAGE_NAME])
    np.testing.assert_array_equal(got, exact.rows_bottom_up(driver.work.job.result[0]))
    assert driver.reports == [({"INFO"}, f"Rendered 1 frame exactly into '{exact.IMAGE_NAME}'")]
