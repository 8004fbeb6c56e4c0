"""The weights from inside Blender, on real Blender, against a real HTTP server on 127.0.0.1: the
operators in background mode, Allow Online Access, Use a File, the preferences' weights section,
and the modal path (progress, Esc, Cancel, resume) driven by hand, as the event loop would."""

from __future__ import annotations

import importlib
import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import ADDON_MODULE
from tests.core.test_download import BLOCK, Server, corrupted, make_payload

pytestmark = pytest.mark.blender

NAME = "sharp_2572gikvuh.pt"


@pytest.fixture(scope="module")
def payload() -> bytes:
    return make_payload()


@pytest.fixture
def server(payload):
    s = Server(payload)
    yield s
    s.close()


@pytest.fixture
def weights(addon):
    return importlib.import_module(ADDON_MODULE + ".blender.weights")


@pytest.fixture
def prefs(addon, bpy_session):
    preferences = bpy_session.context.preferences.addons[ADDON_MODULE].preferences
    yield preferences
    preferences.checkpoint_path = ""


@pytest.fixture
def online(bpy_session):
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
    weights.stop()


class ModalDriver:
    """Follows a child process with ``weights.ModalDownload`` as the operator's modal() does."""

    def __init__(self, weights, bpy, process, finish):
        self.reports: list[tuple[set, str]] = []
        self.operator = SimpleNamespace(report=lambda kind, text: self.reports.append((kind, text)))
        self.modal = weights.ModalDownload(self.operator, process, finish, "SHARP weights")
        self.context = bpy.context
        self.weights = weights
        self.lines: list[str] = []  # the progress lines the preferences would have drawn

    def send(self, event_type: str):
        result = self.modal.handle(self.context, event_type)
        running = self.weights.weights_state(self.context).running
        if running is not None:
            self.lines.append(running)
        return result

    def tick_until(self, done, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while (result := self.send("TIMER")) == {"PASS_THROUGH"} and not done() and time.monotonic() < deadline:
            time.sleep(0.02)
        return result


class Layout:
    """Stands in for a UILayout (there is none without a window) and records what is drawn."""

    def __init__(self, calls=None, enabled=True):
        self.calls = [] if calls is None else calls
        self.enabled = enabled

    def _child(self, *args, **kwargs):
        return Layout(self.calls)

    row = column = box = _child

    def __getattr__(self, name):
        def draw(*args, **kwargs):
            self.calls.append((name, args[0] if args else kwargs.get("text"), kwargs, self.enabled))
            return SimpleNamespace()

        return draw

    def drawn(self, kind):
        return [(what, kwargs, enabled) for name, what, kwargs, enabled in self.calls if name == kind]


# ---- where the weights go ------------------------------------------------------------------------------


def test_the_models_folder_is_the_extensions_user_folder_and_the_search_looks_there(weights, bpy_session):
    bpy = bpy_session
    folder = weights.models_folder()
    assert folder == Path(bpy.utils.extension_path_user(ADDON_MODULE, path="models")) and folder.is_dir()
    dependencies = importlib.import_module(ADDON_MODULE + ".dependencies")
    assert os.environ[dependencies.ENV_MODELS] == str(folder)
    assert folder / NAME in dependencies.default_checkpoint_paths()
    assert weights.download_target() == folder / NAME


# ---- the operators, synchronous (background Blender) -----------------------------------------------------


def test_download_installs_a_checked_file_the_preferences_then_find(weights, bpy_session, online, target, server,
                                                                    payload, prefs, tmp_path):
    bpy = bpy_session
    prefs.checkpoint_path = str(tmp_path / "gone.pt")  # a setting that names no file gives way to the download
    assert bpy.ops.sharp.download_weights(url=server.url) == {"FINISHED"}
    assert target.read_bytes() == payload and not weights.download.part_path(target).exists()
    assert prefs.checkpoint_path == ""
    state = weights.weights_state(bpy.context)
    assert state.path == target and state.status.ok and not state.offer_download
    assert state.validated.ok and "every checksum" in state.validated.message
    assert state.outcome == (True, f"SHARP weights downloaded and checked: {target}")
    assert bpy.ops.sharp.download_weights(url=server.url) == {"FINISHED"}  # already there: checked, not fetched
    assert len(server.requests) == 1


def test_with_online_access_off_not_a_single_request_is_made(weights, bpy_session, target, server):
    bpy = bpy_session
    bpy.context.preferences.system.use_online_access = False
    assert not bpy.app.online_access
    folder = re.escape(str(weights.models_folder()))
    with pytest.raises(RuntimeError, match=rf"Online access is off, so nothing was downloaded: turn on Edit > "
                       rf"Preferences > System > Network > Allow Online Access; or download {NAME} elsewhere .* and "
                       rf"put it in {folder}"):
        bpy.ops.sharp.download_weights(url=server.url)
    assert server.requests == [] and not target.exists()
    state = weights.weights_state(bpy.context)
    assert state.offer_download and not state.online


def test_blender_c_sharp_download_respects_online_access_too(addon, weights, bpy_session, target, server, capsys):
    blender = importlib.import_module(ADDON_MODULE + ".blender")
    bpy_session.context.preferences.system.use_online_access = False
    assert blender.cli_command(["download", "--url", server.url, "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Blender's online access is off, so nothing was downloaded: run Blender with "
                          "--online-mode") and err.count("\n") == 1
    assert server.requests == [] and not target.exists()


def test_a_corrupted_download_is_reported_and_nothing_is_installed(weights, bpy_session, online, target, server):
    server.corrupt = True
    with pytest.raises(RuntimeError, match=r"corrupted: .* fails its CRC-32 checksum; it was removed and nothing was "
                       "installed"):
        bpy_session.ops.sharp.download_weights(url=server.url)
    assert not target.exists() and not weights.download.part_path(target).exists()
    assert weights.weights_state(bpy_session.context).outcome[0] is False


def test_an_unreachable_server_is_reported(weights, bpy_session, online, target):
    from tests.core.test_download import closed_port

    port = closed_port()
    with pytest.raises(RuntimeError, match=rf"cannot reach 127\.0\.0\.1:{port}"):
        bpy_session.ops.sharp.download_weights(url=f"http://127.0.0.1:{port}/{NAME}")


def test_use_a_file_accepts_a_valid_file_and_refuses_others(weights, bpy_session, prefs, payload, tmp_path, target):
    bpy = bpy_session
    good = tmp_path / "mine.pt"
    good.write_bytes(payload)
    assert bpy.ops.sharp.use_weights_file(filepath=str(good)) == {"FINISHED"}
    assert prefs.checkpoint_path == str(good) and weights.validation(good).ok
    assert weights.weights_state(bpy.context).validated.ok
    (tmp_path / "flipped.pt").write_bytes(corrupted(payload))
    (tmp_path / NAME).write_bytes(payload[:4096])
    for name, says in [("flipped.pt", "fails its CRC-32 checksum"), (NAME, "too small"), ("absent.pt", "no such file")]:
        with pytest.raises(RuntimeError, match=rf"{re.escape(str(tmp_path / name))}'?: .*{says}"):
            bpy.ops.sharp.use_weights_file(filepath=str(tmp_path / name))
    assert prefs.checkpoint_path == str(good)  # a refused file changes nothing


# ---- the preferences' section --------------------------------------------------------------------------


def test_the_weights_section_offers_what_fits(weights, bpy_session, prefs, target, monkeypatch):
    context = bpy_session.context
    prefs.checkpoint_path = ""
    monkeypatch.setenv("TORCH_HOME", str(target.parent / "no-torch-home"))
    monkeypatch.delenv("SHARP_CHECKPOINT", raising=False)
    layout = Layout()
    monkeypatch.setattr(weights, "online_access", lambda: False)
    weights.draw_weights(layout, context)
    buttons = {what: enabled for what, _, enabled in layout.drawn("operator")}
    assert buttons == {"sharp.download_weights": False, "sharp.use_weights_file": True, "wm.path_open": True}
    labels = " | ".join(str(what) for what, _, _ in layout.drawn("label"))
    assert "No SHARP weights found" in labels and "Online access is off" in labels
    assert f"Models folder: {weights.models_folder()}" in labels
    weights.download.part_path(target).write_bytes(b"x" * 5000)  # an interrupted download
    monkeypatch.setattr(weights, "online_access", lambda: True)
    layout = Layout()
    weights.draw_weights(layout, context)
    download_button = next(kw for what, kw, _ in layout.drawn("operator") if what == "sharp.download_weights")
    assert download_button["text"] == "Resume Download (5000 bytes done)"
    assert "Online access is off" not in " ".join(str(w) for w, _, _ in layout.drawn("label"))


# ---- the modal path, driven by hand ------------------------------------------------------------------


def test_a_modal_download_shows_its_progress_then_installs(weights, bpy_session, target, server, payload):
    server.delay = 0.005
    process = weights.DownloadProcess.download(server.url, target, weights.EXPECTED)
    driver = ModalDriver(weights, bpy_session, process, weights.installed)
    assert weights.weights_state(bpy_session.context).running == "SHARP weights: starting"
    result = driver.tick_until(lambda: False)
    assert result == {"FINISHED"}, driver.reports
    assert driver.reports == [({"INFO"}, f"SHARP weights downloaded and checked: {target}")]
    assert any(re.fullmatch(r"SHARP weights: .* of .* \(\d+%\)", line) for line in driver.lines), driver.lines
    assert target.read_bytes() == payload and weights.weights_state(bpy_session.context).running is None


def test_escape_kills_the_download_at_once_and_pressing_again_resumes(weights, bpy_session, online, target, server,
                                                                      payload):
    server.delay = 0.02
    process = weights.DownloadProcess.download(server.url, target, weights.EXPECTED)
    driver = ModalDriver(weights, bpy_session, process, weights.installed)
    assert driver.tick_until(lambda: process.done >= 3 * BLOCK) == {"PASS_THROUGH"}
    assert driver.send("MOUSEMOVE") == {"PASS_THROUGH"}
    t0 = time.monotonic()
    assert driver.send("ESC") == {"CANCELLED"}
    assert time.monotonic() - t0 < 1.0 and not process.alive
    part = weights.download.part_path(target)
    kept = part.stat().st_size
    assert not target.exists() and 0 < kept < len(payload)  # the .part stays for resuming
    [(kind, text)] = driver.reports
    assert kind == {"INFO"} and text == (f"Download cancelled: {weights.download.size_text(kept)} of "
                                         f"{weights.download.size_text(len(payload))} kept in '{part}'; download "
                                         "again to resume")
    state = weights.weights_state(bpy_session.context)
    assert state.partial == kept and state.download_label.startswith("Resume Download")
    server.delay = 0.0
    assert bpy_session.ops.sharp.download_weights(url=server.url) == {"FINISHED"}
    assert (server.requests[-1]["range"], server.requests[-1]["status"]) == (f"bytes={kept}-", 206)
    assert server.sent < 1.5 * len(payload) and target.read_bytes() == payload


def test_the_cancel_button_stops_a_download_and_one_runs_at_a_time(weights, bpy_session, online, target, server):
    bpy = bpy_session
    server.delay = 0.02
    assert not bpy.ops.sharp.cancel_weights_download.poll()
    process = weights.DownloadProcess.download(server.url, target, weights.EXPECTED)
    driver = ModalDriver(weights, bpy, process, weights.installed)
    driver.tick_until(lambda: process.done > 0)
    with pytest.raises(RuntimeError, match="being downloaded or checked already"):
        bpy.ops.sharp.download_weights(url=server.url)
    assert len(server.requests) == 1
    assert bpy.ops.sharp.cancel_weights_download() == {"FINISHED"}
    assert not process.alive  # at once, before the next tick
    assert driver.send("TIMER") == {"CANCELLED"}
    assert driver.reports[0][0] == {"INFO"} and driver.reports[0][1].startswith("Download cancelled")
    assert weights.weights_state(bpy.context).running is None and not bpy.ops.sharp.cancel_weights_download.poll()


def test_disabling_the_addon_stops_a_running_download(weights, bpy_session, target, server):
    server.delay = 0.02
    process = weights.DownloadProcess.download(server.url, target, weights.EXPECTED)
    driver = ModalDriver(weights, bpy_session, process, weights.installed)
    weights.stop()  # what unregistering the operators does
    assert not process.alive
    assert driver.send("TIMER") == {"CANCELLED"} and driver.reports == []
