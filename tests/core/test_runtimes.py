"""Where inference runs: the probe of another Python, and GPU runtimes installed by pip from a
package index — here a local PEP 503 index on 127.0.0.1 with small stand-in wheels (a fake
``torch`` 9.9.9 that sees no GPU and depends on a fake CUDA library wheel), so every step runs
for real but nothing is downloaded from the internet."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest

from sharp_addon import child_process as C
from sharp_addon import runtimes as R
from sharp_addon import worker as W
from sharp_addon.errors import Cancelled, DependencyError, SharpError
from sharp_addon.work import wait
from tests.conftest import HAS_TORCH, ROOT
from tests.support.package_index import FAKE_TORCH, LocalIndex, fake_torch_wheels

SAMPLE = str(ROOT / "tests" / "data" / "sample_640x480.png")
PIP = [sys.executable, "-m", "pip"]


@pytest.fixture(autouse=True)
def no_pip_configuration(monkeypatch):
    """pip here reads only what a test gives it: not this machine's configuration files (constraints,
    mirrors, find-links) nor its PIP_* variables. A user's configuration (proxy, certificates) applies."""
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


@pytest.fixture
def index(local_index):
    """The session's index with its counters and speed reset for one test."""
    local_index.requests.clear()
    local_index.chunk_delay = 0.0
    return local_index


def install(index: LocalIndex, root: Path, key: str = "cu130", **kwargs) -> R.RuntimeInstall:
    return R.RuntimeInstall(R.RUNTIMES[key], root, pip=PIP, index_url=index.url,
                            requirement=f"torch=={FAKE_TORCH}", **kwargs)


