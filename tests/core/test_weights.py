"""The synthetic weight rule (tests/support/synthetic_weights.py) reproduces the reference's weights bit for bit."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.support.synthetic_weights import (
    GOLDEN,
    crc32,
    fan_in,
    official_shapes,
    synthetic_state_dict,
    synthetic_tensor,
)

QKV = "monodepth_model.monodepth_predictor.encoder.patch_encoder.blocks.0.attn.qkv.weight"


@pytest.fixture(scope="module")
def golden():
    return np.load(GOLDEN)


@pytest.mark.slow
def test_every_official_tensor_has_the_golden_crc32(golden):
    shapes = official_shapes()
    keys = [str(k) for k in golden["meta__weight_keys"]]
    assert list(shapes) == keys and len(keys) == 1038
    assert str(golden["meta__weight_rule"]) == "sharp-parity-weights-v1"
    start = time.perf_counter()
    wrong = [k for k, expected in zip(keys, golden["meta__weight_crc32"])
             if crc32(synthetic_tensor(k, shapes[k])) != int(expected)]
    seconds = time.perf_counter() - start
    assert not wrong, f"{len(wrong)} of 1038 tensors differ from the reference's, e.g. {wrong[:3]}"
    assert seconds < 60, f"the 702 M parameters took {seconds:.0f} s"


def test_the_specification_example_values_and_sums(golden):
    first = synthetic_tensor(QKV, (3072, 1024)).ravel()[:4]
    # as the specification prints them, to 8 decimals
    np.testing.assert_allclose(first, [0.04240492, 0.02052044, -0.05115185, 0.02650996], rtol=0, atol=5e-9)
    sums = dict(zip((str(k) for k in golden["meta__weight_keys"]), golden["meta__weight_sum"]))
    shapes = official_shapes()
    head = "monodepth_model.monodepth_predictor.head.4.bias"
    for key in (QKV, head, "prediction_head.geometry_prediction_head.weight"):
        total = float(synthetic_tensor(key, shapes[key]).sum(dtype=np.float64))
        assert total == pytest.approx(sums[key], rel=1e-9, abs=1e-9), key


def test_values_follow_the_per_kind_mean_and_std():
    shapes = official_shapes()
    head_bias = synthetic_tensor("monodepth_model.monodepth_predictor.head.4.bias", shapes[
        "monodepth_model.monodepth_predictor.head.4.bias"])
    assert np.all(np.abs(head_bias - 3.0) <= 0.1 * np.sqrt(3) + 1e-6)  # keeps the disparity positive
    gamma = synthetic_tensor("monodepth_model.monodepth_predictor.encoder.patch_encoder.blocks.0.ls1.gamma", (1024,))
    assert abs(float(gamma.mean()) - 0.2) < 0.01 and abs(float(gamma.std()) - 0.05) < 0.005
    qkv = synthetic_tensor(QKV, (3072, 1024))
    assert abs(float(qkv.std()) - 1 / 32) < 1e-4 and abs(float(qkv.mean())) < 1e-4
    assert float(np.abs(qkv).max()) < np.sqrt(3) / 32


def test_transposed_convolutions_take_their_fan_in_from_the_first_axis():
    from pathlib import Path

    from tests.support.synthetic_weights import STATE_DICT_TSV

    rows = [line.split("\t") for line in Path(STATE_DICT_TSV).read_text().splitlines() if not line.startswith("#")]
    columns = rows[0]
    transposed = {r[columns.index("key")] for r in rows[1:] if r[columns.index("module_type")] == "ConvTranspose2d"
                  and r[columns.index("key")].endswith(".weight")}
    assert len(transposed) == 18
    shapes = official_shapes()
    for key, shape in shapes.items():
        if key.endswith(".weight") and len(shape) == 4:
            assert fan_in(key, shape) == (shape[0] if key in transposed else int(np.prod(shape[1:]))), key


def test_values_do_not_depend_on_order_or_on_the_chunking():
    import tests.support.synthetic_weights as w

    shapes = {"a.bias": (5,), "b.weight": (3, 70_001), "c.norm.weight": (7,)}
    forward = synthetic_state_dict(shapes, as_torch=False)
    backward = synthetic_state_dict(dict(reversed(shapes.items())), as_torch=False)
    chunk = w._CHUNK
    try:
        w._CHUNK = 1000  # a tensor spread over many chunks, the last one partial
        small_chunks = synthetic_tensor("b.weight", (3, 70_001))
    finally:
        w._CHUNK = chunk
    for key in shapes:
        np.testing.assert_array_equal(forward[key], backward[key])
    np.testing.assert_array_equal(small_chunks, forward["b.weight"])
    assert list(forward) == list(shapes) and forward["b.weight"].dtype == np.float32
