"""The last SHARP result, kept so the redo panel rebuilds the scene without running SHARP again.

Blender's redo panel re-runs an operator when only a display option changed; ``recall`` then gives
the splats of the same photo with the same inference settings. A photo is the same while its
file is (``files.file_key``: path, size, modification time). One result (66 MB at full size).
"""

from __future__ import annotations

from ..files import file_key
from ..gaussians import Gaussians
from ..worker import PredictRequest

_last: tuple[tuple, Gaussians] | None = None


def request_key(request: PredictRequest) -> tuple:
    """What decides a result: the image file as it is now and every inference setting."""
    return (file_key(request.image), request.checkpoint, request.device, request.precision, request.focal_35mm)


def remember(request: PredictRequest, gaussians: Gaussians) -> None:
    global _last
    try:
        _last = (request_key(request), gaussians)
    except OSError:  # the photo is gone: nothing to key it by
        _last = None


def recall(request: PredictRequest) -> Gaussians | None:
    """The remembered result if ``request`` would compute the same thing."""
    try:
        return _last[1] if _last is not None and _last[0] == request_key(request) else None
    except OSError:
        return None


def forget() -> None:
    global _last
    _last = None
