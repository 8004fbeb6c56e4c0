"""README's main job, end to end with a small checkpoint: build, install in Blender, convert a photo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sharp_addon import ply

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.blender
@pytest.mark.torch
def test_demo_converts_the_sample_photo_inside_blender(tmp_path):
    torch = pytest.importorskip("torch", reason="needs PyTorch, which this test environment does not have")
    from tests.support.builders import tiny_state_dict

    checkpoint = tmp_path / "tiny.pt"
    torch.save(tiny_state_dict(), checkpoint)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "demo_blender.py"), "--checkpoint", str(checkpoint),
         "--image", str(ROOT / "tests" / "data" / "sample_640x480.png"), "--output", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "extension installed" in result.stdout and "[1/1] sample_640x480.png" in result.stdout
    g = ply.read_ply(tmp_path / "out" / "sample_640x480.ply")
    assert len(g) == 2 * 256 * 256 and g.image_size == (640, 480)
    assert "scene: 'sample_640x480' with 131,072 splats, camera 'sample_640x480 Camera'" in result.stdout
    assert (tmp_path / "out" / "sample_640x480.blend").stat().st_size > 131_072 * 4 * 3
    from PIL import Image

    with Image.open(tmp_path / "out" / "sample_640x480_render.png") as render:
        assert render.size == (320, 240)
        pixels = np.asarray(render.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 5, "the render from the photo's camera shows the splats, not an empty frame"
