"""Camera-move paths: start at the photo camera, sized by the scene's depth, never into the nearest surfaces."""

from __future__ import annotations

import numpy as np
import pytest

from sharp_addon import camera_moves as M
from sharp_addon.cameras import CameraError


def _scene(scale: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.uniform(1.5, 6.0, 4000)
    xy = rng.uniform(-0.5, 0.5, (4000, 2)) * z[:, None]
    opacities = rng.uniform(0.2, 1.0, 4000)
    opacities[:50] = 0.01  # faint floaters close to the camera do not count as surfaces
    z[:50] = 0.05
    return np.column_stack([xy, z]) * scale, opacities


@pytest.mark.parametrize("preset", M.PRESETS)
@pytest.mark.parametrize("loop", [False, True])
def test_path_starts_at_the_photo_camera_and_stays_out_of_the_nearest_depths(preset: str, loop: bool) -> None:
    means, opacities = _scene()
    depths = M.scene_depths(means, opacities)
    assert 1.5 < depths.near < 2.0 and 3.0 < depths.focus < 4.5  # the floaters were ignored
    for amplitude in (1.0, 3.0):
        poses = M.camera_path(preset, 24, depths, amplitude=amplitude, loop=loop)
        assert poses.shape == (24, 4, 4)
        np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-12)
        centers = M.camera_centers(poses)
        assert np.abs(centers).max() > 0.01  # it moves
        nearest = np.percentile(means[opacities >= M.MIN_OPACITY, 2], 5)
        assert (centers[:, 2] < nearest).all()
        np.testing.assert_allclose(np.linalg.det(poses[:, :3, :3]), 1.0, atol=1e-9)  # rigid


@pytest.mark.parametrize("preset", M.PRESETS)
def test_amplitude_scales_with_scene_depth_and_the_factor(preset: str) -> None:
    means, opacities = _scene()
    one = M.camera_centers(M.camera_path(preset, 16, M.scene_depths(means, opacities)))
    two = M.camera_centers(M.camera_path(preset, 16, M.scene_depths(means * 2, opacities)))
    np.testing.assert_allclose(two, 2 * one, atol=1e-9)
    half = M.camera_centers(M.camera_path(preset, 16, M.scene_depths(means, opacities), amplitude=0.5))
    np.testing.assert_allclose(half, one / 2, atol=1e-9)


@pytest.mark.parametrize("preset", M.PRESETS)
def test_loop_returns_to_the_start(preset: str) -> None:
    poses = M.camera_path(preset, 30, M.scene_depths(*_scene()), loop=True)
    np.testing.assert_allclose(poses[-1], poses[0], atol=1e-9)
    if preset != "ORBIT":  # orbit is a circle either way; the others end elsewhere without loop
        assert not np.allclose(M.camera_path(preset, 30, M.scene_depths(*_scene()))[-1], poses[0])


@pytest.mark.parametrize("easing", M.EASINGS)
def test_easing_is_monotone_and_ease_in_out_is_slow_at_the_ends(easing: str) -> None:
    z = M.camera_centers(M.camera_path("DOLLY_IN", 40, M.scene_depths(*_scene()), easing=easing))[:, 2]
    steps = np.diff(z)
    assert (steps > 0).all()
    if easing == "EASE_IN_OUT":
        assert steps[0] < steps[len(steps) // 2] / 5 and steps[-1] < steps[len(steps) // 2] / 5
    else:
        np.testing.assert_allclose(steps, steps[0])


def test_orbit_and_swing_keep_looking_at_the_focus() -> None:
    depths = M.scene_depths(*_scene())
    for preset in ("ORBIT", "SWING"):
        poses = M.camera_path(preset, 12, depths)
        focus = poses[:, :3, :3] @ np.array([0.0, 0.0, depths.focus]) + poses[:, :3, 3]
        np.testing.assert_allclose(focus[:, :2], 0.0, atol=1e-9)  # on every frame's view axis


@pytest.mark.parametrize("args, message", [
    (("SPIN", 10), "unknown camera move 'SPIN'"),
    (("DOLLY_IN", 1), "at least 2 frames"),
    (("DOLLY_IN", 2.5), "at least 2 frames"),
])
def test_bad_arguments_are_clear(args: tuple, message: str) -> None:
    with pytest.raises(CameraError, match=message):
        M.camera_path(*args, M.scene_depths(*_scene()))
    with pytest.raises(CameraError, match="amplitude"):
        M.camera_path("ORBIT", 10, M.scene_depths(*_scene()), amplitude=-1)
    with pytest.raises(CameraError, match="easing"):
        M.camera_path("ORBIT", 10, M.scene_depths(*_scene()), easing="BOUNCE")
    with pytest.raises(CameraError, match="in front of"):
        M.scene_depths(np.array([[0.0, 0.0, -1.0]]))
