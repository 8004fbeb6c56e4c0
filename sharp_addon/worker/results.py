"""The files a worker's results travel in: splats as an uncompressed .npz, rendered frames as .npy.

No bpy, no torch. An uncompressed .npz (66 MB for 1.18 M splats) is faster than any pipe encoding;
every file is written whole under another name and renamed, so a reader never sees half of one
(a cancel kills the worker mid-write).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_output
from ..gaussians import Gaussians

ARRAYS = ("means", "scales", "quats", "colors", "opacities")


def save_result(g: Gaussians, path: Path) -> None:
    """``g`` as an .npz at ``path``, complete under its name or not there at all."""
    extra: dict[str, Any] = {"color_space": np.array(g.color_space)}
    if g.focal_px is not None:
        extra["focal_px"] = np.array(g.focal_px)
    if g.image_size is not None:
        extra["image_size"] = np.array(g.image_size)
    if g.layers is not None:
        extra["layers"] = g.layers
    if g.sh_rest is not None:
        extra["sh_rest"] = g.sh_rest
    with atomic_output(path, temp=path.with_suffix(".partial.npz")) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: getattr(g, k) for k in ARRAYS}, **extra)


def load_result(path: Path) -> Gaussians:
    """The splats ``save_result`` wrote."""
    with np.load(path, allow_pickle=False) as data:
        return Gaussians(
            **{k: data[k] for k in ARRAYS},
            focal_px=float(data["focal_px"]) if "focal_px" in data else None,
            image_size=tuple(int(v) for v in data["image_size"]) if "image_size" in data else None,  # type: ignore[arg-type]
            color_space=str(data["color_space"]),
            layers=data["layers"] if "layers" in data else None,
            sh_rest=data["sh_rest"] if "sh_rest" in data else None,
        )


def partial_frame_path(path: Path) -> Path:
    """Where ``save_frame`` writes a frame before it is whole (a cancel may kill it mid-write)."""
    return path.with_name(f".{path.name}.partial")


def save_frame(image: np.ndarray, path: Path) -> None:
    """One frame's (H, W, 4) float32 image as .npy, complete under its name or not there at all."""
    with atomic_output(path, temp=partial_frame_path(path)) as tmp, open(tmp, "wb") as f:
        np.save(f, image, allow_pickle=False)
