"""Test harness shared by every test environment (see tools/dev.py).

- Each test process gets its own, empty Blender user folder: ``BLENDER_USER_RESOURCES`` is set
  here, before anything can import bpy.
- Blender tests run against the add-on installed from the working tree as a real extension
  (``bl_ext.user_default.sharp_from_image``, linked file by file), with factory settings.
- Before the process exits every class the add-on registered is unregistered again (bpy 4.2
  crashes and 4.5 hangs at exit otherwise).
- Tests that need torch carry ``@pytest.mark.torch`` and skip, saying why, where it is absent.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "sample_640x480.png"  # the sample photo (640 x 480)
ADDON_ID = "sharp_from_image"
ADDON_MODULE = f"bl_ext.user_default.{ADDON_ID}"

USER_RESOURCES = Path(tempfile.mkdtemp(prefix="sharp-test-blender-user-"))
os.environ["BLENDER_USER_RESOURCES"] = str(USER_RESOURCES)  # must precede `import bpy`
sys.path.insert(0, str(ROOT))

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_BPY = importlib.util.find_spec("bpy") is not None

# fixtures that test modules share: a real HTTP server, a local package index, a Python with torch
pytest_plugins = ["tests.support.http_server", "tests.support.package_index", "tests.support.inference_python"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "torch" in item.keywords and not HAS_TORCH:
            item.add_marker(pytest.mark.skip(reason="needs PyTorch, which this test environment does not have"))
        if "blender" in item.keywords and not HAS_BPY:
            item.add_marker(pytest.mark.skip(reason="needs the bpy module, which this environment does not have"))


def install_working_tree_as_extension(repo_dir: Path) -> Path:
    """Link the package's files and the manifest into an extension folder of ``repo_dir``."""
    target = repo_dir / ADDON_ID
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in (ROOT / "sharp_addon").iterdir():
        if item.name != "__pycache__":
            (target / item.name).symlink_to(item)
    (target / "blender_manifest.toml").symlink_to(ROOT / "blender_manifest.toml")
    return target


def _raise(exc: BaseException) -> None:
    raise exc


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint file of the small test configuration (synthetic weights, ``tests/support/synthetic_weights.py``)."""
    torch = pytest.importorskip("torch", reason="needs PyTorch, which this test environment does not have")
    from tests.support.builders import tiny_state_dict

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(tiny_state_dict(), path)
    return path


@pytest.fixture(scope="session")
def bpy_session():
    """bpy with factory settings; on teardown every add-on class is unregistered again."""
    import bpy  # first: it puts Blender's own modules (addon_utils) on the path

    # isort: split
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy
    if ADDON_MODULE in bpy.context.preferences.addons:
        addon_utils.disable(ADDON_MODULE, default_set=True, handle_error=_raise)


@pytest.fixture(scope="session")
def addon(bpy_session):
    """The add-on module, enabled from the working tree through Blender's extension system."""
    import addon_utils

    repo = next(r for r in bpy_session.context.preferences.extensions.repos if r.module == "user_default")
    install_working_tree_as_extension(Path(repo.directory))
    addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=_raise)
    assert ADDON_MODULE in bpy_session.context.preferences.addons, "the add-on did not enable"
    return sys.modules[ADDON_MODULE]


@pytest.fixture
def clean_scene(bpy_session):
    """An empty scene from the factory startup file, add-on preferences untouched."""
    bpy_session.ops.wm.read_homefile(use_factory_startup=True, use_empty=True)
    return bpy_session.context.scene


@pytest.fixture
def prefs(addon, bpy_session):
    """The add-on's preferences, set back to their defaults afterwards."""
    preferences = bpy_session.context.preferences.addons[ADDON_MODULE].preferences
    yield preferences
    preferences.checkpoint_path = ""
    preferences.keep_loaded = True
