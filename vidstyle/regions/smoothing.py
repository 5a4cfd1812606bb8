"""Temporal smoothing of segmentation masks along the optical flow of the input frames.

A per-frame segmentation flickers: its outline jitters by a few pixels from frame to frame, and a
style boundary that jitters is the first thing a viewer sees. Each frame's probability is replaced by
a weighted mean of its neighbours' probabilities (±SMOOTHING_RADIUS frames) warped onto it along the
flow, so the outline follows the motion but its jitter averages out.

Weights: a Gaussian in the frame distance times a per-pixel trust: 0 where the neighbour's pixel is
not visible in it (forward–backward check failed) or the flow leaves the frame, else 1. Ruder's
motion-boundary test is deliberately left out: a segmented subject's outline *is* a motion boundary,
so that test would switch the smoothing off exactly where the jitter is. The centre frame has weight
1 and full trust, so the result is always defined.

Everything depends only on the input frames inside the window, never on where a chunk starts: the
caller passes the frames of the video's range, so windows are clipped at the range's ends only.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, MutableMapping

import cv2
import numpy as np

from vidstyle.flow import compute_flow, disocclusion_mask, out_of_frame_mask, resize_flow, to_gray_u8, warp

SMOOTHING_RADIUS = 2
SIGMA_PER_RADIUS = 0.75  # temporal Gaussian σ as a fraction of the radius: weights 1, 0.80, 0.41 at radius 2
SEGMENT_BATCH = 8  # frames per Segmenter call

FlowCache = MutableMapping[tuple[int, int], tuple[np.ndarray, np.ndarray]]


def temporal_weight(distance: int, radius: int) -> float:
    """Gaussian weight of a neighbour `distance` frames away (1 at the centre)."""
    sigma = SIGMA_PER_RADIUS * max(radius, 1)
    return math.exp(-0.5 * (distance / sigma) ** 2)


def flow_gray(frame: np.ndarray, flow_side: int) -> np.ndarray:
    """The frame's luma, shrunk (area filter) so that its long side is at most `flow_side`."""
    gray = to_gray_u8(frame)
    h, w = gray.shape
    scale = flow_side / max(h, w)
    if scale >= 1.0:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def pair_flows(
    center: int, other: int, grays: Mapping[int, np.ndarray], preset: str, cache: FlowCache | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(backward, forward) flows between two frames, as vidstyle.flow.flow_and_mask computes them:
    center(x) ≈ other(x + backward(x)) and other(x) ≈ center(x + forward(x)). The pair (a, b) and
    (b, a) share their two flows, so a cache halves the work of a sliding window."""
    key = (min(center, other), max(center, other))
    if cache is not None and key in cache:
        low_to_high, high_to_low = cache[key]
    else:
        low_to_high = compute_flow(grays[key[0]], grays[key[1]], preset)
        high_to_low = compute_flow(grays[key[1]], grays[key[0]], preset)
        if cache is not None:
            cache[key] = (low_to_high, high_to_low)
    return (low_to_high, high_to_low) if center < other else (high_to_low, low_to_high)


def smooth_window(
    center: int,
    probabilities: Mapping[int, np.ndarray],
    frames: Mapping[int, np.ndarray],
    radius: int = SMOOTHING_RADIUS,
    flow_side: int = 256,
    flow_preset: str = "medium",
    cache: FlowCache | None = None,
    grays: MutableMapping[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Smoothed H×W float32 probability of frame `center` from the frames of its window present in
    both mappings. `cache` (flows) and `grays` (shrunk luma) may be shared between calls to save
    work; they never change the result."""
    base = np.asarray(probabilities[center], dtype=np.float32)
    h, w = base.shape
    total = base.copy()
    weights = np.ones((h, w), dtype=np.float32)
    grays = {} if grays is None else grays
    for other in range(center - radius, center + radius + 1):
        if other == center or other not in probabilities or other not in frames:
            continue
        for index in (center, other):
            if index not in grays:
                grays[index] = flow_gray(frames[index], flow_side)
        backward, forward = pair_flows(center, other, grays, flow_preset, cache)
        trust = ~(disocclusion_mask(backward, forward) | out_of_frame_mask(backward))
        trust = trust.astype(np.float32)
        if trust.shape != (h, w):
            trust = cv2.resize(trust, (w, h), interpolation=cv2.INTER_LINEAR)
        aligned = warp(np.asarray(probabilities[other], dtype=np.float32), resize_flow(backward, h, w))
        weight = temporal_weight(abs(other - center), radius) * trust
        total += weight * aligned
        weights += weight
    return np.clip(total / weights, 0.0, 1.0).astype(np.float32, copy=False)


def segment_window(segmenter: Any, frames: np.ndarray, lo: int, hi: int, radius: int = SMOOTHING_RADIUS) -> np.ndarray:
    """Smoothed masks (hi − lo, H, W) uint8 for positions lo … hi−1 of `frames`, a window of
    consecutive input frames (n, H, W, 3) that holds each output's neighbours where the video has
    them. Each frame is segmented once, in batches of at most SEGMENT_BATCH."""
    frames = np.asarray(frames)
    n = len(frames)
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"positions {lo}…{hi} are outside the window of {n} frames")
    first, last = max(0, lo - radius), min(n, hi + radius)
    probabilities: dict[int, np.ndarray] = {}
    for start in range(first, last, SEGMENT_BATCH):
        batch = segmenter.probabilities(frames[start : min(last, start + SEGMENT_BATCH)])
        for offset, probability in enumerate(batch):
            probabilities[start + offset] = np.asarray(probability, dtype=np.float32)
    window = {index: frames[index] for index in range(first, last)}
    cache: FlowCache = {}
    grays: dict[int, np.ndarray] = {}
    out = np.empty((hi - lo, *frames.shape[1:3]), dtype=np.uint8)
    for position in range(lo, hi):
        smoothed = smooth_window(position, probabilities, window, radius, cache=cache, grays=grays)
        out[position - lo] = np.clip(np.rint(smoothed * 255.0), 0, 255).astype(np.uint8)
    return out
