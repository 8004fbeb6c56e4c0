"""Our implementation as the parity kit's candidate: ``check_parity.py tests.parity_candidate:candidate``.

``candidate(state_dict, image_uint8_HxWx3, f_px) -> dict`` of full tensors named as in
``../shared/parity/parity_common.py``; fp32 on the CPU, with every intermediate the kit knows.
"""

from __future__ import annotations

import os

import numpy as np

from sharp_addon import ply
from sharp_addon.api import load_predictor


def candidate(state_dict, image, f_px) -> dict:
    predictor = load_predictor(state_dict, device="cpu", precision=os.environ.get("SHARP_PARITY_PRECISION", "fp32"))
    state_dict.clear()  # the network holds what it needs; the caller keeps no other reference
    captured: dict = {}
    g = predictor.predict(image, focal_px=f_px, capture=captured)
    out = {k: np.asarray(v) for k, v in captured.items()}
    out.update(mean=g.means, scales=g.scales, quaternions=g.quats, colors=g.colors, opacities=g.opacities)
    out["ply_bytes"] = np.frombuffer(ply.encode(g, "sharp"), dtype=np.uint8)
    return out
