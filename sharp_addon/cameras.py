"""Pinhole cameras in the Gaussians' frame, for the exact renderer and camera moves.

No bpy, no torch. Conventions (those of ``gaussians.py``): the OpenCV frame, x right, y down,
z forward; ``world_to_camera`` maps points of the Gaussians' frame into the camera's OpenCV frame;
the principal point is in pixel units with (0, 0) the top-left corner of the top-left pixel, so
pixel (i, j) has its centre at (i + 0.5, j + 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import CameraError, GaussiansError

INTRINSICS = ("fx", "fy", "cx", "cy")


def _pose(matrix: Any, what: str = "world_to_camera") -> np.ndarray:
    """A validated 4x4 float64 rigid transform (rotation without scale or mirror, last row 0 0 0 1)."""
    try:
        m = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise CameraError(f"{what} must be a 4x4 matrix of numbers; got {matrix!r:.80}") from None
    if m.shape != (4, 4):
        raise CameraError(f"{what} must be a 4x4 matrix; got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise CameraError(f"{what} must hold finite numbers")
    if not np.allclose(m[3], (0.0, 0.0, 0.0, 1.0), atol=1e-9):
        raise CameraError(f"{what}'s last row must be 0 0 0 1 (a rigid transform); got {m[3].tolist()}")
    r = m[:3, :3]
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-5) or np.linalg.det(r) < 0:
        raise CameraError(f"{what}'s 3x3 part must be a proper rotation (orthonormal, det +1)")
    return m


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in the Gaussians' frame (OpenCV: x right, y down, z forward)."""

    fx: float  # focal lengths in pixels
    fy: float
    cx: float  # principal point in pixels, (0, 0) = top-left corner of the top-left pixel
    cy: float
    width: int
    height: int
    world_to_camera: np.ndarray = field(default_factory=lambda: np.eye(4))  # 4x4 float64

    def __post_init__(self) -> None:
        for name in INTRINSICS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise CameraError(f"camera {name} must be a number of pixels; got {value!r}")
            if not math.isfinite(float(value)):
                raise CameraError(f"camera {name} must be finite; got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.fx <= 0 or self.fy <= 0:
            raise CameraError(f"camera focal lengths must be positive pixels; got fx={self.fx}, fy={self.fy}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise CameraError(f"camera {name} must be a positive whole number of pixels; got {value!r}")
            object.__setattr__(self, name, int(value))
        pose = _pose(self.world_to_camera)
        pose.setflags(write=False)
        object.__setattr__(self, "world_to_camera", pose)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Camera) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.fx, self.fy, self.cx, self.cy, self.width, self.height, self.world_to_camera.tobytes()))

    @classmethod
    def from_gaussians(cls, g: Any, width: int | None = None) -> Camera:
        """The photo's camera: identity pose, ``focal_px``, principal point at the image centre.

        ``width`` scales the output (the height follows, keeping the aspect ratio).
        """
        if g.focal_px is None or g.image_size is None:
            raise GaussiansError("these Gaussians carry no photo camera (focal_px and image_size are unknown)")
        w, h = g.image_size
        camera = cls(fx=g.focal_px, fy=g.focal_px, cx=w / 2, cy=h / 2, width=w, height=h)
        if width is None:
            return camera
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width <= 0:
            raise CameraError(f"output width must be a positive whole number of pixels; got {width!r}")
        return camera.resized(int(width), max(1, round(h * int(width) / w)))

    def resized(self, width: int, height: int) -> Camera:
        """The same view at another pixel size (intrinsics scaled per axis)."""
        sx, sy = width / self.width, height / self.height
        return Camera(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height, self.world_to_camera)

    def moved(self, world_to_camera: np.ndarray) -> Camera:
        """The same intrinsics at another pose."""
        return Camera(self.fx, self.fy, self.cx, self.cy, self.width, self.height, world_to_camera)

    @property
    def rotation(self) -> np.ndarray:
        """3x3 rotation of ``world_to_camera``."""
        return self.world_to_camera[:3, :3]

    @property
    def position(self) -> np.ndarray:
        """The camera centre in the Gaussians' frame (-R^T t)."""
        return -self.rotation.T @ self.world_to_camera[:3, 3]

    @property
    def intrinsics(self) -> np.ndarray:
        """The 3x3 matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates [N, 2] of points [N, 3] of the Gaussians' frame (f x / z + c)."""
        p = np.asarray(points, dtype=np.float64) @ self.rotation.T + self.world_to_camera[:3, 3]
        return np.stack([self.fx * p[:, 0] / p[:, 2] + self.cx, self.fy * p[:, 1] / p[:, 2] + self.cy], axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (the worker protocol)."""
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width,
                "height": self.height, "world_to_camera": self.world_to_camera.tolist()}

    @classmethod
    def from_dict(cls, d: Any) -> Camera:
        """The camera ``to_dict`` describes; ``CameraError`` naming what is missing or wrong."""
        if not isinstance(d, dict):
            raise CameraError(f"a camera must be a dict of its fields; got {type(d).__name__}")
        fields = (*INTRINSICS, "width", "height", "world_to_camera")
        missing = [k for k in fields if k not in d]
        if missing:
            raise CameraError(f"a camera needs {', '.join(fields)}; missing {', '.join(missing)}")
        extra = sorted(set(d) - set(fields))
        if extra:
            raise CameraError(f"unknown camera fields: {', '.join(map(str, extra))}")
        return cls(**{k: d[k] for k in fields})


def look_at(eye: Any, target: Any, up: Any = (0.0, -1.0, 0.0)) -> np.ndarray:
    """The world_to_camera of a camera at ``eye`` looking at ``target``, ``up`` roughly up.

    In the OpenCV frame "up" is -y, hence the default; the identity pose is
    ``look_at((0, 0, 0), (0, 0, 1))``.
    """
    eye, target, up = (np.asarray(v, dtype=np.float64).reshape(3) for v in (eye, target, up))
    forward = target - eye
    if np.linalg.norm(forward) == 0:
        raise CameraError("look_at needs a target different from the eye")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        raise CameraError("look_at's up direction must not be parallel to the viewing direction")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    m = np.eye(4)
    m[:3, :3] = np.stack([right, down, forward])
    m[:3, 3] = -m[:3, :3] @ eye
    return m
