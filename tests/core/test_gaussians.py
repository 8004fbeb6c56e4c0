"""The Gaussian container: validation, conversions, axis changes and selection."""

from __future__ import annotations

import numpy as np
import pytest

from sharp_addon import gaussians as G
from sharp_addon.errors import GaussiansError, SharpError
from tests.support.builders import assert_same_covariances, random_gaussians


def test_construction_stores_contiguous_float32():
    g = random_gaussians(10)
    g64 = G.Gaussians(
        means=g.means.astype(np.float64)[::1],
        scales=np.asfortranarray(g.scales),
        quats=g.quats,
        colors=g.colors,
        opacities=g.opacities.astype(np.float16),
    )
    for name in ("means", "scales", "quats", "colors", "opacities"):
        a = getattr(g64, name)
        assert a.dtype == np.float32 and a.flags.c_contiguous, name
    assert len(g64) == 10 and g64.sh_degree == 0
    assert "n=10" in repr(g64)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("means", np.zeros((10, 2), np.float32), r"means must have shape \[N, 3\]; got \(10, 2\)"),
        ("scales", np.zeros((9, 3), np.float32), r"scales must have shape \[N, 3\] with N = 10; got \(9, 3\)"),
        ("quats", np.zeros((10, 3), np.float32), r"quats must have shape \[N, 4\] with N = 10"),
        ("opacities", np.zeros((10, 1), np.float32), r"opacities must have shape \[N\] with N = 10"),
        ("colors", np.zeros((10, 3), np.int32), "colors must be a floating-point array; got dtype int32"),
        ("sh_rest", np.zeros((10, 4, 3), np.float32), "sh_rest must hold 3, 8 or 15 coefficients"),
    ],
)
def test_bad_shapes_and_dtypes_are_named(field, value, message):
    g = random_gaussians(10)
    with pytest.raises(GaussiansError, match=message):
        g.replace(**{field: value})


def test_nan_and_inf_are_counted():
    g = random_gaussians(10)
    means = g.means.copy()
    means[0, 0] = np.nan
    means[3, 2] = np.nan
    means[5, 1] = np.inf
    with pytest.raises(GaussiansError, match=r"means has 2 NaN and 1 Inf values \(of 30\)"):
        g.replace(means=means)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scales": -np.ones((10, 3), np.float32)}, "scales must be >= 0"),
        ({"opacities": np.full(10, 1.5, np.float32)}, r"opacities must lie in \[0, 1\]; 10 of 10"),
        ({"quats": np.zeros((10, 4), np.float32)}, "quats must be non-zero"),
        ({"focal_px": -3.0}, "focal_px must be a positive number"),
        ({"image_size": (640, 0)}, r"image_size must be two positive integers \(W, H\)"),
        ({"image_size": (640.5, 480)}, "image_size must be two positive integers"),
        ({"color_space": "acescg"}, "color_space must be one of"),
    ],
)
def test_out_of_range_values_are_rejected(changes, message):
    with pytest.raises(GaussiansError, match=message):
        random_gaussians(10).replace(**changes)


def test_errors_belong_to_the_sharp_family():
    assert issubclass(GaussiansError, SharpError) and issubclass(GaussiansError, ValueError)


# ---- colour -----------------------------------------------------------------------------------


def test_srgb_curves_are_the_exact_piecewise_ones():
    lin = np.array([0.0, 0.002, 0.0031308, 0.18, 0.5, 1.0], np.float64)
    # reference values of the IEC 61966-2-1 curve
    srgb = np.array([0.0, 0.02584, 0.0404499, 0.4613561, 0.7353570, 1.0])
    np.testing.assert_allclose(G.linear_to_srgb(lin), srgb, atol=2e-6)
    np.testing.assert_allclose(G.srgb_to_linear(srgb), lin, atol=2e-6)
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert G.linear_to_srgb(x).dtype == np.float32
    np.testing.assert_allclose(G.srgb_to_linear(G.linear_to_srgb(x)), x, atol=1e-6)
    # not a 2.2 gamma: mid grey differs visibly from x ** (1 / 2.2)
    assert abs(float(G.linear_to_srgb(np.float64(0.18))) - 0.18 ** (1 / 2.2)) > 0.0025


def test_sh_dc_and_colour_are_inverse():
    c = np.array([[0.0, 0.5, 1.0]], np.float32)
    dc = G.color_to_sh_dc(c)
    np.testing.assert_allclose(dc, [[-0.5 / G.SH_C0, 0.0, 0.5 / G.SH_C0]], rtol=1e-6)
    np.testing.assert_allclose(G.sh_dc_to_color(dc), c, atol=1e-7)


