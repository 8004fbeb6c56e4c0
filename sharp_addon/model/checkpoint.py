"""Strict, lean loading of SHARP checkpoints.

No bpy. The file is memory-mapped (``torch.load(weights_only=True, mmap=True)``), its keys and
shapes are checked against the network its own shapes describe, the tensors inference uses are cast
once to the run's device and precision, and the training-only ones (``training_only.py``) are never
copied. Anything wrong gives a ``CheckpointError`` that names the file and summarises the problem
(counts, first few keys).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import pickle
import re
import sys
import time
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from .config import SharpConfig
from .predictor import SharpPredictor
from .training_only import is_training_only

SHOW = 5  # keys listed per kind of problem
OBJECT_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX"}  # build objects
GIT_LFS_POINTER = b"version https://git-lfs"  # what a clone without Git LFS holds instead of a large file


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint file, memory-mapped on the CPU, read by torch's safe loader.

    The safe loader (``weights_only=True``) accepts tensors and plain containers only: a file that
    holds other Python objects is refused for safety, never loaded the unsafe way.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError.about(path, "no such file")
    if not path.is_file():
        raise CheckpointError.about(path, "is a folder, not a checkpoint file" if path.is_dir() else "is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError.about(path, "is empty (0 bytes): not a checkpoint, or a download that never started")
    # torch memory-maps only its zip format; older (pre-1.6) files are read whole, by the same safe loader
    with open(path, "rb") as fh:
        if fh.read(len(GIT_LFS_POINTER)) == GIT_LFS_POINTER:
            raise CheckpointError.about(path, "is a Git LFS pointer, not the weights: fetch the file itself "
                                        "('git lfs pull', or download it again)")
    mapped = zipfile.is_zipfile(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on its way to refusing a file
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=mapped)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found is None and not (not mapped and _pickles_objects(path)):
            raise _unreadable(path, e) from None  # not a refused object: not a pickle of plain data at all
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError.about(
            path, f"is not a plain weights file: it holds Python objects{what} besides tensors, and such a "
            "file is not loaded, for safety (loading it could run code)") from None
    except Exception as e:  # torch.load fails in many ways on a broken file (zip, pickle, storage errors)
        raise _unreadable(path, e) from None
    if isinstance(data, Mapping) and "state_dict" in data and isinstance(data["state_dict"], Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping):
        raise CheckpointError.about(path, f"holds {type(data).__name__}, not a state dict of tensors")
    others = [f"'{k}' ({type(v).__name__})" for k, v in data.items() if not isinstance(v, torch.Tensor)]
    if others:
        more = f" and {len(others) - SHOW} more" if len(others) > SHOW else ""
        raise CheckpointError.about(path, f"is a state dict with entries that are not tensors: "
                                    f"{', '.join(others[:SHOW])}{more}")
    return dict(data)


def _pickles_objects(path: Path) -> bool:
    """Is the file a pickle that builds Python objects? Read opcode by opcode, nothing is run."""
    import pickletools

    try:
        with open(path, "rb") as fh:
            return any(op.name in OBJECT_OPCODES for op, _, _ in pickletools.genops(fh))
    except Exception:  # not a (complete) pickle
        return False


def _unreadable(path: Path, error: BaseException) -> CheckpointError:
    text = str(error).strip()
    first = (text.splitlines()[0] if text else type(error).__name__)[:200]
    return CheckpointError.about(path, f"not a readable PyTorch checkpoint, or truncated ({first})")


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
        raise CheckpointError.about(source, f"not a SHARP checkpoint ({len(shapes)} tensors; lacks or "
                                    f"mis-shapes {e})") from None
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
        raise CheckpointError.about(source, f"does not match the SHARP network ({len(want)} tensors expected): "
                                    + "; ".join(problems))
    bad = [k for k, v in state_dict.items() if not v.is_floating_point()]
    if bad:
        raise CheckpointError.about(source, f"{len(bad)} tensors are not floating point: {', '.join(bad[:SHOW])}")
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
        if is_training_only(k):
            tensors[k] = torch.empty(v.shape, device="meta")
            continue
        tensors[k] = v.to(device=device, dtype=dtype)
        if mapped and tensors[k].data_ptr() != v.data_ptr():
            release_pages([v])
    model.load_state_dict(tensors, strict=True, assign=True)
    non_finite = [k for k, v in tensors.items() if v.device.type != "meta" and not bool(torch.isfinite(v).all())]
    if non_finite:
        raise CheckpointError.about(source, f"{len(non_finite)} tensors hold NaN or Inf values: "
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


@dataclass
class LoadedNetwork:
    """A ready network and where its weights live."""

    model: SharpPredictor
    source: str  # the file, or "<state dict>"
    seconds: float  # time to load
    mapped: Mapping[str, torch.Tensor]  # parameters still backed by the file mapping (float32 on the CPU)


def load_network(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any], device: torch.device, dtype: torch.dtype
) -> LoadedNetwork:
    """The network of a checkpoint file (memory-mapped) or of an already loaded state dict.

    Weights used in place from a file mapping are listed in ``mapped``: their resident pages can go
    back to the page cache whenever a stage is done with them (``release_pages``), and they are
    released once here, so a fresh network holds none.
    """
    t0 = time.perf_counter()
    from_file = not isinstance(checkpoint, Mapping)
    if isinstance(checkpoint, Mapping):
        state_dict, source = {k: torch.as_tensor(v) for k, v in checkpoint.items()}, "<state dict>"
    else:
        state_dict, source = read_state_dict(checkpoint), str(checkpoint)
    model = build_predictor(state_dict, source, device, dtype, mapped=from_file)
    mapped = {} if not from_file else {
        name: p for name, p in model.named_parameters()
        if name in state_dict and p.device.type == "cpu" and p.data_ptr() == state_dict[name].data_ptr()
    }
    del state_dict
    release_pages(mapped.values())
    return LoadedNetwork(model, source, time.perf_counter() - t0, mapped)
