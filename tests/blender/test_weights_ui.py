"""The weights from inside Blender, on real Blender, against a real HTTP server on 127.0.0.1: the
operators in background mode, Allow Online Access, Use a File, the preferences' weights section,
and the modal path (progress, Esc, Cancel, resume) driven by hand, as the event loop would."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest

from sharp_addon.files import size_text
from tests.conftest import ADDON_MODULE
from tests.support.blender_data import process_gone
from tests.support.http_server import BLOCK, closed_port, corrupted
from tests.support.modal import ModalDriver
from tests.support.ui_layout import RecordingLayout

pytestmark = pytest.mark.blender

NAME = "sharp_2572gikvuh.pt"


@pytest.fixture
def weights(addon):
    return importlib.import_module(ADDON_MODULE + ".blender.weights")


@pytest.fixture
def panel(addon):
    return importlib.import_module(ADDON_MODULE + ".blender.weights_panel")


@pytest.fixture
def prefs(addon, bpy_session):
    """The preferences of a user who accepted the weights' licence."""
    preferences = bpy_session.context.preferences.addons[ADDON_MODULE].preferences
    preferences.accept_weights_licence = True
    yield preferences
    preferences.checkpoint_path = ""
    preferences.accept_weights_licence = False


@pytest.fixture
def online(bpy_session, prefs):
    """Blender's own Allow Online Access switch, on (the factory setting is off)."""
    system = bpy_session.context.preferences.system
    before = system.use_online_access
    system.use_online_access = True
    assert bpy_session.app.online_access
    yield system
    system.use_online_access = before


@pytest.fixture
def target(weights, monkeypatch, payload):
    """The official file's place in the models folder; the small synthetic checkpoint passes for the
    official file there (only its size differs). Emptied again afterwards."""
    monkeypatch.setattr(weights, "EXPECTED", weights.download.Expected(min_bytes=len(payload)))
    monkeypatch.setattr(weights.dependencies, "CHECKPOINT_BYTES_MIN", len(payload))  # the panel's size check
    path = weights.download_target()
    yield path
    for p in (path, weights.download.part_path(path)):
        p.unlink(missing_ok=True)
    running = weights.active()
    if running is not None:
        running.cancel()


def follow_download(bpy, weights, panel, url: str) -> tuple[ModalDriver, list[str]]:
    """Download SHARP Weights invoked from the preferences; also the progress lines they would draw."""
    driver = ModalDriver(bpy, weights.SHARP_OT_download_weights, url=url)
    lines: list[str] = []
    modal = driver.operator.modal

    def modal_and_panel(context, event):
        result = modal(context, event)
        running = panel.weights_state(context).running
        if running is not None:
            lines.append(running)
        return result

    driver.operator.modal = modal_and_panel
    assert driver.start() == {"RUNNING_MODAL"}, driver.reports
    return driver, lines


# ---- where the weights go ------------------------------------------------------------------------------


def test_the_models_folder_is_the_extensions_user_folder_and_the_search_looks_there(weights, panel, bpy_session):
    bpy = bpy_session
    folder = weights.models_folder()
    assert folder == Path(bpy.utils.extension_path_user(ADDON_MODULE, path="models")) and folder.is_dir()
    dependencies = importlib.import_module(ADDON_MODULE + ".dependencies")
    assert os.environ[dependencies.ENV_MODELS] == str(folder)
    assert folder / NAME in dependencies.default_checkpoint_paths()
    assert weights.download_target() == folder / NAME


# ---- the operators, synchronous (background Blender) -----------------------------------------------------


@pytest.mark.slow
def test_download_installs_a_checked_file_the_preferences_then_find(weights, panel, bpy_session, online, target, server,
                                                                    payload, prefs, tmp_path):
    bpy = bpy_session
    prefs.checkpoint_path = str(tmp_path / "gone.pt")  # a setting that names no file gives way to the download
    assert bpy.ops.sharp.download_weights(url=server.url) == {"FINISHED"}
    assert target.read_bytes() == payload and not weights.download.part_path(target).exists()
    assert prefs.checkpoint_path == ""
    state = panel.weights_state(bpy.context)
    assert state.path == target and state.status.ok and not state.offer_download
    assert state.validated.ok and "every checksum" in state.validated.message
    assert state.outcome == (True, f"SHARP weights downloaded and checked: {target}")
    assert bpy.ops.sharp.download_weights(url=server.url) == {"FINISHED"}  # already there: checked, not fetched
    assert len(server.requests) == 1