def test_sigmoid_and_logit():
    x = np.array([-100.0, -3.0, 0.0, 2.5, 100.0], np.float32)
    p = G.sigmoid(x)
    assert p.dtype == np.float32 and np.all(np.isfinite(p))
    np.testing.assert_allclose(p[1:4], 1 / (1 + np.exp(-x[1:4].astype(np.float64))), rtol=1e-6)
    np.testing.assert_allclose(G.logit(p[1:4]), x[1:4], rtol=1e-5)
    assert G.logit(np.array([0.0, 1.0])).tolist() == [-np.inf, np.inf]


# ---- rotations and covariances ------------------------------------------------------------------


def test_rotation_matrices_are_proper_rotations():
    r = G.rotation_matrices(random_gaussians(200).quats)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-6)
    # 90 degrees about z maps x to y
    q = np.array([[np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]])
    np.testing.assert_allclose(G.rotation_matrices(q)[0] @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_quats_from_matrices_follow_markley_and_invert_rotation_matrices():
    q = random_gaussians(500).quats
    back = G.quats_from_matrices(G.rotation_matrices(q))
    np.testing.assert_allclose(G.rotation_matrices(back), G.rotation_matrices(q), atol=2e-6)
    # the component picked by the largest of (trace, R00, R11, R22) comes out positive
    r = G.rotation_matrices(back)
    decision = np.stack([r[:, 0, 0], r[:, 1, 1], r[:, 2, 2], np.trace(r, axis1=1, axis2=2)], axis=1)
    pick = np.argmax(decision, axis=1)
    xyzw = back[:, [1, 2, 3, 0]]
    assert np.all(xyzw[np.arange(len(q)), pick] > 0)
    # identity and a half turn about x
    np.testing.assert_allclose(G.quats_from_matrices(np.eye(3)[None]), [[1, 0, 0, 0]])
    np.testing.assert_allclose(G.quats_from_matrices(np.diag([1.0, -1, -1])[None]), [[0, 1, 0, 0]])


def test_covariance_is_r_s2_rt():
    q = np.array([[1.0, 0, 0, 0], [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]], np.float32)
    s = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], np.float32)
    cov = G.covariances(q, s)
    np.testing.assert_allclose(cov[0], np.diag([1, 4, 9]), atol=1e-12)
    np.testing.assert_allclose(cov[1], np.diag([4, 1, 9]), atol=1e-6)  # x and y swapped by the turn


def test_quat_multiply_composes_rotations():
    a, b = random_gaussians(50).quats, random_gaussians(50, seed=3).quats
    np.testing.assert_allclose(
        G.rotation_matrices(G.quat_multiply(a, b)), G.rotation_matrices(a) @ G.rotation_matrices(b), atol=1e-5
    )


# ---- axis changes ---------------------------------------------------------------------------------


def test_axis_change_matrices_are_the_documented_rotations():
    g = random_gaussians(3).replace(means=np.array([[1, 2, 5], [0, 0, 1], [-1, -1, 2]], np.float32))
    cam = g.transformed(G.OPENCV_TO_BLENDER_CAMERA)
    np.testing.assert_array_equal(cam.means, [[1, -2, -5], [0, 0, -1], [-1, 1, -2]])  # (x, -y, -z)
    world = g.transformed(G.OPENCV_TO_BLENDER_WORLD)
    np.testing.assert_array_equal(world.means, [[1, 5, -2], [0, 1, 0], [-1, 2, 1]])  # (x, z, -y)
    for moved, m in ((cam, G.OPENCV_TO_BLENDER_CAMERA), (world, G.OPENCV_TO_BLENDER_WORLD)):
        assert_same_covariances(moved.covariances(), m @ g.covariances() @ m.T)
        np.testing.assert_array_equal(moved.scales, g.scales)
        np.testing.assert_array_equal(moved.colors, g.colors)
        back = moved.transformed(m.T)
        np.testing.assert_allclose(back.means, g.means, atol=1e-6)
        assert_same_covariances(back.covariances(), g.covariances())


def test_transformed_scales_and_translates():
    g = random_gaussians(20)
    moved = g.transformed(np.eye(3), translation=(1, 2, 3), scale=2.0)
    np.testing.assert_allclose(moved.means, 2 * g.means + [1, 2, 3], rtol=1e-6)
    np.testing.assert_allclose(moved.scales, 2 * g.scales, rtol=1e-6)
    with pytest.raises(GaussiansError, match="proper rotation"):
        g.transformed(np.diag([1.0, 1.0, -1.0]))  # a mirror is not a rotation
    with pytest.raises(GaussiansError, match="scale must be positive"):
        g.transformed(np.eye(3), scale=0.0)


# ---- selection -------------------------------------------------------------------------------------


