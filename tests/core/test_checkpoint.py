"""Checkpoint loading: the same path for a tiny file as for the official one, and every bad file."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.builders import tiny_config, tiny_state_dict

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="needs PyTorch, which this test environment does not have")


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(tiny_state_dict(), path)
    return path


def test_a_checkpoint_file_loads_with_its_own_configuration(tiny_file):
    from sharp_addon.api import load_predictor

    predictor = load_predictor(tiny_file, device="cpu", precision="fp32")
    assert predictor.model.cfg == tiny_config()
    assert predictor.source == str(tiny_file)
    # unused tensors are checked but never materialised
    heads = predictor.model.monodepth_model.monodepth_predictor.encoder.patch_encoder.head.weight
    assert heads.device.type == "meta"
    assert predictor.model.depth_alignment.scale_map_estimator.conv_out.weight.device.type == "meta"
    used = predictor.model.feature_model.fusion.out_conv.weight
    assert used.device.type == "cpu" and used.dtype == torch.float32


def test_precision_casts_once(tiny_file):
    from sharp_addon.api import load_predictor

    predictor = load_predictor(tiny_file, device="cpu", precision="bf16")
    dtypes = {p.dtype for p in predictor.model.parameters() if p.device.type != "meta"}
    assert dtypes == {torch.bfloat16}


def error_of(checkpoint):
    from sharp_addon.api import load_predictor
    from sharp_addon.errors import CheckpointError

    with pytest.raises(CheckpointError) as info:
        load_predictor(checkpoint, device="cpu")
    return str(info.value)


def test_missing_and_wrong_files(tmp_path, tiny_file):
    assert error_of(tmp_path / "none.pt") == f"checkpoint '{tmp_path / 'none.pt'}': no such file"
    assert error_of(tmp_path) == f"checkpoint '{tmp_path}': is a folder, not a checkpoint file"
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights")
    message = error_of(text)
    assert message.startswith(f"checkpoint '{text}': not a readable PyTorch checkpoint, or truncated")
    assert "\n" not in message
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_file.read_bytes()[: tiny_file.stat().st_size // 2])
    assert "not a readable PyTorch checkpoint, or truncated" in error_of(truncated)
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(3)], listed)
    assert "holds list, not a state dict of tensors" in error_of(listed)


def test_a_file_the_safe_loader_refuses_is_named_as_such_not_as_truncated(tmp_path):
    pickled = tmp_path / "objects.pt"
    torch.save({"weights": np.zeros(3)}, pickled)  # a numpy array: a Python object the safe loader refuses
    message = error_of(pickled)
    assert message.startswith(f"checkpoint '{pickled}': is not a plain weights file")
    assert "not loaded, for safety" in message and "numpy" in message
    assert "truncated" not in message and "weights_only" not in message and "\n" not in message


def test_key_and_shape_problems_are_summarised():
    sd = tiny_state_dict()
    partial = {k: v for k, v in sd.items() if not k.startswith("monodepth_model.monodepth_predictor.encoder.image_")}
    message = error_of(partial)
    assert f"({len(sd)} tensors expected)" in message
    assert f"{len(sd) - len(partial)} missing: monodepth_model.monodepth_predictor.encoder.image_encoder" in message
    assert f"({len(sd) - len(partial) - 5} more)" in message
    sd2 = dict(sd)
    sd2["extra.weight"] = torch.zeros(3)
    sd2["feature_model.fusion.out_conv.bias"] = torch.zeros(7)
    del sd2["prediction_head.texture_prediction_head.bias"]
    message = error_of(sd2)
    assert "1 missing: prediction_head.texture_prediction_head.bias" in message
    assert "1 unexpected: extra.weight" in message
    assert "1 wrong shape: feature_model.fusion.out_conv.bias [7] (expected [16])" in message
    assert "not a SHARP checkpoint" in error_of({"conv.weight": torch.zeros(2, 2)})


def test_non_finite_weights_are_rejected():
    sd = tiny_state_dict()
    sd["feature_model.fusion.out_conv.weight"][0, 0, 0, 0] = float("nan")
    assert "1 tensors hold NaN or Inf values: feature_model.fusion.out_conv.weight" in error_of(sd)


def test_devices_and_precisions_resolve_or_explain():
    from sharp_addon.devices import choose_precision, resolve_device
    from sharp_addon.errors import SharpError

    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    assert choose_precision("auto", torch.device("cpu")).dtype in (torch.float32, torch.bfloat16)  # by the CPU's flags
    assert choose_precision("fp16", torch.device("cpu")).dtype == torch.float16
    if not torch.cuda.is_available():
        with pytest.raises(SharpError, match="PyTorch sees no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(SharpError, match="device must be one of"):
        resolve_device("tpu")
    with pytest.raises(SharpError, match="precision must be one of"):
        choose_precision("int8", torch.device("cpu"))


@pytest.mark.parametrize(("flags", "name", "says"), [
    ({"avx2", "avx512f", "avx512_vnni"}, "fp32", "this CPU has no native bfloat16"),  # Ice Lake: VNNI, no bf16
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16", "natively: avx512_bf16"),  # Cooper Lake, Zen 4
    ({"avx512_bf16", "amx_bf16", "amx_tile"}, "bf16", "natively: amx_bf16, avx512_bf16"),  # Sapphire Rapids
    (set(), "fp32", "no native bfloat16"),  # flags unknown (not Linux)
])
def test_auto_precision_on_the_cpu_follows_its_flags(flags, name, says):
    from sharp_addon.devices import choose_precision

    choice = choose_precision("auto", torch.device("cpu"), flags=flags)
    assert choice.name == name and says in choice.reason
    assert choice.dtype == {"fp32": torch.float32, "bf16": torch.bfloat16}[name]
    assert choose_precision("fp32", torch.device("cpu"), flags=flags).describe() == "float32 (as asked)"
    assert choose_precision("auto", "cpu", flags=flags) == choice  # by name too: the preferences have no torch


def test_out_of_memory_becomes_advice():
    from sharp_addon.errors import OutOfMemory
    from sharp_addon.model.out_of_memory import translate_out_of_memory

    with pytest.raises(OutOfMemory, match=r"ran out of memory running SHARP\. Try precision 'fp16'"):
        with translate_out_of_memory(torch.device("cpu")):
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 9 GB")
    with pytest.raises(OutOfMemory):
        with translate_out_of_memory(torch.device("cpu")):
            raise MemoryError()
    with pytest.raises(ValueError, match="unrelated"):
        with translate_out_of_memory(torch.device("cpu")):
            raise ValueError("unrelated")


def resident_kb(path) -> int:
    """Resident kB of this process's mappings of ``path`` (Linux /proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        if "-" in line.split()[0] and len(line.split()) >= 5 and not line.split()[0].endswith(":"):
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_file_weights_are_used_in_place_and_their_pages_handed_back(tiny_file):
    import gc

    from sharp_addon.api import load_predictor
    from sharp_addon.errors import Cancelled
    from sharp_addon.model.training_only import is_training_only

    gc.collect()  # predictors of earlier tests map the same file
    sd = tiny_state_dict()
    used = [k for k in sd if not is_training_only(k)]
    used_kb = sum(sd[k].numel() * 4 for k in used) / 1024
    predictor = load_predictor(tiny_file, device="cpu", precision="fp32")
    assert sorted(predictor.mapped) == sorted(used)  # no copies: the model runs on the file mapping
    # every used weight was read (checked finite) and is back in the page cache, but for the pages
    # that small tensors share with their neighbours
    assert resident_kb(tiny_file) < 0.4 * used_kb
    image = np.zeros((32, 32, 3), np.uint8)
    predictor.predict(image)
    assert resident_kb(tiny_file) < 0.4 * used_kb  # and after a run
    with pytest.raises(Cancelled):
        predictor.predict(image, cancel=lambda: True)
    assert resident_kb(tiny_file) < 0.4 * used_kb  # and after a cancelled one
    assert load_predictor(tiny_file, device="cpu", precision="bf16").mapped == {}
    assert load_predictor(tiny_state_dict(), device="cpu").mapped == {}
