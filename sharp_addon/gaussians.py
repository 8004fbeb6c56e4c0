"""Gaussian splats as plain numpy arrays: the one data contract between model, files and Blender.

No bpy, no torch. Conventions (also in README, "Conventions"):

- ``means`` [N, 3] metres, in the OpenCV camera frame of the photo: x right, y down, z forward.
- ``scales`` [N, 3] linear standard deviations along the Gaussian's own axes (not log).
- ``quats`` [N, 4] (w, x, y, z), rotating the Gaussian's axes into the frame of ``means``.
  SHARP writes unit quaternions; files may not, so consumers normalise (``rotation_matrices``).
- ``colors`` [N, 3] linear RGB, the colour of SH degree 0 (what a renderer blends).
- ``opacities`` [N] in [0, 1].
- ``sh_rest`` [N, K, 3] optional SH coefficients of degree 1..3 (K = 3, 8 or 15), kept exactly as a
  3DGS file stores them, i.e. in the colour encoding named by ``color_space``.
- ``color_space`` names how files encode colour: ``"srgb"`` (ml-sharp and every 3DGS viewer: the
  DC term is sRGB-encoded) or ``"linear"``. In memory, ``colors`` are always linear.
- ``focal_px`` and ``image_size`` (W, H) describe the photo (pinhole, principal point at W/2, H/2).
- ``layers`` [N] uint8, optional: SHARP's depth layer of each splat (0 = the visible surface,
  1 = what lies behind it); None when unknown (generic 3DGS files).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import GaussiansError
from .sh_rotation import polar_rotation, rotate_sh

SH_C0 = 0.28209479177387814  # SH basis constant of degree 0: sqrt(1 / (4 pi))
COLOR_SPACES = ("srgb", "linear")
SH_REST_COUNTS = {3: 1, 8: 2, 15: 3}  # coefficients per channel beyond DC -> SH degree
SHARP_LAYER_SIZE = 768 * 768  # splats per depth layer in every SHARP prediction (2 layers, layer-major)

# Axis changes, as rotation matrices acting on column vectors (README, "Conventions"; the Blender
# layer turns the photo frame and its camera by them, so the splats' own data never changes).
# Blender cameras look down their local -Z with +Y up: OpenCV (x, y, z) -> (x, -y, -z).
OPENCV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0])
# Blender world for a camera at the origin looking along +Y with +Z up: (x, y, z) -> (x, z, -y).
OPENCV_TO_BLENDER_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

FloatArray = np.ndarray


@dataclass(eq=False)
class Gaussians:
    """N Gaussian splats; validated and stored as contiguous float32 on construction."""

    means: FloatArray  # [N, 3] metres, OpenCV camera frame
    scales: FloatArray  # [N, 3] linear standard deviations, >= 0
    quats: FloatArray  # [N, 4] (w, x, y, z), non-zero
    colors: FloatArray  # [N, 3] linear RGB
    opacities: FloatArray  # [N] in [0, 1]
    sh_rest: FloatArray | None = None  # [N, K, 3], K in (3, 8, 15), encoded as color_space says
    focal_px: float | None = None  # focal length of the photo in pixels
    image_size: tuple[int, int] | None = None  # (W, H) of the photo in pixels
    color_space: str = "srgb"  # colour encoding used by files ("srgb" or "linear")
    layers: np.ndarray | None = None  # [N] uint8 depth layer of each splat, None when unknown

    def __post_init__(self) -> None:
        self.means = _float32_array("means", self.means, (3,))
        n = self.means.shape[0]
        self.scales = _float32_array("scales", self.scales, (3,), n)
        self.quats = _float32_array("quats", self.quats, (4,), n)
        self.colors = _float32_array("colors", self.colors, (3,), n)
        self.opacities = _float32_array("opacities", self.opacities, (), n)
        if self.sh_rest is not None:
            self.sh_rest = _float32_array("sh_rest", self.sh_rest, (-1, 3), n)
            if self.sh_rest.shape[1] not in SH_REST_COUNTS:
                raise GaussiansError(
                    f"sh_rest must hold 3, 8 or 15 coefficients per channel (SH degree 1-3); "
                    f"got shape {self.sh_rest.shape}"
                )
        if self.layers is not None:
            self.layers = _layer_array(self.layers, n)
        self._check_ranges()
        self._check_metadata()

    def __len__(self) -> int:
        return int(self.means.shape[0])

    def __repr__(self) -> str:
        return (
            f"Gaussians(n={len(self)}, sh_degree={self.sh_degree}, focal_px={self.focal_px}, "
            f"image_size={self.image_size}, color_space={self.color_space!r})"
        )

    @property
    def sh_degree(self) -> int:
        return 0 if self.sh_rest is None else SH_REST_COUNTS[self.sh_rest.shape[1]]

    def _check_ranges(self) -> None:
        bad = int(np.count_nonzero(self.scales < 0))
        if bad:
            raise GaussiansError(f"scales must be >= 0 (linear, not log); {bad} of {self.scales.size} are negative")
        bad = int(np.count_nonzero((self.opacities < 0) | (self.opacities > 1)))
        if bad:
            raise GaussiansError(f"opacities must lie in [0, 1]; {bad} of {len(self)} do not")
        bad = int(np.count_nonzero(np.einsum("ij,ij->i", self.quats, self.quats) == 0))
        if bad:
            raise GaussiansError(f"quats must be non-zero (w, x, y, z); {bad} of {len(self)} are all zero")

    def _check_metadata(self) -> None:
        if self.color_space not in COLOR_SPACES:
            raise GaussiansError(f"color_space must be one of {COLOR_SPACES}; got {self.color_space!r}")
        if self.focal_px is not None:
            f = float(self.focal_px)
            if not (np.isfinite(f) and f > 0):
                raise GaussiansError(f"focal_px must be a positive number of pixels; got {self.focal_px!r}")
            self.focal_px = f
        if self.image_size is not None:
            size = tuple(int(v) for v in self.image_size)
            if len(size) != 2 or min(size) <= 0 or size != tuple(self.image_size):
                raise GaussiansError(f"image_size must be two positive integers (W, H); got {self.image_size!r}")
            self.image_size = (size[0], size[1])

    # ---- copies and selection -------------------------------------------------------------------

    def replace(self, **changes: Any) -> Gaussians:
        """A validated copy with some fields replaced (dataclasses.replace)."""
        return dataclasses.replace(self, **changes)

    def subset(self, index: np.ndarray) -> Gaussians:
        """The Gaussians picked by a boolean mask [N] or an integer index array, in that order."""
        index = np.asarray(index)
        if index.dtype == bool and index.shape != (len(self),):
            raise GaussiansError(f"a boolean selection must have shape ({len(self)},); got {index.shape}")
        if index.dtype != bool and not np.issubdtype(index.dtype, np.integer):
            raise GaussiansError(f"a selection must be a boolean mask or integer indices; got dtype {index.dtype}")
        return self.replace(
            means=self.means[index],
            scales=self.scales[index],
            quats=self.quats[index],
            colors=self.colors[index],
            opacities=self.opacities[index],
            sh_rest=None if self.sh_rest is None else self.sh_rest[index],
            layers=None if self.layers is None else self.layers[index],
        )

    def decimate(self, keep_fraction: float) -> Gaussians:
        """Keep about ``keep_fraction`` of the splats, the same ones every time (see ``lod_keys``).

        Smaller fractions give subsets of larger ones, so a level of detail never pops splats in
        and out as the fraction changes.
        """
        if not 0.0 <= keep_fraction <= 1.0:
            raise GaussiansError(f"keep_fraction must lie in [0, 1]; got {keep_fraction}")
        return self.subset(lod_keys(len(self)) < keep_fraction)

    def crop(self, box_min: Any, box_max: Any) -> Gaussians:
        """Keep the splats whose centre lies in the axis-aligned box (inclusive), in the means' frame."""
        lo = np.asarray(box_min, dtype=np.float32).reshape(3)
        hi = np.asarray(box_max, dtype=np.float32).reshape(3)
        if np.any(lo > hi):
            raise GaussiansError(f"crop box is empty: min {lo.tolist()} exceeds max {hi.tolist()}")
        return self.subset(np.all((self.means >= lo) & (self.means <= hi), axis=1))

    def drop_transparent(self, min_opacity: float) -> Gaussians:
        """Drop splats with opacity below ``min_opacity`` (1/255 drops what no renderer would draw)."""
        return self.subset(self.opacities >= min_opacity)

    # ---- geometry -------------------------------------------------------------------------------

    def covariances(self) -> np.ndarray:  # [N, 3, 3] float64
        """World-frame covariance matrices Sigma = R diag(s^2) R^T."""
        return covariances(self.quats, self.scales)

    def transformed(self, rotation: Any, translation: Any = (0.0, 0.0, 0.0), scale: float = 1.0) -> Gaussians:
        """The same splats after x -> scale * R x + t (R a proper rotation, scale > 0 uniform)."""
        r = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
            raise GaussiansError("rotation must be a proper rotation matrix (orthonormal, det +1)")
        if not scale > 0:
            raise GaussiansError(f"scale must be positive; got {scale}")
        t = np.asarray(translation, dtype=np.float64).reshape(3)
        means = (self.means.astype(np.float64) @ (scale * r).T + t).astype(np.float32)
        q_r = quats_from_matrices(r[None])[0]
        return self.replace(
            means=means,
            scales=self.scales * np.float32(scale),
            quats=quat_multiply(np.broadcast_to(q_r, self.quats.shape), self.quats),
            sh_rest=rotate_sh(self.sh_rest, r),
        )

    def transformed_by(self, matrix: Any) -> Gaussians:
        """The same splats after any invertible affine map (a 4x4 or 3x4 matrix, e.g. a Blender object's
        world matrix): non-uniform scale and shear reshape each covariance (``A Sigma A^T``, decomposed
        again), mirrors are allowed, and SH colour turns with the map's rotation (its polar factor)."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape not in ((4, 4), (3, 4)) or not np.all(np.isfinite(m)):
            raise GaussiansError(f"a transform must be a finite 4x4 or 3x4 matrix; got shape {m.shape}")
        a, t = m[:3, :3], m[:3, 3]
        if abs(np.linalg.det(a)) < 1e-12:
            raise GaussiansError("the transform flattens the splats (a zero scale): nothing to export")
        q = polar_rotation(a)
        uniform = float(np.cbrt(abs(np.linalg.det(a))))
        if np.linalg.det(q) > 0 and np.allclose(a, uniform * q, atol=1e-6 * max(1.0, uniform)):
            return self.transformed(q, t, uniform)
        cov = np.einsum("ij,njk,lk->nil", a, self.covariances(), a, optimize=True)
        variances, axes = np.linalg.eigh(cov)
        axes[np.linalg.det(axes) < 0, :, 0] *= -1  # a proper rotation for the quaternion
        return self.replace(
            means=(self.means.astype(np.float64) @ a.T + t).astype(np.float32),
            scales=np.sqrt(np.maximum(variances, 0)).astype(np.float32),
            quats=quats_from_matrices(axes),
            sh_rest=rotate_sh(self.sh_rest, q),
        )


# ---- validation helpers ---------------------------------------------------------------------------


def _float32_array(name: str, value: Any, tail: tuple[int, ...], n: int | None = None) -> np.ndarray:
    """``value`` as a C-contiguous float32 array of shape [n, *tail] (-1 in tail: any size), or raise."""
    a = np.asarray(value)
    if a.dtype.kind != "f":
        raise GaussiansError(f"{name} must be a floating-point array; got dtype {a.dtype}")
    want = ("N", *("K" if d == -1 else d for d in tail))
    ok = a.ndim == 1 + len(tail) and all(d == -1 or d == s for d, s in zip(tail, a.shape[1:]))
    if not ok or (n is not None and a.shape[0] != n):
        expect = f"[{', '.join(str(d) for d in want)}]" + (f" with N = {n}" if n is not None else "")
        raise GaussiansError(f"{name} must have shape {expect}; got {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    finite = np.isfinite(a)
    if not finite.all():
        nan = int(np.count_nonzero(np.isnan(a)))
        inf = int(a.size - np.count_nonzero(finite) - nan)
        raise GaussiansError(f"{name} has {nan} NaN and {inf} Inf values (of {a.size})")
    return a


def _layer_array(value: Any, n: int) -> np.ndarray:
    """Depth layers as a contiguous uint8 array of shape [n], or raise."""
    a = np.asarray(value)
    if a.dtype.kind not in "iub" or a.shape != (n,):
        raise GaussiansError(f"layers must be an integer array of shape ({n},); got {a.dtype} {a.shape}")
    if a.size and (a.min() < 0 or a.max() > 255):
        raise GaussiansError(f"layers must lie in 0..255; got {a.min()}..{a.max()}")
    return np.ascontiguousarray(a, dtype=np.uint8)


def sharp_layers(n: int) -> np.ndarray | None:
    """Layers of a SHARP prediction of n splats (layer-major blocks of 768²), None for other counts."""
    if n == 0 or n % SHARP_LAYER_SIZE:
        return None
    return np.repeat(np.arange(n // SHARP_LAYER_SIZE, dtype=np.uint8), SHARP_LAYER_SIZE)


# ---- colour ---------------------------------------------------------------------------------------


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The exact piecewise sRGB decoding curve (not a 2.2 gamma); keeps the float dtype."""
    x = np.asarray(x)
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    x = x.astype(dt, copy=False)
    high = ((np.maximum(x, dt.type(0.04045)) + dt.type(0.055)) / dt.type(1.055)) ** dt.type(2.4)
    return np.where(x <= dt.type(0.04045), x / dt.type(12.92), high)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """The exact piecewise sRGB encoding curve; keeps the float dtype."""
    x = np.asarray(x)
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    x = x.astype(dt, copy=False)
    high = dt.type(1.055) * np.maximum(x, dt.type(0.0031308)) ** dt.type(1 / 2.4) - dt.type(0.055)
    return np.where(x <= dt.type(0.0031308), x * dt.type(12.92), high)


