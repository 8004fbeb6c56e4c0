"""The SHARP weights from inside Blender: are they here, download them, or use a file from elsewhere.

The download runs in a child process (``download.DownloadProcess``), so Blender never waits on the
network: the operators are ``LongOperator``s, followed modally from the UI (status bar, and a
progress line in the preferences) and waited for in background Blender and scripts; Esc or Cancel
kills the child at once and the ``.part`` file stays, so the next press resumes. The child checks
what arrived (size, every checksum, every key and shape where PyTorch is installed) before it
gives the file its name; "Use a File…" runs the same check on a file the user picks.

The weights are Apple's, under a research-only licence: the preferences show it with a link, and
nothing is requested before the user accepts it there (remembered in the preferences). With
Blender's *Allow Online Access* off, nothing is requested at all: the report says how to turn it
on, or where to put a file downloaded elsewhere.

The weights go to the extension's user folder (``bpy.utils.extension_path_user(..., "models")``),
which is kept across updates of the extension. ``register`` puts it in ``$SHARP_MODELS_DIR`` (unless
the user's environment names a folder already), which ``dependencies.find_checkpoint`` looks in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, StringProperty

from .. import dependencies, download
from ..dependencies import CHECKPOINT_NAME, LICENCE_NOTICE, LICENCE_URL, Status
from ..download import DownloadProcess
from ..errors import Cancelled, CheckpointError, DownloadError, SharpError
from ..files import existing_file, path_kind
from ..work import Work
from . import runner
from .addon import ADDON_PACKAGE, get_preferences, offline_message, online_access
from .long_operator import LongOperator
from .reports import Result, reports_errors, sentence

URL = dependencies.CHECKPOINT_URL
EXPECTED = download.OFFICIAL  # what the official file must be (the tests put a small synthetic file's here)
WEIGHTS_GLOB = "*.pt;*.pth"
ACCEPT_LABEL = "I accept Apple's research-only licence of the SHARP weights"


# ---- where ----------------------------------------------------------------------------------------


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


def elsewhere() -> str:
    """The way to the weights without a download from Blender."""
    return (f"or download {CHECKPOINT_NAME} elsewhere ({URL}) and put it in {models_folder()} (or pick it with Use a "
            "File)")


def licence_accepted(context: Any = None) -> bool:
    try:
        return bool(get_preferences(context).accept_weights_licence)
    except (KeyError, AttributeError):
        return False


def licence_refusal() -> str:
    return (f"Nothing was downloaded: {LICENCE_NOTICE}. Read it at {LICENCE_URL}, then tick \"{ACCEPT_LABEL}\" in "
            "Edit > Preferences > Add-ons > SHARP from Image (from a script: "
            "bpy.ops.sharp.download_weights(accept_licence=True))")


# ---- what the panel shows ---------------------------------------------------------------------------

_active: DownloadProcess | None = None  # the download or check the preferences show (one at a time)
_outcome: tuple[bool | None, str] | None = None  # how the last download or check ended: (ok; None: cancelled, text)


def active() -> DownloadProcess | None:
    """The download or check running now, if any."""
    return _active if _active is not None and not _active.finished else None


def outcome() -> tuple[bool | None, str] | None:
    """How the last download or check ended: (ok, or None when cancelled; what to say), None before any."""
    return _outcome


def validation(path: Path) -> Status | None:
    """The last check of this exact file: a download's, Use a File's or the Validate button's."""
    return dependencies.last_check(path)


def partial_bytes(folder: Path) -> int:
    """Bytes of an interrupted download in ``folder`` waiting to be resumed."""
    part = download.part_path(folder / CHECKPOINT_NAME)
    return part.stat().st_size if path_kind(part) == "file" else 0


# ---- what happens when the work is done ------------------------------------------------------------


def installed(operator: Any, context: Any, result: dict[str, Any]) -> Result:
    """A download passed its check and has its name: remember the check; a setting naming no file gives way."""
    global _outcome
    path = Path(result["path"])
    dependencies.remember_check(path, Status(True, sentence(str(result["summary"]))))
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


def picked(operator: Any, context: Any, result: dict[str, Any]) -> Result:
    """A file from elsewhere passed the check: the preferences use it from now on."""
    global _outcome
    path = Path(result["path"])
    dependencies.remember_check(path, Status(True, sentence(str(result["summary"]))))
    get_preferences(context).checkpoint_path = str(path)
    _outcome = (True, f"Using {path}")
    operator.report({"INFO"}, f"Using {path}: {result['summary']}")
    return {"FINISHED"}


def _busy() -> None:
    if active() is not None:
        raise DownloadError("the SHARP weights are being downloaded or checked already: wait for it, or cancel it "
                            "(Esc, or Cancel in the add-on's preferences)")


class FollowsDownload(LongOperator):
    """The download and the check of a file: one child process followed at a time, shown in the preferences."""

    redraws_preferences = True

    def start_work(self, context: Any) -> Work:
        global _active, _outcome
        _busy()
        _outcome = None
        _active = self.start_process(context)
        return _active

    def start_process(self, context: Any) -> DownloadProcess:
        raise NotImplementedError

    def work_ended(self, context: Any, work: Work) -> None:
        global _active, _outcome
        if _active is work:
            _active = None
        if work.error is not None:
            _outcome = (None if isinstance(work.error, Cancelled) else False, sentence(str(work.error)))


