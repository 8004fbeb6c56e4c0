"""SHARP: one image to 2 x 768 x 768 Gaussians (the whole network, wired as the checkpoint is).

No bpy. ``SharpPredictor.forward`` is network maths on the 1536-px tensor; loading, resizing and
unprojection live in ``api.py``.

    image [0,1] --2x-1--> depth network ------------> disparity --f/W / d--> depth (metric)
                            | encoder maps (5)                                  |
                            v                                                   v
                    Gaussian decoder <--- feature input (image, 1/depth_n) --- initializer
                            |                                                   | base Gaussians
                            v                                                   v
                    prediction head ------------- deltas ---------------> composer --> Gaussians
"""

from __future__ import annotations

import torch
from torch import nn

from .composer import ComposedGaussians, compose, initialize, metric_depth
from .config import SharpConfig
from .depth import DepthAlignment, MonodepthModel
from .gaussian_decoder import DirectPredictionHead, GaussianDensePredictionTransformer
from .monitor import NULL_MONITOR, Monitor


class SharpPredictor(nn.Module):
    def __init__(self, cfg: SharpConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.monodepth_model = MonodepthModel(cfg)
        self.feature_model = GaussianDensePredictionTransformer(cfg)
        self.prediction_head = DirectPredictionHead(cfg)
        self.depth_alignment = DepthAlignment()

    def forward(
        self, image01: torch.Tensor, disparity_factor: float, monitor: Monitor = NULL_MONITOR,
        patch_chunk: int = 35, strip_bytes: float = 2**62,
    ) -> ComposedGaussians:  # image [1, 3, S, S] in [0, 1], S = cfg.internal_size
        """Gaussians in normalised space (times the global scale) for one image; batch size 1.

        ``patch_chunk``: how many of the 35 encoder patches run through the ViT at once;
        ``strip_bytes``: about how much memory a row strip of the full-resolution levels may use.
        """
        dtype = next(self.feature_model.parameters()).dtype
        image = image01.to(dtype)
        disparity, features = self.monodepth_model.monodepth_predictor(
            image * 2 - 1, monitor, patch_chunk, strip_bytes
        )
        monitor.keep("mono_disparity", disparity[0])
        depth = metric_depth(disparity, disparity_factor)
        del disparity
        monitor.keep("depth", depth[0])
        base = initialize(image01, depth)
        del depth
        monitor.keep("global_scale", torch.tensor(base.global_scale))
        monitor.keep("init_feature_input", base.feature_input[0])
        monitor.keep("base_disparity", base.disparity[None])
        monitor.keep("base_scales", base.scales[None])
        monitor.keep("base_colors", base.colors[:, None].expand(-1, self.cfg.depth_layers, -1, -1))
        feature_input = base.feature_input.to(dtype).contiguous(memory_format=torch.channels_last)
        texture, geometry = self.feature_model(feature_input, features, monitor, strip_bytes)
        del feature_input
        del features
        monitor.keep("gdec_texture_features", texture[0])
        monitor.keep("gdec_geometry_features", geometry[0])
        monitor.step("gaussians", 0.5)
        delta = self.prediction_head(texture, geometry)
        monitor.keep("delta", delta)
        composed = compose(base, delta)
        monitor.step("gaussians", 1.0)
        return composed
