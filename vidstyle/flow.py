"""Optical flow, warping and occlusion masks for temporal coherence (DESIGN.md §5).

One convention everywhere in this module, the one OpenCV uses::

    flow = compute_flow(src, dst)   =>   src(x) ≈ dst(x + flow(x))

``flow`` is an ``H×W×2`` float32 array; ``flow[..., 0]`` is the horizontal (column, *u*)
displacement and ``flow[..., 1]`` the vertical (row, *v*) one, in pixels of ``src``. It is a
*pull* field defined on the grid of ``src``: it says, for each pixel of ``src``, where to look in
``dst``. Hence :func:`warp` pulls ``dst`` onto the grid of ``src``::

    warp(dst, compute_flow(src, dst)) ≈ src

For video (Ruder et al. 2016) this gives

* ``b = backward_flow(frame_t, frame_prev)``: ``frame_t(x) ≈ frame_prev(x + b(x))``, and
  ``warp(stylized_prev, b)`` aligns the previous *output* with frame ``t`` (warm start, ω of the
  temporal loss);
* ``f = forward_flow(frame_prev, frame_t)``: ``frame_prev(x) ≈ frame_t(x + f(x))``, used only
  for the forward–backward consistency check.

Pixel centres are at integer coordinates (``x`` = column index, ``y`` = row index), both in the
numpy (``cv2.remap``) and the torch (``grid_sample(align_corners=True)``) warps, so the two agree.

Masks returned by the three small checks (:func:`disocclusion_mask`,
:func:`motion_boundary_mask`, :func:`out_of_frame_mask`) are boolean and ``True`` where the pixel
is *unreliable*; :func:`consistency_mask` combines them into Ruder's float weight ``c``
(1 = trust the warped previous frame, 0 = do not).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "PRESETS",
    "to_gray_u8",
    "compute_flow",
    "backward_flow",
    "forward_flow",
    "warp",
    "advect_residual",
    "warp_torch",
    "out_of_frame_torch",
    "disocclusion_mask",
    "motion_boundary_mask",
    "out_of_frame_mask",
    "consistency_mask",
    "flow_and_mask",
    "translate_flow",
    "resize_flow",
]

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

# Ruder et al. 2016 thresholds (also DESIGN.md §5).
_DISOCC_REL = 0.01
_DISOCC_ABS = 0.5
_MOTION_REL = 0.01
_MOTION_ABS = 0.002

_BORDERS_CV = {
    "replicate": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
    "reflect": cv2.BORDER_REFLECT_101,
}
_INTERPOLATIONS_CV = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
_REMAP_DTYPES = {np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.float32, np.float64)}
# grid_sample(align_corners=True) reflects about the edge pixel *centres* = BORDER_REFLECT_101.
_BORDERS_TORCH = {"replicate": "border", "constant": "zeros", "reflect": "reflection"}


# --------------------------------------------------------------------------- flow


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Luma as uint8, the only input DIS accepts.

    uint8 images are taken as 0–255; float images as [0, 1] (the project's float convention).
    An ``H×W`` input is taken to be gray already; ``H×W×3`` is RGB.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        image = np.clip(np.asarray(image, dtype=np.float32) * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGBA2GRAY)
    raise ValueError(f"expected an H×W or H×W×{{1,3,4}} image, got shape {image.shape}")


def _dis(preset: str | int):
    if isinstance(preset, str):
        try:
            preset = PRESETS[preset]
        except KeyError:
            raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(PRESETS)}") from None
    # A fresh instance per call: creating one costs microseconds, and DIS objects keep state
    # (buffers, last flow) so sharing one across threads is unsafe.
    return cv2.DISOpticalFlow_create(int(preset))


def compute_flow(src: np.ndarray, dst: np.ndarray, preset: str | int = "medium") -> np.ndarray:
    """Dense DIS optical flow such that ``src(x) ≈ dst(x + flow(x))``.

    Returns ``H×W×2`` float32 (``[..., 0]`` = Δx/columns, ``[..., 1]`` = Δy/rows) on the grid
    of ``src``; ``warp(dst, flow)`` then approximates ``src``. Inputs are RGB (uint8 0–255 or
    float [0, 1]) or already-gray ``H×W`` images of equal size; flow is computed on luma.
    Thread-safe (no shared OpenCV object).
    """
    g0 = to_gray_u8(src)
    g1 = to_gray_u8(dst)
    if g0.shape != g1.shape:
        raise ValueError(f"frames differ in size: {g0.shape} vs {g1.shape}")
    flow = _dis(preset).calc(g0, g1, None)
    return np.ascontiguousarray(flow, dtype=np.float32)


def backward_flow(frame_t: np.ndarray, frame_prev: np.ndarray, preset: str | int = "medium") -> np.ndarray:
    """``b`` with ``frame_t(x) ≈ frame_prev(x + b(x))``: warps frame t−1 content onto frame t."""
    return compute_flow(frame_t, frame_prev, preset)


def forward_flow(frame_prev: np.ndarray, frame_t: np.ndarray, preset: str | int = "medium") -> np.ndarray:
    """``f`` with ``frame_prev(x) ≈ frame_t(x + f(x))``: the partner of :func:`backward_flow`."""
    return compute_flow(frame_prev, frame_t, preset)


# --------------------------------------------------------------------------- warping


def _sample_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    map_x = np.ascontiguousarray(flow[..., 0], dtype=np.float32) + xs
    map_y = np.ascontiguousarray(flow[..., 1], dtype=np.float32) + ys
    return map_x, map_y


def _check_flow(flow: np.ndarray) -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be H×W×2, got shape {flow.shape}")
    return flow


def warp(image: np.ndarray, flow: np.ndarray, border: str = "replicate", interpolation: str = "linear") -> np.ndarray:
    """Sample ``image`` at ``x + flow(x)`` (bilinear, or bicubic): ``out(x) = image(x + flow(x))``.

    ``image`` is ``H×W`` or ``H×W×C`` (any C, uint8 or float); ``flow`` is ``H×W×2`` on the output
    grid; output has ``image``'s shape and dtype. ``border`` decides what is read outside the
    frame: ``"replicate"`` (nearest edge pixel, default — the warm start needs *something* there;
    the consistency mask zeroes it in the loss anyway), ``"constant"`` (zeros) or ``"reflect"``
    (about the edge pixel centres). ``cv2.remap`` quantizes the bilinear weights to 1/32 pixel,
    so results differ from an exact bilinear (and :func:`warp_torch`) by at most ~1.6 % of the
    local neighbour difference. ``interpolation="cubic"`` keeps more of the finest detail (a
    bilinear sample at a half-pixel offset halves the contrast of a 4-pixel pattern).
    """
    image = np.asarray(image)
    flow = _check_flow(flow)
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    try:
        mode = _BORDERS_CV[border]
    except KeyError:
        raise ValueError(f"unknown border {border!r}; choose one of {sorted(_BORDERS_CV)}") from None
    try:
        kernel = _INTERPOLATIONS_CV[interpolation]
    except KeyError:
        choices = sorted(_INTERPOLATIONS_CV)
        raise ValueError(f"unknown interpolation {interpolation!r}; choose one of {choices}") from None
    map_x, map_y = _sample_maps(flow)
    src = np.ascontiguousarray(image)
    if src.dtype not in _REMAP_DTYPES:
        src = src.astype(np.float32)

    def remap(channels: np.ndarray) -> np.ndarray:
        return cv2.remap(channels, map_x, map_y, kernel, borderMode=mode, borderValue=0)

    if src.ndim == 2 or src.shape[2] <= 4:
        out = remap(src)
        if src.ndim == 3 and out.ndim == 2:  # cv2 drops a trailing singleton channel
            out = out[..., None]
    else:
        out = np.stack([remap(src[..., c]) for c in range(src.shape[2])], axis=-1)
    return out.astype(image.dtype, copy=False)


def advect_residual(
    output_prev: np.ndarray, content_prev: np.ndarray, content: np.ndarray, flow: np.ndarray, trust: np.ndarray
) -> np.ndarray:
    """The previous frame's stylization moved along the flow onto this frame (float32 in [0, 1]).

    ``clip(warp(output_prev) + (1 − trust)·(content − warp(content_prev)))``, warped bicubic. Where the
    flow is trusted (``trust`` = 1) this is the previous output moved, as steady as it can be. Where it is
    not (disocclusions, moving subjects) it is ``content + warp(output_prev − content_prev)``: what the
    style changed in the previous frame (its residual over its input) on top of this frame's own input,
    so the subject shows through instead of the previous frame's pixels dragged into place. Bicubic,
    because a chain warps every frame again: bilinear sampling blurs the brush strokes a little more each
    time. ``output_prev`` is float in [0, 1]; the contents are uint8 (or float in [0, 255]); ``trust`` H×W.
    """
    moved_output = warp(np.asarray(output_prev, np.float32), flow, interpolation="cubic")
    moved_input = warp(np.asarray(content_prev, np.float32) / 255.0, flow, interpolation="cubic")
    change = np.asarray(content, np.float32) / 255.0 - moved_input  # what the flow does not explain
    untrusted = 1.0 - np.asarray(trust, np.float32)[..., None]
    return np.clip(moved_output + untrusted * change, 0.0, 1.0).astype(np.float32)


def warp_torch(images, flows, border: str = "replicate"):
    """Differentiable torch twin of :func:`warp`: ``out[b, :, y, x] = images[b, :, y+v, x+u]``.

    ``images`` is ``B×C×H×W``, ``flows`` is ``B×H×W×2`` (same layout and sign as the numpy
    flows; a ``H×W×2`` flow is broadcast over the batch). Uses ``grid_sample`` with
    ``align_corners=True`` so pixel centres sit at integer coordinates as in ``cv2.remap``.
    Gradients flow into both ``images`` and ``flows``.
    """
    import torch
    import torch.nn.functional as F

    if images.ndim != 4:
        raise ValueError(f"images must be B×C×H×W, got {tuple(images.shape)}")
    b, _, h, w = images.shape
    if flows.ndim == 3:
        flows = flows.unsqueeze(0).expand(b, -1, -1, -1)
    if flows.ndim != 4 or flows.shape[-1] != 2 or tuple(flows.shape[1:3]) != (h, w):
        raise ValueError(f"flows must be B×{h}×{w}×2, got {tuple(flows.shape)}")
    try:
        padding = _BORDERS_TORCH[border]
    except KeyError:
        raise ValueError(f"unknown border {border!r}; choose one of {sorted(_BORDERS_TORCH)}") from None
    dtype = images.dtype if images.is_floating_point() else torch.float32
    flows = flows.to(device=images.device, dtype=dtype)
    xs = torch.arange(w, device=images.device, dtype=dtype).view(1, 1, w)
    ys = torch.arange(h, device=images.device, dtype=dtype).view(1, h, 1)
    gx = (xs + flows[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flows[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(images.to(dtype), grid, mode="bilinear", padding_mode=padding, align_corners=True)


def out_of_frame_torch(flows):
    """Torch twin of :func:`out_of_frame_mask`: ``flows`` ``B×H×W×2`` → bool ``B×H×W``, ``True``
    where ``x + flow(x)`` leaves ``[0, W−1] × [0, H−1]`` (what :func:`warp_torch` reads there is
    the replicated border, not content)."""
    import torch

    _, h, w, _ = flows.shape
    xs = torch.arange(w, device=flows.device, dtype=flows.dtype).view(1, 1, w)
    ys = torch.arange(h, device=flows.device, dtype=flows.dtype).view(1, h, 1)
    sx = xs + flows[..., 0]
    sy = ys + flows[..., 1]
    return (sx < 0) | (sx > w - 1) | (sy < 0) | (sy > h - 1)


# --------------------------------------------------------------------------- occlusion masks


def _sq(flow: np.ndarray) -> np.ndarray:
    return flow[..., 0] ** 2 + flow[..., 1] ** 2


def disocclusion_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """``True`` where the forward–backward check fails (Ruder et al.):

    ``|b + f̃|² > 0.01 (|b|² + |f̃|²) + 0.5`` with ``f̃(x) = f(x + b(x))`` (``forward`` warped by
    ``backward``). Following the flow back to t−1 and forward again should land where it
    started; where it does not, the pixel was hidden in frame t−1 or the flow is wrong.
    """
    b = _check_flow(backward).astype(np.float32, copy=False)
    f_w = warp(_check_flow(forward).astype(np.float32, copy=False), b, border="replicate")
    return _sq(b + f_w) > _DISOCC_REL * (_sq(b) + _sq(f_w)) + _DISOCC_ABS


def motion_boundary_mask(backward: np.ndarray) -> np.ndarray:
    """``True`` at motion boundaries: ``|∇b_u|² + |∇b_v|² > 0.01 |b|² + 0.002``.

    Gradients are central differences (one-sided at the border), as in Ruder et al.'s
    consistency checker; flow near a motion edge is smeared, so the warp is unreliable there.
    """
    b = _check_flow(backward).astype(np.float32, copy=False)
    grad = np.zeros(b.shape[:2], dtype=np.float32)
    for c in range(2):
        comp = b[..., c]
        for axis in range(2):
            if comp.shape[axis] > 1:
                grad += np.gradient(comp, axis=axis) ** 2
    return grad > _MOTION_REL * _sq(b) + _MOTION_ABS


def out_of_frame_mask(backward: np.ndarray) -> np.ndarray:
    """``True`` where ``x + b(x)`` falls outside the frame, i.e. outside ``[0, W−1] × [0, H−1]``
    (pixel centres at integers): there is nothing in frame t−1 to warp from."""
    b = _check_flow(backward)
    h, w = b.shape[:2]
    map_x, map_y = _sample_maps(b)
    return (map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)


def consistency_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Ruder et al.'s per-pixel weight ``c`` (float32 ``H×W`` in {0, 1}) for frame t.

    1 where the warped previous frame can be trusted, 0 where :func:`disocclusion_mask`,
    :func:`motion_boundary_mask` or :func:`out_of_frame_mask` flag the pixel.
    ``backward`` = :func:`backward_flow` (t→t−1), ``forward`` = :func:`forward_flow` (t−1→t).
    """
    b = _check_flow(backward)
    f = _check_flow(forward)
    if b.shape != f.shape:
        raise ValueError(f"backward {b.shape} and forward {f.shape} flows differ in shape")
    bad = disocclusion_mask(b, f) | motion_boundary_mask(b) | out_of_frame_mask(b)
    return (~bad).astype(np.float32)


