"""Temporal smoothing of segmentations on a synthetic moving square with a jittery fake segmenter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidstyle.regions.smoothing import (
    SEGMENT_BATCH,
    SMOOTHING_RADIUS,
    segment_window,
    smooth_window,
    temporal_weight,
)

H = W = 64
SIDE, STEP, X0, Y0 = 20, 2, 8, 22  # the square: size, motion (px/frame, to the right), start
N = 12


def texture(h: int, w: int, seed: int, sigma: float) -> np.ndarray:
    r = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    r = cv2.GaussianBlur(r, (0, 0), sigma)
    r = (r - r.min()) / (r.max() - r.min())
    return (r * 255.0 + 0.5).astype(np.uint8)


def scene(n: int = N, seed: int = 7):
    """Frames of a textured square moving over a textured background, the true masks, and per-frame
    "segmentations" whose four edges each jitter by up to ±2 px."""
    background, square = texture(H, W, 1, 1.5), texture(SIDE, SIDE, 2, 1.0)
    rng = np.random.default_rng(seed)
    frames, truth, raw = [], [], []
    for t in range(n):
        x = X0 + STEP * (t % N)  # longer scenes start over (the square would leave the frame)
        frame = background.copy()
        frame[Y0 : Y0 + SIDE, x : x + SIDE] = square
        true = np.zeros((H, W), np.float32)
        true[Y0 : Y0 + SIDE, x : x + SIDE] = 1.0
        top, bottom, left, right = rng.integers(-2, 3, 4)
        noisy = np.zeros((H, W), np.float32)
        noisy[Y0 + top : Y0 + SIDE + bottom, x + left : x + SIDE + right] = 1.0
        frames.append(frame)
        truth.append(true)
        raw.append(noisy)
    return np.stack(frames), np.stack(truth), np.stack(raw)


class FakeSegmenter:
    """Answers each frame with its precomputed segmentation and records the batches it was given."""

    def __init__(self, frames: np.ndarray, masks: np.ndarray) -> None:
        self.lookup = {frame.tobytes(): mask for frame, mask in zip(frames, masks)}
        self.batches: list[int] = []

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        self.batches.append(len(frames))
        return np.stack([self.lookup[frame.tobytes()] for frame in frames])


def flicker(masks: np.ndarray) -> float:
    """Mean |m_t − m_{t−1} moved along the true motion|: 0 for masks that follow the square exactly."""
    return float(np.mean([np.abs(masks[t][:, STEP:] - masks[t - 1][:, :-STEP]).mean() for t in range(1, len(masks))]))


def test_smoothing_reduces_boundary_flicker_and_keeps_area():
    frames, truth, raw = scene()
    smoothed = segment_window(FakeSegmenter(frames, raw), frames, 0, N).astype(np.float32) / 255.0
    assert smoothed.shape == (N, H, W)
    assert flicker(truth) == 0.0
    assert flicker(smoothed) < 0.5 * flicker(raw)
    area = smoothed.sum(axis=(1, 2))
    assert abs(area.mean() - SIDE * SIDE) < 0.04 * SIDE * SIDE
    assert np.all(np.abs(area - SIDE * SIDE) < 0.15 * SIDE * SIDE)
    # far from the square nothing leaks in, inside it the mask stays solid
    for t in range(N):
        x = X0 + STEP * t
        assert smoothed[t, :Y0 - 4].max() == 0.0 and smoothed[t, Y0 + SIDE + 4 :].max() == 0.0
        assert smoothed[t, Y0 + 4 : Y0 + SIDE - 4, x + 4 : x + SIDE - 4].min() > 0.99


def test_result_does_not_depend_on_where_the_window_starts():
    frames, _, raw = scene()
    fake = FakeSegmenter(frames, raw)
    long = segment_window(fake, frames, 5, 7)  # frames 5, 6 from the whole sequence
    own = segment_window(fake, frames[3:9], 2, 4)  # … from exactly their windows (3 … 8)
    other = segment_window(fake, frames[1:10], 4, 6)
    np.testing.assert_array_equal(long, own)
    np.testing.assert_array_equal(long, other)


def test_window_is_clipped_at_the_range_ends():
    frames, _, raw = scene()
    fake = FakeSegmenter(frames, raw)
    first = segment_window(fake, frames, 0, 1)
    assert fake.batches == [SMOOTHING_RADIUS + 1]  # frames 0 … 2 only
    np.testing.assert_array_equal(first, segment_window(fake, frames[:3], 0, 1))
    last = segment_window(fake, frames, N - 1, N)
    np.testing.assert_array_equal(last, segment_window(fake, frames[N - 3 :], 2, 3))
    manual = smooth_window(0, {i: raw[i] for i in range(3)}, {i: frames[i] for i in range(3)})
    np.testing.assert_array_equal(first[0], np.rint(manual * 255).astype(np.uint8))


def test_each_frame_is_segmented_once_in_small_batches():
    frames, _, raw = scene(n=24)
    fake = FakeSegmenter(frames, raw)
    out = segment_window(fake, frames, 3, 21)
    assert out.shape == (18, H, W) and out.dtype == np.uint8
    assert sum(fake.batches) == 22 and max(fake.batches) <= SEGMENT_BATCH  # frames 1 … 22


def test_a_lone_frame_is_its_own_probability():
    frames, _, raw = scene(n=3)
    soft = (raw[1] * 0.7).astype(np.float32)
    out = smooth_window(1, {1: soft}, {i: frames[i] for i in range(3)})
    np.testing.assert_array_equal(out, soft)
    alone = smooth_window(1, {0: raw[0], 1: soft, 2: raw[2]}, {i: frames[i] for i in range(3)}, radius=0)
    np.testing.assert_array_equal(alone, soft)


def test_flow_on_shrunk_frames_gives_full_size_masks():
    frames, _, raw = scene(n=5)
    probabilities = {i: raw[i] for i in range(5)}
    window = {i: frames[i] for i in range(5)}
    small = smooth_window(2, probabilities, window, flow_side=32)
    full = smooth_window(2, probabilities, window)
    assert small.shape == (H, W) and small.dtype == np.float32
    assert 0.0 <= small.min() and small.max() <= 1.0
    assert np.abs(small - full).mean() < 0.02


def test_temporal_weight():
    assert temporal_weight(0, 2) == 1.0
    assert 1.0 > temporal_weight(1, 2) > temporal_weight(2, 2) > 0.2


def test_bad_positions():
    frames, _, raw = scene(n=3)
    with pytest.raises(ValueError, match="outside"):
        segment_window(FakeSegmenter(frames, raw), frames, 1, 4)
