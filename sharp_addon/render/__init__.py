"""The exact 3DGS render of Gaussians from a pinhole camera, the image a 3DGS viewer shows.

Imports without torch: the backends (``rasterizer``: ours, torch on any device; ``gsplat_backend``:
gsplat on CUDA) are imported on first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..cameras import Camera
from ..devices import require_torch
from ..errors import DependencyError, SharpError
from ..gaussians import Gaussians
from .colors import view_colors

BACKENDS = ("auto", "torch", "gsplat")


def render_gaussians(gaussians: Gaussians, camera: Camera, *, eps2d: float = 0.0, backend: str = "auto",
                     device: str = "cpu", background: tuple[float, float, float] | None = None,
                     progress: Callable[[float], None] | None = None,
                     cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """(H, W, 4) float32 linear RGBA, premultiplied: rgb = sum c_i a_i T_i, alpha = 1 - T_final.

    Classic 3DGS (what SHARP's own renderer computes with gsplat): splats whose centre lies
    nearer than 0.01 m (camera z) are skipped; the covariance R diag(s^2) R^T is moved into the
    camera frame and projected with the perspective Jacobian at the centre (its x/z, y/z clamped
    to 1.3 x the tangent of the half field of view), plus ``eps2d`` px^2 on the diagonal (0.3 for
    INRIA-style scenes); at pixel centres (i + 0.5, j + 0.5) alpha = min(0.99, o exp(-d^T S^-1 d / 2)),
    taken only within 3 sigma and where alpha >= 1/255; splats are blended front to back by
    camera depth and a pixel stops before its transmittance would fall below 1e-4. Colours are
    ``colors.view_colors``'s (SH for the view direction when the splats have it). ``background``
    is composited under (rgb += T bg), alpha unchanged.

    ``backend`` "auto" takes gsplat on a CUDA device when it is importable, else "torch";
    ``progress`` gets fractions in [0, 1]; ``cancel`` returning True raises ``Cancelled``.
    """
    if not isinstance(camera, Camera):
        raise SharpError(f"camera must be a sharp_addon.cameras.Camera; got {type(camera).__name__}")
    if backend not in BACKENDS:
        raise SharpError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if not (isinstance(eps2d, (int, float)) and math.isfinite(eps2d) and eps2d >= 0):
        raise SharpError(f"eps2d must be a finite number of px^2 >= 0; got {eps2d!r}")
    if background is not None:
        bg = tuple(float(v) for v in background)
        if len(bg) != 3 or not all(math.isfinite(v) for v in bg):
            raise SharpError(f"background must be three finite linear RGB values; got {background!r}")
        background = (bg[0], bg[1], bg[2])
    require_torch_for_render()
    colors = view_colors(gaussians, camera.position)
    from . import gsplat_backend

    if backend == "auto":
        backend = "gsplat" if gsplat_backend.unavailable(device) is None else "torch"
    if backend == "gsplat":
        return gsplat_backend.render(gaussians, camera, colors, eps2d=float(eps2d), device=device,
                                     background=background)
    from . import rasterizer

    return rasterizer.render(gaussians, camera, colors, eps2d=float(eps2d), device=device,
                             background=background, progress=progress, cancel=cancel)


def require_torch_for_render() -> None:
    """``DependencyError`` saying that the exact render needs PyTorch, when it is missing."""
    try:
        require_torch()
    except DependencyError:
        raise DependencyError("PyTorch is needed for the exact render and cannot be imported") from None
