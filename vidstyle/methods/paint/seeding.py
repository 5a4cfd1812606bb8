"""Where new strokes start: image analysis, the split of a level's budget over blocks, initial strokes.

Strokes go where the current canvas is most wrong (greedy maxima of the blurred error with
Gaussian suppression), with the target's colours at both ends, aligned with the local image
structure (structure tensor), sized so the block's strokes cover it about `COVERAGE` times. The
same routine reseeds strokes that a video frame lost (see `motion`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.methods.paint.bounds import block_bounds, project
from vidstyle.methods.paint.brushes import VARIANTS
from vidstyle.methods.paint.layouts import StrokeSpec
from vidstyle.methods.paint.stroke_tensors import LevelTensors

ASPECT = 2.5  # initial length / width of a stroke
COVERAGE = 1.5  # initial strokes of a block cover about this multiple of its area


# --- image analysis -------------------------------------------------------------------------------
def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with replicated borders; σ ≤ 0.3 px is a no-op."""
    if sigma <= 0.3:
        return x
    r = max(1, int(math.ceil(2.5 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, device=x.device, dtype=x.dtype) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def structure_angle(target: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B,2,H,W): (cos 2φ, sin 2φ)·coherence of the stroke direction φ along image edges."""
    gray = 0.299 * target[:, :1] + 0.587 * target[:, 1:2] + 0.114 * target[:, 2:3]
    gray = gaussian_blur(gray, max(0.7, sigma / 3))
    gx = F.pad(gray[..., :, 2:] - gray[..., :, :-2], (1, 1, 0, 0), mode="replicate")
    gy = F.pad(gray[..., 2:, :] - gray[..., :-2, :], (0, 0, 1, 1), mode="replicate")
    jxx, jyy, jxy = gaussian_blur(gx * gx, sigma), gaussian_blur(gy * gy, sigma), gaussian_blur(gx * gy, sigma)
    # gradient orientation ψ: (cos 2ψ, sin 2ψ) ∝ (jxx − jyy, 2 jxy); strokes run along edges: φ = ψ + π/2
    return torch.cat((-(jxx - jyy), -2.0 * jxy), dim=1)


def sample_at(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of image (B,C,H,W) at normalized x, y (B, ...) → (B, ..., C)."""
    bsz = image.shape[0]
    shape = x.shape
    grid = torch.stack((x * 2 - 1, y * 2 - 1), dim=-1).reshape(bsz, 1, -1, 2)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :, 0].permute(0, 2, 1).reshape(*shape, image.shape[1])


def background_colour(background: str | tuple[float, float, float], targets: torch.Tensor) -> torch.Tensor:
    """(B, 3) canvas colour under the strokes: the target's mean, white, black or a fixed RGB."""
    if isinstance(background, str):
        if background == "mean":
            return targets.mean(dim=(2, 3))
        value = 1.0 if background == "white" else 0.0
        return torch.full((targets.shape[0], 3), value, device=targets.device)
    return torch.tensor(background, dtype=torch.float32, device=targets.device).expand(targets.shape[0], 3).clone()


# --- budget ---------------------------------------------------------------------------------------
def allocate(total: int, weights: np.ndarray, cap: int, adaptive: float) -> np.ndarray:
    """Split `total` strokes over blocks (nb,) ∝ mix of uniform and `weights`, ≤ cap each."""
    nb = weights.shape[0]
    w = np.maximum(weights.astype(np.float64), 0)
    share = (1 - adaptive) / nb + adaptive * (w / w.sum() if w.sum() > 0 else np.full(nb, 1.0 / nb))
    ideal = total * share
    counts = np.minimum(np.floor(ideal).astype(np.int64), cap)
    while counts.sum() < total:
        room = counts < cap
        need = total - counts.sum()
        order = np.argsort(-(ideal - counts) + np.where(room, 0, np.inf), kind="stable")[:need]
        order = order[room[order]]
        counts[order] += 1
    return counts


# --- strokes --------------------------------------------------------------------------------------
def _cells(block_h: float, block_w: float) -> int:
    """Side g of the g×g cell grid a block's candidate positions lie on."""
    return int(max(4, min(12, round(min(block_h, block_w) / 3))))


def _error_peaks(err: torch.Tensor, m: int, g: int, slots: int, spread: torch.Tensor, gen: torch.Generator):
    """`slots` greedy maxima per block of the error (B,1,H,W) on g×g cells per block, each pick
    suppressing its neighbourhood (σ = `spread` (B, m*m) cells). Returns cell x, y (B, m*m, slots)."""
    bsz, _, height, width = err.shape
    nb = m * m
    block_h, block_w = height / m, width / m
    err = gaussian_blur(err, 0.35 * min(block_h, block_w) / g)
    cells = F.adaptive_avg_pool2d(err, (m * g, m * g))
    cells = cells.reshape(bsz, m, g, m, g).permute(0, 1, 3, 2, 4).reshape(bsz, nb, g * g)
    cells = cells + 1e-4 * torch.rand(cells.shape, generator=gen, device=cells.device)  # break ties, vary picks
    gy, gx = torch.meshgrid(torch.arange(g, device=cells.device), torch.arange(g, device=cells.device), indexing="ij")
    gy, gx = gy.flatten().float(), gx.flatten().float()
    picks_x, picks_y = [], []
    work = cells.clone()
    for _ in range(slots):
        idx = work.argmax(dim=-1)  # (B, nb)
        px, py = gx[idx], gy[idx]
        picks_x.append(px)
        picks_y.append(py)
        d2 = (gx - px[..., None]) ** 2 + (gy - py[..., None]) ** 2
        work = work * (1.0 - torch.exp(-0.5 * d2 / spread[..., None] ** 2))
    return torch.stack(picks_x, dim=-1), torch.stack(picks_y, dim=-1)


def seed_strokes(
    spec: StrokeSpec,
    target: torch.Tensor,
    canvas: torch.Tensor,
    m: int,
    counts: torch.Tensor,
    slots: int,
    gen: torch.Generator,
    weight: torch.Tensor | None = None,
    density: torch.Tensor | None = None,
) -> torch.Tensor:
    """Parameters (B, m*m, slots, D) for `counts` (B, m*m) new strokes per block, placed at the
    block's largest errors (greedy, with suppression), coloured and oriented from the target.

    Slot k < counts[b, n] is meaningful; the rest are filled the same way (kept invalid).
    `weight` (B,1,H,W) optionally scales the error (e.g. to favour untrusted regions).
    `density` (B, m*m): strokes the block holds in all (sizes strokes and spaces the picks);
    defaults to `counts` (a fresh level). Reseeding passes the block's full stroke count.
    """
    bsz, _, height, width = target.shape
    nb = m * m
    block_h, block_w = height / m, width / m
    err = (canvas - target).abs().sum(dim=1, keepdim=True)
    if weight is not None:
        err = err * weight
    per_stroke = torch.clamp((counts if density is None else density).float(), min=1.0)
    g = _cells(block_h, block_w)
    cx, cy = _error_peaks(err, m, g, slots, 0.55 * g / torch.sqrt(per_stroke), gen)
    jitter = torch.rand((2,) + cx.shape, generator=gen, device=cx.device) - 0.5
    rows = torch.arange(m, device=cx.device).repeat_interleave(m).float().view(1, nb, 1)
    cols = torch.arange(m, device=cx.device).repeat(m).float().view(1, nb, 1)
    x = (cols + (cx + 0.5 + jitter[0]) / g) / m
    y = (rows + (cy + 0.5 + jitter[1]) / g) / m

    long_side = float(max(height, width))
    area = block_h * block_w * COVERAGE / per_stroke[..., None]  # px² per stroke
    length = torch.sqrt(area * ASPECT) / long_side * (0.85 + 0.3 * torch.rand(x.shape, generator=gen, device=x.device))
    thick = torch.sqrt(area / ASPECT) / long_side * (0.85 + 0.3 * torch.rand(x.shape, generator=gen, device=x.device))

    orient = sample_at(structure_angle(target, sigma=max(1.0, 0.25 * min(block_h, block_w))), x, y)  # (B,nb,K,2)
    coherent = orient.norm(dim=-1)
    rand_angle = (torch.rand(x.shape, generator=gen, device=x.device) - 0.5) * math.pi
    angle = torch.where(coherent > 1e-6, 0.5 * torch.atan2(orient[..., 1], orient[..., 0]), rand_angle)

    smooth = gaussian_blur(target, max(0.5, 0.15 * min(block_h, block_w) / math.sqrt(float(per_stroke.mean()))))
    dx = torch.cos(angle) * length * 0.35 * long_side / width
    dy = torch.sin(angle) * length * 0.35 * long_side / height
    c_head = sample_at(smooth, (x - dx).clamp(0, 1), (y - dy).clamp(0, 1))
    c_tail = sample_at(smooth, (x + dx).clamp(0, 1), (y + dy).clamp(0, 1))
    c_mid = sample_at(smooth, x.clamp(0, 1), y.clamp(0, 1))

    p = torch.zeros(bsz, nb, slots, spec.dim, device=target.device)
    if spec.radii is not None:  # a straight Bézier through the centre, half the length each way
        (x0, y0), (x1, y1), (x2, y2) = spec.points
        p[..., x0], p[..., y0] = x - dx / 0.35 * 0.5, y - dy / 0.35 * 0.5
        p[..., x1], p[..., y1] = x, y
        p[..., x2], p[..., y2] = x + dx / 0.35 * 0.5, y + dy / 0.35 * 0.5
        p[..., spec.radii] = (thick * 0.5)[..., None]
    else:
        ix, iy = spec.centre
        p[..., ix], p[..., iy] = x, y
        p[..., spec.length], p[..., spec.thickness], p[..., spec.angle] = length, thick, angle
    if spec.two_colours:
        p[..., spec.color0] = c_head
        p[..., spec.color1] = c_tail
    else:
        p[..., spec.color0] = c_mid
    p[..., spec.alpha] = 1.0
    return project(p, block_bounds(spec, m, target.device))


def level_slots(m: int, strokes: int, slot_slack: float) -> int:
    """Stroke slots per block of an m×m level of `strokes` strokes (ceil of slack × the mean share)."""
    return max(1, int(math.ceil(slot_slack * strokes / (m * m))))


def init_level(
    spec: StrokeSpec,
    target: torch.Tensor,
    canvas: torch.Tensor,
    m: int,
    strokes: int,
    gen: torch.Generator,
    slot_slack: float,
    adaptive: float,
) -> LevelTensors:
    """A fresh m×m level of `strokes` strokes over the current canvas: blocks get slots for
    `slot_slack` × their mean share, and strokes partly by their error (`adaptive`)."""
    bsz = target.shape[0]
    nb = m * m
    slots = level_slots(m, strokes, slot_slack)
    err = (canvas - target).abs().sum(dim=1, keepdim=True)
    block_err = F.adaptive_avg_pool2d(err, (m, m)).reshape(bsz, nb).cpu().numpy()
    counts = np.stack([allocate(strokes, block_err[b], slots, adaptive) for b in range(bsz)])
    counts_t = torch.from_numpy(counts).to(target.device)
    params = seed_strokes(spec, target, canvas, m, counts_t, slots, gen)
    valid = (torch.arange(slots, device=target.device)[None, None] < counts_t[..., None]).float()
    # paint the largest-error picks last, so they land on top
    params = params.flip(2)
    valid = valid.flip(2)
    variant = torch.randint(0, VARIANTS, valid.shape, generator=gen, device=target.device)
    return LevelTensors(m, params, valid, variant)
