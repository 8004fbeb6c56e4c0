"""Our implementation as the parity candidate:
``python -m tests.support.parity tests.support.parity_candidate:candidate``.

``candidate(state_dict, image_uint8_HxWx3, f_px) -> dict`` of full tensors named as in
``tests/support/parity.py`` (``QUANTITIES``); fp32 on the CPU, with every intermediate the golden file
holds. The network's intermediates come from a capturing ``Monitor`` passed to
``Predictor.network_output``, the pipeline step before unprojection. The original parity kit's
checker (``check_parity.py``, not part of this repository) takes the same function.

With ``SHARP_PARITY_OUTPUTS=DIR`` the first call saves its outputs there (one ``.npy`` each) and later
calls, in any process, read them back instead of running the network again: the two checkers of
``tests/core/test_parity.py`` judge one forward pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sharp_addon import ply
from sharp_addon.api import load_predictor
from sharp_addon.gaussians import unproject
from sharp_addon.image import load_photo
from sharp_addon.model.monitor import Monitor


def candidate(state_dict, image, f_px) -> dict:
    run = candidate_on("cpu", os.environ.get("SHARP_PARITY_PRECISION", "fp32"))
    saved = os.environ.get("SHARP_PARITY_OUTPUTS")
    if not saved:
        return run(state_dict, image, f_px)
    folder, done = Path(saved), Path(saved) / "complete"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name, value in run(state_dict, image, f_px).items():
            np.save(folder / f"{name}.npy", value)
        done.touch()
    state_dict.clear()
    return {f.stem: np.load(f, mmap_mode="r") for f in folder.glob("*.npy")}


def candidate_on(device: str, precision: str = "fp32"):
    """The candidate running on another device or precision (bench/gpu.py runs parity on a GPU)."""
    return lambda state_dict, image, f_px: _outputs(state_dict, image, f_px, device, precision)


def _outputs(state_dict, image, f_px, device: str, precision: str) -> dict:
    predictor = load_predictor(state_dict, device=device, precision=precision)
    state_dict.clear()  # the network holds what it needs; the caller keeps no other reference
    captured: dict = {}
    photo = load_photo(image, focal_px=f_px)
    normalised = predictor.network_output(photo, Monitor(capture=captured))
    g = unproject(**normalised, focal_px=photo.focal_px, size_wh=photo.size_wh,
                  layer_count=predictor.model.cfg.depth_layers)
    out = {k: np.asarray(v) for k, v in captured.items()}
    out.update(ndc_mean=normalised["means"], ndc_scales=normalised["scales"], ndc_quaternions=normalised["quats"],
               disparity_factor=np.float64(photo.focal_px / photo.size_wh[0]))
    out.update(mean=g.means, scales=g.scales, quaternions=g.quats, colors=g.colors, opacities=g.opacities)
    out["ply_bytes"] = np.frombuffer(ply.encode(g, "sharp"), dtype=np.uint8)
    return out
