"""CPU inference gives the same bits every time: in fresh processes, with strips cut elsewhere, after other work.

Pipelines re-run photos and diff the outputs, and the worker's result is compared with an
in-process run: on one machine with one thread count, float32 results are equal bit for bit,
whatever the free memory (which sets the row strips' height) and whatever ran before in the process
(docs/notes/determinism.md; ``bench/determinism.py`` shows the same with the default thread count).
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="needs PyTorch, which this test environment does not have")

# Any fixed thread count gives one result (another count, another result). One thread, here and in
# the children: on a busy 2-core machine the tiny network runs about 4 times faster on one than on two.
THREADS = 1


@pytest.mark.slow
def test_fresh_processes_and_a_process_that_did_other_work_give_the_in_process_bits(tiny_checkpoint, tmp_path):
    from bench.child import PREFIX
    from bench.determinism import ARRAYS, LOW_FREE_MB, child_command, predict
    from sharp_addon.api import load_predictor

    runs = {"fresh": child_command(tiny_checkpoint, tmp_path / "fresh.npz", threads=THREADS, again=True),
            "low memory": child_command(tiny_checkpoint, tmp_path / "low memory.npz", LOW_FREE_MB, THREADS)}
    children = {name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for name, cmd in runs.items()}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(THREADS)
        reference = predict(load_predictor(tiny_checkpoint, device="cpu", precision="fp32"))
        outputs = {name: child.communicate(timeout=240) for name, child in children.items()}
    finally:
        torch.set_num_threads(threads)
        for child in children.values():
            child.kill()
    reports = {}
    for name, (out, err) in outputs.items():
        assert children[name].returncode == 0, f"{name}: {err[-3000:]}"
        reports[name] = json.loads(next(line for line in out.splitlines() if line.startswith(PREFIX))[len(PREFIX):])
    assert all(r["threads"] == THREADS for r in reports.values()), reports
    # the low-memory run really cut its maps into more strips: one progress step per strip
    assert reports["low memory"]["steps"]["gaussians"] > reports["fresh"]["steps"]["gaussians"], reports

    with np.load(tmp_path / "fresh.npz") as fresh, np.load(tmp_path / "low memory.npz") as low:
        for name in ARRAYS:
            np.testing.assert_array_equal(fresh[name], reference[name], err_msg=f"{name}: fresh process")
            np.testing.assert_array_equal(fresh[f"again_{name}"], reference[name], err_msg=f"{name}: after other work")
            np.testing.assert_array_equal(low[name], reference[name], err_msg=f"{name}: strips cut elsewhere")