def test_with_online_access_off_not_a_single_request_is_made(weights, panel, bpy_session, target, server):
    bpy = bpy_session
    bpy.context.preferences.system.use_online_access = False
    assert not bpy.app.online_access
    folder = re.escape(str(weights.models_folder()))
    with pytest.raises(RuntimeError, match=rf"Online access is off, so nothing was downloaded: turn on Edit > "
                       rf"Preferences > System > Network > Allow Online Access; or download {NAME} elsewhere .* and "
                       rf"put it in {folder}"):
        bpy.ops.sharp.download_weights(url=server.url)
    assert server.requests == [] and not target.exists()
    state = panel.weights_state(bpy.context)
    assert state.offer_download and not state.online


def test_blender_c_sharp_download_respects_online_access_too(addon, weights, bpy_session, target, server, capsys):
    blender = importlib.import_module(ADDON_MODULE + ".blender")
    bpy_session.context.preferences.system.use_online_access = False
    assert blender.cli_command(["download", "--url", server.url, "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Blender's online access is off, so nothing was downloaded: run Blender with "
                          "--online-mode") and err.count("\n") == 1
    assert server.requests == [] and not target.exists()


def test_a_corrupted_download_is_reported_and_nothing_is_installed(weights, panel, bpy_session, online, target, server):
    server.corrupt = True
    with pytest.raises(RuntimeError, match=r"corrupted: .* fails its CRC-32 checksum; it was removed and nothing was "
                       "installed"):
        bpy_session.ops.sharp.download_weights(url=server.url)
    assert not target.exists() and not weights.download.part_path(target).exists()
    assert panel.weights_state(bpy_session.context).outcome[0] is False


def test_an_unreachable_server_is_reported(weights, panel, bpy_session, online, target):
    port = closed_port()
    with pytest.raises(RuntimeError, match=rf"cannot reach 127\.0\.0\.1:{port}"):
        bpy_session.ops.sharp.download_weights(url=f"http://127.0.0.1:{port}/{NAME}")


def test_use_a_file_accepts_a_valid_file_and_refuses_others(weights, panel, bpy_session, prefs, payload, tmp_path,
                                                            target):
    bpy = bpy_session
    good = tmp_path / "mine.pt"
    good.write_bytes(payload)
    assert bpy.ops.sharp.use_weights_file(filepath=str(good)) == {"FINISHED"}
    assert prefs.checkpoint_path == str(good) and weights.validation(good).ok
    assert panel.weights_state(bpy.context).validated.ok
    (tmp_path / "flipped.pt").write_bytes(corrupted(payload))
    (tmp_path / NAME).write_bytes(payload[:4096])
    for name, says in [("flipped.pt", "fails its CRC-32 checksum"), (NAME, "too small"), ("absent.pt", "no such file")]:
        with pytest.raises(RuntimeError, match=rf"{re.escape(str(tmp_path / name))}'?: .*{says}"):
            bpy.ops.sharp.use_weights_file(filepath=str(tmp_path / name))
    assert prefs.checkpoint_path == str(good)  # a refused file changes nothing


# ---- the preferences' section --------------------------------------------------------------------------


def test_the_weights_section_offers_what_fits(weights, panel, bpy_session, prefs, target, monkeypatch):
    context = bpy_session.context
    prefs.checkpoint_path = ""
    monkeypatch.setenv("TORCH_HOME", str(target.parent / "no-torch-home"))
    monkeypatch.delenv("SHARP_CHECKPOINT", raising=False)
    layout = RecordingLayout()
    monkeypatch.setattr(panel, "online_access", lambda: False)
    panel.draw_weights(layout, context)
    buttons = {what: enabled for what, _, enabled in layout.drawn("operator")}
    assert buttons == {"sharp.download_weights": False, "sharp.use_weights_file": True, "wm.path_open": True,
                       "wm.url_open": True}  # the licence's link
    labels = " | ".join(str(what) for what, _, _ in layout.drawn("label"))
    assert "No SHARP weights found" in labels and "Online access is off" in labels
    assert f"Models folder: {weights.models_folder()}" in labels
    weights.download.part_path(target).write_bytes(b"x" * 5000)  # an interrupted download
    monkeypatch.setattr(panel, "online_access", lambda: True)
    layout = RecordingLayout()
    panel.draw_weights(layout, context)
    download_button = next(kw for what, kw, _ in layout.drawn("operator") if what == "sharp.download_weights")
    assert download_button["text"] == "Resume Download (5000 bytes done)"
    assert "Online access is off" not in " ".join(str(w) for w, _, _ in layout.drawn("label"))


# ---- the modal path, driven by hand ------------------------------------------------------------------


def test_a_modal_download_shows_its_progress_then_installs(weights, panel, bpy_session, online, target, server,
                                                           payload):
    server.delay = 0.005
    driver, lines = follow_download(bpy_session, weights, panel, server.url)
    assert panel.weights_state(bpy_session.context).running == "SHARP weights: starting"
    result = driver.tick_until()
    assert result == {"FINISHED"}, driver.reports
    assert driver.reports == [({"INFO"}, f"SHARP weights downloaded and checked: {target}")]
    assert any(re.fullmatch(r"SHARP weights: .* of .* \(\d+%\)", line) for line in lines), lines
    assert target.read_bytes() == payload and panel.weights_state(bpy_session.context).running is None


def test_escape_kills_the_download_at_once_and_pressing_again_resumes(weights, panel, bpy_session, online, target,
                                                                      server, payload):
    server.delay = 0.02
    driver, _ = follow_download(bpy_session, weights, panel, server.url)
    process = driver.work
    assert driver.tick_until(lambda: process.done >= 3 * BLOCK) == {"PASS_THROUGH"}
    assert driver.send("MOUSEMOVE") == {"PASS_THROUGH"}
    assert driver.send("ESC") == {"CANCELLED"}
    assert not process.alive  # gone when cancel() returns: the kill is synchronous
    part = weights.download.part_path(target)
    kept = part.stat().st_size
    assert not target.exists() and 0 < kept < len(payload)  # the .part stays for resuming
    [(kind, text)] = driver.reports
    assert kind == {"INFO"} and text == (f"Download cancelled: {size_text(kept)} of {size_text(len(payload))} kept "
                                         f"in '{part}'; download again to resume")
    state = panel.weights_state(bpy_session.context)
    assert state.partial == kept and state.download_label.startswith("Resume Download")
    server.delay = 0.0
    assert bpy_session.ops.sharp.download_weights(url=server.url) == {"FINISHED"}
    assert (server.requests[-1]["range"], server.requests[-1]["status"]) == (f"bytes={kept}-", 206)
    assert server.sent < 1.5 * len(payload) and target.read_bytes() == payload


def test_the_cancel_button_stops_a_download_and_one_runs_at_a_time(weights, panel, bpy_session, online, target,
                                                                   server):
    bpy = bpy_session
    server.delay = 0.02
    assert not bpy.ops.sharp.cancel_weights_download.poll()
    driver, _ = follow_download(bpy, weights, panel, server.url)
    process = driver.work
    driver.tick_until(lambda: process.done > 0)
    with pytest.raises(RuntimeError, match="being downloaded or checked already"):
        bpy.ops.sharp.download_weights(url=server.url)
    assert len(server.requests) == 1
    assert bpy.ops.sharp.cancel_weights_download() == {"FINISHED"}
    assert not process.alive  # at once, before the next tick
    assert driver.send("TIMER") == {"CANCELLED"}
    assert driver.reports[0][0] == {"INFO"} and driver.reports[0][1].startswith("Download cancelled")
    assert panel.weights_state(bpy.context).running is None and not bpy.ops.sharp.cancel_weights_download.poll()


def test_disabling_the_addon_stops_a_running_download(weights, panel, bpy_session, online, target, server):
    server.delay = 0.02
    driver, _ = follow_download(bpy_session, weights, panel, server.url)
    importlib.import_module(ADDON_MODULE + ".blender.long_operator").stop_all()  # what unregistering does
    assert not driver.work.alive
    assert driver.send("TIMER") == {"CANCELLED"} and driver.reports == []


@pytest.mark.parametrize("operator", ["download", "use a file"])
def test_blender_ending_the_modal_operator_stops_the_child_and_leaves_no_status(weights, panel, bpy_session, online,
                                                                                target, server, payload, tmp_path,
                                                                                operator):
    """A file is loaded or the window closes while the weights download or a file is checked: Blender calls
    the operator's cancel(). No process, no file under the final name, no status text (a download's .part
    stays for resuming, as after Esc)."""
    long_operator = importlib.import_module(ADDON_MODULE + ".blender.long_operator")
    server.delay = 0.02
    if operator == "download":
        driver, _ = follow_download(bpy_session, weights, panel, server.url)
        driver.tick_until(lambda: driver.work.done > 0)
    else:
        picked = tmp_path / "picked.pt"
        picked.write_bytes(payload)
        driver = ModalDriver(bpy_session, weights.SHARP_OT_use_weights_file, filepath=str(picked))
        assert driver.start() == {"RUNNING_MODAL"}, driver.reports
    process = driver.work
    assert process.alive and long_operator.shown_status() != []  # working when Blender ends it
    driver.blender_cancels()
    assert process_gone(process.pid) and weights.active() is None
    assert long_operator.shown_status() == [] and panel.weights_state(bpy_session.context).running is None
    if operator == "download":
        part = weights.download.part_path(target)
        assert not target.exists() and 0 < part.stat().st_size < len(payload)  # kept for resuming
    else:  # the file checked is not taken into use
        assert bpy_session.context.preferences.addons[ADDON_MODULE].preferences.checkpoint_path == ""
    assert driver.reports == []


# ---- the licence ---------------------------------------------------------------------------------------


def test_nothing_is_downloaded_before_the_licence_is_accepted(weights, panel, bpy_session, online, prefs, target,
                                                              server, payload):
    bpy = bpy_session
    prefs.accept_weights_licence = False
    with pytest.raises(RuntimeError, match=r"Nothing was downloaded: SHARP's weights are Apple's, licensed under the "
                       r"Apple Machine Learning Research Model License Agreement: for non-commercial research only.*"
                       r"https://github\.com/apple/ml-sharp/blob/main/LICENSE_MODEL.*tick"):
        bpy.ops.sharp.download_weights(url=server.url)
    assert server.requests == [] and not target.exists()
    layout = RecordingLayout()
    panel.draw_weights(layout, bpy.context)
    buttons = {what: enabled for what, _, enabled in layout.drawn("operator")}
    assert buttons["sharp.download_weights"] is False and "wm.url_open" in buttons
    labels = " | ".join(str(what) for what, _, _ in layout.drawn("label"))
    assert "research-only licence" in labels and "not for use in a commercial product" in labels
    assert [what for what, _, _ in layout.drawn("prop")] == [prefs, prefs]  # the checkpoint, the acceptance
    assert bpy.ops.sharp.download_weights(url=server.url, accept_licence=True) == {"FINISHED"}  # a script accepts
    assert prefs.accept_weights_licence and target.read_bytes() == payload  # remembered


def test_blender_c_sharp_download_needs_the_licence_too(addon, weights, bpy_session, online, prefs, target, server,
                                                        capsys):
    blender = importlib.import_module(ADDON_MODULE + ".blender")
    prefs.accept_weights_licence = False
    assert blender.cli_command(["download", "--url", server.url, "--to", str(target)]) == 1
    assert "--accept-licence" in capsys.readouterr().err and server.requests == []
    prefs.accept_weights_licence = True  # accepted in the preferences: the command line may go ahead
    assert blender.cli_command(["download", "--url", server.url, "--to", str(target), "--min-bytes", "0",
                                "--progress", "none"]) == 0
    assert target.exists()