# ---- operators ----------------------------------------------------------------------------------------


class SHARP_OT_download_weights(FollowsDownload, bpy.types.Operator):
    """Download Apple's SHARP weights (2.8 GB, research-only licence) into the extension's models folder and \
check them before use; after an interruption, it resumes where it stopped"""

    bl_idname = "sharp.download_weights"
    bl_label = "Download SHARP Weights"

    url: StringProperty(  # type: ignore[valid-type]
        name="URL", default=URL, options={"SKIP_SAVE", "HIDDEN"},
        description="Where to download from (a mirror of the official file)",
    )
    accept_licence: BoolProperty(  # type: ignore[valid-type]
        name="Accept Licence", default=False, options={"SKIP_SAVE", "HIDDEN"},
        description=f"Accept Apple's research-only licence of the weights ({LICENCE_URL}); remembered",
    )

    def start_process(self, context: Any) -> DownloadProcess:
        if not online_access():
            raise DownloadError(offline_message(elsewhere()))
        if self.accept_licence:
            get_preferences(context).accept_weights_licence = True
        if not licence_accepted(context):
            raise DownloadError(licence_refusal())
        return DownloadProcess.download(self.url or URL, download_target(), EXPECTED, accept_licence=True)

    def finish_work(self, context: Any, result: dict[str, Any]) -> Result:
        return installed(self, context, result)


class SHARP_OT_use_weights_file(FollowsDownload, bpy.types.Operator):
    """Use SHARP weights downloaded elsewhere: the file is checked like a download (size, every checksum, \
every key and shape) before the preferences use it"""

    bl_idname = "sharp.use_weights_file"
    bl_label = "Use a File…"

    filepath: StringProperty(name="Weights", subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    filter_glob: StringProperty(default=WEIGHTS_GLOB, options={"HIDDEN"})  # type: ignore[valid-type]

    @reports_errors
    def invoke(self, context: Any, event: Any) -> Result:
        _busy()
        if self.filepath:
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def start_process(self, context: Any) -> DownloadProcess:
        if not self.filepath:
            raise CheckpointError(f"No file chosen: pick the SHARP weights ({CHECKPOINT_NAME})")
        path = existing_file(bpy.path.abspath(self.filepath), CheckpointError, "a file")
        expected = EXPECTED if path.name == CHECKPOINT_NAME else download.Expected()
        return DownloadProcess.check(path, expected)

    def finish_work(self, context: Any, result: dict[str, Any]) -> Result:
        return picked(self, context, result)


class SHARP_OT_cancel_weights_download(bpy.types.Operator):
    """Stop the download now; what arrived is kept, and Download resumes from there"""

    bl_idname = "sharp.cancel_weights_download"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}  # noqa: RUF012 - Blender reads it as a class attribute

    @classmethod
    def poll(cls, context: Any) -> bool:
        return active() is not None

    def execute(self, context: Any) -> Result:
        running = active()
        if running is not None:
            running.cancel()  # the download's modal operator reports it at its next tick
        return {"FINISHED"}


class SHARP_OT_validate_checkpoint(bpy.types.Operator):
    """Check that the checkpoint file is a complete SHARP network (every key and shape; takes seconds)"""

    bl_idname = "sharp.validate_checkpoint"
    bl_label = "Validate"
    bl_options = {"INTERNAL"}  # noqa: RUF012 - Blender reads it as a class attribute

    @reports_errors
    def execute(self, context: Any) -> Result:
        path = dependencies.find_checkpoint(get_preferences(context).checkpoint_path)
        if path is None or not path.is_file():
            raise CheckpointError(dependencies.checkpoint_status(path).message)
        try:
            summary = runner.check_checkpoint(str(path))  # where inference runs
        except SharpError as e:
            dependencies.remember_check(path, Status(False, sentence(str(e))))
            raise
        dependencies.remember_check(path, Status(True, sentence(summary)))
        self.report({"INFO"}, sentence(summary))
        return {"FINISHED"}


classes = (SHARP_OT_download_weights, SHARP_OT_use_weights_file, SHARP_OT_cancel_weights_download,
           SHARP_OT_validate_checkpoint)


# ---- registration ---------------------------------------------------------------------------------

_models_env_set = False  # whether registration set $SHARP_MODELS_DIR (and unregistration removes it)


def register() -> None:
    """The models folder for the search, and Blender's rules for ``blender -c sharp download``."""
    global _models_env_set
    download.set_host_rules(download.HostRules(
        offline_reason=lambda: None if online_access() else offline_message(
            f"or download {CHECKPOINT_NAME} elsewhere ({URL}) and put it in {models_folder()}", command_line=True),
        licence_accepted=licence_accepted))
    if os.environ.get(dependencies.ENV_MODELS):
        return  # the user's environment names a folder: that one is used
    try:
        os.environ[dependencies.ENV_MODELS] = str(extension_models_folder())
    except (OSError, ValueError):  # no user folder to be had (read-only configuration): the search skips it
        return
    _models_env_set = True


def unregister() -> None:
    """Stop what runs (the ``.part`` stays for the next session) and undo ``register``."""
    global _models_env_set, _active
    running = active()
    if running is not None:
        running.cancel()
    _active = None
    download.set_host_rules(None)
    if _models_env_set:
        os.environ.pop(dependencies.ENV_MODELS, None)
        _models_env_set = False
