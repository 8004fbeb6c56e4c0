"""The SHARP weights from inside Blender: are they here, download them, or use a file from elsewhere.

The download runs in a child process (``python -m sharp_addon download --progress json``, followed
by ``download.DownloadProcess``), so Blender never waits on the network: a modal operator polls it on
a timer, as ``jobs.ModalJob`` follows the inference worker, and shows it in the status bar and as a
progress line in the preferences; Esc or Cancel kills the child at once and the ``.part`` file stays,
so the next press resumes. In background Blender and from scripts the operators wait for the child.
The child checks what arrived (size, every checksum, every key and shape where PyTorch is installed)
before it gives the file its name; "Use a File…" runs the same check on a file the user picks.

With Blender's *Allow Online Access* off, nothing is requested at all: the operator says how to
turn it on, or where to put a file downloaded elsewhere.

The weights go to the extension's user folder (``bpy.utils.extension_path_user(..., "models")``),
which is kept across updates of the extension. Registering puts it in ``$SHARP_MODELS_DIR`` (unless
the user's environment names a folder already), which ``dependencies.find_checkpoint`` looks in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy
from bpy.props import StringProperty

from .. import dependencies, download
from ..dependencies import CHECKPOINT_NAME, Status
from ..download import DownloadProcess, size_text
from ..errors import Cancelled, CheckpointError, DownloadError, SharpError
from ..files import FileKey, file_key, path_kind
from . import jobs
from .preferences import ADDON_PACKAGE, SHARP_OT_validate_checkpoint, draw_status, get_preferences, validation_result
from .reports import Result, report_error, reports_errors, sentence

URL = dependencies.CHECKPOINT_URL
EXPECTED = download.OFFICIAL  # what the official file must be (the tests put a small synthetic file's here)
ONLINE_SETTING = "Edit > Preferences > System > Network > Allow Online Access"
WEIGHTS_GLOB = "*.pt;*.pth"

Finish = Callable[[Any, bpy.types.Context, dict[str, Any]], Result]  # (operator, context, the child's "done" event)


# ---- where, and whether the network may be used ----------------------------------------------------


def online_access() -> bool:
    """Blender's *Allow Online Access* (``--offline-mode`` / ``--online-mode`` applied)."""
    return bool(getattr(bpy.app, "online_access", True))


def extension_models_folder() -> Path:
    """The extension's own user folder for the weights (made if missing), kept across updates."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path="models", create=True))
    except ValueError:  # installed as a legacy add-on, not as an extension
        name = ADDON_PACKAGE.rpartition(".")[2]
        return Path(bpy.utils.user_resource("DATAFILES", path=f"{name}/models", create=True))


def models_folder() -> Path:
    """Where downloads go and the search looks: ``$SHARP_MODELS_DIR`` (set on registration)."""
    return dependencies.models_folder() or extension_models_folder()


def download_target() -> Path:
    return models_folder() / CHECKPOINT_NAME


def offline_message() -> str:
    if getattr(bpy.app, "online_access_override", False):
        how = "Blender was started with --offline-mode; start it without that option"
    else:
        how = f"turn on {ONLINE_SETTING}"
    return (f"Online access is off, so nothing was downloaded: {how}; or download {CHECKPOINT_NAME} elsewhere "
            f"({URL}) and put it in {models_folder()} (or pick it with Use a File)")


def command_line_refusal() -> str | None:
    """Why ``blender -c sharp download`` may not go online (``download.set_network_policy``), or None."""
    if online_access():
        return None
    return (f"Blender's online access is off, so nothing was downloaded: run Blender with --online-mode "
            f"(blender --online-mode -b -c sharp download ...), or turn on {ONLINE_SETTING}; or download "
            f"{CHECKPOINT_NAME} elsewhere ({URL}) and put it in {models_folder()}")


_models_env_set = False  # whether registration set $SHARP_MODELS_DIR (and unregistration removes it)


def _register_models_folder() -> None:
    global _models_env_set
    if os.environ.get(dependencies.ENV_MODELS):
        return  # the user's environment names a folder: that one is used
    try:
        os.environ[dependencies.ENV_MODELS] = str(extension_models_folder())
    except (OSError, ValueError):  # no user folder to be had (read-only configuration): the search skips it
        return
    _models_env_set = True


def _unregister_models_folder() -> None:
    global _models_env_set
    if _models_env_set:
        os.environ.pop(dependencies.ENV_MODELS, None)
        _models_env_set = False


# ---- what the panel shows --------------------------------------------------------------------------

_checked: dict[FileKey, Status] = {}  # files a download or "Use a File" checked, by identity
_outcome: tuple[bool | None, str] | None = None  # how the last download or check ended: (ok; None: cancelled, text)


def remember(path: Path, status: Status) -> None:
    try:
        _checked[file_key(path)] = status
    except OSError:
        pass


def validation(path: Path) -> Status | None:
    """The last check of this exact file: a download's, Use a File's or the Validate button's."""
    try:
        found = _checked.get(file_key(path))
    except OSError:
        return None
    return found or validation_result(path)


