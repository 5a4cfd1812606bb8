"""Colour handling around style transfer: palette transfer, colour preservation, metrics.

Seed 001 compares several ways of giving the style image the content's palette before
(or instead of) stylising, and scores them by a per-channel KL divergence of colour
histograms; Gatys et al. 2016 ("Preserving colour in neural artistic style transfer") add
the luminance-only route; seed 000 equalises the HSV value channel of the content to raise
its contrast before stylising. Everything here is a pure numpy function on RGB images.

Conventions (all functions):
  * An image is an array of shape (..., 3), normally H x W x 3, RGB. ``uint8`` is read as
    value / 255; floating arrays are taken to be in [0, 1] already. Other dtypes are refused
    because their scale is a guess.
  * Results are ``float32`` clipped to [0, 1], so they can be fed straight to the engine.
  * Nothing is random except IDT, which draws its rotations from a fixed seed.
  * In :func:`transfer_color` the *source* is recoloured (in vidstyle: the style image) and
    the *target* only supplies statistics (the content image); the two may differ in size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vidstyle.errors import ConfigError

__all__ = [
    "COLOR_METHODS",
    "COV_EPS",
    "IDT_BINS",
    "IDT_ITERATIONS",
    "IDT_SEED",
    "as_float_rgb",
    "equalize_value_hsv",
    "preserve_colors",
    "rgb_to_lab_reinhard",
    "lab_reinhard_to_rgb",
    "rgb_to_yiq",
    "transfer_color",
    "yiq_to_rgb",
]

COLOR_METHODS: tuple[str, ...] = (
    "none",
    "reinhard",
    "idt",
    "mkl",
    "histogram",
    "luminance",
    "cholesky",
    "pca",
)

#: Ridge added to every 3x3 colour covariance (the value Gatys et al.'s code uses): keeps
#: Cholesky / inverse square roots finite for flat or single-hue images.
COV_EPS = 1e-5
#: Seed 001's table reports "IDT (10 iter.)"; Pitie et al. use 300-bin 1-D histograms.
IDT_ITERATIONS = 10
IDT_BINS = 300
IDT_SEED = 0

# NTSC YIQ (Gatys et al. 2016 use YIQ for the luminance-only variant). The I and Q rows sum to
# zero, so grey (1, 1, 1) is pure Y and changing Y alone moves a pixel along (1, 1, 1).
_RGB_TO_YIQ = np.array(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ]
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)

# Reinhard et al. 2001, eq. 4 (RGB -> LMS) and eq. 6 (log LMS -> l alpha beta).
_RGB_TO_LMS = np.array(
    [
        [0.3811, 0.5783, 0.0402],
        [0.1967, 0.7244, 0.0782],
        [0.0241, 0.1288, 0.8444],
    ]
)
_LMS_TO_RGB = np.linalg.inv(_RGB_TO_LMS)
_LOGLMS_TO_LAB = np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array(
    [[1.0, 1.0, 1.0], [1.0, 1.0, -2.0], [1.0, -1.0, 0.0]]
)
_LAB_TO_LOGLMS = np.linalg.inv(_LOGLMS_TO_LAB)
#: LMS floor before the log: one 8-bit code value, so black pixels do not become -inf.
_LMS_FLOOR = 1.0 / 255.0


# --------------------------------------------------------------------------- helpers


def as_float_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Read an image as float64 in [0, 1] units; float64 keeps the covariance maths exact."""
    arr = np.asarray(image)
    if arr.ndim < 2 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or floating point, got {arr.dtype}")
    return arr.astype(np.float64)


def _finish(image: np.ndarray) -> np.ndarray:
    """Return the engine's format: float32 in [0, 1] (linear maps can overshoot)."""
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _pixels(image: np.ndarray) -> np.ndarray:
    return image.reshape(-1, 3)


