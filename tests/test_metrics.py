"""E_warp, seam ratio, PSNR/SSIM against hand-computed values on tiny synthetic videos."""

import math

import cv2
import numpy as np
import pytest

from vidstyle import metrics
from vidstyle.metrics import WarpError, pair_warp_error, psnr, seam_ratio, ssim, warp_error

H, W = 48, 64


def texture(h: int, w: int, seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    r = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    r = cv2.GaussianBlur(r, (0, 0), sigma)
    r = (r - r.min()) / (r.max() - r.min())
    return (r * 255.0 + 0.5).astype(np.uint8)


def translating_video(n: int = 6, seed: int = 1) -> list[np.ndarray]:
    """A texture panning by (2, 1) px per frame."""
    big = texture(H + 3 * n, W + 3 * n, seed)
    return [big[t : t + H, 2 * t : 2 * t + W].copy() for t in range(n)]


def stylize(frame: np.ndarray) -> np.ndarray:
    """A per-pixel function of the input: perfectly flow-consistent 'stylization'."""
    return (255 - frame)[..., ::-1].copy()


# ----------------------------------------------------------------------------- E_warp


def test_static_video_has_zero_warp_error():
    frame = texture(H, W, 2)
    err = warp_error([frame] * 4, [stylize(frame)] * 4)
    assert isinstance(err, WarpError)
    assert err.mean == 0.0 and err.per_pair == [0.0, 0.0, 0.0]
    assert err.visible == [1.0, 1.0, 1.0]
    assert float(err) == 0.0


def test_consistent_video_beats_flicker_and_noise():
    orig = translating_video()
    styl = [stylize(f) for f in orig]
    rng = np.random.default_rng(0)
    gains = [1.15, 0.85, 1.12, 0.88, 1.1, 0.9]  # brightness flicker
    flicker = [np.clip(s * g, 0, 255).astype(np.uint8) for s, g in zip(styl, gains)]
    noisy = [np.clip(s + rng.normal(0, 20, s.shape), 0, 255).astype(np.uint8) for s in styl]

    good = warp_error(iter(orig), (s for s in styl))  # iterators / generators are fine
    bad_flicker = warp_error(orig, flicker)
    bad_noise = warp_error(orig, noisy)
    assert len(good.per_pair) == len(orig) - 1 == len(good.visible)
    assert all(0.8 < v <= 1.0 for v in good.visible)  # only the entering band is masked
    assert good.mean < 1e-4
    assert bad_flicker.mean > 20 * good.mean and bad_flicker.mean > 1e-3
    assert bad_noise.mean > 20 * good.mean and bad_noise.mean > 1e-3
    assert good.mean == pytest.approx(np.mean(good.per_pair))


def test_stylized_of_another_size_is_resized_to_original():
    orig = translating_video()
    half = [cv2.resize(stylize(f), (W // 2, H // 2), interpolation=cv2.INTER_AREA) for f in orig]
    err = warp_error(orig, half)
    assert len(err.per_pair) == len(orig) - 1 and err.mean < 1e-3
    # explicit evaluation size (width, height): everything at 32x24
    err_small = warp_error(orig, half, size=(W // 2, H // 2))
    assert len(err_small.per_pair) == len(orig) - 1 and math.isfinite(err_small.mean)


def test_warp_error_edge_cases():
    one = warp_error([texture(H, W)], [texture(H, W)])
    assert math.isnan(one.mean) and one.per_pair == []
    with pytest.raises(ValueError):
        warp_error([texture(H, W)] * 3, [texture(H, W)] * 2)
    with pytest.raises(ValueError):
        warp_error([texture(H, W)] * 2, [texture(H, W)] * 3)


def test_pair_warp_error_hand_values():
    zero_flow = np.zeros((H, W, 2), np.float32)
    mask = np.zeros((H, W), np.float32)
    mask[:, : W // 2] = 1
    prev = np.zeros((H, W, 3), np.float32)
    cur = np.zeros((H, W, 3), np.float32)
    cur[:, : W // 2] = 0.1  # visible: squared difference 0.01 in every channel
    cur[:, W // 2 :] = 0.5  # masked out: ignored
    assert pair_warp_error(mask, zero_flow, prev, cur) == pytest.approx(0.01)
    # mean over channels: one channel off by 0.3 -> 0.09 / 3
    cur = np.zeros((H, W, 3), np.float32)
    cur[..., 1] = 0.3
    assert pair_warp_error(mask, zero_flow, prev, cur) == pytest.approx(0.03)
    # uint8 input is scaled to [0, 1]
    assert pair_warp_error(mask, zero_flow, np.zeros((H, W, 3), np.uint8), np.full((H, W, 3), 51, np.uint8)) == (
        pytest.approx(0.04)
    )
    # empty mask falls back to all pixels
    assert pair_warp_error(np.zeros((H, W)), zero_flow, prev, cur) == pytest.approx(0.03)
    # the previous frame is warped along the backward flow before comparing
    tex = texture(H, W, 5).astype(np.float32) / 255.0
    moved = np.roll(tex, 3, axis=1)  # content moves right by 3: moved(x) = tex(x - 3)
    b = np.zeros((H, W, 2), np.float32)
    b[..., 0] = -3.0
    m = np.ones((H, W), np.float32)
    m[:, :3] = 0
    assert pair_warp_error(m, b, tex, moved) == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- seam ratio


def test_seam_ratio_hand_cases():
    assert seam_ratio([1, 1, 2, 1, 1], [2]) == pytest.approx(2.0)
    assert seam_ratio([1, 1, 3, 1, 5], [2, 4]) == pytest.approx(4.0)  # mean(3, 5) / median(1, 1, 1)
    assert seam_ratio([1, 2, 3, 10, 4], [3]) == pytest.approx(10 / 2.5)  # median of an even count
    assert seam_ratio([1, 2, 3, 10, 4], [3, 3]) == pytest.approx(4.0)  # duplicates count once
    assert seam_ratio(np.array([0.5, 0.25, 0.5]), [1]) == pytest.approx(0.5)
    assert seam_ratio([0, 0, 0], [1]) == 1.0
    assert seam_ratio([0, 1, 0], [1]) == math.inf
    for per_pair, seams in (([1, 2], []), ([1, 2], [2]), ([1, 2], [-1]), ([1, 2], [0, 1])):
        with pytest.raises(ValueError):
            seam_ratio(per_pair, seams)


def test_evaluate_seam_statistics_use_metrics_seam_ratio():
    """Cut pairs are dropped and the rest renumbered; the ratio is metrics.seam_ratio on what is left."""
    from vidstyle.evaluate import seam_statistics

    per_pair = [1.0, 2.0, 9.0, 3.0, 50.0, 4.0, 2.5, 1.5]
    stats = seam_statistics(per_pair, seam_pairs=[2, 5, 20], cut_pairs={4})
    kept = [1.0, 2.0, 9.0, 3.0, 4.0, 2.5, 1.5]  # pair 4 (a cut) left out; pair 5 is now index 4
    assert stats.ratio == seam_ratio(kept, [2, 4])
    assert stats.seam_mean == pytest.approx((9.0 + 4.0) / 2)
    assert stats.interior_median == pytest.approx(np.median([1.0, 2.0, 3.0, 2.5, 1.5]))
    assert seam_statistics(per_pair, [], set()).ratio is None  # no seam: nothing to compare
    assert seam_statistics([1.0, 2.0], [0, 1], set()).ratio is None  # no interior pair
    assert seam_statistics([0.0, 1.0, 0.0], [1], set()).ratio is None  # zero interior median: not a number
    assert seam_statistics([0.0, 0.0, 0.0], [1], set()).ratio == 1.0


def test_evaluate_video_seam_ratio_is_metrics_seam_ratio(tmp_path):
    """End to end: `vidstyle eval`'s seam_ratio is metrics.seam_ratio of its own per-pair E_warp."""
    import json

    from media_fixtures import make_clip

    from vidstyle.evaluate import evaluate_video
    from vidstyle.media import read_frames, write_video

    original = make_clip(tmp_path / "orig.mp4", n_frames=10)
    stylized = tmp_path / "styl.mp4"
    write_video(stylized, (stylize(f) for f in read_frames(original)), 24, crf=0, preset="ultrafast")
    (tmp_path / "styl.mp4.json").write_text(json.dumps({"range": [0, 10], "seam_pairs": [2, 6], "cut_pairs": [4]}))
    report = evaluate_video(str(original), str(stylized))
    per_pair = report["e_warp_per_pair"]
    kept = [e for i, e in enumerate(per_pair) if i != 4]
    assert len(per_pair) == 9 and report["cut_pairs"] == [4] and report["seam_pairs"] == [2, 6]
    assert report["seam_ratio"] == seam_ratio(kept, [2, 5])
    assert report["e_warp"] == pytest.approx(np.mean(kept))


# ----------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_hand_values():
    a = texture(H, W, 3)
    assert psnr(a, a) == math.inf
    zeros = np.zeros((H, W, 3), np.uint8)
    assert psnr(zeros, np.full_like(zeros, 10)) == pytest.approx(10 * math.log10(255**2 / 100))  # MSE 100
    assert psnr(zeros.astype(np.float32), np.full((H, W, 3), 0.1, np.float32)) == pytest.approx(20.0, abs=1e-4)
    # half the pixels off by 0.2: MSE 0.02 -> 10·log10(50)
    b = np.zeros((H, W), np.float64)
    b[:, : W // 2] = 0.2
    assert psnr(np.zeros((H, W)), b) == pytest.approx(10 * math.log10(50))
    # uint8 vs float is compared in [0, 1]; explicit range uses the raw values
    assert psnr(np.full((H, W), 51, np.uint8), np.zeros((H, W), np.float32)) == pytest.approx(10 * math.log10(25))
    assert psnr(np.zeros((4, 4)), np.full((4, 4), 2.0), data_range=4.0) == pytest.approx(10 * math.log10(4))
    with pytest.raises(ValueError):
        psnr(zeros, zeros[:, :-1])


def _ssim_brute_force(x: np.ndarray, y: np.ndarray, rng: float) -> float:
    """Wang et al.'s definition written out window by window ('valid' windows only)."""
    g = cv2.getGaussianKernel(11, 1.5, cv2.CV_64F)
    w = g @ g.T
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            vals.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_hand_values():
    a = texture(H, W, 4)
    assert ssim(a, a) == pytest.approx(1.0)
    # constant images: only the luminance term survives
    c1 = (0.01 * 1.0) ** 2
    x, y = np.full((H, W), 0.2), np.full((H, W), 0.4)
    assert ssim(x, y) == pytest.approx((2 * 0.2 * 0.4 + c1) / (0.2**2 + 0.4**2 + c1))
    # window-by-window reference on a small random pair
    rng = np.random.default_rng(0)
    p = rng.random((20, 22))
    q = np.clip(p + rng.normal(0, 0.1, p.shape), 0, 1)
    assert ssim(p, q) == pytest.approx(_ssim_brute_force(p, q, 1.0), rel=1e-9)
    assert ssim(p, q) == pytest.approx(ssim(q, p))
    # RGB: mean of the per-channel values; uint8 uses L = 255
    b = np.clip(a.astype(np.int16) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    per_channel = [_ssim_brute_force(a[..., c].astype(float), b[..., c].astype(float), 255.0) for c in range(3)]
    assert ssim(a, b) == pytest.approx(np.mean(per_channel), rel=1e-9)
    assert 0.0 < ssim(a, b) < 0.99
    assert ssim(a, b) == pytest.approx(ssim(a.astype(np.float64) / 255, b.astype(np.float64) / 255), rel=1e-9)


# ----------------------------------------------------------------------------- colour


def test_color_kl_is_zero_for_equal_palettes_and_positive_otherwise():
    a = texture(H, W, 6)
    kl = metrics.color_kl(a, a)
    assert kl.shape == (3,)
    np.testing.assert_allclose(kl, 0.0, atol=1e-6)
    assert np.all(metrics.color_kl(a, 255 - a) >= 0)