def sh_dc_to_color(f_dc: np.ndarray) -> np.ndarray:
    """Colour of the SH degree-0 term (in the file's encoding): 0.5 + C0 * f_dc."""
    f_dc = np.asarray(f_dc)
    return f_dc * f_dc.dtype.type(SH_C0) + f_dc.dtype.type(0.5)


def color_to_sh_dc(color: np.ndarray) -> np.ndarray:
    """Inverse of ``sh_dc_to_color``."""
    color = np.asarray(color)
    return (color - color.dtype.type(0.5)) / color.dtype.type(SH_C0)


# ---- activations ------------------------------------------------------------------------------


def file_sh_dc(g: Gaussians) -> np.ndarray:
    """[N, 3] the SH DC coefficients a splat file stores for ``g`` (``f_dc``, in ``g.color_space``)."""
    return color_to_sh_dc(linear_to_srgb(g.colors) if g.color_space == "srgb" else g.colors)


def colors_from_file_sh_dc(f_dc: np.ndarray, color_space: str = "srgb") -> np.ndarray:
    """[N, 3] linear colours from a file's SH DC coefficients (the inverse of ``file_sh_dc``)."""
    encoded = sh_dc_to_color(np.asarray(f_dc, dtype=np.float32))
    return srgb_to_linear(encoded) if color_space == "srgb" else encoded


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, exact 0 / 1 in the limits; keeps the float dtype."""
    x = np.asarray(x)
    with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x gives exactly 0
        return (1 / (1 + np.exp(-x))).astype(x.dtype, copy=False)


def logit(p: np.ndarray) -> np.ndarray:
    """ln(p / (1 - p)); opacities of exactly 0 or 1 give -inf / +inf."""
    p = np.asarray(p)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


# ---- rotations ------------------------------------------------------------------------------------


def rotation_matrices(quats: np.ndarray) -> np.ndarray:  # [N, 4] (w, x, y, z) -> [N, 3, 3] float64
    """Rotation matrices of (normalised) quaternions."""
    q = np.asarray(quats, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    r = np.empty((*q.shape[:-1], 3, 3))
    r[..., 0, 0] = 1 - 2 * (y * y + z * z)
    r[..., 0, 1] = 2 * (x * y - w * z)
    r[..., 0, 2] = 2 * (x * z + w * y)
    r[..., 1, 0] = 2 * (x * y + w * z)
    r[..., 1, 1] = 1 - 2 * (x * x + z * z)
    r[..., 1, 2] = 2 * (y * z - w * x)
    r[..., 2, 0] = 2 * (x * z - w * y)
    r[..., 2, 1] = 2 * (y * z + w * x)
    r[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return r


def quats_from_matrices(r: np.ndarray) -> np.ndarray:  # [N, 3, 3] -> [N, 4] (w, x, y, z) float32
    """Unit quaternions of rotation matrices by Markley's method.

    The largest of (trace, R00, R11, R22) picks the formula and that component comes out
    positive; this is the convention of scipy's ``Rotation.from_matrix`` that ml-sharp uses.
    """
    r = np.asarray(r, dtype=np.float64)
    diag = np.stack([r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]], axis=1)
    trace = diag.sum(axis=1)
    choice = np.argmax(np.concatenate([diag, trace[:, None]], axis=1), axis=1)
    xyzw = np.empty((len(r), 4))
    for i in range(3):  # one vectorised branch per largest diagonal element
        sel = choice == i
        j, k = (i + 1) % 3, (i + 2) % 3
        ri = r[sel]
        xyzw[sel, i] = 1 - trace[sel] + 2 * ri[:, i, i]
        xyzw[sel, j] = ri[:, j, i] + ri[:, i, j]
        xyzw[sel, k] = ri[:, k, i] + ri[:, i, k]
        xyzw[sel, 3] = ri[:, k, j] - ri[:, j, k]
    sel = choice == 3
    rs = r[sel]
    xyzw[sel, 0] = rs[:, 2, 1] - rs[:, 1, 2]
    xyzw[sel, 1] = rs[:, 0, 2] - rs[:, 2, 0]
    xyzw[sel, 2] = rs[:, 1, 0] - rs[:, 0, 1]
    xyzw[sel, 3] = 1 + trace[sel]
    xyzw /= np.linalg.norm(xyzw, axis=1, keepdims=True)
    return xyzw[:, [3, 0, 1, 2]].astype(np.float32)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of (w, x, y, z) quaternions (rotation b, then a); keeps a's dtype."""
    a = np.asarray(a)
    b = np.asarray(b, dtype=a.dtype)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def covariances(quats: np.ndarray, scales: np.ndarray) -> np.ndarray:  # -> [N, 3, 3] float64
    """Sigma = R diag(s^2) R^T for (w, x, y, z) quaternions and linear scales."""
    r = rotation_matrices(quats)
    s2 = np.asarray(scales, dtype=np.float64) ** 2
    return np.einsum("nij,nj,nkj->nik", r, s2, r)


