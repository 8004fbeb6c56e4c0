"""tools/dev.py, the README's front door: the demo asks for the weights' licence before it downloads them,
and ``test`` splits the suite between the environments as docs/development.md says."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def dev():
    spec = importlib.util.spec_from_file_location("sharp_dev_tool", ROOT / "tools" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture
def no_weights_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("SHARP_CHECKPOINT", raising=False)
    monkeypatch.setenv("SHARP_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def test_demo_without_weights_states_the_licence_and_downloads_nothing(dev, no_weights_anywhere, monkeypatch):
    ran = []
    monkeypatch.setattr(dev, "run", lambda cmd, **kw: ran.append(cmd) or 0)
    with pytest.raises(SystemExit) as stopped:
        dev.locate_checkpoint(None, Path(sys.executable), accept_licence=False)
    message = str(stopped.value)
    assert "Apple Machine Learning Research Model License" in message and "non-commercial research only" in message
    assert "tools/dev.py demo --accept-licence" in message and "--checkpoint" in message
    assert ran == [] and not any(no_weights_anywhere.rglob("*.pt*"))


def test_demo_with_the_licence_accepted_downloads_through_the_add_ons_checked_command(dev, no_weights_anywhere,
                                                                                         monkeypatch):
    ran = []
    monkeypatch.setattr(dev, "run", lambda cmd, **kw: ran.append([str(c) for c in cmd]) or 0)
    target = dev.locate_checkpoint(None, Path(sys.executable), accept_licence=True)
    assert ran == [[sys.executable, "-m", "sharp_addon", "download", "--accept-licence", "--to", str(target)]]
    assert target.name == "sharp_2572gikvuh.pt" and target.is_relative_to(no_weights_anywhere)


def test_a_failed_download_stops_the_demo_with_how_to_get_the_weights(dev, no_weights_anywhere, monkeypatch):
    monkeypatch.setattr(dev, "run", lambda cmd, **kw: 1)
    with pytest.raises(SystemExit) as stopped:
        dev.locate_checkpoint(None, Path(sys.executable), accept_licence=True)
    assert "could not be downloaded" in str(stopped.value)
    assert "python -m sharp_addon download --accept-licence" in str(stopped.value)


def test_the_bpy_free_tests_run_once_per_python_and_the_blender_side_everywhere(dev):
    shares = {name: dev.runs_of(env, [], quick=False) for name, env in dev.ENVS.items()}
    assert shares["blender-5.0"] == shares["blender-5.3"] == [("bpy-free", ["not blender"]),
                                                              ("Blender-side", ["blender"])]
    assert shares["blender-4.2"] == [("", ["blender or without_torch"])]
    assert shares["blender-5.2"] == [("", ["blender"])]
    assert {dev.ENVS[n].python for n in ("blender-5.0", "blender-5.3")} == {"3.11", "3.13"}
    assert dev.runs_of(dev.ENVS["blender-4.2"], ["tests/core/test_ply.py"], quick=False) == [("", [])]
    assert dev.pytest_arguments(["blender"], ["-m", "slow", "-q"]) == ["-m", "(blender) and (slow)", "-q"]
