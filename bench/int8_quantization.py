"""An int8 path for the ViT linears on the CPU: dynamic quantization with PyTorch's own engine.

Bench only: measured and not offered (docs/notes/int8.md says why), so it lives in bench/, not in
the shipped package; ``bench/inference.py --precision int8`` and ``bench/int8.py`` use it.

Most of a CPU run goes to the linear layers of the two ViTs (qkv, proj, fc1, fc2 of every block);
only those are replaced, by ``torch.ao.nn.quantized.dynamic.Linear``: weights int8 per output
channel, activations quantized per call from their own range, accumulation in int32 (the
x86/fbgemm engine, VNNI where the CPU has it). Everything else stays float32. The classifier head
is never run and stays as it is. The engine exists in PyTorch 2.13 but is marked deprecated there
(torchao is its successor), which is one more reason this stays a bench option.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from sharp_addon.errors import SharpError
from sharp_addon.model.vit import Block, VisionTransformer

ENGINE_ORDER = ("x86", "fbgemm", "onednn")  # the first one this PyTorch build has is used


def vit_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The float linear layers inside the ViT blocks of ``model``, by their module names."""
    found: dict[str, nn.Linear] = {}
    for name, module in model.named_modules():
        if isinstance(module, VisionTransformer):
            for block_name, block in module.named_modules():
                if isinstance(block, Block):
                    for sub, layer in block.named_modules():
                        if type(layer) is nn.Linear:
                            found[f"{name}.{block_name}.{sub}"] = layer
    return found


def quantize_vit_linears(model: nn.Module, device: torch.device | str = "cpu") -> int:
    """Replace the ViT blocks' linears of a float32 CPU ``model`` by int8 dynamic ones, in place.

    Returns how many were replaced. ``SharpError`` on another device or precision: PyTorch's
    int8 kernels are CPU only.
    """
    kind = device if isinstance(device, str) else device.type
    if kind != "cpu":
        raise SharpError(f"int8 runs on the CPU only (PyTorch's int8 kernels have no {kind} version); "
                         "use fp16 or bf16 on a GPU")
    dtype = next(model.parameters()).dtype
    if dtype != torch.float32:
        raise SharpError(f"int8 quantizes a float32 network; this one is {dtype}")
    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ENGINE_ORDER if e in engines), None)
    if engine is None:
        raise SharpError(f"this PyTorch has no int8 CPU engine (it has {', '.join(engines) or 'none'})")
    torch.backends.quantized.engine = engine
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    layers = vit_linears(model)
    with warnings.catch_warnings():  # the deprecation notices of torch.ao, once per layer
        warnings.simplefilter("ignore")
        for name, layer in layers.items():
            layer.qconfig = per_channel_dynamic_qconfig  # type: ignore[assignment]
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, DynamicLinear.from_float(layer))
    return len(layers)
