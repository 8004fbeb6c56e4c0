"""The exact render through gsplat (CUDA only), called in the conventions of SHARP's own renderer.

gsplat's ``rasterization`` in "classic" mode with ``packed=False`` computes the same 3DGS image as
``rasterizer.py``: viewmats are our world_to_camera, Ks our intrinsics, the same near plane and
eps2d. Colours are passed already evaluated per splat (``colors.view_colors``, sh_degree None),
because an sRGB-encoded file's SH must be decoded to linear per splat, before blending.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cameras import Camera
from ..devices import require_torch
from ..errors import DependencyError
from ..gaussians import Gaussians
from .rasterizer import NEAR


def unavailable(device: str) -> str | None:
    """Why gsplat cannot render on ``device`` here, or None when it can."""
    if not device.lower().startswith("cuda"):
        return f"gsplat renders on CUDA only; the device is {device!r}"
    torch = require_torch()
    if not torch.cuda.is_available():
        return "gsplat needs a CUDA GPU and PyTorch sees none"
    try:
        import gsplat  # type: ignore[import-not-found]  # noqa: F401
    except Exception as e:  # an import can fail in many ways (missing, no compiled kernels)
        return f"gsplat cannot be imported ({type(e).__name__}: {e})"
    return None


def render(g: Gaussians, camera: Camera, colors: np.ndarray, *, eps2d: float, device: str,
           background: tuple[float, float, float] | None) -> np.ndarray:
    """(H, W, 4) float32 premultiplied linear RGBA, as ``rasterizer.render``."""
    reason = unavailable(device)
    if reason is not None:
        raise DependencyError(f"backend 'gsplat' cannot be used: {reason}")
    torch = require_torch()
    import gsplat

    dev = torch.device(device)

    def tensor(a: Any) -> Any:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=dev)

    with torch.no_grad():
        rgb, alpha, _ = gsplat.rasterization(
            means=tensor(g.means), quats=tensor(g.quats), scales=tensor(g.scales),
            opacities=tensor(g.opacities), colors=tensor(colors),
            viewmats=tensor(camera.world_to_camera)[None], Ks=tensor(camera.intrinsics)[None],
            width=camera.width, height=camera.height, near_plane=NEAR, eps2d=eps2d, packed=False,
            rasterize_mode="classic", sh_degree=None, render_mode="RGB",
            backgrounds=None if background is None else tensor(background)[None],
        )
    image = torch.cat([rgb[0], alpha[0]], dim=-1)
    return image.cpu().numpy().astype(np.float32, copy=False)
