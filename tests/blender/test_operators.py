"""The operators as a user or a script calls them, on real Blender: what the scene holds afterwards,
what the files contain, and that every failure leaves ``bpy.data`` as it was."""

from __future__ import annotations

import importlib
import time

import numpy as np
import pytest

from sharp_addon import ply
from tests.conftest import ADDON_MODULE, HAS_TORCH, ROOT
from tests.support.blender_data import id_names, process_gone
from tests.support.builders import sharp_gaussians
from tests.support.modal import ModalDriver

pytestmark = pytest.mark.blender

SAMPLE = ROOT / "tests" / "data" / "sample_640x480.png"


# ---- PLY import / export --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["SHARP", "3DGS"])
def test_import_then_export_reproduces_the_ply(addon, clean_scene, bpy_session, tmp_path, layout):
    bpy = bpy_session
    source = ply.write_ply(sharp_gaussians(800, sh_degree=1), tmp_path / "in.ply", layout=layout.lower())
    assert bpy.ops.sharp.import_ply(filepath=str(source)) == {"FINISHED"}
    obj = bpy.context.active_object
    assert obj.name == "in" and obj.modifiers[0].type == "NODES"
    assert (bpy.context.scene.camera is not None) == (layout == "SHARP")  # 3DGS files carry no camera
    assert bpy.ops.sharp.export_ply(filepath=str(tmp_path / "out.ply"), layout=layout) == {"FINISHED"}
    a, b = source.read_bytes(), (tmp_path / "out.ply").read_bytes()
    assert a[: a.index(b"end_header")] == b[: b.index(b"end_header")]  # same header, same size
    assert len(a) == len(b)
    first, second = ply.read_ply(source), ply.read_ply(tmp_path / "out.ply")
    for name in ("means", "quats", "sh_rest"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    np.testing.assert_allclose(second.scales, first.scales, rtol=1e-6)
    np.testing.assert_allclose(second.opacities, first.opacities, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(second.colors, first.colors, atol=1e-6)


def test_importing_a_bad_ply_reports_it_and_changes_nothing(addon, clean_scene, bpy_session, tmp_path):
    bpy = bpy_session
    before = id_names(bpy)
    bad = tmp_path / "broken.ply"
    bad.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nend_header\n")
    with pytest.raises(RuntimeError, match=r"broken\.ply"):
        bpy.ops.sharp.import_ply(filepath=str(bad))
    with pytest.raises(RuntimeError, match=r"missing\.ply"):
        bpy.ops.sharp.import_ply(filepath=str(tmp_path / "missing.ply"))
    assert id_names(bpy) == before


def test_export_needs_a_splat_object_and_a_writable_place(addon, clean_scene, bpy_session, tmp_path):
    bpy = bpy_session
    with pytest.raises(RuntimeError, match="not a Gaussian-splat object"):
        bpy.ops.sharp.export_ply(filepath=str(tmp_path / "x.ply"))
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    so.gaussians_to_object(sharp_gaussians(20), "s")
    with pytest.raises(RuntimeError, match="Object 's': no file name given to export to"):
        bpy.ops.sharp.export_ply(filepath="")
    with pytest.raises(RuntimeError, match="no_such_folder"):
        bpy.ops.sharp.export_ply(filepath=str(tmp_path / "no_such_folder" / "x.ply"))
    existing = tmp_path / "keep.ply"
    existing.write_bytes(b"precious")
    so.gaussians_to_object(sharp_gaussians(20).replace(focal_px=None, image_size=None), "bare")
    with pytest.raises(RuntimeError, match="photo"):  # the ml-sharp layout needs the photo's camera
        bpy.ops.sharp.export_ply(filepath=str(existing), layout="SHARP")
    assert existing.read_bytes() == b"precious"


def test_menus_and_drop_handlers_are_registered(addon, bpy_session):
    bpy = bpy_session
    assert bpy.ops.sharp.from_image.get_rna_type().name == "SHARP from Image"
    ui = importlib.import_module(ADDON_MODULE + ".blender.ui")
    for menu, draw in ui.MENUS:
        assert draw in getattr(bpy.types, menu)._dyn_ui_initialize()
    assert ui.SHARP_FH_image.is_registered and ".jpg" in ui.SHARP_FH_image.bl_file_extensions


def test_the_object_panel_shows_for_splat_objects_only(addon, clean_scene, bpy_session):
    bpy = bpy_session
    ui = importlib.import_module(ADDON_MODULE + ".blender.ui")
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    assert ui.SHARP_PT_splat_object.is_registered and ui.SHARP_PT_splat_object.bl_context == "object"
    splats = so.gaussians_to_object(sharp_gaussians(20), "s").splats
    assert bpy.context.object == splats and ui.SHARP_PT_splat_object.poll(bpy.context)
    bpy.context.view_layer.objects.active = bpy.data.objects["s Camera"]
    assert not ui.SHARP_PT_splat_object.poll(bpy.context)


# ---- SHARP from Image -----------------------------------------------------------------------------


def test_from_image_explains_what_is_missing_and_changes_nothing(addon, clean_scene, bpy_session, prefs, tmp_path):
    bpy = bpy_session
    before = id_names(bpy)
    prefs.checkpoint_path = str(tmp_path / "absent.pt")
    expected = "Checkpoint not found" if HAS_TORCH else "PyTorch is not installed"
    with pytest.raises(RuntimeError, match=expected):
        bpy.ops.sharp.from_image(filepath=str(SAMPLE))
    assert id_names(bpy) == before


@pytest.mark.torch
def test_from_image_builds_the_splats_camera_and_modifier_and_nothing_else(
    addon, clean_scene, bpy_session, prefs, tiny_checkpoint
):
    from sharp_addon.api import load_predictor

    bpy = bpy_session
    before = id_names(bpy)
    prefs.checkpoint_path = str(tiny_checkpoint)
    # float32 on both sides: where "auto" picks bfloat16 (CPUs with AMX), its kernels may sum in another
    # order in another process, and this compares two processes bit for bit
    assert bpy.ops.sharp.from_image(filepath=str(SAMPLE), device="CPU", precision="FP32") == {"FINISHED"}
    made = {k: v - before[k] for k, v in id_names(bpy).items()}
    assert made["objects"] == {"sample_640x480", "sample_640x480 Photo", "sample_640x480 Camera"}
    assert made["cameras"] == {"sample_640x480 Camera"} and made["node_groups"] == {"SHARP Splats"}
    assert sum(len(v) for v in made.values()) == 8, made
    obj = bpy.context.active_object
    assert [m.type for m in obj.modifiers] == ["NODES"]
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    got = so.object_to_gaussians(obj)
    want = load_predictor(tiny_checkpoint, device="cpu", precision="fp32").predict(SAMPLE)
    for name in ("means", "scales", "quats", "colors", "opacities", "layers"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert bpy.context.scene.camera.name == "sample_640x480 Camera"
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == (640, 480)


@pytest.mark.torch
def test_from_image_honours_focal_length_and_checkpoint_override(addon, clean_scene, bpy_session, prefs,
                                                                 tiny_checkpoint):
    bpy = bpy_session
    prefs.checkpoint_path = ""
    assert bpy.ops.sharp.from_image(filepath=str(SAMPLE), checkpoint=str(tiny_checkpoint),
                                    focal_length_35mm=50.0, create_camera=False) == {"FINISHED"}
    so = importlib.import_module(ADDON_MODULE + ".blender.scene")
    g = so.object_to_gaussians(bpy.context.active_object)
    assert g.focal_px == pytest.approx(50.0 / np.hypot(36, 24) * np.hypot(640, 480), rel=1e-6)
    assert bpy.context.scene.camera is None


@pytest.mark.torch
def test_redo_with_other_display_options_rebuilds_without_running_sharp_again(
    addon, clean_scene, bpy_session, prefs, tiny_checkpoint, monkeypatch
):
    bpy = bpy_session
    runner = importlib.import_module(ADDON_MODULE + ".blender.runner")
    prefs.checkpoint_path = str(tiny_checkpoint)
    assert bpy.ops.sharp.from_image(filepath=str(SAMPLE), focal_length_35mm=24.0) == {"FINISHED"}
    first = bpy.context.active_object

    def no_worker():
        raise AssertionError("SHARP ran again for a display-only change")

    monkeypatch.setattr(runner, "worker", no_worker)
    bpy.ops.wm.read_homefile(use_factory_startup=True, use_empty=True)  # as undo would
    assert bpy.ops.sharp.from_image(filepath=str(SAMPLE), focal_length_35mm=24.0, transparency="BLENDED",
                                    create_camera=False) == {"FINISHED"}
    assert bpy.context.active_object.active_material.surface_render_method == "BLENDED"
    assert bpy.context.scene.camera is None
    del first
    with pytest.raises(RuntimeError, match="ran again"):  # another focal length is another result
        bpy.ops.sharp.from_image(filepath=str(SAMPLE), focal_length_35mm=50.0)


@pytest.mark.torch
@pytest.mark.parametrize("case", ["missing image", "corrupt image", "truncated checkpoint", "not a checkpoint",
                                  "no GPU"])
def test_from_image_errors_leave_blender_data_unchanged(addon, clean_scene, bpy_session, prefs, tiny_checkpoint,
                                                        tmp_path, case):
    bpy = bpy_session
    image, checkpoint, message, device = SAMPLE, tiny_checkpoint, None, "AUTO"
    if case == "no GPU":
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA GPU")
        device, message = "CUDA", "PyTorch sees no CUDA GPU"
    elif case == "missing image":
        image, message = tmp_path / "gone.jpg", r"Image '.*gone\.jpg': no such file"
    elif case == "corrupt image":
        image, message = tmp_path / "corrupt.jpg", "corrupt.jpg"
        image.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    elif case == "truncated checkpoint":
        checkpoint, message = tmp_path / "cut.pt", "cut.pt"
        checkpoint.write_bytes(tiny_checkpoint.read_bytes()[:10000])
    else:
        checkpoint, message = tmp_path / "notes.pt", "notes.pt"
        checkpoint.write_text("hello")
    prefs.checkpoint_path = str(checkpoint)
    before = id_names(bpy)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.sharp.from_image(filepath=str(image), device=device)
    assert id_names(bpy) == before and bpy.context.scene.camera is None


@pytest.mark.torch
@pytest.mark.slow
def test_keep_loaded_decides_whether_the_worker_outlives_a_run(addon, clean_scene, bpy_session, prefs,
                                                              tiny_checkpoint):
    bpy = bpy_session
    runner = importlib.import_module(ADDON_MODULE + ".blender.runner")
    prefs.checkpoint_path = str(tiny_checkpoint)
    prefs.keep_loaded = True
    assert bpy.ops.sharp.from_image(filepath=str(SAMPLE), focal_length_35mm=31.0) == {"FINISHED"}
    assert runner.worker().alive  # the network stays loaded for the next photo
    prefs.keep_loaded = False
    assert bpy.ops.sharp.from_image(filepath=str(SAMPLE), focal_length_35mm=32.0) == {"FINISHED"}
    assert not runner.worker().alive  # and its memory is freed when the user says so


# ---- the interactive (modal) path, driven by hand: bpy has no event loop --------------------------


def follow_from_image(bpy, prefs, checkpoint) -> ModalDriver:
    """SHARP from Image invoked from the UI on the sample photo, its worker job started (nothing remembered)."""
    importlib.import_module(ADDON_MODULE + ".blender.remembered").forget()
    prefs.checkpoint_path = str(checkpoint)
    operators = importlib.import_module(ADDON_MODULE + ".blender.operators")
    driver = ModalDriver(bpy, operators.SHARP_OT_from_image, filepath=str(SAMPLE))
    assert driver.start() == {"RUNNING_MODAL"}, driver.reports
    return driver


@pytest.mark.torch
def test_escape_cancels_and_adds_nothing(addon, clean_scene, bpy_session, prefs, tiny_checkpoint):
    bpy = bpy_session
    runner = importlib.import_module(ADDON_MODULE + ".blender.runner")
    before = id_names(bpy)
    driver = follow_from_image(bpy, prefs, tiny_checkpoint)
    assert driver.send("TIMER") == {"PASS_THROUGH"}
    assert driver.send("MOUSEMOVE") == {"PASS_THROUGH"}
    pid = runner.worker().pid
    assert pid is not None
    assert driver.send("ESC") == {"CANCELLED"}  # how fast: bench/cancel.py
    assert process_gone(pid) and driver.work.result is None
    assert id_names(bpy) == before
    assert driver.reports == [({"INFO"}, "SHARP cancelled: nothing was added")]


@pytest.mark.torch
@pytest.mark.slow
def test_modal_run_reports_progress_then_builds_in_one_step(addon, clean_scene, bpy_session, prefs, tiny_checkpoint):
    bpy = bpy_session
    driver = follow_from_image(bpy, prefs, tiny_checkpoint)
    seen: set[str] = set()  # every progress event the modal polling takes in (a fast run may end between ticks)
    driver.work.on_progress = lambda stage, fraction: seen.add(stage)
    texts: list[str] = []
    deadline = time.monotonic() + 120
    while (result := driver.send("TIMER")) == {"PASS_THROUGH"} and time.monotonic() < deadline:
        assert len(bpy.data.objects) == 0  # nothing appears before the result is complete
        texts += long_operator().shown_status()
        time.sleep(0.05)
    assert result == {"FINISHED"}, driver.reports
    assert {"encoder", "gaussians"} <= seen
    assert any("(on the CPU in " in text for text in texts)  # the status bar says where and in what precision
    assert {o.name for o in bpy.data.objects} == {"sample_640x480", "sample_640x480 Photo", "sample_640x480 Camera"}
    assert long_operator().shown_status() == []


@pytest.mark.torch
def test_a_failed_modal_run_is_reported_and_adds_nothing(addon, clean_scene, bpy_session, prefs, tiny_checkpoint,
                                                         tmp_path):
    bpy = bpy_session
    before = id_names(bpy)
    doomed = tmp_path / "cut.pt"
    doomed.write_bytes(tiny_checkpoint.read_bytes()[:5000])  # the worker finds it damaged when it loads it
    driver = follow_from_image(bpy, prefs, doomed)
    assert driver.tick_until(timeout=60) == {"CANCELLED"} and id_names(bpy) == before
    [(kind, message)] = driver.reports
    assert kind == {"ERROR"} and message.startswith(f"Checkpoint '{doomed}': "), message


@pytest.mark.torch
def test_blender_ending_the_modal_run_stops_the_worker_and_leaves_nothing(addon, clean_scene, bpy_session, prefs,
                                                                         tiny_checkpoint):
    """A file is loaded or the window closes while SHARP runs: Blender calls the operator's cancel()."""
    bpy = bpy_session
    runner = importlib.import_module(ADDON_MODULE + ".blender.runner")
    before = id_names(bpy)
    driver = follow_from_image(bpy, prefs, tiny_checkpoint)
    assert driver.send("TIMER") == {"PASS_THROUGH"} and runner.worker().alive
    assert long_operator().shown_status() != []
    worker = runner.worker()
    pid = worker.pid
    driver.blender_cancels()
    assert process_gone(pid), "no worker process left"
    assert list(worker.scratch.iterdir()) == [], "no result file left"
    assert long_operator().shown_status() == [], "no status text left"
    assert id_names(bpy) == before and driver.reports == []


def long_operator():
    return importlib.import_module(ADDON_MODULE + ".blender.long_operator")


# ---- checkpoint validation from the preferences ---------------------------------------------------


@pytest.mark.torch
@pytest.mark.slow
def test_validate_checkpoint_checks_keys_and_remembers_the_file(addon, bpy_session, prefs, tiny_checkpoint, tmp_path):
    bpy = bpy_session
    weights = importlib.import_module(ADDON_MODULE + ".blender.weights")
    prefs.checkpoint_path = str(tiny_checkpoint)
    assert weights.validation(tiny_checkpoint) is None
    assert bpy.ops.sharp.validate_checkpoint() == {"FINISHED"}
    status = weights.validation(tiny_checkpoint)
    assert status.ok and "Valid SHARP checkpoint" in status.message and "131,072 Gaussians" in status.message
    impostor = tmp_path / "impostor.pt"
    torch = pytest.importorskip("torch")
    torch.save({"just": torch.zeros(3)}, impostor)
    prefs.checkpoint_path = str(impostor)
    with pytest.raises(RuntimeError, match="not a SHARP checkpoint"):
        bpy.ops.sharp.validate_checkpoint()
    assert not weights.validation(impostor).ok