@dataclass(frozen=True)
class WeightsState:
    """Everything ``draw_weights`` shows, computed without drawing (tests read it)."""

    path: Path | None  # the checkpoint inference would use
    status: Status  # found or not, where, size
    validated: Status | None  # its last check, None: not checked yet
    folder: Path  # the models folder
    online: bool
    partial: int  # bytes of an interrupted download waiting to be resumed
    running: str | None  # the progress line while a download or check runs
    fraction: float
    outcome: tuple[bool | None, str] | None

    @property
    def offer_download(self) -> bool:
        return self.running is None and (not self.status.ok or self.partial > 0)

    @property
    def download_label(self) -> str:
        if self.partial:
            return f"Resume Download ({size_text(self.partial)} done)"
        return "Download SHARP Weights (2.8 GB)"


def weights_state(context: bpy.types.Context) -> WeightsState:
    chosen = get_preferences(context).checkpoint_path
    path = dependencies.find_checkpoint(bpy.path.abspath(chosen) if chosen else None)
    status = dependencies.checkpoint_status(path)
    folder = models_folder()
    if path is None:
        status = Status(False, "No SHARP weights found (looked in the models folder and the torch hub cache)")
    validated = validation(path) if status.ok and path is not None else None
    part = download.part_path(folder / CHECKPOINT_NAME)
    partial = part.stat().st_size if path_kind(part) == "file" else 0
    running = fraction = None
    if _active is not None:
        running, fraction = _active.text(), _active.process.fraction
    return WeightsState(path, status, validated, folder, online_access(), partial, running, fraction or 0.0,
                        _outcome)


