"""Add SHARP Camera Move and Render Camera Move in real bpy: keyframes from the matched camera, PNG
frames and an MP4 through Blender's FFmpeg output, clear reports, nothing left behind on cancel."""

from __future__ import annotations

import importlib
import itertools

import numpy as np
import pytest

from sharp_addon import gaussians as G
from tests.conftest import ADDON_MODULE
from tests.support.modal import ModalDriver

pytestmark = pytest.mark.blender


def _grid_scene(width: int = 32, height: int = 24) -> G.Gaussians:
    """A coloured wall of splats at 3-5 m, covering the photo: each frame of a move sees it differently."""
    v, u = np.mgrid[0:height, 0:width].reshape(2, -1) + 0.5
    focal = 30.0
    z = 3.0 + 2.0 * (u / width)
    means = np.column_stack([(u - width / 2) * z / focal, (v - height / 2) * z / focal, z]).astype(np.float32)
    n = len(means)
    colors = np.column_stack([u / width, v / height, 1 - u / width]).astype(np.float32)
    return G.Gaussians(means=means, scales=np.full((n, 3), 0.12, np.float32),
                       quats=np.tile(np.float32([1, 0, 0, 0]), (n, 1)), colors=colors,
                       opacities=np.full(n, 0.95, np.float32), focal_px=focal, image_size=(width, height))


@pytest.fixture
def mod(addon, clean_scene):
    return importlib.import_module(ADDON_MODULE + ".blender.camera_moves")


@pytest.fixture
def made(mod, bpy_session):
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    return so.gaussians_to_object(_grid_scene(), "wall")


def test_operator_keyframes_a_copy_of_the_matched_camera(mod, made, bpy_session):
    bpy = bpy_session
    bpy.context.view_layer.objects.active = made.splats
    assert bpy.ops.sharp.add_camera_move(preset="DOLLY_IN", frames=12) == {"FINISHED"}
    scene = bpy.context.scene
    move = scene.camera
    assert move is not made.camera and move.data is not made.camera.data
    assert (scene.frame_start, scene.frame_end) == (1, 12)
    scene.frame_set(1)
    np.testing.assert_allclose(np.array(move.matrix_world), np.array(made.camera.matrix_world), atol=1e-5)
    scene.frame_set(12)
    forward = np.array(move.matrix_world.translation - made.camera.matrix_world.translation)
    assert forward[1] > 0.1  # dollied in: along the photo's viewing direction (+Y in Blender's world)
    assert np.abs(forward[[0, 2]]).max() < 1e-4
    # again with other properties (what the redo panel does): one move, the new path
    assert bpy.ops.sharp.add_camera_move(preset="ORBIT", frames=20, loop=True, amplitude=0.5) == {"FINISHED"}
    moves = [o for o in bpy.data.objects if mod.MOVE_OF in o]
    assert len(moves) == 1 and scene.frame_end == 20
    scene.frame_set(20)
    np.testing.assert_allclose(np.array(moves[0].matrix_world), np.array(made.camera.matrix_world), atol=1e-4)
    scene.frame_set(6)
    assert np.abs(np.array(moves[0].matrix_world) - np.array(made.camera.matrix_world)).max() > 0.01


def test_bad_context_is_reported_and_changes_nothing(mod, made, bpy_session):
    bpy = bpy_session
    bpy.context.view_layer.objects.active = made.camera
    before = (set(bpy.data.objects.keys()), bpy.context.scene.frame_end, bpy.context.scene.camera)
    with pytest.raises(RuntimeError, match="Select a SHARP splat object"):
        bpy.ops.sharp.add_camera_move(preset="SWING")
    assert (set(bpy.data.objects.keys()), bpy.context.scene.frame_end, bpy.context.scene.camera) == before
    with pytest.raises(mod.CameraMoveError, match="is not a SHARP splat object"):
        mod.add_camera_move(made.camera, "SWING", 10)
    bpy.data.objects.remove(made.camera)  # no photo camera any more
    with pytest.raises(mod.CameraMoveError, match="has no photo camera"):
        mod.add_camera_move(made.splats, "SWING", 10)
    assert set(bpy.data.objects.keys()) == before[0] - {"wall Camera"}


def test_the_photo_camera_is_found_renamed_and_moved_out_of_the_frame(mod, made, bpy_session):
    """The photo camera carries a pointer to its splat object; a look-alike beside the splats is no match."""
    bpy = bpy_session
    made.camera.name, made.camera.parent = "my shot", None
    decoy = bpy.data.objects.new("wall Camera", bpy.data.cameras.new("decoy"))
    decoy.parent = made.splats.parent
    bpy.context.scene.collection.objects.link(decoy)
    assert mod.matched_camera(made.splats) == made.camera
    del made.camera[importlib.import_module(ADDON_MODULE + ".blender.photo_camera").PHOTO_CAMERA_OF]  # an older file
    assert mod.matched_camera(made.splats) == decoy  # the name beside the splats, as before the mark


def _tiny_render_settings(scene) -> None:
    importlib.import_module(ADDON_MODULE + ".blender.render_setup").cycles_on_cpu(scene, samples=1, percentage=100)


