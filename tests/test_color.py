"""Colour transfer, colour preservation, HSV equalisation and the KL metric (vidstyle.color)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vidstyle.color import (
    COLOR_METHODS,
    COV_EPS,
    equalize_value_hsv,
    lab_reinhard_to_rgb,
    preserve_colors,
    rgb_to_lab_reinhard,
    rgb_to_yiq,
    transfer_color,
    yiq_to_rgb,
)
from vidstyle.errors import ConfigError
from vidstyle.metrics import color_histogram_kl, color_histogram_kl_mean

LINEAR = ("mkl", "cholesky", "pca")


def _stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.asarray(image, dtype=np.float64).reshape(-1, 3)
    return pixels.mean(axis=0), np.cov(pixels.T, bias=True)


def _cloud(shape: tuple[int, int], mix: np.ndarray, mean: np.ndarray, seed: int) -> np.ndarray:
    """A correlated colour cloud (uniform noise through a mixing matrix), kept inside (0, 1)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-0.5, 0.5, size=(*shape, 3))
    return (noise @ mix.T + mean).astype(np.float32)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """Style (source) and content (target) of different sizes, palettes and correlations."""
    style = _cloud(
        (40, 50),
        np.array([[0.20, 0.05, 0.00], [0.05, 0.15, 0.03], [0.00, 0.04, 0.10]]),
        np.array([0.65, 0.40, 0.30]),
        seed=1,
    )
    content = _cloud(
        (30, 36),
        np.array([[0.10, 0.00, 0.06], [0.04, 0.12, 0.00], [0.02, 0.05, 0.22]]),
        np.array([0.30, 0.30, 0.45]),  # darker and bluer: luma differs too
        seed=2,
    )
    assert style.min() > 0.05 and style.max() < 0.95
    assert content.min() > 0.05 and content.max() < 0.95
    return style, content


Triple = tuple[float, float, float]


def _hadamard_image(mean: Triple, std: Triple) -> np.ndarray:
    """2x2 image whose channels are uncorrelated: orthogonal +-1 patterns scaled by std."""
    signs = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64)
    return (np.array(mean) + signs * np.array(std)).reshape(2, 2, 3)


# ----------------------------------------------------------------- API and dispatch


def test_method_list() -> None:
    assert COLOR_METHODS == ("none", "reinhard", "idt", "mkl", "histogram", "luminance", "cholesky", "pca")


@pytest.mark.parametrize("bad", ["bogus", "", "MKL", None])
def test_unknown_method_is_config_error(bad, pair) -> None:
    style, content = pair
    with pytest.raises(ConfigError, match="unknown colour transfer method"):
        transfer_color(style, content, bad)


