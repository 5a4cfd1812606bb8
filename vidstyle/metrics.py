"""Quality metrics: temporal warp error, seam ratio, PSNR/SSIM, colour-histogram KL.

Pure functions on numpy arrays. Images are RGB ``H×W×3`` (or gray ``H×W``), uint8 in 0–255 or
float in [0, 1]. Sizes are ``(width, height)``, as everywhere in the project (``vidstyle.geometry``).

Frame-pair indexing (used by :class:`WarpError` and :func:`seam_ratio`): **pair i is the pair of
frames (i, i+1)**, 0-based, so a video of N frames has N−1 pairs. A chunk boundary where a new
chunk starts at frame ``s`` is the seam pair ``s − 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from vidstyle.color import as_float_rgb
from vidstyle.flow import compute_flow, consistency_mask, to_gray_u8, warp

__all__ = ["WarpError", "warp_error", "pair_warp_error", "seam_ratio", "psnr", "ssim", "color_kl"]


# --------------------------------------------------------------------------- temporal


@dataclass(frozen=True)
class WarpError:
    """E_warp of a video. ``per_pair[i]`` is the error of frames (i, i+1); ``visible[i]`` the
    fraction of pixels the occlusion mask kept for that pair; ``mean`` the mean over pairs
    (NaN for a video with fewer than two frames)."""

    mean: float
    per_pair: list[float] = field(default_factory=list)
    visible: list[float] = field(default_factory=list)

    def __float__(self) -> float:
        return float(self.mean)


def _to_unit_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    return image.astype(np.float32, copy=False)


def _resize_for_flow(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area when shrinking, bilinear otherwise, a channel axis kept: E_warp's own resize, not
    ``geometry.resize_image`` (cubic when enlarging), so E_warp values stay comparable across runs."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    interp = cv2.INTER_AREA if (height <= h and width <= w) else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interp)
    if image.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def pair_warp_error(mask: np.ndarray, backward: np.ndarray, stylized_prev: np.ndarray, stylized_t: np.ndarray) -> float:
    """Warp error of one pair given the input video's backward flow (t→t−1) and mask.

    ``Σ_x M(x) · Σ_c (V_t − warp(V_{t−1}, b))²(x, c) / (C · Σ_x M(x))`` with V in [0, 1], i.e.
    the mean squared difference over visible pixels *and* channels, as Lai et al.'s reference
    code computes it (their 3-channel mask counts every pixel C times). If the mask keeps no
    pixel, the mean over all pixels is used (again as Lai et al. do).
    """
    v_t = _to_unit_float(stylized_t)
    v_w = warp(_to_unit_float(stylized_prev), backward, border="replicate")
    sq = (v_t - v_w) ** 2
    if sq.ndim == 3:
        sq = sq.mean(axis=2)
    m = np.asarray(mask, dtype=np.float32)
    total = float(m.sum(dtype=np.float64))
    if total <= 0.0:
        return float(sq.mean(dtype=np.float64))
    return float((sq * m).sum(dtype=np.float64) / total)


def warp_error(
    original_frames: Iterable[np.ndarray],
    stylized_frames: Iterable[np.ndarray],
    *,
    preset: str | int = "medium",
    size: tuple[int, int] | None = None,
) -> WarpError:
    """E_warp (Lai et al. 2018) of ``stylized_frames`` with respect to ``original_frames``.

    For each pair (t−1, t): backward flow ``b`` (t→t−1) and forward flow from the ORIGINAL
    frames give Ruder's consistency mask ``M`` (:func:`vidstyle.flow.consistency_mask`); the
    stylized frame t−1 is warped to t along ``b``, and the pair error is
    ``Σ M·Σ_c (V_t − warp(V_{t−1}))² / (3·Σ M)`` — the squared RGB difference in [0, 1]
    averaged over visible pixels and the three channels (see :func:`pair_warp_error`; multiply
    by 3 for the per-pixel squared norm). ``mean`` is the mean over pairs.

    Frames are RGB uint8 (0–255) or float ([0, 1]), all originals of one size and all stylized
    frames of one size. Everything is evaluated at ``size = (width, height)``, by default the
    original frames' size: stylized frames of another size are resized to it (INTER_AREA when
    shrinking, else bilinear), as are the originals when ``size`` is given. Both arguments may
    be iterators: they are consumed in lock-step and only two frames of each are held.
    Raises ``ValueError`` if the two streams differ in length.
    """
    pairs: list[float] = []
    visible: list[float] = []
    sentinel = object()
    orig_it = iter(original_frames)
    styl_it = iter(stylized_frames)
    prev_gray = prev_styl = None
    target: tuple[int, int] | None = tuple(size) if size is not None else None  # type: ignore[assignment]
    index = 0
    while True:
        o = next(orig_it, sentinel)
        s = next(styl_it, sentinel)
        if o is sentinel or s is sentinel:
            if o is not s:
                longer = "original" if s is sentinel else "stylized"
                raise ValueError(f"{longer} video has more frames than the other (differ after {index} frames)")
            break
        o = np.asarray(o)
        s = np.asarray(s)
        if target is None:
            target = (int(o.shape[1]), int(o.shape[0]))
        gray = to_gray_u8(_resize_for_flow(o, *target))
        styl = _to_unit_float(_resize_for_flow(s, *target))
        if prev_gray is not None:
            b = compute_flow(gray, prev_gray, preset)
            f = compute_flow(prev_gray, gray, preset)
            mask = consistency_mask(b, f)
            pairs.append(pair_warp_error(mask, b, prev_styl, styl))
            visible.append(float(mask.mean()))
        prev_gray, prev_styl = gray, styl
        index += 1
    mean = float(np.mean(pairs)) if pairs else math.nan
    return WarpError(mean=mean, per_pair=pairs, visible=visible)


def seam_ratio(per_pair: Sequence[float], seam_pairs: Sequence[int]) -> float:
    """Mean error at the seam pairs divided by the median error of all other (interior) pairs.

    Indices follow the module convention: pair i = frames (i, i+1), so a chunk starting at
    frame ``s`` contributes seam pair ``s − 1``. DESIGN.md §5 asks for ≤ 1.5. Duplicate seam
    indices count once. If the interior median is 0 the ratio is 1.0 when the seams are 0 too,
    else ``inf``. Raises ``ValueError`` with no seam pair, no interior pair, or an index out
    of range.
    """
    errors = np.asarray(list(per_pair), dtype=np.float64)
    n = errors.size
    seams = sorted({int(i) for i in seam_pairs})
    if not seams:
        raise ValueError("seam_ratio needs at least one seam pair")
    bad = [i for i in seams if not 0 <= i < n]
    if bad:
        raise ValueError(f"seam pair indices {bad} out of range for {n} pairs")
    interior = np.delete(errors, seams)
    if interior.size == 0:
        raise ValueError("seam_ratio needs at least one interior (non-seam) pair")
    seam_mean = float(errors[seams].mean())
    median = float(np.median(interior))
    if median == 0.0:
        return 1.0 if seam_mean == 0.0 else math.inf
    return seam_mean / median


# --------------------------------------------------------------------------- image fidelity


def _pair_as_float(a: np.ndarray, b: np.ndarray, data_range: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """float64 copies and the data range: 255 for two uint8 images, 1.0 for two float images;
    a uint8/float mix is compared in [0, 1]. An explicit ``data_range`` uses the raw values."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if data_range is not None:
        return a.astype(np.float64), b.astype(np.float64), float(data_range)
    a_u8, b_u8 = a.dtype == np.uint8, b.dtype == np.uint8
    if a_u8 and b_u8:
        return a.astype(np.float64), b.astype(np.float64), 255.0
    fa = a.astype(np.float64) / 255.0 if a_u8 else a.astype(np.float64)
    fb = b.astype(np.float64) / 255.0 if b_u8 else b.astype(np.float64)
    return fa, fb, 1.0