@pytest.mark.slow
def test_rendered_move_to_png_frames_and_an_mp4(mod, made, bpy_session, tmp_path):
    bpy = bpy_session
    mod.add_camera_move(made.splats, "SWING", 8, amplitude=2.0)
    scene = bpy.context.scene
    _tiny_render_settings(scene)
    mod.render_camera_move(scene, tmp_path / "wall_move", tmp_path / "wall_move.mp4")
    pngs = sorted((tmp_path / "wall_move").glob("*.png"))
    assert [p.name for p in pngs] == [f"frame_{i:04d}.png" for i in range(1, 9)]
    pixels = []
    for png in pngs:
        image = bpy.data.images.load(str(png))
        assert tuple(image.size) == (32, 24)
        a = np.empty(32 * 24 * 4, np.float32)
        image.pixels.foreach_get(a)
        bpy.data.images.remove(image)
        pixels.append(a)
    assert all(np.abs(b - a).max() > 0.01 for a, b in itertools.pairwise(pixels))  # each frame differs
    video = tmp_path / "wall_move.mp4"
    assert video.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    movie = bpy.data.movieclips.load(str(video))
    assert movie.frame_duration == 8 and tuple(movie.size) == (32, 24)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wall_move", "wall_move.mp4"]  # no scratch left


def test_cancelled_render_leaves_no_partial_outputs(mod, made, bpy_session, tmp_path):
    bpy = bpy_session
    mod.add_camera_move(made.splats, "DOLLY_IN", 4)
    scene = bpy.context.scene
    _tiny_render_settings(scene)
    scene.render.filepath = "//before_"
    steps = mod.render_steps(scene, tmp_path / "m", tmp_path / "m.mp4")
    assert next(steps) == (1, 4)
    steps.close()  # what Esc does
    assert list(tmp_path.iterdir()) == []
    assert scene.render.filepath == "//before_"  # the scene's own output path is back
    with pytest.raises(mod.OutputError, match="does not exist"):
        mod.render_camera_move(scene, tmp_path / "missing" / "m")


@pytest.mark.parametrize("how", ["Esc", "Blender ends it"])
def test_the_modal_render_stops_on_esc_or_when_blender_ends_it_and_leaves_nothing(mod, made, bpy_session, tmp_path,
                                                                                 how):
    """Render Camera Move invoked from the UI renders a frame per timer tick; Esc, or Blender ending the
    operator itself (a file loads, the window closes: its cancel()), leaves no frame, no video, no status."""
    bpy = bpy_session
    long_operator = importlib.import_module(ADDON_MODULE + ".blender.long_operator")
    mod.add_camera_move(made.splats, "DOLLY_IN", 4)
    scene = bpy.context.scene
    _tiny_render_settings(scene)
    scene.render.filepath, scene.frame_current = "//before_", 3
    driver = ModalDriver(bpy, mod.SHARP_OT_render_camera_move, directory=str(tmp_path), name="m")
    assert driver.start() == {"RUNNING_MODAL"}
    assert driver.send("TIMER") == {"PASS_THROUGH"}  # frame 1 rendered
    assert long_operator.shown_status() == ["Rendering camera move: frame 1 of 4   Esc: cancel"]
    assert len(list(tmp_path.iterdir())) == 1 and scene.frame_current == 1  # its scratch folder, frame 1
    if how == "Esc":
        assert driver.send("ESC") == {"CANCELLED"}
        assert driver.reports == [({"INFO"}, "Camera move render cancelled: nothing was written")]
    else:
        driver.blender_cancels()
        assert driver.reports == []
    assert list(tmp_path.iterdir()) == [] and long_operator.shown_status() == []
    assert (scene.render.filepath, scene.frame_current) == ("//before_", 3)  # the scene's own settings back


@pytest.mark.torch
def test_a_move_rendered_by_the_exact_renderer(mod, made, bpy_session, tmp_path):
    """Engine "Exact (SHARP)": every frame is the exact renderer's image through that frame's camera."""
    bpy = bpy_session
    exact = importlib.import_module(ADDON_MODULE + ".blender.exact_render")
    mod.add_camera_move(made.splats, "ORBIT", 4)
    scene = bpy.context.scene
    mod.render_camera_move(scene, tmp_path / "exact_move", exact_splats=made.splats)
    pngs = sorted((tmp_path / "exact_move").glob("*.png"))
    assert len(pngs) == 4
    frames = []
    for png in pngs:
        image = bpy.data.images.load(str(png))
        a = np.empty(32 * 24 * 4, np.float32)
        image.pixels.foreach_get(a)
        bpy.data.images.remove(image)
        frames.append(a.reshape(24, 32, 4)[::-1])  # top row first
    assert all(np.abs(b - a).max() > 0.01 for a, b in itertools.pairwise(frames))
    want = exact.render_exact(scene, made.splats, scene.camera, [scene.frame_start + 2])[0]
    covered = want[..., 3] > 0.99
    straight = want[..., :3] / np.maximum(want[..., 3:], 1e-6)  # PNGs keep straight alpha
    srgb = np.where(straight <= 0.0031308, 12.92 * straight, 1.055 * straight ** (1 / 2.4) - 0.055)
    assert covered.mean() > 0.5
    np.testing.assert_allclose(frames[2][covered][:, :3], srgb[covered], atol=2.5 / 255)
