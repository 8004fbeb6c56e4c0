"""Where SHARP runs, on real Blender: a Python for Inference (checked, remembered, used by
SHARP from Image, refused with a clear message when it cannot serve) and the GPU runtime
(installed from a local package index with progress, cancelled, refused offline, removed), and
that Blender's own process never imports the runtime's torch.

The 3.13 environments (Blender 5.2, 5.3) have no torch: there, the tests that need it set the
blender-5.0 environment's Python (3.11, CPU torch) as the Python for Inference, which is how a
user of such a Blender runs SHARP on a Python that has torch.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

import numpy as np
import pytest

from sharp_addon import runtimes as R
from tests.conftest import ADDON_MODULE, HAS_TORCH, ROOT
from tests.support.blender_data import id_names
from tests.support.modal import ModalDriver
from tests.support.package_index import FAKE_TORCH, FAKE_TORCH_LOG
from tests.support.ui_layout import RecordingLayout

pytestmark = pytest.mark.blender

SAMPLE = ROOT / "tests" / "data" / "sample_640x480.png"


def addon_module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.blender.{name}")


@pytest.fixture
def prefs(addon, bpy_session):
    """The add-on's preferences, no remembered result (every run runs SHARP); afterwards Blender's own
    Python again, no runtime, no worker, online access as it was."""
    addon_module("remembered").forget()
    preferences = bpy_session.context.preferences.addons[ADDON_MODULE].preferences
    system = bpy_session.context.preferences.system
    online = system.use_online_access
    yield preferences
    preferences.inference_python = ""
    preferences.checkpoint_path = ""
    system.use_online_access = online
    addon_module("runtime_ui").cancel_install()
    runner = addon_module("runner")
    runner.shutdown()
    root = runner.runtime_root()
    if root is not None:
        R.remove_runtimes(root)


def reference_result(python: str, checkpoint: Path):
    """SHARP's result for the sample photo computed directly (no Blender) in ``python``."""
    worker = importlib.import_module(f"{ADDON_MODULE}.worker")
    out = Path(checkpoint).with_name("reference.npz")
    code = ("import sys; from pathlib import Path; from sharp_addon.api import load_predictor; "
            "from sharp_addon.worker import save_result; "
            "save_result(load_predictor(sys.argv[1], device='cpu').predict(sys.argv[2]), Path(sys.argv[3]))")
    subprocess.run([python, "-c", code, str(checkpoint), str(SAMPLE), str(out)], cwd=ROOT, check=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return worker.load_result(out)


def assert_same_splats(got, want) -> None:
    """The same splats up to the last bits of float32: a worker that has run other jobs before hands
    oneDNN buffers at other alignments than a fresh process, which changes vectorised summation order."""
    np.testing.assert_array_equal(got.layers, want.layers)
    for name in ("means", "scales", "quats", "colors", "opacities"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-4, atol=1e-6)


# ---- SHARP from Image in another Python -----------------------------------------------------------


@pytest.mark.slow
def test_from_image_end_to_end_wherever_torch_is(addon, clean_scene, bpy_session, torch_somewhere, tiny_ckpt,
                                                 other_python):
    """SHARP from Image builds the scene. On Blender 5.0 torch is Blender's own; on 5.2 and 5.3 (Python
    3.13, no torch wheel here) torch comes from the blender-5.0 environment's Python through Python for
    Inference."""
    bpy = bpy_session
    torch_somewhere.checkpoint_path = str(tiny_ckpt)
    before = id_names(bpy)
    assert bpy.ops.sharp.from_image(filepath=str(SAMPLE), device="CPU") == {"FINISHED"}
    made = {k: v - before[k] for k, v in id_names(bpy).items()}
    assert made["objects"] == {"sample_640x480", "sample_640x480 Photo", "sample_640x480 Camera"}
    got = addon_module("scene").object_to_gaussians(bpy.context.active_object)
    assert_same_splats(got, reference_result(other_python, tiny_ckpt))
    worker = addon_module("runner").worker()
    assert worker.python == (other_python if not HAS_TORCH else sys.executable)
    if not HAS_TORCH:
        assert "torch" not in sys.modules, "Blender's process imported torch"


@pytest.mark.slow
def test_a_python_for_inference_runs_from_image_with_only_the_package_on_its_path(
    addon, clean_scene, bpy_session, prefs, other_python, tiny_ckpt
):
    """Another interpreter (here a venv, or on 3.13 the blender-5.0 one) runs the worker; it gets
    only this package's folder, never Blender's sys.path (Blender's site-packages and numpy are built
    for Blender's Python)."""
    bpy = bpy_session
    runner = addon_module("runner")
    child_process = importlib.import_module(f"{ADDON_MODULE}.child_process")
    prefs.inference_python = other_python
    prefs.checkpoint_path = str(tiny_ckpt)
    assert runner.torch_status().ok and f"({other_python}, Python 3." in runner.torch_status().message
    assert bpy.ops.sharp.from_image(filepath=str(SAMPLE), device="CPU") == {"FINISHED"}
    worker = runner.worker()
    assert worker.python == other_python and worker.runtime is None
    env_path = json.loads(child_process.child_env(worker.python, worker.runtime)[child_process.ENV_PATH])
    assert env_path == [str(child_process.PACKAGE_DIR.parent)]
    assert len(addon_module("scene").object_to_gaussians(bpy.context.active_object)) == 2 * 256 * 256
    prefs.inference_python = ""  # back to Blender's own Python: the next worker is a new one
    assert runner.worker() is not worker and not worker.alive


def bad_python(case: str, tmp_path: Path, bare: Path) -> tuple[str, str]:
    """(path, what the message says) for a Python for Inference that cannot serve."""
    if case == "missing":
        return str(tmp_path / "no" / "python"), "no such file"
    if case == "text file":
        path = tmp_path / "python.txt"
        path.write_text("these are notes, not a program\n")
        path.chmod(0o755)
        return str(path), "not a Python interpreter"
    return str(bare), "has no PyTorch"


@pytest.fixture(scope="session")
def bare(tmp_path_factory) -> Path:
    """A Python without torch: a fresh venv of this interpreter's base, no packages."""
    folder = tmp_path_factory.mktemp("bare")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    return folder / "bin" / "python"


@pytest.mark.parametrize("case", ["missing", "text file", "no torch"])
def test_a_python_for_inference_that_cannot_serve_is_named_and_changes_nothing(
    addon, clean_scene, bpy_session, prefs, tmp_path, bare, tiny_ckpt, case
):
    bpy = bpy_session
    path, says = bad_python(case, tmp_path, bare)
    prefs.inference_python = path
    prefs.checkpoint_path = str(tiny_ckpt)
    before = id_names(bpy)
    with pytest.raises(RuntimeError, match=rf"Python for Inference '{path}': .*{says}"):
        bpy.ops.sharp.from_image(filepath=str(SAMPLE), device="CPU")
    assert id_names(bpy) == before and bpy.context.scene.camera is None
    with pytest.raises(RuntimeError, match=says):
        bpy.ops.sharp.check_inference_python()
    assert not addon_module("runner").torch_status().ok


# ---- what the preferences show --------------------------------------------------------------------


def drawn(bpy) -> RecordingLayout:
    layout = RecordingLayout()
    addon_module("runtime_ui").draw_runtime(layout, bpy.context)
    return layout


def test_check_shows_python_torch_and_gpus_and_is_remembered_per_file(addon, bpy_session, prefs, other_python,
                                                                      tmp_path):
    bpy = bpy_session
    runner = addon_module("runner")
    wrapper = tmp_path / "python-wrapper"  # as conda activation scripts are: a file of its own, not yet checked
    wrapper.write_text(f'#!/bin/sh\nexec "{other_python}" "$@"\n')
    wrapper.chmod(0o755)
    prefs.inference_python = str(wrapper)
    assert ("operator", "sharp.check_inference_python", "Check") in drawn(bpy).lines
    assert "Not checked yet" in drawn(bpy).texts()
    assert bpy.ops.sharp.check_inference_python() == {"FINISHED"}
    probe = runner.remembered_probe(str(wrapper))
    assert probe.ok and probe.torch.startswith("2.") and probe.version.startswith("3.11")
    shown = drawn(bpy).texts()
    assert f"Python {probe.version}, PyTorch {probe.torch} (CPU build)" in shown  # no GPU on this machine:
    assert "No GPU found (CPU build): SHARP runs on the CPU" in shown  # a GPU one lists name and memory
    assert "The GPU runtime is not used while a Python for Inference is set" in shown
    stand_in = tmp_path / "python"  # another file: its own check
    stand_in.write_text("not a python\n")
    stand_in.chmod(0o755)
    prefs.inference_python = str(stand_in)
    assert runner.remembered_probe(str(stand_in)) is None
    with pytest.raises(RuntimeError, match="not a Python interpreter"):
        bpy.ops.sharp.check_inference_python()
    assert any(line[2] == "ERROR" and "not a Python interpreter" in line[1] for line in drawn(bpy).lines)
    stand_in.write_text("changed: a file with another size and time\n")
    assert runner.remembered_probe(str(stand_in)) is None, "a changed file is checked again"


# ---- the GPU runtime ------------------------------------------------------------------------------


@pytest.fixture
def gpu_index(local_index, prefs, monkeypatch, tmp_path):
    """The local index stands in for PyTorch's; pip reads no configuration of this machine; online."""
    index = local_index
    index.requests.clear()
    index.chunk_delay = 0.0
    monkeypatch.setenv(R.ENV_INDEX, index.url)
    monkeypatch.setenv(R.ENV_REQUIREMENT, f"torch=={FAKE_TORCH}")
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv(FAKE_TORCH_LOG, str(tmp_path / "torch-imports.log"))
    prefs.inference_python = ""
    bpy = sys.modules["bpy"]
    bpy.context.preferences.system.use_online_access = True
    return index


def test_install_then_only_the_worker_imports_torch_from_the_runtime_and_remove(addon, bpy_session, prefs,
                                                                              gpu_index, tmp_path):
    bpy = bpy_session
    runner = addon_module("runner")
    assert any(line[0] == "menu" and line[3] == "Install GPU Runtime" for line in drawn(bpy).lines)
    assert bpy.ops.sharp.install_gpu_runtime(runtime="cu130") == {"FINISHED"}
    installed = runner.installed_runtime()
    root = Path(bpy.utils.extension_path_user(addon_module("addon").ADDON_PACKAGE, path="runtime"))
    assert installed.folder == root / "cu130" and installed.torch == FAKE_TORCH
    assert sorted(p.name for p in root.iterdir()) == ["cu130"]
    assert Path(installed.probe.torch_file).resolve().is_relative_to(installed.folder.resolve())
    assert runner.torch_status().message == f"PyTorch {FAKE_TORCH} from the GPU runtime (CUDA 13.0 (current GPUs))"
    shown = drawn(bpy).texts()
    assert "GPU runtime CUDA 13.0 (current GPUs): PyTorch 9.9.9" in shown and "No GPU found (CUDA 13.0 build" in shown
    assert ("operator", "sharp.remove_gpu_runtime", "Remove GPU Runtime") in drawn(bpy).lines
    # a worker run: the worker starts with the runtime first on its path and imports its torch
    worker_module = importlib.import_module(f"{ADDON_MODULE}.worker")
    worker = runner.worker()
    assert worker.runtime == installed.folder
    errors = importlib.import_module(f"{ADDON_MODULE}.errors")
    with pytest.raises(errors.SharpError):  # the stand-in torch cannot run SHARP, but it was imported
        worker.run(worker_module.PredictRequest(str(SAMPLE), str(tmp_path / "any.pt"), device="cpu"))
    imports = [line.split(" ", 1) for line in (tmp_path / "torch-imports.log").read_text().splitlines()]
    assert imports and all(int(pid) != os.getpid() for pid, _ in imports), "only other processes imported it"
    assert all(Path(file).resolve().is_relative_to(installed.folder.resolve()) for _, file in imports)
    torch_here = sys.modules.get("torch")
    assert torch_here is None or not Path(torch_here.__file__).resolve().is_relative_to(root.resolve())
    assert not [m for m in list(sys.modules.values())
                if str(root) in str(getattr(m, "__file__", "") or "")], "Blender imported from the runtime"
    assert bpy.ops.sharp.check_gpu_runtime() == {"FINISHED"}
    assert bpy.ops.sharp.remove_gpu_runtime() == {"FINISHED"}
    assert not (root / "cu130").exists() and runner.installed_runtime() is None
    assert runner.worker().runtime is None


def follow_install(bpy, key: str) -> tuple[ModalDriver, list[str]]:
    """Install GPU Runtime invoked from the preferences' menu; also the stages pip's output went through."""
    driver = ModalDriver(bpy, addon_module("runtime_ui").SHARP_OT_install_gpu_runtime, runtime=key)
    assert driver.start() == {"RUNNING_MODAL"}, driver.reports
    stages: list[str] = []
    driver.work.on_progress = lambda progress: stages.append(progress.stage)
    return driver, stages


def test_the_modal_install_shows_progress_and_finishes(addon, bpy_session, prefs, gpu_index):
    bpy = bpy_session
    driver, stages = follow_install(bpy, "cu126")
    assert "Installing CUDA 12.6 (older GPUs and drivers)" in drawn(bpy).texts()
    assert ("operator", "sharp.cancel_gpu_runtime_install", "Cancel") in drawn(bpy).lines
    assert driver.send("MOUSEMOVE") == {"PASS_THROUGH"}
    assert driver.tick_until() == {"FINISHED"}, driver.reports
    assert {"resolving", "downloading", "installing", "done"} <= set(stages)
    assert driver.reports[-1][0] == {"INFO"} and "Installed the GPU runtime CUDA 12.6" in driver.reports[-1][1]
    assert "The SHARP worker sees: no GPU found (CUDA 13.0 build" in driver.reports[-1][1]
    assert addon_module("runner").installed_runtime().key == "cu126"


@pytest.mark.parametrize("how", ["Esc", "Cancel button", "window closed"])
def test_cancel_kills_pip_and_leaves_nothing(addon, bpy_session, prefs, gpu_index, how):
    bpy = bpy_session
    gpu_index.chunk_delay = 0.25  # the 3 MB stand-in torch then takes about 12 s to download
    driver, stages = follow_install(bpy, "cu130")
    install = driver.work
    assert driver.tick_until(lambda: "downloading" in stages) == {"PASS_THROUGH"}, driver.reports
    t0 = time.monotonic()
    if how == "Esc":
        result = driver.send("ESC")
    elif how == "Cancel button":
        assert bpy.ops.sharp.cancel_gpu_runtime_install() == {"FINISHED"}
        result = driver.send("TIMER")
    else:  # Blender ends the modal operator itself (its window closed): its cancel() runs, nothing reports
        driver.blender_cancels()
        assert driver.reports == [] and install.state == "cancelled"
        assert addon_module("long_operator").shown_status() == [], "no status text left"
        result = {"CANCELLED"}
        driver.reports.append(({"INFO"}, str(install.error)))  # the error the install ended with
    assert result == {"CANCELLED"} and time.monotonic() - t0 < 5
    assert driver.reports == [({"INFO"}, f"GPU runtime install cancelled: nothing was kept in {install.root}")]
    assert list(install.root.iterdir()) == [], "no final folder, no .partial"
    assert install._pip is not None and not install._pip.alive, "no pip process left"
    assert addon_module("runtime_ui").current_install() is None


def test_with_online_access_off_nothing_is_requested(addon, bpy_session, prefs, gpu_index):
    bpy = bpy_session
    bpy.context.preferences.system.use_online_access = False
    assert "Online access is off: turn on Allow Online Access" in drawn(bpy).texts()
    gpu_index.requests.clear()
    with pytest.raises(RuntimeError, match=r"Online access is off, so nothing was downloaded: turn on .*"
                                           r"Allow Online Access"):
        bpy.ops.sharp.install_gpu_runtime(runtime="cu130")
    assert gpu_index.requests == [], "no request reached the index"
    assert addon_module("runner").installed_runtime() is None