def flow_and_mask(
    frame_t: np.ndarray, frame_prev: np.ndarray, preset: str | int = "medium"
) -> tuple[np.ndarray, np.ndarray]:
    """Backward flow ``b`` (t→t−1) and consistency mask ``c`` for frame t, from the input frames.

    ``warp(stylized_prev, b)`` is ω of the temporal loss and ``c`` its weight.
    """
    g_t = to_gray_u8(frame_t)
    g_p = to_gray_u8(frame_prev)
    b = compute_flow(g_t, g_p, preset)
    f = compute_flow(g_p, g_t, preset)
    return b, consistency_mask(b, f)


# --------------------------------------------------------------------------- helpers


def translate_flow(h: int, w: int, dx: float, dy: float) -> np.ndarray:
    """Constant ``h×w×2`` flow ``(dx, dy)``; ``warp(img, translate_flow(h, w, dx, dy))`` reads
    ``img`` at ``(x+dx, y+dy)``, i.e. moves the picture content by ``(−dx, −dy)``."""
    flow = np.empty((h, w, 2), dtype=np.float32)
    flow[..., 0] = dx
    flow[..., 1] = dy
    return flow


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample a flow field to ``height×width`` and scale its vectors to match.

    With pixel centres mapped as ``x' = (x + ½)·s − ½`` (what ``cv2.resize`` does), a
    displacement scales by the same factor ``s`` per axis.
    """
    flow = _check_flow(flow).astype(np.float32, copy=False)
    h, w = flow.shape[:2]
    if (h, w) == (height, width):
        return flow.copy()
    shrinking = height < h and width < w
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = cv2.resize(flow, (int(width), int(height)), interpolation=interp)
    out[..., 0] *= width / w
    out[..., 1] *= height / h
    return out