# ---- deterministic level of detail ----------------------------------------------------------------


def lod_keys(n: int, seed: int = 0) -> np.ndarray:  # -> [n] float32 in [0, 1)
    """A fixed pseudo-random key per splat index (SplitMix64 of the index).

    ``keys < f`` keeps about a fraction f of the splats, the same ones on every machine, and
    the kept set only grows with f. Blender's keep-fraction display uses the same keys.
    """
    idx = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + idx * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)


# ---- unprojection (docs/model.md, "Unprojection") -------------------------------------------------

UNPROJECT_CHUNK = 1 << 18  # Gaussians per task: bounded temporaries, work for every core


def unproject(
    means: np.ndarray,  # [N, 3] normalised camera space (x, y in [-1, 1] at unit depth) x global scale
    scales: np.ndarray,  # [N, 3]
    quats: np.ndarray,  # [N, 4] (w, x, y, z), any length
    colors: np.ndarray,  # [N, 3] linear RGB
    opacities: np.ndarray,  # [N]
    focal_px: float,
    size_wh: tuple[int, int],
    layer_count: int = 1,
) -> Gaussians:
    """Metric OpenCV-camera Gaussians from SHARP's normalised output for a W x H photo.

    x and y are stretched by A = diag(W / 2f, H / 2f, 1); covariances become A Sigma A^T and are
    decomposed again in float64 (scales descending, rotation with det +1, Markley quaternions), as
    the reference does, so scales and quaternions are comparable through their covariances.
    The splats come in ``layer_count`` equal layer-major blocks (SHARP's depth layers).
    """
    w, h = size_wh
    a = np.array([w / (2 * focal_px), h / (2 * focal_px), 1.0], dtype=np.float32)

    def decompose(part: slice) -> tuple[np.ndarray, np.ndarray]:
        r = rotation_matrices(quats[part]).astype(np.float32)  # the reference forms Sigma in float32
        s2 = np.asarray(scales[part], dtype=np.float32) ** 2
        sigma = np.einsum("nij,nj,nkj->nik", r, s2, r) * (a[:, None] * a[None, :])
        eigenvalues, vectors = np.linalg.eigh(sigma.astype(np.float64))  # ascending
        eigenvalues, vectors = eigenvalues[:, ::-1], vectors[:, :, ::-1]  # descending, as an SVD orders them
        vectors[np.linalg.det(vectors) < 0, :, 2] *= -1  # a rotation, not a reflection
        return np.sqrt(np.abs(eigenvalues)), quats_from_matrices(vectors)

    # numpy's batched linear algebra releases the GIL: halves of a large batch run on two threads
    n = len(quats)
    parts = [slice(i, min(n, i + UNPROJECT_CHUNK)) for i in range(0, n, UNPROJECT_CHUNK)] or [slice(0, 0)]
    with ThreadPoolExecutor(max_workers=min(len(parts), os.cpu_count() or 1)) as pool:
        results = list(pool.map(decompose, parts))
    return Gaussians(
        means=np.asarray(means, dtype=np.float32) * a,
        scales=np.concatenate([s for s, _ in results]),
        quats=np.concatenate([q for _, q in results]),
        colors=colors,
        opacities=opacities,
        focal_px=focal_px,
        image_size=(int(w), int(h)),
        color_space="srgb",
        layers=np.repeat(np.arange(layer_count, dtype=np.uint8), n // layer_count) if n % layer_count == 0 else None,
    )
