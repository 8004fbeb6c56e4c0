"""Camera moves through a SHARP scene: preset paths of camera poses sized by the scene's depth.

Poses are world_to_camera 4x4 matrices in the Gaussians' OpenCV frame (x right, y down, z
forward); the photo's camera is the identity and every path starts there. Translations are a
fraction of the scene's robust near depth (as ml-sharp's rendered trajectories scale theirs), so
a scene twice as deep gets a move twice as long, and no camera ever reaches the nearest surfaces.
Sideways moves show the photo's edges: the splats end at the photo's frame (see ``shows_edges``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cameras import look_at
from .errors import CameraError

PRESETS = ("DOLLY_IN", "ORBIT", "SWING", "RISE", "KEN_BURNS")
EASINGS = ("LINEAR", "EASE_IN_OUT")
NEAR_PERCENTILE = 5.0  # the near depth: this percentile of the visible splats' depths
FOCUS_PERCENTILE = 50.0  # orbit and swing look at a point this deep
MIN_OPACITY = 0.1  # fainter splats do not count as surfaces
MAX_FORWARD = 0.8  # whatever the amplitude factor, a camera stays this fraction of the near depth short of it
# the move's size as a fraction of the near depth: (right, down, forward) at full amplitude; chosen so
# the default moves stay inside what the photo covers (sideways ones show a thin edge at most)
SIZES = {
    "DOLLY_IN": (0.0, 0.0, 0.35),
    "ORBIT": (0.06, 0.06, 0.0),
    "SWING": (0.08, 0.0, 0.0),
    "RISE": (0.0, 0.06, 0.0),
    "KEN_BURNS": (0.03, 0.015, 0.15),
}
SIDEWAYS = frozenset({"ORBIT", "SWING", "RISE", "KEN_BURNS"})  # presets that can show the photo's edges


@dataclass(frozen=True)
class SceneDepths:
    """The two depths a move is sized and aimed by, in the scene's units."""

    near: float  # the NEAR_PERCENTILE of the visible splats' depths
    focus: float  # their median depth


def scene_depths(means: np.ndarray, opacities: np.ndarray | None = None) -> SceneDepths:
    """``SceneDepths`` of splats in front of the photo camera, ignoring faint ones (robust to stray splats)."""
    z = np.asarray(means, dtype=np.float64)[:, 2]
    keep = z > 0
    if opacities is not None:
        keep &= np.asarray(opacities, dtype=np.float64).reshape(-1) >= MIN_OPACITY
    if not keep.any():
        raise CameraError("a camera move needs splats in front of the photo's camera")
    near, focus = np.percentile(z[keep], [NEAR_PERCENTILE, FOCUS_PERCENTILE])
    return SceneDepths(float(near), float(focus))


def eased(t: np.ndarray, easing: str) -> np.ndarray:
    """Progress 0..1 for time 0..1: as is, or slow at both ends (smoothstep)."""
    if easing == "LINEAR":
        return t
    if easing == "EASE_IN_OUT":
        return t * t * (3.0 - 2.0 * t)
    raise CameraError(f"unknown easing {easing!r} (one of {', '.join(EASINGS)})")


def camera_path(preset: str, frames: int, depths: SceneDepths, amplitude: float = 1.0,
                easing: str = "EASE_IN_OUT", loop: bool = False) -> np.ndarray:
    """``frames`` world_to_camera poses (frames, 4, 4) of ``preset``; the first is the identity.

    ``amplitude`` scales the preset's size; ``loop`` ends where it started (orbit always does).
    """
    if preset not in PRESETS:
        raise CameraError(f"unknown camera move {preset!r} (one of {', '.join(PRESETS)})")
    if int(frames) != frames or frames < 2:
        raise CameraError(f"a camera move needs at least 2 frames, not {frames!r}")
    if not np.isfinite(amplitude) or amplitude <= 0:
        raise CameraError(f"the move's amplitude must be a positive number, not {amplitude!r}")
    if not (np.isfinite(depths.near) and depths.near > 0 and depths.focus >= depths.near):
        raise CameraError(f"the scene's depths cannot size a move (near {depths.near}, focus {depths.focus})")
    u = eased(np.linspace(0.0, 1.0, int(frames)), easing)
    size = np.array(SIZES[preset]) * depths.near * amplitude
    size[2] = min(size[2], MAX_FORWARD * depths.near)
    if preset == "ORBIT":  # a circle in the image plane through the start, around the view axis
        angle = 2.0 * np.pi * u
        offsets = np.stack([np.sin(angle), np.cos(angle) - 1.0, np.zeros_like(u)], axis=1)
    elif preset == "SWING":  # right, back through the start to the left (and back again when looping)
        phase = 2.0 * np.pi * u if loop else 1.5 * np.pi * u
        offsets = np.stack([np.sin(phase), np.zeros_like(u), np.zeros_like(u)], axis=1)
    else:  # straight moves: out and back when looping
        reach = (1.0 - np.cos(2.0 * np.pi * u)) / 2.0 if loop else u
        direction = {"DOLLY_IN": (0.0, 0.0, 1.0), "RISE": (0.0, -1.0, 0.0), "KEN_BURNS": (1.0, -1.0, 1.0)}[preset]
        offsets = reach[:, None] * np.array(direction)
    eyes = offsets * size
    if preset in ("ORBIT", "SWING", "RISE"):  # keep the focus point where it was in the picture
        focus = np.array([0.0, 0.0, depths.focus])
        return np.stack([look_at(eye, focus) for eye in eyes])
    poses = np.tile(np.eye(4), (len(eyes), 1, 1))
    poses[:, :3, 3] = -eyes
    return poses


def camera_centers(poses: np.ndarray) -> np.ndarray:
    """The cameras' positions (frames, 3) in the scene's frame."""
    rotations, translations = poses[:, :3, :3], poses[:, :3, 3]
    return -np.einsum("fji,fj->fi", rotations, translations)


def shows_edges(preset: str) -> bool:
    """Whether the move can show where the splats end at the photo's frame (a sideways move)."""
    return preset in SIDEWAYS
