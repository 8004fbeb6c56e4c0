"""Strict, lean loading of SHARP checkpoints.

No bpy. The file is memory-mapped (``torch.load(weights_only=True, mmap=True)``), its keys and
shapes are checked against the network its own shapes describe, the tensors inference uses are cast
once to the run's device and precision, and the unused ones are never copied. Anything wrong gives a
``CheckpointError`` that names the file and summarises the problem (counts, first few keys).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import pickle
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..errors import CheckpointError
from .config import SharpConfig
from .predictor import SharpPredictor

SHOW = 5  # keys listed per kind of problem


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint file, memory-mapped on the CPU."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}': no such file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}': is not a file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint '{path}': not a readable PyTorch checkpoint, or truncated "
                              f"({first[:200]})") from None
    if isinstance(data, Mapping) and "state_dict" in data and isinstance(data["state_dict"], Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"checkpoint '{path}': holds {type(data).__name__}, not a state dict of tensors")
    return dict(data)


def meta_network(cfg: SharpConfig) -> SharpPredictor:
    """The network of ``cfg`` on the meta device: every parameter declared, no memory used."""
    with torch.device("meta"):
        return SharpPredictor(cfg)


def expected_shapes(cfg: SharpConfig) -> dict[str, tuple[int, ...]]:
    """Every key and shape the network of ``cfg`` declares."""
    return {k: tuple(v.shape) for k, v in meta_network(cfg).state_dict().items()}


def check_state_dict(state_dict: Mapping[str, torch.Tensor], source: str) -> SharpPredictor:
    """The (meta-device) network a complete, consistent SHARP state dict fits; CheckpointError otherwise."""
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    try:
        cfg = SharpConfig.from_shapes(shapes)
    except (KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"checkpoint '{source}': not a SHARP checkpoint ({len(shapes)} tensors; "
                              f"lacks or mis-shapes {e})") from None
    model = meta_network(cfg)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in want if k not in shapes]
    unexpected = [k for k in shapes if k not in want]
    wrong = [f"{k} {list(shapes[k])} (expected {list(want[k])})" for k in want if k in shapes and shapes[k] != want[k]]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            more = f", ... ({len(items) - SHOW} more)" if len(items) > SHOW else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:SHOW])}{more}")
    if problems:
        raise CheckpointError(f"checkpoint '{source}': does not match the SHARP network "
                              f"({len(want)} tensors expected): " + "; ".join(problems))
    bad = [k for k, v in state_dict.items() if not v.is_floating_point()]
    if bad:
        raise CheckpointError(f"checkpoint '{source}': {len(bad)} tensors are not floating point: "
                              f"{', '.join(bad[:SHOW])}")
    return model


def build_predictor(
    state_dict: Mapping[str, torch.Tensor], source: str, device: torch.device, dtype: torch.dtype,
    mapped: bool = False,
) -> SharpPredictor:
    """A ready network holding the checkpoint's used tensors in ``dtype`` on ``device``.

    Tensors already in that device and precision are used in place, without a copy (for a
    memory-mapped file: straight from the mapping). With ``mapped``, the file pages of tensors that
    were copied (cast, moved to a GPU) are released as soon as each copy is made.
    """
    model = check_state_dict(state_dict, source)
    tensors = {}
    for k, v in state_dict.items():
        if SharpPredictor.is_unused(k):
            tensors[k] = torch.empty(v.shape, device="meta")
            continue
        tensors[k] = v.to(device=device, dtype=dtype)
        if mapped and tensors[k].data_ptr() != v.data_ptr():
            release_pages([v])
    model.load_state_dict(tensors, strict=True, assign=True)
    non_finite = [k for k, v in tensors.items() if v.device.type != "meta" and not bool(torch.isfinite(v).all())]
    if non_finite:
        raise CheckpointError(f"checkpoint '{source}': {len(non_finite)} tensors hold NaN or Inf values: "
                              f"{', '.join(non_finite[:SHOW])}")
    return model.eval().requires_grad_(False)


def release_pages(tensors: Iterable[torch.Tensor]) -> None:
    """Give the resident pages of memory-mapped, never-written weights back to the page cache.

    A checkpoint read with ``mmap=True`` and used as is (float32 on the CPU) lives in a private file
    mapping. Its pages count as the process's memory once touched; ``MADV_DONTNEED`` drops them from
    the process while the kernel keeps the file cached, so the next use faults them back in from
    memory. Inference never writes to weights, so nothing is lost. Linux only; a no-op elsewhere.
    """
    if not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    for t in tensors:
        start = t.data_ptr()
        first, last = -(-start // page) * page, (start + t.numel() * t.element_size()) // page * page
        if last > first:
            libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), mmap.MADV_DONTNEED)
