"""The worker's render command: the same images as the renderer in-process, progress, frames as
they come, cancel, and bad requests answered as clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from sharp_addon import worker as W
from sharp_addon.errors import Cancelled, GaussiansError, SharpError
from sharp_addon.work import wait
from tests.support.builders import random_gaussians

pytestmark = pytest.mark.torch

WIDTH, HEIGHT = 64, 48


def scene_and_cameras():
    from sharp_addon.cameras import Camera

    g = random_gaussians(400, seed=3, sh_degree=1)
    g = g.replace(scales=g.scales * 20)  # big enough to cover pixels at 64 x 48
    photo = Camera.from_gaussians(g, width=WIDTH)
    turn = np.eye(4)
    angle = np.radians(8.0)
    turn[:3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    turn[:3, 3] = (0.2, -0.1, 0.3)
    return g, [photo, photo.moved(turn)]


@pytest.fixture
def worker():
    w = W.InferenceWorker()
    yield w
    w.close()


def test_a_render_in_the_worker_matches_the_renderer_in_process(worker, tmp_path):
    from sharp_addon.render import render_gaussians

    g, cameras = scene_and_cameras()
    events: list[tuple[str, float]] = []
    frames: list[int] = []
    job = worker.submit(W.RenderRequest(g, cameras), on_frame=lambda i, path: frames.append(i),
                        on_progress=lambda stage, fraction: events.append((stage, fraction)))
    images = wait(job)
    assert len(images) == 2 and frames == [0, 1] and job.status.frames_done == [0, 1]
    for image, camera in zip(images, cameras):
        want = render_gaussians(g, camera, device="cpu")
        assert image.shape == (HEIGHT, WIDTH, 4) and image.dtype == np.float32
        assert float(want[..., 3].max()) > 0.5  # the scene is seen
        np.testing.assert_allclose(image, want, rtol=0, atol=1e-6)
    assert {stage for stage, _ in events} == {"rendering"}
    fractions = [f for _, f in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "on the CPU" in job.status.detail and "400 splats" in job.status.detail
    assert not list(worker.scratch.iterdir())  # the splats' file and the frames are read and gone


def test_frames_go_to_the_files_asked_for_whole(worker, tmp_path):
    g, cameras = scene_and_cameras()
    source = tmp_path / "splats.npz"
    W.save_result(g, source)
    outputs = [str(tmp_path / f"frame-{i}.npy") for i in range(2)]
    images = worker.run(W.RenderRequest(str(source), [c.to_dict() for c in cameras], outputs=outputs))
    for image, path in zip(images, outputs):
        np.testing.assert_array_equal(np.load(path), image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame-0.npy", "frame-1.npy", "splats.npz"]


def test_cancel_kills_the_render_at_once(worker, tmp_path):
    g, cameras = scene_and_cameras()
    many = [cameras[i % 2] for i in range(200)]
    job = worker.submit(W.RenderRequest(g, many))
    with pytest.raises(Cancelled):
        wait(job, cancel=lambda: job.fraction > 0)
    assert not worker.alive and job.result is None
    assert len(job.status.frames_done) < len(many)
    assert not list(worker.scratch.iterdir())
    images = worker.run(W.RenderRequest(g, cameras[:1]))  # a fresh worker serves the next one
    assert images[0].shape == (HEIGHT, WIDTH, 4)


def test_a_missing_splats_file_is_a_clear_error(worker, tmp_path):
    _, cameras = scene_and_cameras()
    with pytest.raises(GaussiansError, match=r"absent\.npz.*no such file"):
        worker.run(W.RenderRequest(str(tmp_path / "absent.npz"), cameras))
    assert worker.alive  # the worker stays up for the next job


@pytest.mark.parametrize("camera, message", [
    ({"fx": 100.0}, "camera 1 of the render request"),
    ({"fx": -1.0, "fy": 100.0, "cx": 32.0, "cy": 24.0, "width": 64, "height": 48,
      "world_to_camera": np.eye(4).tolist()}, "camera 1 of the render request.*focal lengths must be positive"),
    ("not a camera", "camera 1 of the render request"),
])
def test_a_bad_camera_is_a_clear_error(worker, camera, message):
    g, _ = scene_and_cameras()
    with pytest.raises(SharpError, match=message) as caught:
        worker.run(W.RenderRequest(g, [camera]))
    assert "internal error" not in str(caught.value)
    assert not list(worker.scratch.iterdir())