def _apply(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``image @ matrix.T`` for (..., 3) arrays, computed as one (3 x 3)(3 x N) product.

    The N x 3 by 3 x 3 form falls on a slow BLAS path (up to ~1 s for a 1080p frame here).
    """
    flat = image.reshape(-1, 3)
    return np.ascontiguousarray((matrix @ flat.T).T).reshape(image.shape)


def _mean_cov(pixels: np.ndarray, eps: float = COV_EPS) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population, ridge-regularised) covariance of N x 3 pixels."""
    mu = pixels.mean(axis=0)
    centred = pixels - mu
    cov = centred.T @ centred / max(len(pixels), 1) + eps * np.eye(3)
    return mu, cov


def _eigh_desc(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition with a fixed order and sign, so PCA pairs axes deterministically.

    Axes are sorted by decreasing variance (principal axis with principal axis) and each
    eigenvector is flipped so its largest-magnitude component is positive (for natural images
    the first axis is then the bright direction (+, +, +) in both images).
    """
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    pivot = vectors[np.argmax(np.abs(vectors), axis=0), np.arange(3)]
    return values, vectors * np.where(pivot < 0, -1.0, 1.0)


def _sym_power(cov: np.ndarray, power: float) -> np.ndarray:
    """Symmetric matrix power U diag(lambda^p) U^T (the unique SPD square root for p = 1/2)."""
    values, vectors = np.linalg.eigh(cov)
    values = np.clip(values, 1e-12, None)
    return (vectors * values**power) @ vectors.T


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    """RGB -> NTSC YIQ (float64, unclipped), the luma/chroma split Gatys et al. 2016 use."""
    return _apply(as_float_rgb(image), _RGB_TO_YIQ)


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    """Exact inverse of :func:`rgb_to_yiq` (float64, unclipped)."""
    return _apply(np.asarray(yiq, dtype=np.float64), _YIQ_TO_RGB)


def rgb_to_lab_reinhard(image: np.ndarray) -> np.ndarray:
    """RGB -> Reinhard's l-alpha-beta: LMS cone space, log10, then decorrelating rotation.

    The RGB values are used as given (as in Reinhard's paper and most implementations; no
    sRGB linearisation). LMS is floored at 1/255 so black does not become -inf.
    """
    lms = np.maximum(_apply(as_float_rgb(image), _RGB_TO_LMS), _LMS_FLOOR)
    return _apply(np.log10(lms), _LOGLMS_TO_LAB)


def lab_reinhard_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_lab_reinhard` (float64, unclipped)."""
    lms = 10.0 ** _apply(np.asarray(lab, dtype=np.float64), _LAB_TO_LOGLMS)
    return _apply(lms, _LMS_TO_RGB)


def _match_mean_std(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Affine map of each column so its mean/std equal the reference's (Reinhard eq. 10-11)."""
    mu_v, sd_v = values.mean(axis=0), values.std(axis=0)
    mu_r, sd_r = reference.mean(axis=0), reference.std(axis=0)
    scale = np.where(sd_v > 1e-12, sd_r / np.maximum(sd_v, 1e-12), 1.0)
    return (values - mu_v) * scale + mu_r


def _match_histogram_1d(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Exact CDF matching of one channel: value at source quantile q -> reference quantile q.

    Equal source values share one quantile (so they stay equal), the scheme of
    skimage.exposure.match_histograms.
    """
    src_vals, src_idx, src_counts = np.unique(values, return_inverse=True, return_counts=True)
    ref_vals, ref_counts = np.unique(reference, return_counts=True)
    src_q = np.cumsum(src_counts) / values.size
    ref_q = np.cumsum(ref_counts) / reference.size
    return np.interp(src_q, ref_q, ref_vals)[src_idx.ravel()]


def _match_binned_1d(values: np.ndarray, reference: np.ndarray, bins: int) -> np.ndarray:
    """Pitie's 1-D pdf transfer on a shared binned range: x -> F_ref^-1(F_src(x)).

    Both clouds are binned on one range; the map is evaluated at the bin centres (mid-bin
    CDF values, so a source bin holding everything goes to the reference median, not to the
    range's edge) and applied as a piecewise-linear look-up table, as in Pitie's reference
    code: a few O(N) passes, no sorting. A tiny pdf floor keeps the reference CDF strictly
    increasing so its inverse is defined across empty bins.
    """
    lo = min(values.min(), reference.min())
    hi = max(values.max(), reference.max())
    if hi - lo < 1e-12:
        return values.copy()
    width = (hi - lo) / bins
    centres = lo + width * (np.arange(bins) + 0.5)
    mid_cdfs = []
    for data in (values, reference):
        idx = np.clip(((data - lo) / width).astype(np.int64), 0, bins - 1)
        pdf = np.bincount(idx, minlength=bins) / data.size + 1e-9
        cdf = np.cumsum(pdf) / pdf.sum()
        mid_cdfs.append(cdf - 0.5 * pdf / pdf.sum())
    lut = np.interp(mid_cdfs[0], mid_cdfs[1], centres)
    # np.interp(values, centres, lut), but with the index known from the uniform bins (~3x faster)
    pos = (values - lo) / width - 0.5
    left = np.clip(np.floor(pos).astype(np.int64), 0, bins - 2)
    frac = np.clip(pos - left, 0.0, 1.0)
    return lut[left] + frac * (lut[left + 1] - lut[left])


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Haar-random 3x3 orthogonal matrix (QR of a Gaussian matrix with the sign fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


# --------------------------------------------------------------------------- methods
# Each takes source and target pixels (N x 3, M x 3, float64) and returns new source pixels.


def _none(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    return src


def _reinhard(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Reinhard et al. 2001: per-channel mean/std matching in l-alpha-beta (not CIELAB)."""
    lab = _match_mean_std(rgb_to_lab_reinhard(src), rgb_to_lab_reinhard(tgt))
    return lab_reinhard_to_rgb(lab)


def _idt(
    src: np.ndarray,
    tgt: np.ndarray,
    iterations: int = IDT_ITERATIONS,
    bins: int = IDT_BINS,
    seed: int = IDT_SEED,
) -> np.ndarray:
    """Pitie et al. iterative distribution transfer (no regrain step).

    Each iteration rotates both colour clouds by one random rotation, matches the three 1-D
    marginals along the rotated axes, and moves the source by the projected change.
    """
    rng = np.random.default_rng(seed)
    out, ref = src.T.copy(), np.ascontiguousarray(tgt.T)  # 3 x N: rows are contiguous axes
    for _ in range(iterations):
        rot = _random_rotation(rng)  # columns are the three projection axes
        proj_src, proj_tgt = rot.T @ out, rot.T @ ref
        matched = np.stack([_match_binned_1d(proj_src[k], proj_tgt[k], bins) for k in range(3)])
        out += rot @ (matched - proj_src)
    return out.T


def _histogram(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Per-channel CDF matching in RGB (channels treated independently)."""
    return np.stack([_match_histogram_1d(src[:, k], tgt[:, k]) for k in range(3)], axis=1)


def _luminance(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Gatys et al. 2016 luminance matching: Y_s' = sigma_t / sigma_s (Y_s - mu_s) + mu_t.

    Only the YIQ luma is changed; the source keeps its own I/Q chroma.
    """
    yiq_src, yiq_tgt = _apply(src, _RGB_TO_YIQ), _apply(tgt, _RGB_TO_YIQ)
    yiq_src[:, :1] = _match_mean_std(yiq_src[:, :1], yiq_tgt[:, :1])
    return _apply(yiq_src, _YIQ_TO_RGB)


def _linear(
    matrix_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Build x' = A (x - mu_s) + mu_t from a rule A = f(cov_s, cov_t).

    Any A with A cov_s A^T = cov_t matches mean and covariance exactly; the methods only
    differ in which such A (i.e. which rotation) they pick.
    """

    def transfer(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        mu_s, cov_s = _mean_cov(src)
        mu_t, cov_t = _mean_cov(tgt)
        return _apply(src - mu_s, matrix_fn(cov_s, cov_t)) + mu_t

    return transfer


def _mkl_matrix(cov_s: np.ndarray, cov_t: np.ndarray) -> np.ndarray:
    """Pitie & Kokaram 2007: T = S^-1/2 (S^1/2 T S^1/2)^1/2 S^-1/2, the least-displacement A."""
    s_half, s_inv_half = _sym_power(cov_s, 0.5), _sym_power(cov_s, -0.5)
    return s_inv_half @ _sym_power(s_half @ cov_t @ s_half, 0.5) @ s_inv_half


def _cholesky_matrix(cov_s: np.ndarray, cov_t: np.ndarray) -> np.ndarray:
    """A = L_t L_s^-1 with cov = L L^T (Gatys et al. 2016, 'chol')."""
    l_s, l_t = np.linalg.cholesky(cov_s), np.linalg.cholesky(cov_t)
    return l_t @ np.linalg.inv(l_s)


def _pca_matrix(cov_s: np.ndarray, cov_t: np.ndarray) -> np.ndarray:
    """A = U_t Lambda_t^1/2 Lambda_s^-1/2 U_s^T: whiten along the source's principal axes,
    re-colour along the target's (axes paired by decreasing variance, signs fixed)."""
    val_s, vec_s = _eigh_desc(cov_s)
    val_t, vec_t = _eigh_desc(cov_t)
    scale = np.sqrt(val_t) / np.sqrt(np.clip(val_s, 1e-12, None))
    return (vec_t * scale) @ vec_s.T


_METHODS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "none": _none,
    "reinhard": _reinhard,
    "idt": _idt,
    "mkl": _linear(_mkl_matrix),
    "histogram": _histogram,
    "luminance": _luminance,
    "cholesky": _linear(_cholesky_matrix),
    "pca": _linear(_pca_matrix),
}


# --------------------------------------------------------------------------- public API


def transfer_color(source: np.ndarray, target: np.ndarray, method: str) -> np.ndarray:
    """Recolour ``source`` (the style image) so its colour distribution matches ``target``.

    Used to give the style the content's palette before stylising (seed 001). ``method`` is
    one of :data:`COLOR_METHODS`; the images may have different sizes. Returns float32 in
    [0, 1] with the source's shape.

    Raises ConfigError for an unknown method name.
    """
    if not isinstance(method, str) or method not in _METHODS:
        raise ConfigError(f"unknown colour transfer method {method!r}; choose one of {', '.join(COLOR_METHODS)}")
    src = as_float_rgb(source, "source")
    tgt = as_float_rgb(target, "target")
    out = _METHODS[method](_pixels(src), _pixels(tgt))
    return _finish(out.reshape(src.shape))


def preserve_colors(stylized: np.ndarray, content: np.ndarray, match_luminance: bool = False) -> np.ndarray:
    """Keep the content's colours: YIQ luma from ``stylized``, I/Q chroma from ``content``.

    This is the recombination step of Gatys et al. 2016's luminance-only transfer. Because the
    YIQ chroma rows sum to zero, the result is ``content + (Y_stylized - Y_content) * (1,1,1)``
    before clipping. With ``match_luminance`` the stylised luma is first mean/std-matched to
    the content's luma (the paper's histogram matching, applied here after stylising instead
    of to the style image). Both images must have the same shape.
    """
    sty = as_float_rgb(stylized, "stylized")
    con = as_float_rgb(content, "content")
    if sty.shape != con.shape:
        raise ValueError(f"stylized {sty.shape} and content {con.shape} must have the same shape")
    luma = _apply(sty, _RGB_TO_YIQ)[..., :1].reshape(-1, 1)
    yiq = _apply(con, _RGB_TO_YIQ)
    if match_luminance:
        luma = _match_mean_std(luma, yiq[..., :1].reshape(-1, 1))
    yiq[..., 0] = luma.reshape(yiq.shape[:-1])
    return _finish(_apply(yiq, _YIQ_TO_RGB))


def equalize_value_hsv(image: np.ndarray, levels: int = 256) -> np.ndarray:
    """Seed 000's contrast boost: histogram-equalise HSV's V = max(R,G,B), keep H and S.

    V is quantised to ``levels`` grey levels r_k and mapped to S_k = sum_{j<=k} n_j / n (seed
    000 eq. 6), so the darkest level maps to its own share, not to 0 as in OpenCV's
    equalizeHist. With H and S = 1 - min/max fixed, changing V scales R, G and B by V'/V,
    which is exactly the HSV -> RGB conversion of eq. 7; black pixels become grey V'.
    """
    rgb = as_float_rgb(image)
    value = rgb.max(axis=-1)
    level = np.clip(np.rint(value * (levels - 1)), 0, levels - 1).astype(np.int64)
    cdf = np.cumsum(np.bincount(level.ravel(), minlength=levels)) / level.size
    new_value = cdf[level]
    ratio = new_value / np.maximum(value, 1e-12)
    out = np.where((value > 0)[..., None], rgb * ratio[..., None], new_value[..., None])
    return _finish(out)