def test_none_returns_source_as_float(pair) -> None:
    style, content = pair
    out = transfer_color(style, content, "none")
    assert out.dtype == np.float32 and out.shape == style.shape
    np.testing.assert_array_equal(out, style)
    u8 = np.array([[[0, 128, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(transfer_color(u8, u8, "none"), [[[0, 128 / 255, 1]]], atol=1e-7)


@pytest.mark.parametrize("method", COLOR_METHODS)
def test_output_format_and_determinism(method, pair) -> None:
    style, content = pair
    out = transfer_color(style, content, method)
    assert out.dtype == np.float32 and out.shape == style.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(out, transfer_color(style, content, method))


@pytest.mark.parametrize("method", COLOR_METHODS)
def test_uint8_input_equals_float_input(method, pair) -> None:
    style, content = pair
    s8 = np.round(style * 255).astype(np.uint8)
    c8 = np.round(content * 255).astype(np.uint8)
    out8 = transfer_color(s8, c8, method)
    outf = transfer_color(s8 / 255.0, c8 / 255.0, method)
    np.testing.assert_allclose(out8, outf, atol=1e-6)


def test_rejects_bad_shapes_and_dtypes() -> None:
    with pytest.raises(ValueError):
        transfer_color(np.zeros((4, 4)), np.zeros((4, 4, 3)), "mkl")
    with pytest.raises(ValueError):
        transfer_color(np.zeros((4, 4, 3), np.int32), np.zeros((4, 4, 3)), "mkl")


@pytest.mark.parametrize("method", COLOR_METHODS)
def test_degenerate_images_stay_finite(method) -> None:
    # flat, grey (rank-1 covariance) and one-pixel images: the covariance ridge and the
    # guarded std / pdf floors keep every method finite; a flat target pulls all but
    # "none" and "luminance" (which keep the source chroma) onto its one colour.
    rng = np.random.default_rng(4)
    colour = np.array([0.2, 0.5, 0.7])
    flat = np.broadcast_to(colour, (4, 4, 3))
    grey = np.repeat(rng.uniform(0.1, 0.9, size=(5, 5, 1)), 3, axis=2)
    images = [flat, grey, rng.uniform(size=(6, 6, 3)), colour.reshape(1, 1, 3)]
    for src in images:
        for tgt in images:
            assert np.isfinite(transfer_color(src, tgt, method)).all()
        if method not in ("none", "luminance"):
            # the ridge leaves a spread of sqrt(COV_EPS) / sd_source (< 1e-2) for linear maps
            out = transfer_color(src, flat, method)
            np.testing.assert_allclose(out, np.broadcast_to(colour, out.shape), atol=1e-2)


def test_rejects_empty_image() -> None:
    with pytest.raises(ValueError):
        transfer_color(np.zeros((0, 4, 3)), np.zeros((4, 4, 3)), "mkl")


# ----------------------------------------------------------------- statistics move to the target


# Largest allowed (distance after / distance before) for the channel means and the covariance.
# Linear methods match both; IDT nearly (10 rotations); Reinhard and per-channel histogram
# matching fix the means but not the RGB correlations; luminance moves luma only.
MOVE_BOUNDS = {
    "reinhard": (0.05, 0.7),
    "idt": (0.05, 0.2),
    "mkl": (0.01, 0.05),
    "histogram": (0.05, 0.6),
    "luminance": (0.97, 0.97),
    "cholesky": (0.01, 0.05),
    "pca": (0.01, 0.05),
}


@pytest.mark.parametrize("method", list(MOVE_BOUNDS))
def test_moves_mean_and_covariance_toward_target(method, pair) -> None:
    style, content = pair
    mu_s, cov_s = _stats(style)
    mu_t, cov_t = _stats(content)
    mu_o, cov_o = _stats(transfer_color(style, content, method))
    mean_ratio = np.linalg.norm(mu_o - mu_t) / np.linalg.norm(mu_s - mu_t)
    cov_ratio = np.linalg.norm(cov_o - cov_t) / np.linalg.norm(cov_s - cov_t)
    max_mean, max_cov = MOVE_BOUNDS[method]
    assert mean_ratio < max_mean and cov_ratio < max_cov, (mean_ratio, cov_ratio)


@pytest.mark.parametrize("method", LINEAR)
def test_linear_methods_match_mean_and_covariance(method, pair) -> None:
    style, content = pair
    mu_t, cov_t = _stats(content)
    mu_o, cov_o = _stats(transfer_color(style, content, method))
    np.testing.assert_allclose(mu_o, mu_t, atol=1e-3)
    np.testing.assert_allclose(cov_o, cov_t, atol=2e-4)  # entries are ~1e-3 .. 5e-3


def test_histogram_matches_marginals(pair) -> None:
    style, content = pair
    out = transfer_color(style, content, "histogram").reshape(-1, 3).astype(np.float64)
    src, ref = style.reshape(-1, 3), content.reshape(-1, 3).astype(np.float64)
    qs = np.linspace(0.0, 1.0, 21)
    for k in range(3):
        lo, hi = ref[:, k].min() - 1e-6, ref[:, k].max() + 1e-6
        assert lo <= out[:, k].min() <= out[:, k].max() <= hi
        out_q, ref_q = np.quantile(out[:, k], qs), np.quantile(ref[:, k], qs)
        np.testing.assert_allclose(out_q, ref_q, atol=2e-3)
        assert np.all(np.diff(out[np.argsort(src[:, k], kind="stable"), k]) >= 0)  # monotone


def test_idt_keeps_an_image_matched_to_itself() -> None:
    image = np.random.default_rng(6).uniform(0.2, 0.8, size=(30, 30, 3))
    np.testing.assert_allclose(transfer_color(image, image, "idt"), image, atol=5e-3)


def test_idt_matches_marginals_on_several_axes(pair) -> None:
    style, content = pair
    out = transfer_color(style, content, "idt").reshape(-1, 3).astype(np.float64)
    src, ref = style.reshape(-1, 3).astype(np.float64), content.reshape(-1, 3).astype(np.float64)
    qs = np.linspace(0.05, 0.95, 10)
    for axis in (np.eye(3)[0], np.eye(3)[2], np.array([1.0, 1.0, 1.0]) / np.sqrt(3)):
        before = np.abs(np.quantile(src @ axis, qs) - np.quantile(ref @ axis, qs)).max()
        after = np.abs(np.quantile(out @ axis, qs) - np.quantile(ref @ axis, qs)).max()
        assert after < 0.25 * before


# ----------------------------------------------------------------- hand-computed values


@pytest.mark.parametrize("method", LINEAR)
def test_linear_methods_on_uncorrelated_channels(method) -> None:
    # Diagonal covariances: every A with A S A^T = T that these methods pick is diagonal,
    # x' = mu_t + sqrt((sd_t^2 + eps) / (sd_s^2 + eps)) * (x - mu_s) per channel, where eps is
    # the covariance ridge (without it the factors would be exactly 0.5, 0.5, 0.4).
    src = _hadamard_image((0.5, 0.4, 0.3), (0.2, 0.1, 0.05))
    tgt = _hadamard_image((0.3, 0.6, 0.5), (0.1, 0.05, 0.02))  # same variance order (pca)
    sd_s, sd_t = np.array([0.2, 0.1, 0.05]), np.array([0.1, 0.05, 0.02])
    scale = np.sqrt((sd_t**2 + COV_EPS) / (sd_s**2 + COV_EPS))
    expected = np.array([0.3, 0.6, 0.5]) + (src - [0.5, 0.4, 0.3]) * scale
    np.testing.assert_allclose(transfer_color(src, tgt, method), expected, atol=1e-6)


def test_linear_methods_on_one_variable_images() -> None:
    # Channels affine in one variable t: the source is a line a + t*d, the target has the same
    # t-distribution on another line b + t*e (different length), so every linear method must map
    # the source pixel with parameter t to b + t*e (up to the covariance ridge).
    t = np.linspace(-1.0, 1.0, 9)
    d, e = np.array([0.2, 0.1, 0.05]), np.array([0.05, 0.15, 0.3])
    src = (np.array([0.5, 0.5, 0.5]) + t[:, None] * d).reshape(3, 3, 3)
    tgt = (np.array([0.4, 0.45, 0.5]) + t[:, None] * e).reshape(3, 3, 3)
    for method in LINEAR:
        np.testing.assert_allclose(transfer_color(src, tgt, method), tgt, atol=5e-3, err_msg=method)


def test_mkl_is_identity_for_same_statistics_and_pure_shift() -> None:
    mix = np.array([[0.1, 0.02, 0], [0.02, 0.1, 0.03], [0, 0.03, 0.1]])
    src = _cloud((8, 8), mix, np.full(3, 0.5), 3)
    np.testing.assert_allclose(transfer_color(src, src, "mkl"), src, atol=1e-6)
    shifted = src + np.float32(0.1)  # same covariance: MKL is the pure translation
    np.testing.assert_allclose(transfer_color(src, shifted, "mkl"), shifted, atol=1e-5)


def test_reinhard_hand_values() -> None:
    # l-alpha-beta uses log cone responses: scaling RGB by c shifts l by sqrt(3) log10 c and
    # leaves alpha, beta unchanged, so mean/std matching to c * x returns exactly c * x.
    rng = np.random.default_rng(5)
    src = rng.uniform(0.2, 0.9, size=(6, 7, 3))
    np.testing.assert_allclose(transfer_color(src, 0.5 * src, "reinhard"), 0.5 * src, atol=1e-6)
    # same statistics (the pixels shuffled and tiled, another size): identity
    tgt = np.tile(rng.permutation(src.reshape(-1, 3)), (2, 1)).reshape(12, 7, 3)
    np.testing.assert_allclose(transfer_color(src, tgt, "reinhard"), src, atol=1e-6)
    lab = rgb_to_lab_reinhard(np.ones((1, 1, 3)))
    np.testing.assert_allclose(lab_reinhard_to_rgb(lab), np.ones((1, 1, 3)), atol=1e-12)


def test_histogram_hand_values() -> None:
    src = np.array([0.1, 0.2, 0.3, 0.4, 0.2, 0.1])[:, None].repeat(3, axis=1).reshape(2, 3, 3)
    tgt = np.array([0.5, 0.6, 0.6, 0.9])[:, None].repeat(3, axis=1).reshape(2, 2, 3)
    # source quantiles: 0.1 -> 1/3, 0.2 -> 2/3, 0.3 -> 5/6, 0.4 -> 1
    # target quantiles: 0.5 -> 1/4, 0.6 -> 3/4, 0.9 -> 1 ; interpolate between them
    # interpolating target value against quantile: 0.1 -> 0.5 + (1/3 - 1/4) / (1/2) * 0.1,
    # 0.2 -> 0.5 + (2/3 - 1/4) / (1/2) * 0.1, 0.3 -> 0.6 + (5/6 - 3/4) / (1/4) * 0.3, 0.4 -> 0.9
    value = {0.1: 0.5 + 1 / 60, 0.2: 0.5 + 1 / 12, 0.3: 0.7, 0.4: 0.9}
    expected = np.vectorize(lambda v: value[round(v, 1)])(src)
    np.testing.assert_allclose(transfer_color(src, tgt, "histogram"), expected, atol=1e-6)


def test_luminance_hand_values() -> None:
    # grey images: Y is the grey level; source Y {0.2, 0.4} (mean .3, sd .1) matched to the
    # target's {0.5, 0.9} (mean .7, sd .2) gives {0.5, 0.9}
    src = np.array([0.2, 0.4])[:, None].repeat(3, axis=1).reshape(1, 2, 3)
    tgt = np.array([0.5, 0.9, 0.5, 0.9])[:, None].repeat(3, axis=1).reshape(2, 2, 3)
    out = transfer_color(src, tgt, "luminance")
    np.testing.assert_allclose(out, [[[0.5] * 3, [0.9] * 3]], atol=1e-6)
    # coloured source: chroma (I, Q) kept, only Y changes
    rng = np.random.default_rng(7)
    src = rng.uniform(0.35, 0.65, size=(5, 5, 3))
    tgt = rng.uniform(0.4, 0.6, size=(4, 6, 3))
    out = transfer_color(src, tgt, "luminance")
    np.testing.assert_allclose(rgb_to_yiq(out)[..., 1:], rgb_to_yiq(src)[..., 1:], atol=1e-6)
    y_out, y_tgt = rgb_to_yiq(out)[..., 0], rgb_to_yiq(tgt)[..., 0]
    assert y_out.mean() == pytest.approx(y_tgt.mean(), abs=1e-6)
    assert y_out.std() == pytest.approx(y_tgt.std(), abs=1e-6)


# ----------------------------------------------------------------- preserve_colors


def test_yiq_round_trip_and_grey_axis() -> None:
    rgb = np.random.default_rng(8).uniform(size=(3, 4, 3))
    np.testing.assert_allclose(yiq_to_rgb(rgb_to_yiq(rgb)), rgb, atol=1e-12)
    np.testing.assert_allclose(rgb_to_yiq(np.full((1, 1, 3), 0.4)), [[[0.4, 0, 0]]], atol=1e-6)


def test_preserve_colors_keeps_content_chroma_and_stylized_luma() -> None:
    rng = np.random.default_rng(9)
    stylized = rng.uniform(0.3, 0.7, size=(6, 5, 3))
    content = rng.uniform(0.3, 0.7, size=(6, 5, 3))
    out = preserve_colors(stylized, content)
    assert out.dtype == np.float32 and out.shape == content.shape
    np.testing.assert_allclose(rgb_to_yiq(out)[..., 0], rgb_to_yiq(stylized)[..., 0], atol=1e-6)
    np.testing.assert_allclose(rgb_to_yiq(out)[..., 1:], rgb_to_yiq(content)[..., 1:], atol=1e-6)


def test_preserve_colors_hand_values() -> None:
    # a grey stylised pixel v has Y = v; chroma rows sum to zero, so out = content + (v - Y_c)
    stylized = np.full((1, 1, 3), 0.5)
    content = np.array([[[0.6, 0.4, 0.2]]])
    y_c = 0.299 * 0.6 + 0.587 * 0.4 + 0.114 * 0.2
    np.testing.assert_allclose(preserve_colors(stylized, content), content + (0.5 - y_c), atol=1e-6)
    u8 = (content * 255).astype(np.uint8)
    np.testing.assert_allclose(preserve_colors(u8, u8), u8 / 255.0, atol=1e-6)


def test_preserve_colors_match_luminance_and_shape_check() -> None:
    rng = np.random.default_rng(10)
    stylized = rng.uniform(0.0, 1.0, size=(6, 6, 3))
    content = rng.uniform(0.4, 0.6, size=(6, 6, 3))
    out = preserve_colors(stylized, content, match_luminance=True)
    y_out, y_con = rgb_to_yiq(out)[..., 0], rgb_to_yiq(content)[..., 0]
    assert y_out.mean() == pytest.approx(y_con.mean(), abs=1e-3)
    assert y_out.std() == pytest.approx(y_con.std(), abs=1e-3)
    with pytest.raises(ValueError):
        preserve_colors(stylized, content[:5])


# ----------------------------------------------------------------- HSV equalisation


def test_equalize_value_hsv_hand_values() -> None:
    # V levels (x255): 51, 102, 102, 204 -> S_k = cumulative share: .25, .75, .75, 1.0
    image = np.array([[[0.2, 0.1, 0.0], [0.4, 0.4, 0.2]], [[0.4, 0.0, 0.4], [0.8, 0.6, 0.8]]])
    expected = np.array([[[0.25, 0.125, 0.0], [0.75, 0.75, 0.375]], [[0.75, 0.0, 0.75], [1.0, 0.75, 1.0]]])
    out = equalize_value_hsv(image)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_equalize_value_hsv_keeps_hue_and_saturation() -> None:
    image = np.random.default_rng(11).integers(1, 256, size=(8, 9, 3), dtype=np.uint8)
    out = equalize_value_hsv(image)
    hsv_in = cv2.cvtColor((image / 255.0).astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv_out = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
    np.testing.assert_allclose(hsv_out[..., 1], hsv_in[..., 1], atol=1e-5)
    dh = np.abs(hsv_out[..., 0] - hsv_in[..., 0])
    assert np.minimum(dh, 360 - dh).max() < 1e-3
    # V is now the CDF of the input's levels: its histogram is spread (max V becomes 1)
    assert hsv_out[..., 2].max() == pytest.approx(1.0)


def test_equalize_value_hsv_black_becomes_grey() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = 255
    out = equalize_value_hsv(image)  # 3/4 of pixels at level 0 -> V' = 0.75, grey (S = 0)
    np.testing.assert_allclose(out[1, 1], [0.75] * 3, atol=1e-6)
    np.testing.assert_allclose(out[0, 0], [1.0] * 3, atol=1e-6)


# ----------------------------------------------------------------- KL metric


def _two_colour(n_black: int, n_white: int) -> np.ndarray:
    pixels = np.array([[0, 0, 0]] * n_black + [[255, 255, 255]] * n_white, np.uint8)
    return pixels.reshape(1, -1, 3)


def test_kl_identical_is_zero() -> None:
    image = np.random.default_rng(12).integers(0, 256, size=(10, 10, 3), dtype=np.uint8)
    np.testing.assert_allclose(color_histogram_kl(image, image), 0.0, atol=1e-12)
    assert color_histogram_kl_mean(image, image / 255.0) == pytest.approx(0.0, abs=1e-12)


def test_kl_hand_values_and_direction() -> None:
    a, b = _two_colour(2, 2), _two_colour(3, 1)  # P_a = (1/2, 1/2), P_b = (3/4, 1/4)
    ab = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)  # = 0.5 ln(4/3)
    ba = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    kl = color_histogram_kl(a, b)
    assert kl.shape == (3,)
    np.testing.assert_allclose(kl, ab, rtol=1e-8)
    np.testing.assert_allclose(color_histogram_kl(b, a), ba, rtol=1e-8)
    assert color_histogram_kl_mean(a, b) == pytest.approx(ab)


def test_kl_per_channel_and_missing_bins() -> None:
    a = np.zeros((1, 4, 3), np.uint8)
    a[0, :2, 0] = 255  # only red differs: P_a(red) = (1/2, 1/2), P_b(red) = (1, 0)
    b = np.zeros((1, 4, 3), np.uint8)
    eps = 1e-10
    expected_red = 0.5 * math.log((0.5 + eps) / (1 + eps)) + 0.5 * math.log((0.5 + eps) / eps)
    kl = color_histogram_kl(a, b)
    np.testing.assert_allclose(kl, [expected_red, 0, 0], rtol=1e-8, atol=1e-12)
    unsmoothed = color_histogram_kl(a, b, eps=0.0)
    assert np.isinf(unsmoothed[0]) and unsmoothed[1] == 0.0
    # bins: 2 bins split [0, 1] at 0.5
    np.testing.assert_allclose(color_histogram_kl(a, b, bins=2)[0], expected_red, rtol=1e-8)


def test_kl_ranks_transfer_methods(pair) -> None:
    style, content = pair
    before = color_histogram_kl_mean(style, content)
    for method in ("histogram", "idt", "mkl"):
        assert color_histogram_kl_mean(transfer_color(style, content, method), content) < before
