"""The int8 path of the ViT linears (bench/int8_quantization.py, bench only), on the tiny network.

The bounds are about three times what was measured on the parity image (docs/notes/int8.md:
positions 4.2e-3, linear colours 5.1e-3, opacities 3.0e-2 at most, absolute).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.builders import tiny_config, tiny_state_dict
from tests.support.parity import IMAGE

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="needs PyTorch, which this test environment does not have")


@pytest.fixture(scope="module")
def state_dict():
    return tiny_state_dict()


def linear_kinds(model) -> dict[str, str]:
    """Module name -> the qualified class of every linear layer (float or quantized: both are 'Linear')."""
    return {name: f"{type(m).__module__}.{type(m).__name__}" for name, m in model.named_modules()
            if "Linear" in type(m).__name__}


def test_only_the_vit_blocks_linears_become_int8(state_dict):
    from bench.int8_quantization import quantize_vit_linears
    from sharp_addon.api import load_predictor

    model = load_predictor(state_dict, device="cpu", precision="fp32").model
    before = linear_kinds(model)
    assert quantize_vit_linears(model) == 2 * tiny_config().vit.depth * 4  # two ViTs: qkv, proj, fc1, fc2
    after = linear_kinds(model)
    changed = {name for name in before if after[name] != before[name]}
    assert len(changed) == 2 * tiny_config().vit.depth * 4
    assert all(".blocks." in name and name.split(".")[-1] in ("qkv", "proj", "fc1", "fc2") for name in changed)
    assert all(after[name].startswith("torch.ao.nn.quantized.dynamic") for name in changed)
    untouched = set(before) - changed
    assert untouched and all(type(model.get_submodule(n)) is torch.nn.Linear for n in untouched)  # e.g. the heads
    weight = model.get_submodule(sorted(changed)[0]).weight()
    assert weight.dtype == torch.qint8 and weight.qscheme() == torch.per_channel_affine


@pytest.mark.slow
def test_the_int8_network_stays_close_to_float32_on_the_parity_image(state_dict):
    from bench.int8_quantization import quantize_vit_linears
    from sharp_addon.api import load_predictor

    reference = load_predictor(state_dict, device="cpu", precision="fp32")
    quantized = load_predictor(state_dict, device="cpu", precision="fp32")
    quantize_vit_linears(quantized.model)
    a, b = reference.predict(IMAGE), quantized.predict(IMAGE)
    errors = {k: float(np.abs(getattr(a, k) - getattr(b, k)).max()) for k in ("means", "colors", "opacities")}
    assert errors["means"] < 0.015 and errors["colors"] < 0.02 and errors["opacities"] < 0.1, errors
    assert min(errors.values()) > 0, errors  # it did run in int8: not a float32 copy
    assert np.isfinite(b.means).all() and len(b) == len(a)


def test_int8_is_refused_off_the_cpu_and_on_a_non_float32_network(state_dict):
    from bench.int8_quantization import quantize_vit_linears
    from sharp_addon.api import load_predictor
    from sharp_addon.errors import SharpError

    model = load_predictor(state_dict, device="cpu", precision="fp32").model
    before = linear_kinds(model)
    for device in ("cuda", torch.device("mps")):
        with pytest.raises(SharpError, match="int8 runs on the CPU only"):
            quantize_vit_linears(model, device)
    half = load_predictor(state_dict, device="cpu", precision="bf16").model
    with pytest.raises(SharpError, match=r"quantizes a float32 network; this one is torch\.bfloat16"):
        quantize_vit_linears(half)
    assert linear_kinds(model) == before and all(type(m) is torch.nn.Linear for m in half.modules()
                                                if "Linear" in type(m).__name__)
