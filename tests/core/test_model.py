"""The SHARP network: every checkpoint key and shape, and a tiny configuration end to end."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.builders import tiny_state_dict
from tests.support.synthetic_weights import official_shapes

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="needs PyTorch, which this test environment does not have")


def test_full_size_network_declares_exactly_the_official_keys_and_shapes():
    from sharp_addon.model.checkpoint import expected_shapes
    from sharp_addon.model.config import SharpConfig
    from sharp_addon.model.predictor import SharpPredictor
    from sharp_addon.model.training_only import is_training_only

    official = official_shapes()  # tests/data/state-dict.tsv, listed from the reference's own model
    assert len(official) == 1038
    assert SharpConfig.from_shapes(official) == SharpConfig()
    assert expected_shapes(SharpConfig()) == official
    # a strict load of a zero-filled state dict of those shapes (assigned, so no copy is made)
    with torch.device("meta"):
        model = SharpPredictor(SharpConfig())
    zeros = {k: torch.zeros(shape) for k, shape in official.items()}
    result = model.load_state_dict(zeros, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert sum(p.numel() for p in model.parameters()) == 702_305_169
    training_only = sum(v.numel() for k, v in zeros.items() if is_training_only(k))
    # two 1024 -> 21841 classifiers, the alignment UNet and each decoder's coarsest skip unit
    # (docs/model.md, "Module tree and state-dict prefixes")
    assert training_only == 2 * 21841 * 1025 + 2_015_281 + 1_180_160 + 295_168


@pytest.mark.slow
def test_tiny_predictor_makes_finite_gaussians_deterministically():
    from sharp_addon.api import load_predictor

    predictor = load_predictor(tiny_state_dict(), device="cpu")
    image = np.random.default_rng(0).integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    g = predictor.predict(image)
    assert len(g) == 2 * 256 * 256
    assert g.image_size == (80, 60) and g.focal_px == pytest.approx(30 * 100 / np.hypot(36, 24))
    assert np.all(g.means[:, 2] > 0) and np.all(g.scales > 0)
    np.testing.assert_allclose(np.linalg.norm(g.quats, axis=1), 1, atol=1e-5)
    assert np.all(g.scales[:, 0] >= g.scales[:, 1]) and np.all(g.scales[:, 1] >= g.scales[:, 2])
    again = predictor.predict(image)
    np.testing.assert_array_equal(again.means, g.means)


def test_progress_reports_stages_in_order_and_cancel_stops_promptly():
    from sharp_addon.api import load_predictor
    from sharp_addon.errors import Cancelled

    predictor = load_predictor(tiny_state_dict(), device="cpu")
    image = np.zeros((32, 32, 3), np.uint8)
    seen = []
    predictor.predict(image, progress=lambda stage, fraction: seen.append((stage, fraction)))
    stages = [s for s, _ in seen]
    assert stages[0] == "prepare" and stages[-1] == "done"
    assert stages.index("encoder") < stages.index("depth") < stages.index("gaussians") < stages.index("unproject")
    encoder = [f for s, f in seen if s == "encoder"]
    assert encoder == sorted(encoder) and encoder[-1] == 1.0

    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) >= 3  # stop inside the encoder

    with pytest.raises(Cancelled, match="cancelled"):
        predictor.predict(image, progress=lambda s, f: None, cancel=cancel)
    assert len(calls) == 3


@pytest.mark.slow
def test_bf16_on_cpu_stays_close_to_fp32():
    from sharp_addon.api import load_predictor

    sd = tiny_state_dict()
    image = np.random.default_rng(1).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    ref = load_predictor(sd, device="cpu", precision="fp32").predict(image)
    half = load_predictor(sd, device="cpu", precision="bf16")
    assert half.dtype == torch.bfloat16
    low = half.predict(image)
    rel = np.linalg.norm(low.means - ref.means, axis=1) / np.linalg.norm(ref.means, axis=1)
    assert float(np.median(rel)) < 0.05
    assert float(np.abs(low.colors - ref.colors).mean()) < 0.02


@pytest.mark.slow
def test_row_strips_and_patch_chunks_give_the_bits_of_whole_maps():
    """Both follow the free memory, so a run must not depend on them (docs/notes/determinism.md)."""
    from sharp_addon.api import load_predictor

    model = load_predictor(tiny_state_dict(), device="cpu", precision="fp32").model
    size = model.cfg.internal_size
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole = model(image, 0.8, strip_bytes=2**62)
        banded = model(image, 0.8, strip_bytes=1)  # the smallest strips: 8 rows plus halos
        fewer = model(image, 0.8, patch_chunk=4)
    # bit for bit: a halo too small would break the rows at every strip border, and GroupNorm
    # statistics summed per strip would change the last bits everywhere
    for name in ("means", "scales", "quats", "colors", "opacities"):
        torch.testing.assert_close(getattr(banded, name), getattr(whole, name), rtol=0, atol=0)
        torch.testing.assert_close(getattr(fewer, name), getattr(whole, name), rtol=0, atol=0)


def test_strips_cover_every_row_once_with_their_halos():
    from sharp_addon.model.strips import strip_rows, strips

    bands = list(strips(100, 24, 8))
    assert [(b.top, b.bottom) for b in bands] == [(0, 24), (24, 48), (48, 72), (72, 96), (96, 100)]
    assert [(b.start, b.stop) for b in bands] == [(0, 32), (16, 56), (40, 80), (64, 100), (88, 100)]
    assert bands[1].crop(2) == slice(16, 64) and bands[1].rows(2) == slice(48, 96)
    assert bands[1].window(2) == slice(8, 28) and bands[1].window(scale=2) == slice(32, 112)
    assert strip_rows(row_bytes=10, budget_bytes=1000, height=768, halo=8) == 84
    assert strip_rows(row_bytes=10, budget_bytes=10, height=768, halo=8) == 8