def test_subset_by_mask_and_index_keeps_everything_aligned():
    g = random_gaussians(10, sh_degree=1)
    sub = g.subset(np.array([7, 2, 2]))
    np.testing.assert_array_equal(sub.means, g.means[[7, 2, 2]])
    np.testing.assert_array_equal(sub.sh_rest, g.sh_rest[[7, 2, 2]])
    assert sub.focal_px == g.focal_px and sub.image_size == g.image_size
    mask = g.opacities > 0.5
    np.testing.assert_array_equal(g.subset(mask).opacities, g.opacities[mask])
    with pytest.raises(GaussiansError, match=r"boolean selection must have shape \(10,\)"):
        g.subset(np.ones(3, bool))
    with pytest.raises(GaussiansError, match="integer indices"):
        g.subset(np.array([0.5]))


def test_lod_keys_are_fixed_uniform_and_nested():
    keys = G.lod_keys(100_000)
    assert keys.dtype == np.float32 and keys.min() >= 0 and keys.max() < 1
    assert abs(float(keys.mean()) - 0.5) < 0.005
    np.testing.assert_array_equal(keys[:1000], G.lod_keys(1000))  # a prefix does not depend on n
    # the top 24 bits of the standard SplitMix64(0) stream 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4,
    # 0x06C45D188009454F: the same values on every machine and numpy version
    expected = np.array([0xE220A8, 0x6E789E, 0x06C45D], np.float64) / 2**24
    np.testing.assert_array_equal(G.lod_keys(3), expected.astype(np.float32))


def test_decimate_is_deterministic_and_nested():
    g = random_gaussians(20_000)
    half, quarter = g.decimate(0.5), g.decimate(0.25)
    assert abs(len(half) - 10_000) < 300 and abs(len(quarter) - 5_000) < 200
    np.testing.assert_array_equal(g.decimate(0.5).means, half.means)
    assert {tuple(m) for m in quarter.means} <= {tuple(m) for m in half.means}
    assert len(g.decimate(1.0)) == len(g) and len(g.decimate(0.0)) == 0
    with pytest.raises(GaussiansError, match=r"keep_fraction must lie in \[0, 1\]"):
        g.decimate(1.5)


def test_crop_and_drop_transparent():
    g = random_gaussians(1000)
    cropped = g.crop((-0.5, -0.5, 2.0), (0.5, 0.5, 4.0))
    assert 0 < len(cropped) < len(g)
    assert np.all((cropped.means >= [-0.5, -0.5, 2]) & (cropped.means <= [0.5, 0.5, 4]))
    inside = np.all((g.means >= [-0.5, -0.5, 2]) & (g.means <= [0.5, 0.5, 4]), axis=1)
    assert len(cropped) == int(inside.sum())
    with pytest.raises(GaussiansError, match="crop box is empty"):
        g.crop((1, 0, 0), (0, 1, 1))
    opaque = g.drop_transparent(0.5)
    assert len(opaque) == int(np.count_nonzero(g.opacities >= 0.5)) and opaque.opacities.min() >= 0.5


def test_layers_are_validated_and_follow_selections():
    g = random_gaussians(6).replace(layers=[0, 0, 0, 1, 1, 1])
    assert g.layers.dtype == np.uint8 and g.layers.flags.c_contiguous
    np.testing.assert_array_equal(g.subset(np.array([5, 0])).layers, [1, 0])
    np.testing.assert_array_equal(g.transformed(G.OPENCV_TO_BLENDER_WORLD).layers, g.layers)
    with pytest.raises(GaussiansError, match=r"layers must be an integer array of shape \(6,\)"):
        g.replace(layers=np.zeros(5, np.uint8))
    with pytest.raises(GaussiansError, match="layers must be an integer array"):
        g.replace(layers=np.zeros(6, np.float32))
    with pytest.raises(GaussiansError, match=r"0\.\.255"):
        g.replace(layers=np.full(6, -1))


def test_sharp_layers_are_layer_major_blocks_of_768_squared():
    assert G.sharp_layers(1000) is None and G.sharp_layers(0) is None
    layers = G.sharp_layers(2 * G.SHARP_LAYER_SIZE)
    assert layers is not None and layers.shape == (2 * 768 * 768,)
    assert layers[G.SHARP_LAYER_SIZE - 1] == 0 and layers[G.SHARP_LAYER_SIZE] == 1


def test_unproject_numbers_the_layers():
    n = 8
    rng = np.random.default_rng(0)
    q = rng.normal(size=(n, 4)).astype(np.float32)
    g = G.unproject(rng.uniform(-1, 1, (n, 3)).astype(np.float32), np.full((n, 3), 0.01, np.float32), q,
                    np.full((n, 3), 0.5, np.float32), np.full(n, 0.5, np.float32), 500.0, (640, 480), layer_count=2)
    np.testing.assert_array_equal(g.layers, [0, 0, 0, 0, 1, 1, 1, 1])
