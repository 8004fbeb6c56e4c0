"""The exact 3DGS renderer against closed forms, the numpy ray-marginal reference and gsplat."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from sharp_addon import errors
from sharp_addon import gaussians as G
from sharp_addon.cameras import Camera, CameraError, look_at
from sharp_addon.render import render_gaussians
from sharp_addon.render.colors import SH_C1
from tests.support.reference_render import expected_image, known_scene

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="the exact renderer's backend is torch code; this environment has no torch")

W, H, F = 96, 64, 80.0


def splats(means, scales, colors, opacities, quats=None, **kw) -> G.Gaussians:
    n = len(means)
    return G.Gaussians(means=np.float32(means), scales=np.float32(scales),
                       quats=np.tile(np.float32([1, 0, 0, 0]), (n, 1)) if quats is None else quats,
                       colors=np.float32(colors), opacities=np.float32(opacities), focal_px=F, image_size=(W, H), **kw)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def random_scene(n: int, seed: int = 0) -> G.Gaussians:
    rng = np.random.default_rng(seed)
    z = rng.uniform(2.0, 6.0, n)
    xy = rng.uniform(-0.5, 0.5, (n, 2)) * z[:, None] * np.array([W / F, H / F])
    q = rng.normal(size=(n, 4))
    return G.Gaussians(means=np.column_stack([xy, z]), scales=rng.uniform(0.005, 0.04, (n, 3)) * z[:, None] / 4,
                       quats=q, colors=rng.uniform(0, 1, (n, 3)), opacities=rng.uniform(0.05, 1.0, n),
                       focal_px=F, image_size=(W, H))


@needs_torch
def test_one_isotropic_gaussian_has_the_closed_form_profile():
    sigma, z, o = 0.1, 4.0, 0.7
    g = splats([[0.0, 0.0, z]], [[sigma] * 3], [[1.0, 1.0, 1.0]], [o])
    image = render_gaussians(g, Camera.from_gaussians(g))
    sigma_px = F * sigma / z
    row = H // 2  # pixel centres at y = 32.5: 0.5 px off the splat's centre row
    r2 = (np.arange(W) + 0.5 - W / 2) ** 2 + 0.25
    want = o * np.exp(-r2 / (2 * sigma_px**2))
    want = np.where((r2 <= 9 * sigma_px**2) & (want >= 1 / 255), want, 0.0)
    np.testing.assert_allclose(image[row, :, 3], want, atol=2e-3)
    assert image[row, :, 3].max() == pytest.approx(o * np.exp(-0.5 / (2 * sigma_px**2)), abs=2e-3)
    assert np.count_nonzero(image[row, :, 3]) == np.count_nonzero(want)  # cut where 3 sigma and 1/255 say
    np.testing.assert_allclose(image[..., 0], image[..., 3], atol=1e-6)  # premultiplied white


@needs_torch
def test_two_overlapping_gaussians_blend_nearer_first_in_any_input_order():
    near, far = ([0.0, 0.0, 3.0], [0.8, 0.1, 0.2], 0.6), ([0.0, 0.0, 5.0], [0.1, 0.2, 0.9], 0.9)
    want = np.float32(near[1]) * 0.6 + np.float32(far[1]) * 0.9 * (1 - 0.6)
    for order in ((near, far), (far, near)):
        g = splats([s[0] for s in order], [[0.5] * 3] * 2, [s[1] for s in order], [s[2] for s in order])
        image = render_gaussians(g, Camera.from_gaussians(g))
        # at the pixel nearest the common centre, both alphas are within 1e-3 of the opacities
        np.testing.assert_allclose(image[H // 2, W // 2, :3], want, atol=3e-3)
        np.testing.assert_allclose(image[H // 2, W // 2, 3], 1 - 0.4 * 0.1, atol=3e-3)


@needs_torch
def test_alpha_is_capped_at_0_99_and_background_goes_under():
    g = splats([[0.0, 0.0, 4.0]], [[1.0] * 3], [[1.0, 0.0, 0.0]], [1.0])
    image = render_gaussians(g, Camera.from_gaussians(g), background=(0.0, 0.0, 1.0))
    assert image[..., 3].max() == pytest.approx(0.99, abs=1e-6)
    np.testing.assert_allclose(image[H // 2, W // 2], [0.99, 0.0, 0.01, 0.99], atol=1e-5)


@needs_torch
def test_eps2d_widens_a_splat_as_its_variance_says():
    sigma_px = 2.0
    g = splats([[0.0, 0.0, 4.0]], [[sigma_px * 4.0 / F] * 3], [[1.0, 1.0, 1.0]], [0.9])
    camera = Camera.from_gaussians(g)
    for eps2d in (0.0, 0.3, 4.0):
        alpha = render_gaussians(g, camera, eps2d=eps2d)[H // 2, :, 3]
        x = np.arange(W) + 0.5 - W / 2
        s2 = sigma_px**2 + eps2d
        want = 0.9 * np.exp(-(x**2 + 0.25) / (2 * s2))
        want = np.where((x**2 + 0.25 <= 9 * s2) & (want >= 1 / 255), want, 0.0)
        np.testing.assert_allclose(alpha, want, atol=2e-3)


@needs_torch
def test_the_known_scene_matches_the_ray_marginal_reference():
    g = known_scene(128, 96, 120.0)
    image = render_gaussians(g, Camera.from_gaussians(g))
    want = expected_image(g, 128, 96, 120.0, with_alpha=True)
    assert psnr(image, want) >= 55, psnr(image, want)  # measured 58.9 dB
    assert np.abs(image - want).max() < 0.02


@needs_torch
def test_a_random_anisotropic_scene_matches_the_ray_marginal_reference():
    g = random_scene(3000)
    image = render_gaussians(g, Camera.from_gaussians(g))
    want = expected_image(g, W, H, F, with_alpha=True)
    assert psnr(image, want) >= 50, psnr(image, want)  # measured 56.7 dB


@needs_torch
def test_the_near_plane_skips_splats_behind_and_too_close():
    g = splats([[0.0, 0.0, -2.0], [0.0, 0.0, 0.005]], [[0.1] * 3] * 2, [[1, 1, 1]] * 2, [0.9, 0.9])
    assert not render_gaussians(g, Camera.from_gaussians(g)).any()


# ---- cameras --------------------------------------------------------------------------------------


@needs_torch
def test_the_photo_camera_puts_a_centre_where_the_pinhole_says():
    g = splats([[0.525, -0.275, 4.0]], [[0.02] * 3], [[1, 1, 1]], [0.9])
    camera = Camera.from_gaussians(g)
    u, v = F * 0.525 / 4 + W / 2, F * -0.275 / 4 + H / 2  # the centre of pixel (58, 26)
    np.testing.assert_allclose(camera.project(g.means)[0], [u, v])
    alpha = render_gaussians(g, camera)[..., 3]
    assert np.unravel_index(np.argmax(alpha), alpha.shape) == (int(v), int(u))
    half = Camera.from_gaussians(g, width=W // 2)
    assert (half.width, half.height, half.fx, half.cx) == (W // 2, H // 2, F / 2, W / 4)
    np.testing.assert_allclose(half.project(g.means)[0], [u / 2, v / 2])


def test_camera_resized_moved_and_dict_round_trip():
    camera = Camera(100.0, 110.0, 50.0, 40.0, 100, 80)
    assert camera.resized(200, 40) == camera.resized(200, 40)
    big = camera.resized(200, 40)
    assert (big.fx, big.fy, big.cx, big.cy) == (200.0, 55.0, 100.0, 20.0)
    pose = look_at((1.0, 0.0, 0.0), (0.0, 0.0, 4.0))
    moved = camera.moved(pose)
    np.testing.assert_allclose(moved.position, [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(moved.project(np.array([[0.0, 0.0, 4.0]]))[0], [50.0, 40.0], atol=1e-9)
    np.testing.assert_allclose(look_at((0, 0, 0), (0, 0, 1)), np.eye(4), atol=1e-12)
    again = Camera.from_dict(moved.to_dict())
    assert again.to_dict() == moved.to_dict()
    assert Camera.from_dict(json.loads(json.dumps(moved.to_dict()))).to_dict() == moved.to_dict()


@pytest.mark.parametrize(("change", "message"), [
    ({"fx": -1.0}, "focal lengths must be positive"),
    ({"fy": float("nan")}, "fy must be finite"),
    ({"cx": "a"}, "cx must be a number"),
    ({"width": 0}, "width must be a positive whole number"),
    ({"height": 2.5}, "height must be a positive whole number"),
    ({"world_to_camera": [[1, 0], [0, 1]]}, "must be a 4x4 matrix"),
    ({"world_to_camera": np.diag([2.0, 2.0, 2.0, 1.0]).tolist()}, "proper rotation"),
    ({"world_to_camera": np.diag([1.0, 1.0, -1.0, 1.0]).tolist()}, "proper rotation"),
    ({"world_to_camera": np.diag([1.0, 1.0, 1.0, 2.0]).tolist()}, "last row"),
    ({"zoom": 2}, "unknown camera fields: zoom"),
])
def test_bad_camera_dicts_say_what_is_wrong(change, message):
    d = {**Camera(100.0, 100.0, 50.0, 40.0, 100, 80).to_dict(), **change}
    with pytest.raises(CameraError, match=message):
        Camera.from_dict(d)
    with pytest.raises(CameraError, match="missing fy"):
        Camera.from_dict({k: v for k, v in d.items() if k != "fy"})
    with pytest.raises(CameraError, match="dict"):
        Camera.from_dict([1, 2])


def test_from_gaussians_needs_the_photo_camera():
    g = splats([[0.0, 0.0, 4.0]], [[0.1] * 3], [[1, 1, 1]], [0.9]).replace(focal_px=None)
    with pytest.raises(errors.GaussiansError, match="focal_px"):
        Camera.from_gaussians(g)


# ---- colour ---------------------------------------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("color_space", ["linear", "srgb"])
def test_degree_1_sh_changes_colour_with_the_view_direction(color_space):
    base = np.float32([[0.2, 0.3, 0.4]])
    sh = np.zeros((1, 3, 3), np.float32)
    sh[0, 2] = [0.3, 0.0, -0.3]  # the x band: -C1 x
    g = splats([[0.0, 0.0, 4.0]], [[0.3] * 3], base, [1.0], sh_rest=sh, color_space=color_space)
    encode = G.linear_to_srgb if color_space == "srgb" else (lambda c: c)
    decode = G.srgb_to_linear if color_space == "srgb" else (lambda c: c)
    for eye in ((0.0, 0.0, 0.0), (3.0, 0.0, 1.0)):
        camera = Camera.from_gaussians(g).moved(look_at(eye, (0.0, 0.0, 4.0)))
        d = (np.float32([0, 0, 4]) - np.float32(eye)) / np.linalg.norm(np.float32([0, 0, 4]) - np.float32(eye))
        want = decode(np.maximum(encode(base[0]) - SH_C1 * d[0] * sh[0, 2], 0)) * 0.99
        np.testing.assert_allclose(render_gaussians(g, camera)[H // 2, W // 2, :3], want, atol=2e-3)
    plain = splats([[0.0, 0.0, 4.0]], [[0.3] * 3], base, [0.99], color_space=color_space)
    zero = plain.replace(sh_rest=np.zeros((1, 3, 3), np.float32))
    camera = Camera.from_gaussians(g).moved(look_at((3.0, 0.0, 1.0), (0.0, 0.0, 4.0)))
    np.testing.assert_array_equal(render_gaussians(zero, camera), render_gaussians(plain, camera))


# ---- backends, progress, cancel -------------------------------------------------------------------


@needs_torch
def test_gsplat_matches_our_backend():
    from sharp_addon.render import gsplat_backend

    reason = gsplat_backend.unavailable("cuda")
    if reason is not None:
        pytest.skip(reason)
    g = random_scene(3000)
    camera = Camera.from_gaussians(g)
    ours = render_gaussians(g, camera, backend="torch", device="cuda")
    theirs = render_gaussians(g, camera, backend="gsplat", device="cuda")
    # gsplat lets pixels of a splat's tiles past 3 sigma through while alpha >= 1/255 (at most
    # o exp(-4.5) ~ 0.011 there); ours cuts at 3 sigma everywhere. Not yet measured on a GPU.
    assert psnr(ours, theirs) >= 40, psnr(ours, theirs)


@needs_torch
def test_explicit_gsplat_without_it_says_why():
    from sharp_addon.render import gsplat_backend

    if gsplat_backend.unavailable("cpu") is None:
        pytest.skip("gsplat renders here")
    g = splats([[0.0, 0.0, 4.0]], [[0.1] * 3], [[1, 1, 1]], [0.9])
    with pytest.raises(errors.DependencyError, match=r"gsplat.*CUDA"):
        render_gaussians(g, Camera.from_gaussians(g), backend="gsplat")
    assert render_gaussians(g, Camera.from_gaussians(g), backend="auto")[..., 3].max() > 0.5


@needs_torch
def test_progress_rises_to_one_and_cancel_stops():
    g = random_scene(2000)
    seen: list[float] = []
    render_gaussians(g, Camera.from_gaussians(g), progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen) and all(0 <= p <= 1 for p in seen)
    with pytest.raises(errors.Cancelled):
        render_gaussians(g, Camera.from_gaussians(g), cancel=lambda: True)


@needs_torch
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"backend": "vulkan"}, "backend must be one of"),
    ({"eps2d": -1.0}, "eps2d"),
    ({"background": (1.0, 0.0)}, "background"),
])
def test_bad_render_arguments_say_what_is_wrong(kwargs, message):
    g = splats([[0.0, 0.0, 4.0]], [[0.1] * 3], [[1, 1, 1]], [0.9])
    with pytest.raises(errors.SharpError, match=message):
        render_gaussians(g, Camera.from_gaussians(g), **kwargs)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch is installed here")
def test_without_torch_the_render_says_it_needs_it():
    g = splats([[0.0, 0.0, 4.0]], [[0.1] * 3], [[1, 1, 1]], [0.9])
    with pytest.raises(errors.DependencyError, match="PyTorch is needed for the exact render"):
        render_gaussians(g, Camera.from_gaussians(g))


@needs_torch
def test_no_splats_and_splats_off_screen_render_empty():
    g = splats([[50.0, 0.0, 4.0]], [[0.1] * 3], [[1, 1, 1]], [0.9])
    empty = g.subset(np.zeros(1, bool))
    for scene in (g, empty):
        image = render_gaussians(scene, Camera.from_gaussians(g), background=(0.5, 0.5, 0.5))
        assert image.shape == (H, W, 4) and image.dtype == np.float32
        np.testing.assert_array_equal(image, np.broadcast_to(np.float32([0.5, 0.5, 0.5, 0.0]), (H, W, 4)))


def test_look_at_refuses_degenerate_directions():
    with pytest.raises(CameraError, match="target different"):
        look_at((1, 2, 3), (1, 2, 3))
    with pytest.raises(CameraError, match="parallel"):
        look_at((0, 0, 0), (0, 5, 0))
    with pytest.raises(CameraError, match="output width"):
        Camera.from_gaussians(splats([[0.0, 0.0, 4.0]], [[0.1] * 3], [[1, 1, 1]], [0.9]), width=0)