def draw_weights(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    """The preferences' weights section: the checkpoint, its check, Download / Resume / Cancel, Use a File."""
    state = weights_state(context)
    layout.prop(get_preferences(context), "checkpoint_path")
    row = layout.row()
    draw_status(row, state.status)
    if state.status.ok and state.path is not None:
        if state.validated is None:
            row.operator(SHARP_OT_validate_checkpoint.bl_idname, icon="VIEWZOOM")
        else:
            draw_status(layout, state.validated)
    if state.running is not None:
        row = layout.row()
        row.progress(factor=state.fraction, type="BAR", text=state.running)
        row.operator(SHARP_OT_cancel_weights_download.bl_idname, text="Cancel", icon="CANCEL")
    else:
        if state.outcome is not None:
            ok, text = state.outcome
            layout.label(text=text, icon="CHECKMARK" if ok else "INFO" if ok is None else "ERROR")
        row = layout.row()
        if state.offer_download:
            sub = row.row()
            sub.enabled = state.online
            sub.operator(SHARP_OT_download_weights.bl_idname, text=state.download_label, icon="IMPORT")
        row.operator(SHARP_OT_use_weights_file.bl_idname, text="Use a File…", icon="FILEBROWSER")
        if state.offer_download and not state.online:
            col = layout.column(align=True)
            col.label(text=f"Online access is off: turn it on in {ONLINE_SETTING}", icon="INTERNET_OFFLINE")
            col.label(text=f"or put {CHECKPOINT_NAME}, downloaded elsewhere, in the models folder", icon="BLANK1")
    row = layout.row()
    row.label(text=f"Models folder: {state.folder}", icon="FILE_FOLDER")
    row.operator("wm.path_open", text="Open", icon="FILEBROWSER").filepath = str(state.folder)


# ---- following the child process ---------------------------------------------------------------------

_active: ModalDownload | None = None  # the download or check the UI follows (one at a time)


def progress_text(process: DownloadProcess, what: str) -> str:
    stage, done, total = process.stage, process.done, process.total
    if stage == "download":
        of = f" of {size_text(total)} ({100 * done / total:.0f}%)" if total else ""
        return f"{what}: {size_text(done)}{of}"
    if stage in ("verify", "hash"):
        return f"{what}: checking checksums" + (f" ({100 * done / total:.0f}%)" if total else "")
    if stage == "check":
        return f"{what}: checking keys and shapes"
    return f"{what}: starting"


class ModalDownload(jobs.ModalFollower):
    """A download or check followed from a modal operator (``jobs.ModalFollower``: timer, status bar,
    progress, Esc), also drawn as a progress line in the preferences."""

    def __init__(self, operator: Any, process: DownloadProcess, finish: Finish, what: str) -> None:
        global _active
        super().__init__(operator)
        self.process, self.finish, self.what = process, finish, what
        self._stopped = False  # stopped under us (the add-on was disabled)
        _active = self

    def poll(self) -> bool:
        self._stopped = _active is not self
        return self._stopped or self.process.poll()

    def fraction(self) -> float:
        return self.process.fraction or 0.0

    def status(self) -> str:
        return self.text()

    def cancel(self) -> None:
        """Esc or the Cancel button: kill the child now; the next tick reports it."""
        self.process.cancel()

    def text(self) -> str:
        return progress_text(self.process, self.what)

    def conclude(self, context: bpy.types.Context) -> Result:
        if self._stopped:
            return {"CANCELLED"}
        return conclude(self.operator, context, self.process, self.finish)

    def end(self, context: bpy.types.Context) -> None:
        global _active
        if _active is self:
            _active = None
        super().end(context)

    def on_change(self, context: bpy.types.Context) -> None:
        jobs.redraw_preferences(context)


def follow(operator: Any, context: bpy.types.Context, process: DownloadProcess, finish: Finish, what: str) -> Result:
    """Wait for ``process`` (background Blender, scripts) or follow it modally (invoked from the UI)."""
    global _outcome
    _outcome = None
    if bpy.app.background or not operator.options.is_invoke:
        try:
            process.wait()
        except SharpError:
            pass  # conclude() reports it
        return conclude(operator, context, process, finish)
    modal = ModalDownload(operator, process, finish, what)
    operator.modal_download = modal
    return modal.start(context)


def conclude(operator: Any, context: bpy.types.Context, process: DownloadProcess, finish: Finish) -> Result:
    """Report how the child ended, and on success let ``finish`` put the file to use."""
    global _outcome
    jobs.redraw_preferences(context)
    if process.error is not None:
        _outcome = (None if isinstance(process.error, Cancelled) else False, sentence(str(process.error)))
        return report_error(operator, process.error)
    assert process.result is not None
    try:
        return finish(operator, context, process.result)
    except SharpError as e:
        return report_error(operator, e)


def stop() -> None:
    """Cancel what runs (the add-on is disabled); the ``.part`` stays for the next session."""
    global _active
    if _active is not None:
        _active.process.cancel()
        _active = None


def _busy() -> None:
    if _active is not None:
        raise DownloadError("the SHARP weights are being downloaded or checked already: wait for it, or cancel it "
                            "(Esc, or Cancel in the add-on's preferences)")


def installed(operator: Any, context: bpy.types.Context, result: dict[str, Any]) -> Result:
    """A download passed its check and has its name: remember the check; a setting naming no file gives way."""
    global _outcome
    path = Path(result["path"])
    remember(path, Status(True, sentence(str(result["summary"]))))
    prefs = get_preferences(context)
    chosen = bpy.path.abspath(prefs.checkpoint_path) if prefs.checkpoint_path else ""
    note = ""
    if chosen and path_kind(chosen) != "file":
        prefs.checkpoint_path = ""  # it named no file: the download (found by the search) is used now
    elif chosen and Path(chosen).resolve() != path.resolve():
        note = f"; the Checkpoint setting still names {chosen}: clear it to use the download"
    verb = "downloaded and checked" if result.get("downloaded", True) else "already there and checked"
    _outcome = (True, f"SHARP weights {verb}: {path}")
    operator.report({"INFO"}, f"SHARP weights {verb}: {path}{note}")
    return {"FINISHED"}


def picked(operator: Any, context: bpy.types.Context, result: dict[str, Any]) -> Result:
    """A file from elsewhere passed the check: the preferences use it from now on."""
    global _outcome
    path = Path(result["path"])
    remember(path, Status(True, sentence(str(result["summary"]))))
    get_preferences(context).checkpoint_path = str(path)
    _outcome = (True, f"Using {path}")
    operator.report({"INFO"}, f"Using {path}: {result['summary']}")
    return {"FINISHED"}


# ---- operators ----------------------------------------------------------------------------------------


class FollowsDownload:
    """Mixin: ``modal`` follows the child process ``follow`` started."""

    modal_download: ModalDownload | None = None

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        assert self.modal_download is not None, "modal() runs only after follow() started"
        return self.modal_download.handle(context, event.type)


class SHARP_OT_download_weights(FollowsDownload, bpy.types.Operator):
    """Download Apple's SHARP weights (2.8 GB) into the extension's models folder and check them before use; \
after an interruption, it resumes where it stopped"""

    bl_idname = "sharp.download_weights"
    bl_label = "Download SHARP Weights"

    url: StringProperty(  # type: ignore[valid-type]
        name="URL", default=URL, options={"SKIP_SAVE", "HIDDEN"},
        description="Where to download from (a mirror of the official file)",
    )
    @classmethod
    def register(cls) -> None:
        _register_models_folder()
        download.set_network_policy(command_line_refusal)

    @classmethod
    def unregister(cls) -> None:
        stop()
        download.set_network_policy(None)
        _unregister_models_folder()

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
        _busy()
        if not online_access():
            raise DownloadError(offline_message())
        process = DownloadProcess.download(self.url or URL, download_target(), EXPECTED)
        return follow(self, context, process, installed, "SHARP weights")


class SHARP_OT_use_weights_file(FollowsDownload, bpy.types.Operator):
    """Use SHARP weights downloaded elsewhere: the file is checked like a download (size, every checksum, \
every key and shape) before the preferences use it"""

    bl_idname = "sharp.use_weights_file"
    bl_label = "Use a File…"

    filepath: StringProperty(name="Weights", subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    filter_glob: StringProperty(default=WEIGHTS_GLOB, options={"HIDDEN"})  # type: ignore[valid-type]

    @reports_errors
    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        _busy()
        if self.filepath:
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    @reports_errors
    def execute(self, context: bpy.types.Context) -> Result:
        _busy()
        if not self.filepath:
            raise CheckpointError(f"No file chosen: pick the SHARP weights ({CHECKPOINT_NAME})")
        path = Path(bpy.path.abspath(self.filepath))
        kind = path_kind(path)
        if kind != "file":
            raise CheckpointError.about(path, "no such file" if kind == "missing" else f"is a {kind}, not a file")
        expected = EXPECTED if path.name == CHECKPOINT_NAME else download.Expected()
        process = DownloadProcess.check(path, expected)
        return follow(self, context, process, picked, f"Checking {path.name}")


class SHARP_OT_cancel_weights_download(bpy.types.Operator):
    """Stop the download now; what arrived is kept, and Download resumes from there"""

    bl_idname = "sharp.cancel_weights_download"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}  # noqa: RUF012 - Blender reads it as a class attribute

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _active is not None

    def execute(self, context: bpy.types.Context) -> Result:
        if _active is not None:
            _active.cancel()
        return {"FINISHED"}


classes = (SHARP_OT_download_weights, SHARP_OT_use_weights_file, SHARP_OT_cancel_weights_download)