# ---- other Pythons ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> Path:
    """A Python 3.10+ without torch, numpy or pillow: a fresh venv of this interpreter's base, no pip."""
    folder = tmp_path_factory.mktemp("bare-venv")
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(folder)
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def old_python() -> str | None:
    """An interpreter older than 3.10 if this machine has one (pyenv), else None."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(root.glob("versions/3.[6-9].*/bin/python3")) + sorted(root.glob("versions/2.7.*/bin/python"))
    return str(found[0]) if found else None


def test_the_probe_of_this_python_says_what_it_has():
    probe = R.probe_python(sys.executable)
    assert probe.version == ".".join(map(str, sys.version_info[:3]))
    if HAS_TORCH:
        import torch

        assert probe.ok and probe.torch == torch.__version__, probe.message
        assert Path(probe.torch_file).resolve() == Path(torch.__file__).resolve()
        assert f"Python {probe.version} with PyTorch {torch.__version__}" in probe.message
        assert probe.devices or "no GPU found" in probe.message  # this machine has none; a GPU one lists it
    else:
        assert not probe.ok and "has no PyTorch" in probe.message


@pytest.mark.parametrize("case", ["missing", "folder", "not executable", "text file", "no torch", "old python"])
def test_the_probe_says_why_a_python_cannot_serve(tmp_path, bare_python, case):
    if case == "missing":
        python, expected = tmp_path / "nope" / "python", "no such file"
    elif case == "folder":
        python, expected = tmp_path, "is a folder: choose the interpreter inside it"
    elif case == "not executable":
        python, expected = tmp_path / "python", "is not executable"
        python.write_text("#!/bin/sh\n")
        python.chmod(0o644)
        if os.access(python, os.X_OK):
            pytest.skip("running as a user who may execute anything")
    elif case == "text file":  # made executable, but no program
        python, expected = tmp_path / "notes.txt", "not a Python interpreter"
        python.write_text("shopping list: bread, milk\n")
        python.chmod(0o755)
    elif case == "no torch":
        python, expected = bare_python, "has no PyTorch: install it there, e.g. '"
    else:
        found = old_python()
        if found is None:
            pytest.skip("no Python older than 3.10 on this machine")
        python, expected = found, "SHARP needs Python 3.10 or newer"
    probe = R.probe_python(python)
    assert not probe.ok and expected in probe.message and str(python) in probe.message, probe.message
    assert probe.message.startswith(f"Python for Inference '{python}': ")
    assert isinstance(probe.error(), DependencyError) and probe.error().path == str(python)


def test_a_python_with_torch_but_without_numpy_or_pillow_is_named_as_such(tmp_path, bare_python):
    site = tmp_path / "site"
    for wheel in fake_torch_wheels(tmp_path / "wheels", padding=10):
        zipfile.ZipFile(wheel).extractall(site)
    probe = R.probe_python(bare_python, runtime=site)
    assert probe.torch == FAKE_TORCH and not probe.ok
    assert f"has PyTorch {FAKE_TORCH} but not numpy and pillow" in probe.message
    assert f"'{bare_python} -m pip install numpy pillow'" in probe.message


def test_a_probe_that_prints_nonsense_or_hangs_is_no_python(tmp_path):
    liar = tmp_path / "liar"
    liar.write_text(f"#!{sys.executable}\nprint('SHARP-PROBE not json')\n")
    liar.chmod(0o755)
    assert "is not a Python interpreter" in R.probe_python(liar).message
    sleeper = tmp_path / "sleeper"
    sleeper.write_text(f"#!{sys.executable}\nimport time; time.sleep(30)\n")
    sleeper.chmod(0o755)
    t0 = time.monotonic()
    assert "did not answer within 1 s" in R.probe_python(sleeper, timeout=1).message
    assert time.monotonic() - t0 < 10


def test_gpus_are_described_with_name_memory_and_whether_the_build_runs_on_them():
    line = R.PROBE_MARK + json.dumps({
        "python": [3, 11, 9], "modules": {"numpy": "2.1", "PIL": "11"}, "torch": "2.9.1+cu126", "cuda": "12.6",
        "arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
        "devices": [{"kind": "CUDA", "index": 0, "name": "NVIDIA GeForce RTX 3060", "memory": 12 * 2**30,
                     "capability": "8.6"},
                    {"kind": "CUDA", "index": 1, "name": "NVIDIA GeForce RTX 5090", "memory": 32 * 2**30,
                     "capability": "12.0"}]})
    probe = R.parse_probe("/opt/conda/bin/python", "some import noise\n" + line + "\n")
    assert probe.ok and [d.supported for d in probe.devices] == [True, False]
    assert "CUDA 0: NVIDIA GeForce RTX 3060, 12.0 GB, compute 8.6" in probe.message
    assert "RTX 5090, 32.0 GB, compute 12.0 - this PyTorch build has no kernels for it" in probe.message
    assert R.PythonProbe.from_json(json.loads(json.dumps(probe.to_json()))) == probe


# ---- the worker in another Python -----------------------------------------------------------------


def test_a_foreign_python_gets_only_the_package_folder_and_the_host_its_whole_path(tmp_path):
    parent = str(C.PACKAGE_DIR.parent)
    assert json.loads(C.child_env("/opt/conda/bin/python")[C.ENV_PATH]) == [parent]
    assert json.loads(C.child_env("/opt/conda/bin/python", tmp_path)[C.ENV_PATH]) == [str(tmp_path), parent]
    host = json.loads(C.child_env()[C.ENV_PATH])
    assert host[0] == parent and set(p for p in sys.path if p) <= set(host)
    assert json.loads(C.child_env(sys.executable, tmp_path)[C.ENV_PATH])[:2] == [str(tmp_path), parent]
    assert not C.is_foreign(None) and not C.is_foreign(sys.executable) and C.is_foreign("/opt/conda/bin/python")


def test_a_worker_in_a_python_without_numpy_says_what_to_install(bare_python):
    worker = W.InferenceWorker(python=str(bare_python))
    try:
        with pytest.raises(DependencyError, match=r"cannot load the module 'numpy'.*-m pip install numpy pillow"):
            worker.run(W.PredictRequest(SAMPLE, "x.pt"))
    finally:
        worker.close()
    with pytest.raises(DependencyError, match=r"cannot load the module 'numpy'"):
        W.check_checkpoint("x.pt", python=str(bare_python))


@pytest.mark.parametrize("case", ["missing", "text file"])
def test_a_worker_that_cannot_start_is_a_dependency_error_naming_the_file(tmp_path, case):
    python = tmp_path / ("absent" if case == "missing" else "notes.txt")
    if case == "text file":
        python.write_text("not a program\n")
        python.chmod(0o755)
    worker = W.InferenceWorker(python=str(python))
    try:
        with pytest.raises(DependencyError, match=rf"Python for Inference '{re.escape(str(python))}': "
                                                  r"(no such file|is not a program)"):
            worker.run(W.PredictRequest(SAMPLE, "x.pt"))
    finally:
        worker.close()


# ---- the GPU runtime: command and progress --------------------------------------------------------


def test_the_install_command_takes_every_dependency_into_the_private_folder(tmp_path, monkeypatch):
    cmd = R.install_command(R.RUNTIMES["cu126"], tmp_path / "cu126.partial")
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[cmd.index("--target") + 1] == str(tmp_path / "cu126.partial")
    assert cmd[cmd.index("--index-url") + 1] == "https://download.pytorch.org/whl/cu126"
    assert cmd[-1] == "torch==2.9.1" and "--no-deps" not in cmd and "--only-binary" in cmd
    assert R.install_command(R.RUNTIMES["cu130"], tmp_path)[-1] == "torch==2.13.0"
    monkeypatch.setenv(R.ENV_INDEX, "http://127.0.0.1:9/simple")
    monkeypatch.setenv(R.ENV_REQUIREMENT, "torch==9.9.9")
    monkeypatch.setenv(R.ENV_PIP, json.dumps(["/other/python", "-m", "pip", "--isolated"]))
    cmd = R.install_command(R.RUNTIMES["cu130"], tmp_path, raw_progress=False)
    assert cmd[:5] == ["/other/python", "-m", "pip", "--isolated", "install"]
    assert cmd[cmd.index("--index-url") + 1] == "http://127.0.0.1:9/simple" and cmd[-1] == "torch==9.9.9"
    assert cmd[cmd.index("--progress-bar") + 1] == "off"
    monkeypatch.setenv(R.ENV_PIP, "pip install")
    with pytest.raises(SharpError, match="JSON list"):
        R.install_command(R.RUNTIMES["cu130"], tmp_path)


def test_pip_output_lines_become_progress():
    progress = R.PipProgress(expected_bytes=int(2.8e9))
    lines = [
        "Looking in indexes: https://download.pytorch.org/whl/cu130",
        "Collecting torch==2.13.0",
        "  Downloading https://download.pytorch.org/whl/cu130/torch-2.13.0%2Bcu130-cp311-cp311-manylinux_2_28_x86_64"
        ".whl (1400.5 MB)",
    ]
    seen = [(progress.feed(line), progress.stage) for line in lines]
    assert seen[1:] == [(True, "resolving"), (True, "downloading")]
    assert progress.file == "torch-2.13.0+cu130-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert progress.feed("Progress 700250000 of 1400500000")
    assert progress.fraction == pytest.approx(0.05 + 0.85 * 0.7e9 / 2.8e9, rel=1e-3)
    assert "(0.70 GB of about 2.8 GB)" in progress.text()
    progress.feed("Collecting nvidia-cudnn-cu13==9.20.0.48 (from torch==2.13.0)")
    progress.feed("  Downloading nvidia_cudnn_cu13-9.20.0.48-py3-none-manylinux_2_27_x86_64.whl (700 MB)")
    assert progress.downloaded == 1_400_500_000 and progress.stage == "downloading"
    progress.feed("Installing collected packages: nvidia-cudnn-cu13, torch")
    assert progress.stage == "installing" and progress.fraction == pytest.approx(0.9)
    progress.feed("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device")
    assert progress.errors == ["Could not install packages due to an OSError: [Errno 28] No space left on device"]


# ---- the GPU runtime: installing from the local index ---------------------------------------------


def test_install_with_progress_then_the_worker_imports_torch_from_the_runtime(index, tmp_path):
    events: list[tuple[str, float]] = []
    job = install(index, tmp_path / "runtime", on_progress=lambda p: events.append((p.stage, p.fraction)))
    runtime = wait(job.start())
    final = tmp_path / "runtime" / "cu130"
    assert runtime.folder == final and runtime.torch == FAKE_TORCH and runtime.fits_this_python
    assert (final / "nvidia_cuda_runtime_stub" / "__init__.py").is_file(), "the CUDA library wheel came along"
    assert sorted(p.name for p in (tmp_path / "runtime").iterdir()) == ["cu130"], "no .partial or staging left"
    stages = [stage for stage, _ in events]
    assert {"resolving", "downloading", "checking", "done"} <= set(stages)
    assert [f for _, f in events] == sorted(f for _, f in events), "progress never goes back"
    assert any(p.endswith("torch-9.9.9-py3-none-any.whl") for p in index.requests)
    # the probe ran with the worker's path set-up: torch 9.9.9 from the runtime, not this environment's
    probe = runtime.probe
    assert probe is not None and probe.torch == FAKE_TORCH and probe.ok, probe
    assert Path(probe.torch_file).resolve().is_relative_to(final.resolve())
    assert "no GPU found (CUDA 13.0 build" in probe.message and "driver" in probe.message
    assert R.installed_runtime(tmp_path / "runtime") == runtime
    again = R.probe_python(sys.executable, runtime=final)  # as the worker will see it on every run
    assert again.torch == FAKE_TORCH and Path(again.torch_file).resolve().is_relative_to(final.resolve())
    assert not any(getattr(m, "__file__", None) and str(final) in str(m.__file__) for m in list(sys.modules.values()))


def test_cancel_kills_pip_and_leaves_nothing(index, tmp_path):
    index.chunk_delay = 0.25  # 3 MB in 64 kB chunks: about 12 s
    events: list[str] = []
    job = install(index, tmp_path / "runtime", on_progress=lambda p: events.append(p.stage)).start()
    deadline = time.monotonic() + 60
    while "downloading" not in events and time.monotonic() < deadline:
        job.poll()
        time.sleep(0.05)
    assert "downloading" in events, job.progress.tail
    pip = job._pip
    t0 = time.monotonic()
    job.cancel()
    assert time.monotonic() - t0 < 5 and pip is not None and not pip.alive
    assert job.state == "cancelled" and isinstance(job.error, Cancelled)
    assert list((tmp_path / "runtime").iterdir()) == [], "no final folder, no .partial, no staging"
    with pytest.raises(Cancelled):
        wait(job)


def test_a_failed_install_says_why_and_leaves_nothing(index, tmp_path):
    job = R.RuntimeInstall(R.RUNTIMES["cu126"], tmp_path / "runtime", pip=PIP, index_url=index.url,
                           requirement="torch==9.9.8")
    with pytest.raises(DependencyError, match=r"CUDA 12\.6.*failed: pip could not install torch==9\.9\.8: .*"
                                              r"No matching distribution found for torch==9\.9\.8"):
        wait(job.start())
    assert list((tmp_path / "runtime").iterdir()) == []


def test_one_runtime_at_a_time_and_remove_deletes_it(index, tmp_path):
    root = tmp_path / "runtime"
    wait(install(index, root, key="cu126").start())
    (root / "cu130.partial").mkdir()  # left by a Blender that crashed mid-install
    wait(install(index, root, key="cu130").start())
    assert sorted(p.name for p in root.iterdir()) == ["cu130"]
    assert R.installed_runtime(root).key == "cu130"
    assert R.remove_runtimes(root) == [root / "cu130"]
    assert list(root.iterdir()) == [] and R.installed_runtime(root) is None


def test_a_runtime_of_another_python_version_is_named_and_not_used(tmp_path):
    folder = tmp_path / "cu130"
    folder.mkdir()
    (folder / R.MARKER).write_text(json.dumps({"key": "cu130", "label": "CUDA 13.0", "torch": "2.13.0",
                                               "python": "3.9", "platform": sys.platform}))
    found = R.installed_runtime(tmp_path)
    assert found is not None and not found.fits_this_python
    assert "installed for Python 3.9" in found.mismatch() and "install it again" in found.mismatch()
    (tmp_path / "cu126").mkdir()  # no marker: not a runtime
    assert R.read_runtime(tmp_path / "cu126") is None


def test_without_pip_the_install_says_how_to_get_it(tmp_path, bare_python):
    with pytest.raises(DependencyError, match=r"no pip to install the GPU runtime with.*ensurepip"):
        R.RuntimeInstall(R.RUNTIMES["cu130"], tmp_path, python=str(bare_python)).start()
    assert not (tmp_path / "cu130.partial").exists()