def psnr(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10·log10(L² / MSE)`` with the MSE over all pixels and
    channels; ``inf`` for identical images. ``L`` = 255 for uint8, 1.0 for float, unless given."""
    fa, fb, rng = _pair_as_float(a, b, data_range)
    mse = float(np.mean((fa - fb) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(rng * rng / mse)


_SSIM_K1, _SSIM_K2, _SSIM_SIGMA, _SSIM_WIN = 0.01, 0.03, 1.5, 11


def _ssim_channel(x: np.ndarray, y: np.ndarray, rng: float) -> float:
    c1 = (_SSIM_K1 * rng) ** 2
    c2 = (_SSIM_K2 * rng) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (_SSIM_WIN, _SSIM_WIN), _SSIM_SIGMA, borderType=cv2.BORDER_REFLECT_101)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x * mu_x
    syy = blur(y * y) - mu_y * mu_y
    sxy = blur(x * y) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    ssim_map = num / den
    pad = _SSIM_WIN // 2
    if ssim_map.shape[0] > 2 * pad and ssim_map.shape[1] > 2 * pad:
        ssim_map = ssim_map[pad:-pad, pad:-pad]  # Wang et al. use only windows inside the image
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Structural similarity (Wang et al. 2004): 11×11 Gaussian window, σ = 1.5, K1 = 0.01,
    K2 = 0.03, population (not sample) statistics, averaged over the windows that lie inside
    the image (a 5-pixel border is dropped when the image is larger than 10 pixels) and then
    over channels. 1.0 for identical images. Data range as in :func:`psnr`."""
    fa, fb, rng = _pair_as_float(a, b, data_range)
    if fa.ndim == 2:
        return _ssim_channel(fa, fb, rng)
    if fa.ndim != 3:
        raise ValueError(f"expected an H×W or H×W×C image, got shape {fa.shape}")
    return float(np.mean([_ssim_channel(fa[..., c], fb[..., c], rng) for c in range(fa.shape[2])]))


# --------------------------------------------------------------------------- colour


def _channel_histograms(image: np.ndarray, bins: int) -> np.ndarray:
    """3 x bins normalised histograms over [0, 1]; bin = floor(v * bins) (uint8 k -> bin k)."""
    pixels = np.clip(as_float_rgb(image), 0.0, 1.0).reshape(-1, 3)
    idx = np.minimum((pixels * bins).astype(np.int64), bins - 1)
    hist = np.stack([np.bincount(idx[:, k], minlength=bins) for k in range(3)])
    return hist / max(len(pixels), 1)


def color_histogram_kl(a: np.ndarray, b: np.ndarray, bins: int = 256, eps: float = 1e-10) -> np.ndarray:
    """Per-channel KL(P_a || P_b) of colour histograms, in nats, shape (3,) as R, G, B.

    Seed 001's metric (lower = closer palettes): ``a`` is the image under test (a transfer
    result), ``b`` the reference (the content). The seed gives neither direction nor
    smoothing; this uses sum_i p_i log((p_i + eps) / (q_i + eps)), so empty bins of P_a add
    nothing and bins empty in P_b only are large but finite. ``eps=0`` gives the unsmoothed
    value, which is inf when P_a has mass where P_b has none (the "Inf" in the seed's table).
    The images may differ in size.
    """
    p, q = _channel_histograms(a, bins), _channel_histograms(b, bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log((p + eps) / (q + eps)), 0.0)
    return terms.sum(axis=1)


def color_histogram_kl_mean(a: np.ndarray, b: np.ndarray, bins: int = 256, eps: float = 1e-10) -> float:
    """Mean over R, G, B of :func:`color_histogram_kl`: one number to rank methods by."""
    return float(color_histogram_kl(a, b, bins=bins, eps=eps).mean())


def color_kl(a: np.ndarray, b: np.ndarray, bins: int = 256) -> np.ndarray:
    """Per-channel KL divergence of colour histograms (seed 001's table), shape ``(3,)``: KL(P_a ‖ P_b)."""
    return np.asarray(color_histogram_kl(a, b, bins=bins))
