#!/usr/bin/env python3
"""SHARP on a GPU, ready to measure in one command: parity, precision errors, cold and warm times, levers.

    python bench/gpu.py [--device cuda] [--runs 5] [--out report.md]       # full size, synthetic weights
    python bench/gpu.py --tiny --device cpu --runs 1                       # the small test network (the suite)

Runs on any torch device (CUDA, MPS, the CPU) so that the suite can run it; meant for a lent GPU.
Report (Markdown, stdout and ``--out``):

1. the machine: torch, device name and memory;
2. parity in fp32 against ``tests/data/golden.npz`` (``tests/support/parity.py``; full size only): PARITY OK
   is required;
3. bf16 and fp16 against fp32 on the parity photo: median relative position error, 99th-percentile
   colour and opacity error;
4. per precision: load time, the cold first run (CUDA context, kernel selection) and the median warm
   run, peak device memory (CUDA) or peak RSS;
5. levers, each against the same precision's default warm time: the SDPA backend forced to flash
   attention or to the plain maths kernel, and ``torch.compile`` of the two ViTs (``--compile``;
   minutes of compiling, so off by default on the CPU). Channels-last convolutions are always on
   (the network converts its maps itself).
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGE = ROOT / "tests" / "data" / "sample_640x480.png"
PRECISIONS = ("fp32", "bf16", "fp16")


def weights(tiny: bool) -> dict:
    """Synthetic weights: the tests' small network, or the full-size one by the parity weight rule."""
    if tiny:
        from tests.support.builders import tiny_state_dict

        return tiny_state_dict()
    from tests.support.synthetic_weights import official_shapes, synthetic_state_dict

    return synthetic_state_dict(official_shapes())


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def sync(torch: Any, device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(torch: Any, device: Any, run: Callable[[], Any]) -> tuple[float, Any]:
    sync(torch, device)
    t0 = time.perf_counter()
    out = run()
    sync(torch, device)
    return time.perf_counter() - t0, out


def warm_runs(torch: Any, device: Any, predictor: Any, runs: int) -> list[float]:
    """Seconds of ``runs`` predictions of the parity photo."""
    return [timed(torch, device, lambda: predictor.predict(IMAGE))[0] for _ in range(runs)]


def peak_memory(torch: Any, device: Any) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (device)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (process RSS, whole run)"


def errors_against(ref: Any, got: Any) -> str:
    rel = np.linalg.norm(got.means - ref.means, axis=1) / np.maximum(np.linalg.norm(ref.means, axis=1), 1e-9)
    colour = np.percentile(np.abs(got.colors - ref.colors), 99)
    opacity = np.percentile(np.abs(got.opacities - ref.opacities), 99)
    return f"position {np.median(rel):.2e} (median relative), colour {colour:.2e}, opacity {opacity:.2e} (p99 abs)"


def parity(device: str) -> str:
    """Our parity checker with our parity candidate on ``device`` in fp32 (full-size synthetic weights)."""
    from tests.support import parity as checker
    from tests.support.parity_candidate import candidate_on

    return checker.run(candidate_on(device, "fp32")).summary()


@contextlib.contextmanager
def sdpa_backend(torch: Any, name: str) -> Iterator[None]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel({"flash": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}[name]):
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="cuda, mps, cpu or auto (default)")
    parser.add_argument("--tiny", action="store_true", help="the small test network instead of the full size")
    parser.add_argument("--runs", type=int, default=5, help="warm runs per configuration (median)")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile of the ViTs")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help=f"comma-separated, fp32 first (default: {','.join(PRECISIONS)}; on a CPU fp16 is emulated "
                        "and slow)")
    args = parser.parse_args(argv)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not precisions or precisions[0] != "fp32" or set(precisions) - set(PRECISIONS):
        parser.error(f"--precisions must start with fp32 and name only {', '.join(PRECISIONS)}")

    import torch

    from sharp_addon.api import load_predictor
    from sharp_addon.devices import resolve_device

    device = resolve_device(args.device)
    lines: list[str] = []

    def say(text: str = "") -> None:
        lines.append(text)
        print(text, flush=True)

    say(f"# SHARP GPU report ({'tiny test network' if args.tiny else 'full size, synthetic weights'})")
    say()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    memory = (f", {torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB"
              if device.type == "cuda" else "")
    say(f"Machine: {device.type} ({name}{memory}), torch {torch.__version__}, Python {platform.python_version()}")
    say()
    say("## Parity (fp32)")
    say("skipped: the golden data are for the full-size network" if args.tiny else parity(device.type))
    say()

    state = weights(args.tiny)
    results: dict[str, Any] = {}
    say("## Precisions")
    say("| precision | load s | cold run s | warm run s (median) | peak memory | error against fp32 |")
    say("|---|---|---|---|---|---|")
    for precision in precisions:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            load_s, predictor = timed(torch, device, lambda p=precision: load_predictor(dict(state), device.type, p))
            cold_s, first = timed(torch, device, lambda predictor=predictor: predictor.predict(IMAGE))
            warm = warm_runs(torch, device, predictor, args.runs)
        except Exception as e:  # a precision this device cannot run is a finding, not a crash
            say(f"| {precision} | — | — | — | — | cannot run here: {str(e).splitlines()[0][:120]} |")
            continue
        results[precision] = (predictor, first, statistics.median(warm))
        error = "reference" if precision == "fp32" else errors_against(results["fp32"][1], first)
        say(f"| {precision} | {load_s:.2f} | {cold_s:.3f} | {statistics.median(warm):.3f} | "
            f"{peak_memory(torch, device)} | {error} |")
    say()

    say("## Levers (warm median, against the same precision's default)")
    say("| precision | lever | warm run s | ratio |")
    say("|---|---|---|---|")
    for precision, (predictor, _, default_s) in results.items():
        levers: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
            "SDPA: flash attention only": lambda: sdpa_backend(torch, "flash"),
            "SDPA: plain maths kernel only": lambda: sdpa_backend(torch, "math"),
        }
        for lever, context in levers.items():
            try:
                with context():
                    median = statistics.median(warm_runs(torch, device, predictor, args.runs))
                say(f"| {precision} | {lever} | {median:.3f} | {median / default_s:.2f}x |")
            except RuntimeError as e:
                say(f"| {precision} | {lever} | not available: {str(e).splitlines()[0][:80]} | — |")
        if args.compile:
            encoder = predictor.model.monodepth_model.monodepth_predictor.encoder
            for vit in ("patch_encoder", "image_encoder"):
                setattr(encoder, vit, torch.compile(getattr(encoder, vit)))
            compile_s, _ = timed(torch, device, lambda predictor=predictor: predictor.predict(IMAGE))
            median = statistics.median(warm_runs(torch, device, predictor, args.runs))
            say(f"| {precision} | torch.compile of the ViTs (first run {compile_s:.1f} s) | {median:.3f} | "
                f"{median / default_s:.2f}x |")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
