"""The add-on registers and unregisters cleanly on real Blender (bpy 4.2 LTS, 5.0, 5.2)."""

from __future__ import annotations

import importlib

import pytest

from tests.conftest import ADDON_MODULE

pytestmark = pytest.mark.blender


def test_the_preferences_the_operators_read_are_the_registered_ones(addon, bpy_session):
    prefs = bpy_session.context.preferences.addons[ADDON_MODULE].preferences
    addon = importlib.import_module(ADDON_MODULE + ".blender.addon")  # the one way every module reads them
    assert addon.get_preferences(bpy_session.context) == prefs


def test_cli_command_callback_runs_the_shared_front_door(addon, tmp_path, capsys):
    blender = importlib.import_module(ADDON_MODULE + ".blender")
    assert blender.cli_registered()
    assert blender.cli_command(["check", "--checkpoint", str(tmp_path / "none.pt")]) == 1
    assert "Checkpoint not found" in capsys.readouterr().out


def test_disable_unregisters_everything_and_enable_restores_it(addon, bpy_session):
    import addon_utils

    classes = importlib.import_module(ADDON_MODULE + ".blender").classes
    assert classes, "the Blender layer registers no classes"

    def registered() -> bool:
        states = {cls.is_registered for cls in classes}
        assert len(states) == 1, "some classes are registered and some are not"
        return states.pop()

    assert registered()
    addon_utils.disable(ADDON_MODULE, default_set=True)
    try:
        assert not registered()
        assert ADDON_MODULE not in bpy_session.context.preferences.addons
        assert not importlib.import_module(ADDON_MODULE + ".blender").cli_registered()
    finally:
        addon_utils.enable(ADDON_MODULE, default_set=True)
    assert registered() and ADDON_MODULE in bpy_session.context.preferences.addons


def test_scene_reset_keeps_the_addon(addon, clean_scene, bpy_session):
    assert len(bpy_session.data.objects) == 0
    assert ADDON_MODULE in bpy_session.context.preferences.addons


def test_the_preferences_say_what_auto_precision_means_on_this_cpu(addon):
    preferences = importlib.import_module(ADDON_MODULE + ".blender.preferences")
    assert preferences.cpu_precision("FP32") == "float32 (as asked)"
    auto = preferences.cpu_precision("AUTO")
    assert auto.startswith(("float32 (this CPU has no native", "bfloat16 (this CPU computes bfloat16 natively"))
