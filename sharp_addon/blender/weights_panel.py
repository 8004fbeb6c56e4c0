"""The preferences' section on the weights: where they are, their check, the licence, and the buttons.

``weights_state`` computes everything the section shows without drawing (tests read it);
``draw_weights`` draws it. The operators it offers are in ``weights``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy

from .. import dependencies
from ..dependencies import CHECKPOINT_NAME, LICENCE_URL, Status
from ..files import size_text
from . import weights
from .addon import ONLINE_SETTING, get_preferences, online_access


@dataclass(frozen=True)
class WeightsState:
    """Everything ``draw_weights`` shows, computed without drawing."""

    path: Path | None  # the checkpoint inference would use
    status: Status  # found or not, where, size
    validated: Status | None  # its last check, None: not checked yet
    folder: Path  # the models folder
    online: bool
    licence_accepted: bool
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


def weights_state(context: Any) -> WeightsState:
    chosen = get_preferences(context).checkpoint_path
    path = dependencies.find_checkpoint(bpy.path.abspath(chosen) if chosen else None)
    status = dependencies.checkpoint_status(path)
    folder = weights.models_folder()
    if path is None:
        status = Status(False, "No SHARP weights found (looked in the models folder and the torch hub cache)")
    validated = weights.validation(path) if status.ok and path is not None else None
    running = weights.active()
    return WeightsState(path, status, validated, folder, online_access(), weights.licence_accepted(context),
                        weights.partial_bytes(folder), None if running is None else running.status_text(),
                        0.0 if running is None else running.fraction, weights.outcome())


def draw_status(layout: Any, status: Status) -> None:
    """One line: a check mark or an error icon and the explanation."""
    layout.label(text=status.message, icon="CHECKMARK" if status.ok else "ERROR")


def draw_weights(layout: Any, context: Any) -> None:
    """The checkpoint, its check, the licence, Download / Resume / Cancel, Use a File, the models folder."""
    state = weights_state(context)
    layout.prop(get_preferences(context), "checkpoint_path")
    row = layout.row()
    draw_status(row, state.status)
    if state.status.ok and state.path is not None:
        if state.validated is None:
            row.operator(weights.SHARP_OT_validate_checkpoint.bl_idname, icon="VIEWZOOM")
        else:
            draw_status(layout, state.validated)
    if state.running is not None:
        row = layout.row()
        row.progress(factor=state.fraction, type="BAR", text=state.running)
        row.operator(weights.SHARP_OT_cancel_weights_download.bl_idname, text="Cancel", icon="CANCEL")
    else:
        if state.outcome is not None:
            ok, text = state.outcome
            layout.label(text=text, icon="CHECKMARK" if ok else "INFO" if ok is None else "ERROR")
        if state.offer_download:
            draw_licence(layout, context)
        row = layout.row()
        if state.offer_download:
            sub = row.row()
            sub.enabled = state.online and state.licence_accepted
            sub.operator(weights.SHARP_OT_download_weights.bl_idname, text=state.download_label, icon="IMPORT")
        row.operator(weights.SHARP_OT_use_weights_file.bl_idname, text="Use a File…", icon="FILEBROWSER")
        if state.offer_download and not state.online:
            col = layout.column(align=True)
            col.label(text=f"Online access is off: turn it on in {ONLINE_SETTING}", icon="INTERNET_OFFLINE")
            col.label(text=f"or put {CHECKPOINT_NAME}, downloaded elsewhere, in the models folder", icon="BLANK1")
    row = layout.row()
    row.label(text=f"Models folder: {state.folder}", icon="FILE_FOLDER")
    row.operator("wm.path_open", text="Open", icon="FILEBROWSER").filepath = str(state.folder)


def draw_licence(layout: Any, context: Any) -> None:
    """Apple's licence of the weights in plain words, a link to it, and the box that accepts it."""
    box = layout.box()
    col = box.column(align=True)
    col.label(text="SHARP's weights are Apple's, under a research-only licence:", icon="INFO")
    col.label(text="not for use in a commercial product or service.", icon="BLANK1")
    row = box.row()
    row.prop(get_preferences(context), "accept_weights_licence", text=weights.ACCEPT_LABEL)
    row.operator("wm.url_open", text="Read the Licence", icon="URL").url = LICENCE_URL
