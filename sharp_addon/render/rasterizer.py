"""The exact 3DGS rasterizer in torch: projection, tile binning, sorted front-to-back compositing.

Any torch device, float32, no per-splat Python loop: all splats are projected at once, every
(splat, tile) pair of the splat's 3-sigma bounding box is listed, the pairs are sorted by
(tile, depth) with one argsort of a combined key, and tiles are composited in groups, splats in
chunks of ``CHUNK``, the transmittance of a chunk by one cumulative product. The maths is the
classic 3DGS (and gsplat's "classic" mode); ``render_gaussians`` in ``__init__`` documents it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..cameras import Camera
from ..errors import Cancelled
from ..gaussians import Gaussians

TILE = 8  # tile side in pixels: fewer idle pixels per pair than 16 for ~1 px splats (docs/notes/exact-render.md)
NEAR = 0.01  # metres: splats whose centre is nearer (camera z) are skipped
ALPHA_MAX = 0.99
ALPHA_MIN = 1.0 / 255.0
T_MIN = 1e-4  # a pixel stops taking splats before its transmittance would drop below this
EXTENT2 = 9.0  # squared Mahalanobis cut: 3 sigma
CHUNK = 32  # splats per tile composited at once
GROUP_ELEMENTS = 1 << 21  # tiles x CHUNK x pixels per step: bounds the working memory (8 MB a tensor)


def quat_to_rotation(q: torch.Tensor) -> torch.Tensor:
    """[N, 4] (w, x, y, z), normalised here -> [N, 3, 3]."""
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=1).reshape(-1, 3, 3)


def project(g: Gaussians, camera: Camera, eps2d: float, device: torch.device) -> dict[str, torch.Tensor]:
    """Screen-space splats: the kept indices, centre (u, v), conic (inverse 2D covariance), radius, depth."""
    f32 = torch.float32
    rot = torch.tensor(np.array(camera.rotation), dtype=f32, device=device)
    trans = torch.tensor(np.array(camera.world_to_camera[:3, 3]), dtype=f32, device=device)
    means = torch.as_tensor(g.means, device=device)
    p = means @ rot.T + trans
    z = p[:, 2]
    keep = (z > NEAR) & (torch.as_tensor(g.opacities, device=device) >= ALPHA_MIN)
    index = torch.nonzero(keep).squeeze(1)
    p, z = p[index], z[index]
    r = quat_to_rotation(torch.as_tensor(g.quats, device=device)[index])
    s2 = torch.as_tensor(g.scales, device=device)[index] ** 2
    m = rot @ r  # Gaussian axes -> camera frame
    cov = (m * s2[:, None, :]) @ m.transpose(1, 2)
    # EWA: the Jacobian at the centre, its x/z and y/z clamped a little outside the field of view
    tan_x, tan_y = 0.5 * camera.width / camera.fx, 0.5 * camera.height / camera.fy
    lim_x = ((camera.width - camera.cx) / camera.fx + 0.3 * tan_x, camera.cx / camera.fx + 0.3 * tan_x)
    lim_y = ((camera.height - camera.cy) / camera.fy + 0.3 * tan_y, camera.cy / camera.fy + 0.3 * tan_y)
    tx = z * torch.clamp(p[:, 0] / z, -lim_x[1], lim_x[0])
    ty = z * torch.clamp(p[:, 1] / z, -lim_y[1], lim_y[0])
    zero = torch.zeros_like(z)
    jac = torch.stack([camera.fx / z, zero, -camera.fx * tx / (z * z),
                       zero, camera.fy / z, -camera.fy * ty / (z * z)], dim=1).reshape(-1, 2, 3)
    cov2 = jac @ cov @ jac.transpose(1, 2)
    a, b, c = cov2[:, 0, 0] + eps2d, cov2[:, 0, 1], cov2[:, 1, 1] + eps2d
    det = a * c - b * b
    # the 3-sigma ellipse d^T S^-1 d <= 9 lies within |dx| <= 3 sqrt(S_xx), |dy| <= 3 sqrt(S_yy):
    # that box (inside 3DGS's square of radius ceil(3 sqrt(lambda_max))) decides the tiles
    extent = 3.0 * torch.sqrt(torch.clamp(torch.stack([a, c], dim=1), min=0.0))
    uv = torch.stack([camera.fx * p[:, 0] / z + camera.cx, camera.fy * p[:, 1] / z + camera.cy], dim=1)
    on_screen = ((det > 0) & (uv[:, 0] + extent[:, 0] > 0) & (uv[:, 0] - extent[:, 0] < camera.width)
                 & (uv[:, 1] + extent[:, 1] > 0) & (uv[:, 1] - extent[:, 1] < camera.height))
    sel = torch.nonzero(on_screen).squeeze(1)
    det = det[sel]
    conic = torch.stack([c[sel] / det, -b[sel] / det, a[sel] / det], dim=1)
    return {"index": index[sel], "uv": uv[sel], "conic": conic, "extent": extent[sel], "depth": z[sel]}


def bin_tiles(uv: torch.Tensor, extent: torch.Tensor, depth: torch.Tensor, tiles_x: int, tiles_y: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(splat of each sorted pair, pairs per tile, first pair of each tile): pairs sorted by tile, then depth."""
    lo = torch.floor((uv - extent - 0.5) / TILE)  # tiles holding a pixel centre within the extent
    hi = torch.floor((uv + extent - 0.5) / TILE) + 1
    x0, x1 = (torch.clamp(t[:, 0], 0, tiles_x).long() for t in (lo, hi))
    y0, y1 = (torch.clamp(t[:, 1], 0, tiles_y).long() for t in (lo, hi))
    span = x1 - x0
    per_splat = span * (y1 - y0)
    n = uv.shape[0]
    splat = torch.repeat_interleave(torch.arange(n, device=uv.device), per_splat)
    first = torch.cumsum(per_splat, 0) - per_splat
    local = torch.arange(splat.shape[0], device=uv.device) - first[splat]
    tile = (y0[splat] + local // span[splat]) * tiles_x + x0[splat] + local % span[splat]
    rank = torch.empty(n, dtype=torch.long, device=uv.device)
    rank[torch.argsort(depth, stable=True)] = torch.arange(n, device=uv.device)
    order = torch.argsort(tile * max(n, 1) + rank[splat])
    splat, tile = splat[order], tile[order]
    counts = torch.bincount(tile, minlength=tiles_x * tiles_y)
    return splat, counts, torch.cumsum(counts, 0) - counts


def render(g: Gaussians, camera: Camera, colors: np.ndarray, *, eps2d: float, device: str,
           background: tuple[float, float, float] | None,
           progress: Callable[[float], None] | None, cancel: Callable[[], bool] | None) -> np.ndarray:
    """(H, W, 4) float32 premultiplied linear RGBA; see ``render_gaussians``."""
    dev = torch.device(device)
    with torch.no_grad():
        return _render(g, camera, colors, eps2d, dev, background, progress, cancel)


def _render(g: Gaussians, camera: Camera, colors: np.ndarray, eps2d: float, dev: torch.device,
            background: Any, progress: Any, cancel: Any) -> np.ndarray:
    tiles_x, tiles_y = -(-camera.width // TILE), -(-camera.height // TILE)
    n_tiles = tiles_x * tiles_y
    s = project(g, camera, eps2d, dev)
    splat, counts, starts = bin_tiles(s["uv"], s["extent"], s["depth"], tiles_x, tiles_y)
    uv, conic = s["uv"], s["conic"]
    opacity = torch.as_tensor(g.opacities, device=dev)[s["index"]]
    color = torch.as_tensor(colors, dtype=torch.float32, device=dev)[s["index"]]
    # pixel centres of every tile, [n_tiles, 256]
    # per splat: the exponent's coefficients, -(A dx^2 + 2 B dx dy + C dy^2) / 2 with (A, B, C) the
    # conic, and the smallest alpha it may take: 1/255, and o exp(-9/2) at the 3-sigma cut
    coef = torch.stack([-0.5 * conic[:, 0], -conic[:, 1], -0.5 * conic[:, 2]], dim=1)
    floor = torch.clamp(opacity * float(np.exp(-0.5 * EXTENT2)), min=ALPHA_MIN)
    # a padding entry past the last splat: opacity 0, never taken
    coef, floor = torch.cat([coef, coef.new_zeros(1, 3)]), torch.cat([floor, floor.new_ones(1)])
    opacity, uv = torch.cat([opacity, opacity.new_zeros(1)]), torch.cat([uv, uv.new_zeros(1, 2)])
    color = torch.cat([color, color.new_zeros(1, 3)])
    splat = torch.cat([splat, splat.new_full((1,), uv.shape[0] - 1)])
    pad = splat.shape[0] - 1
    # pixel centres: a tile's columns and rows (the exponent separates into column and row terms)
    offsets = torch.arange(TILE, device=dev, dtype=torch.float32) + 0.5
    tile_ids = torch.arange(n_tiles, device=dev)
    origin = torch.stack([tile_ids % tiles_x, tile_ids // tiles_x], dim=1).float() * TILE
    transmittance = torch.ones(n_tiles, TILE * TILE, device=dev)
    rgb = torch.zeros(n_tiles, TILE * TILE, 3, device=dev)
    busy = torch.nonzero(counts > 0).squeeze(1)
    busy = busy[torch.argsort(counts[busy], descending=True)]  # groups of tiles with similar work
    group = max(1, GROUP_ELEMENTS // (CHUNK * TILE * TILE))
    steps = torch.arange(CHUNK, device=dev)
    done_pairs, total_pairs = 0, max(1, int(counts.sum()))
    for g0 in range(0, busy.shape[0], group):
        if cancel is not None and cancel():
            raise Cancelled("render cancelled")
        tiles = busy[g0:g0 + group]
        n, start = counts[tiles], starts[tiles]
        t_acc = transmittance[tiles]
        c_acc = rgb[tiles]
        alive = torch.ones_like(t_acc, dtype=torch.bool)
        tile_origin = origin[tiles]
        rows = torch.arange(tiles.shape[0], device=dev)
        for k in range(0, int(n.max()), CHUNK):
            j = k + steps
            pair = torch.where(j[None, :] < n[rows, None], start[rows, None] + j[None, :], pad)
            sp = splat[pair]  # [g, C]
            d = (tile_origin[rows, None, :] - uv[sp])[..., None] + offsets  # [g, C, 2, TILE]
            dx, dy = d[:, :, 0], d[:, :, 1]
            cf = coef[sp]
            row_term = (cf[..., 2, None] * dy * dy)[..., :, None]  # [g, C, TILE (y), 1]
            col_term = (cf[..., 0, None] * dx * dx)[..., None, :]  # [g, C, 1, TILE (x)]
            power = (cf[..., 1, None] * dy)[..., :, None] * dx[..., None, :]
            power = power.add_(row_term).add_(col_term).flatten(2)  # [g, C, TILE * TILE]
            alpha = power.exp_().mul_(opacity[sp][..., None])
            alpha = torch.where(alpha >= floor[sp][..., None], alpha.clamp_(max=ALPHA_MAX), 0.0)
            t0 = t_acc[rows]
            live = alive[rows]
            # transmittance after each splat; a pixel takes the splats before the first one that
            # would bring it below T_MIN (a prefix, as t_after only falls), then takes no more
            t_after = torch.cumprod(1 - alpha, dim=1).mul_(t0[:, None, :])
            taken = (t_after >= T_MIN).logical_and_(live[:, None, :])
            before = torch.cat([t0[:, None, :], t_after[:, :-1]], dim=1)
            weight = torch.where(taken, alpha.mul_(before), 0.0)
            c_acc[rows] += torch.bmm(weight.transpose(1, 2), color[sp])
            t_acc[rows] = torch.where(taken, t_after, t0[:, None, :]).amin(dim=1)
            alive[rows] = live & (t_after[:, -1] >= T_MIN)
            rows = rows[(n[rows] > k + CHUNK) & alive[rows].any(dim=1)]
            if rows.shape[0] == 0:
                break
        transmittance[tiles] = t_acc
        rgb[tiles] = c_acc
        done_pairs += int(n.sum())
        if progress is not None:
            progress(done_pairs / total_pairs)
    if progress is not None:
        progress(1.0)
    if background is not None:
        rgb += transmittance[..., None] * torch.as_tensor(background, dtype=torch.float32, device=dev)
    rgba = torch.cat([rgb, (1 - transmittance)[..., None]], dim=2)
    image = rgba.reshape(tiles_y, tiles_x, TILE, TILE, 4).permute(0, 2, 1, 3, 4)
    image = image.reshape(tiles_y * TILE, tiles_x * TILE, 4)[:camera.height, :camera.width]
    return image.cpu().numpy().astype(np.float32, copy=False)
