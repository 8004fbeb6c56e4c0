"""What the inference needs and whether it is here: torch and the SHARP checkpoint.

No bpy, and torch is never imported here (importing it takes seconds and is only done where
inference starts); the checks are cheap enough for a preferences panel that redraws often.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .files import FileKey, file_key, size_text

CHECKPOINT_NAME = "sharp_2572gikvuh.pt"
CHECKPOINT_URL = "https://ml-site.cdn-apple.com/models/sharp/sharp_2572gikvuh.pt"
CHECKPOINT_BYTES_MIN = 2_700_000_000  # the official file holds 2.81 GB of float32 weights
ENV_CHECKPOINT = "SHARP_CHECKPOINT"  # environment variable naming a checkpoint file
ENV_MODELS = "SHARP_MODELS_DIR"  # a folder the checkpoint is downloaded to and looked for in (Blender sets it)
# The weights are Apple's and come under their own licence (ml-sharp's LICENSE_MODEL): a user accepts it
# before the first download request (the preferences remember it; --accept-licence on the command line).
LICENCE_URL = "https://github.com/apple/ml-sharp/blob/main/LICENSE_MODEL"
LICENCE_NOTICE = ("SHARP's weights are Apple's, licensed under the Apple Machine Learning Research Model License "
                  "Agreement: for non-commercial research only, not for use in a commercial product or service")


@dataclass(frozen=True)
class Status:
    """Whether one requirement is met, and a one-line explanation for the user."""

    ok: bool
    message: str


def torch_status() -> Status:
    """Is torch importable, and which version (read from package metadata, not imported)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):  # a broken or blocked installation counts as absent
        spec = None
    if spec is None:
        return Status(False, "PyTorch is not installed: install the extension build that bundles it, "
                      "or run Blender's Python with 'pip install torch'")
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown version"
    return Status(True, f"PyTorch {version}")


def models_folder() -> Path | None:
    """``$SHARP_MODELS_DIR``: where ``download`` saves the weights and where they are looked for.

    Inside Blender the add-on sets it (unless it is set already) to the extension's own user folder,
    which survives updates of the extension; elsewhere it is unset unless the user sets it.
    """
    folder = os.environ.get(ENV_MODELS)
    return Path(folder).expanduser() if folder else None


def hub_checkpoint_path() -> Path:
    """The file in the torch hub cache, where Apple's ml-sharp CLI downloads the weights to."""
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser()
    return hub / "hub" / "checkpoints" / CHECKPOINT_NAME


def download_target() -> Path:
    """Where ``python -m sharp_addon download`` puts the official file when not told: the models
    folder when there is one, else the torch hub cache (both are looked in by ``find_checkpoint``)."""
    folder = models_folder()
    return folder / CHECKPOINT_NAME if folder is not None else hub_checkpoint_path()


def default_checkpoint_paths(models: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where a checkpoint is looked for when none is named, first match wins.

    ``$SHARP_CHECKPOINT``, then the official file in the models folder (``models``, default
    ``$SHARP_MODELS_DIR``), then the torch hub cache that ml-sharp's own CLI downloads to (last).
    """
    paths = []
    if os.environ.get(ENV_CHECKPOINT):
        paths.append(Path(os.environ[ENV_CHECKPOINT]).expanduser())
    folder = Path(models).expanduser() if models else models_folder()
    if folder is not None:
        paths.append(folder / CHECKPOINT_NAME)
    paths.append(hub_checkpoint_path())
    return paths


def find_checkpoint(explicit: str | os.PathLike[str] | None = None,
                    models: str | os.PathLike[str] | None = None) -> Path | None:
    """The named checkpoint if given (even when missing, so errors name it), else the first default found
    (``models``: the models folder to look in, default ``$SHARP_MODELS_DIR``)."""
    if explicit:
        return Path(explicit).expanduser()
    return next((p for p in default_checkpoint_paths(models) if p.is_file()), None)


def checkpoint_status(path: str | os.PathLike[str] | None) -> Status:
    """Found, size, and whether the size is plausible; loading the file is what proves it valid."""
    if not path:
        return Status(False, f"No checkpoint set: download {CHECKPOINT_NAME} from {CHECKPOINT_URL} "
                      "('python -m sharp_addon download', or Download SHARP Weights in the add-on's preferences)")
    p = Path(path).expanduser()
    if not p.exists():
        return Status(False, f"Checkpoint not found: {p}")
    if not p.is_file():
        return Status(False, f"Checkpoint is not a file: {p}")
    size = p.stat().st_size
    text = size_text(size)
    if p.name == CHECKPOINT_NAME and size < CHECKPOINT_BYTES_MIN:
        return Status(False, f"Checkpoint looks truncated ({text}, the official file is 2.81 GB): {p}")
    return Status(True, f"Checkpoint found ({text}): {p}")


# ---- what was checked --------------------------------------------------------------------------------

_checks: dict[FileKey, Status] = {}  # checkpoint files checked in full (keys and shapes, or a download's check)


def remember_check(path: str | os.PathLike[str], status: Status) -> None:
    """Remember how the check of this exact file (path, size, time) came out."""
    try:
        _checks[file_key(path)] = status
    except OSError:  # gone already: nothing to remember it by
        pass


def last_check(path: str | os.PathLike[str]) -> Status | None:
    """How the last check of this exact file came out, if it was checked (an edited file is not the same)."""
    try:
        return _checks.get(file_key(path))
    except OSError:
        return None
