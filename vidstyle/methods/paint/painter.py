"""Fit strokes to frames: progressive grid, L1 + Sinkhorn, warm start along the flow, style stage.

Progressive grid (seed 002 / Zou et al.). Level l is an m×m grid of blocks, m = 1 … levels. The
stroke budget is split over levels ∝ m^level_exponent (2 = the same K per block at every level,
as in SNP; larger puts more of the budget into the fine levels, which is what PSNR rewards), and
inside a level over blocks partly ∝ the block's error when the level starts (`adaptive`); blocks
have a fixed number of slots with a `valid` mask so a level stays one dense batch.

Parameterisation: strokes are rendered in *global* normalized coordinates but each is bound to
its block: its centre (or Bézier control points) is kept inside the block grown by
`CENTRE_MARGIN` blocks, its sizes scale with the block, and it is clipped to the block grown by
`settings.margin` (the renderer's clip box). Adam runs on block-scaled values (positions and
sizes divided by the block size), so one learning rate suits every level; after every step the
parameters are projected back into their bounds.

Initialisation: strokes go where the current canvas is most wrong (greedy maxima of the blurred
error with Gaussian suppression), with the target's colours at both ends, aligned with the local
image structure (structure tensor), sized so the block's strokes cover it about 1.5 times.

Loss: per frame, mean |canvas − target| + β·Sinkhorn divergence per block (one colour channel
per step, cycling, on ≈24 px grids), on a canvas of `settings.canvas` px (long side). Every
frame of a batch is an independent problem (losses summed over the batch).

Video (`repaint_tensors`): the strokes of frame t−1 are moved along the flow. The engine gives
the *backward* flow b of frame t (frame_t(x) ≈ frame_{t−1}(x + b(x))), so a stroke at p in t−1
goes to the q with q + b(q) = p, found by fixed-point iteration q ← p − b(q) (`forward_positions`);
angles and sizes follow the local Jacobian of that map, and the flow is first smoothed at the
scale of the level's blocks so a large stroke follows the motion of the area it covers, not of
the pixel under its centre. Strokes whose centre lands where the flow is untrusted (the mask,
averaged over ≈1 % of the frame, below `reseed_trust`), outside the frame or outside their block's
clip box are reseeded at the largest error of their block (favouring untrusted regions). Then
all levels are re-optimized jointly for `later_iterations` steps at a reduced learning rate
against L1 to the frame plus Ruder's temporal term (MSE to the previous painting warped along
the flow, on trusted pixels), which is what keeps the video from flickering.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.methods.paint.brushes import VARIANTS, spec_for, texture_atlas
from vidstyle.methods.paint.renderer import apply_layers, render_level
from vidstyle.methods.paint.settings import PaintSettings, level_plan
from vidstyle.methods.paint.sinkhorn import image_sinkhorn
from vidstyle.methods.paint.strokes import StrokeLevel, StrokeSet

CENTRE_MARGIN = 0.15  # stroke centres may leave their block by this fraction of a block
ANGLE_SCALE = 3.0  # Adam's unit step on the angle is ANGLE_SCALE radians × lr
ASPECT = 2.5  # initial length / width of a stroke
COVERAGE = 1.5  # initial strokes of a block cover about this multiple of its area
ALPHA_MIN = 0.3


@dataclass
class LevelTensors:
    grid: int
    params: torch.Tensor  # (B, m*m, K, D)
    valid: torch.Tensor  # (B, m*m, K) float {0, 1}
    variant: torch.Tensor  # (B, m*m, K) long


# ---------------------------------------------------------------------------------------------
# conversions


def to_tensors(sets: Sequence[StrokeSet], device: str | torch.device = "cpu") -> list[LevelTensors]:
    """Stack stroke sets of identical structure into per-level batch tensors."""
    first = sets[0]
    out = []
    for li, level in enumerate(first.levels):
        lv = [s.levels[li] for s in sets]
        if any(x.grid != level.grid or x.params.shape != level.params.shape for x in lv):
            raise ValueError("stroke sets of different structure cannot be batched")
        out.append(
            LevelTensors(
                level.grid,
                torch.from_numpy(np.stack([x.params for x in lv])).float().to(device),
                torch.from_numpy(np.stack([x.valid for x in lv])).float().to(device),
                torch.from_numpy(np.stack([x.variant for x in lv]).astype(np.int64)).to(device),
            )
        )
    return out


def from_tensors(levels: Sequence[LevelTensors], templates: Sequence[StrokeSet]) -> list[StrokeSet]:
    sets = []
    for b, tpl in enumerate(templates):
        sets.append(
            StrokeSet(
                tpl.stroke_type,
                tpl.height,
                tpl.width,
                np.asarray(tpl.background, np.float32).copy(),
                tpl.margin,
                [
                    StrokeLevel(
                        lv.grid,
                        lv.params[b].detach().cpu().numpy().astype(np.float32),
                        lv.valid[b].detach().cpu().numpy() > 0.5,
                        lv.variant[b].detach().cpu().numpy().astype(np.int16),
                    )
                    for lv in levels
                ],
            )
        )
    return sets


def render_levels(
    stroke_type: str,
    levels: Sequence[LevelTensors],
    background: torch.Tensor,
    height: int,
    width: int,
    margin: float,
    atlas: torch.Tensor,
    block_chunk: int | None = None,
) -> torch.Tensor:
    """Composite every level over the background: (B,3,H,W)."""
    bsz = background.shape[0]
    canvas = background.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)
    for lv in levels:
        canvas = apply_layers(
            canvas, render_level(stroke_type, lv.params, lv.variant, lv.valid, lv.grid, margin, height, width, atlas, block_chunk)
        )
    return canvas


def render_sets(
    sets: Sequence[StrokeSet], height: int | None = None, width: int | None = None, device: str | torch.device = "cpu"
) -> list[np.ndarray]:
    """Render stroke sets (same structure) at any size → RGB uint8 arrays. Default: painted size."""
    first = sets[0]
    height = height or first.height
    width = width or first.width
    atlas = texture_atlas(first.stroke_type, device)
    bg = torch.from_numpy(np.stack([s.background for s in sets])).float().to(device)
    chunk = max(1, int(4e6 // max(1, height * width // 4)))
    with torch.no_grad():
        canvas = render_levels(first.stroke_type, to_tensors(sets, device), bg, height, width, first.margin, atlas, chunk)
    return [to_uint8(c) for c in canvas]


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def to_tensor(frames: Sequence[np.ndarray], height: int, width: int, device) -> torch.Tensor:
    """uint8 RGB frames → (B,3,height,width) float in [0,1], area-resampled."""
    out = []
    for f in frames:
        img = f if f.shape[:2] == (height, width) else cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
        out.append(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0)
    return torch.stack(out).to(device)


def fit_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """The frame's aspect ratio at `long_side` px (never upsampled)."""
    long_side = min(long_side, max(height, width))
    scale = long_side / max(height, width)
    return max(2, round(height * scale)), max(2, round(width * scale))


# ---------------------------------------------------------------------------------------------
# image analysis for initialisation


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
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
    gray = (0.299 * target[:, :1] + 0.587 * target[:, 1:2] + 0.114 * target[:, 2:3])
    gray = _blur(gray, max(0.7, sigma / 3))
    gx = F.pad(gray[..., :, 2:] - gray[..., :, :-2], (1, 1, 0, 0), mode="replicate")
    gy = F.pad(gray[..., 2:, :] - gray[..., :-2, :], (0, 0, 1, 1), mode="replicate")
    jxx, jyy, jxy = _blur(gx * gx, sigma), _blur(gy * gy, sigma), _blur(gx * gy, sigma)
    # gradient orientation ψ: (cos 2ψ, sin 2ψ) ∝ (jxx − jyy, 2 jxy); strokes run along edges: φ = ψ + π/2
    return torch.cat((-(jxx - jyy), -2.0 * jxy), dim=1)


def _sample(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of img (B,C,H,W) at normalized x, y (B, ...) → (B, ..., C)."""
    bsz = img.shape[0]
    shape = x.shape
    grid = torch.stack((x * 2 - 1, y * 2 - 1), dim=-1).reshape(bsz, 1, -1, 2)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :, 0].permute(0, 2, 1).reshape(*shape, img.shape[1])


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


# ---------------------------------------------------------------------------------------------
# the painter


class Painter:
    """Stateless apart from settings and textures: paint, repaint (warm start), render."""

    def __init__(self, settings: PaintSettings, device: str | torch.device = "cpu") -> None:
        self.settings = settings
        self.spec = spec_for(settings.stroke_type)
        self.device = torch.device(device)
        self.atlas = texture_atlas(settings.stroke_type, self.device)
        self.margin = float(settings.margin)

    # -- bounds and scaling --------------------------------------------------------------------
    def _scale(self, m: int) -> torch.Tensor:
        spec = self.spec
        s = torch.ones(spec.dim, device=self.device)
        for ix, iy in spec.points:
            s[ix] = s[iy] = 1.0 / m
        for i in spec.lengths:
            s[i] = 1.0 / m
        if spec.angle is not None:
            s[spec.angle] = ANGLE_SCALE
        return s

    def _bounds(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-block lower/upper bounds (m*m, D)."""
        spec = self.spec
        nb = m * m
        lo = torch.zeros(nb, spec.dim, device=self.device)
        hi = torch.ones(nb, spec.dim, device=self.device)
        r, c = torch.meshgrid(torch.arange(m, device=self.device), torch.arange(m, device=self.device), indexing="ij")
        r, c = r.flatten().float(), c.flatten().float()
        cm = CENTRE_MARGIN if m > 1 else 0.0
        for ix, iy in spec.points:
            lo[:, ix], hi[:, ix] = (c - cm) / m, (c + 1 + cm) / m
            lo[:, iy], hi[:, iy] = (r - cm) / m, (r + 1 + cm) / m
        if spec.name == "bezier":
            lo[:, 6:8], hi[:, 6:8] = 0.012 / m, 0.3 / m
        else:
            lo[:, 2], hi[:, 2] = 0.04 / m, 1.0 / m
            lo[:, 3], hi[:, 3] = 0.02 / m, 0.6 / m
            lo[:, spec.angle], hi[:, spec.angle] = -1e6, 1e6
        lo[:, spec.alpha] = ALPHA_MIN
        return lo, hi

    # -- initialisation ------------------------------------------------------------------------
    def _background(self, targets: torch.Tensor) -> torch.Tensor:
        bg = self.settings.background
        if isinstance(bg, str):
            if bg == "mean":
                return targets.mean(dim=(2, 3))
            value = 1.0 if bg == "white" else 0.0
            return torch.full((targets.shape[0], 3), value, device=targets.device)
        return torch.tensor(bg, dtype=torch.float32, device=targets.device).expand(targets.shape[0], 3).clone()

    def seed_strokes(
        self,
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
        spec = self.spec
        bsz, _, height, width = target.shape
        nb = m * m
        block_h, block_w = height / m, width / m
        err = (canvas - target).abs().sum(dim=1, keepdim=True)
        if weight is not None:
            err = err * weight
        g = int(max(4, min(12, round(min(block_h, block_w) / 3))))
        err = _blur(err, 0.35 * min(block_h, block_w) / g)
        cells = F.adaptive_avg_pool2d(err, (m * g, m * g))
        cells = cells.reshape(bsz, m, g, m, g).permute(0, 1, 3, 2, 4).reshape(bsz, nb, g * g)
        cells = cells + 1e-4 * torch.rand(cells.shape, generator=gen, device=cells.device)  # break ties, vary picks
        gy, gx = torch.meshgrid(torch.arange(g, device=cells.device), torch.arange(g, device=cells.device), indexing="ij")
        gy, gx = gy.flatten().float(), gx.flatten().float()
        per_stroke = torch.clamp((counts if density is None else density).float(), min=1.0)
        sigma = (0.55 * g / torch.sqrt(per_stroke))[..., None]  # (B, nb, 1) cells
        picks_x, picks_y = [], []
        work = cells.clone()
        for _ in range(slots):
            idx = work.argmax(dim=-1)  # (B, nb)
            px, py = gx[idx], gy[idx]
            picks_x.append(px)
            picks_y.append(py)
            d2 = (gx - px[..., None]) ** 2 + (gy - py[..., None]) ** 2
            work = work * (1.0 - torch.exp(-0.5 * d2 / sigma**2))
        cx = torch.stack(picks_x, dim=-1)  # (B, nb, K) cell indices
        cy = torch.stack(picks_y, dim=-1)
        jitter = torch.rand((2,) + cx.shape, generator=gen, device=cx.device) - 0.5
        rows = torch.arange(m, device=cx.device).repeat_interleave(m).float().view(1, nb, 1)
        cols = torch.arange(m, device=cx.device).repeat(m).float().view(1, nb, 1)
        x = (cols + (cx + 0.5 + jitter[0]) / g) / m
        y = (rows + (cy + 0.5 + jitter[1]) / g) / m

        long_side = float(max(height, width))
        area = block_h * block_w * COVERAGE / per_stroke[..., None]  # px² per stroke
        length = torch.sqrt(area * ASPECT) / long_side * (0.85 + 0.3 * torch.rand(x.shape, generator=gen, device=x.device))
        thick = torch.sqrt(area / ASPECT) / long_side * (0.85 + 0.3 * torch.rand(x.shape, generator=gen, device=x.device))

        orient = _sample(structure_angle(target, sigma=max(1.0, 0.25 * min(block_h, block_w))), x, y)  # (B,nb,K,2)
        coherent = orient.norm(dim=-1)
        rand_angle = (torch.rand(x.shape, generator=gen, device=x.device) - 0.5) * math.pi
        angle = torch.where(coherent > 1e-6, 0.5 * torch.atan2(orient[..., 1], orient[..., 0]), rand_angle)

        smooth = _blur(target, max(0.5, 0.15 * min(block_h, block_w) / math.sqrt(float(per_stroke.mean()))))
        dx = torch.cos(angle) * length * 0.35 * long_side / width
        dy = torch.sin(angle) * length * 0.35 * long_side / height
        c_head = _sample(smooth, (x - dx).clamp(0, 1), (y - dy).clamp(0, 1))
        c_tail = _sample(smooth, (x + dx).clamp(0, 1), (y + dy).clamp(0, 1))
        c_mid = _sample(smooth, x.clamp(0, 1), y.clamp(0, 1))

        p = torch.zeros(bsz, nb, slots, spec.dim, device=target.device)
        if spec.name == "bezier":
            p[..., 0], p[..., 1] = x - dx / 0.35 * 0.5, y - dy / 0.35 * 0.5
            p[..., 2], p[..., 3] = x, y
            p[..., 4], p[..., 5] = x + dx / 0.35 * 0.5, y + dy / 0.35 * 0.5
            p[..., 6] = p[..., 7] = thick * 0.5
        else:
            p[..., 0], p[..., 1], p[..., 2], p[..., 3], p[..., 4] = x, y, length, thick, angle
        if spec.color1 == spec.color0:
            p[..., list(spec.color0)] = c_mid
        else:
            p[..., list(spec.color0)] = c_head
            p[..., list(spec.color1)] = c_tail
        p[..., spec.alpha] = 1.0
        lo, hi = self._bounds(m)
        return torch.maximum(torch.minimum(p, hi[None, :, None]), lo[None, :, None])

    def _init_level(self, target, canvas, m, n_level, gen) -> LevelTensors:
        bsz = target.shape[0]
        nb = m * m
        slots = max(1, int(math.ceil(self.settings.slot_slack * n_level / nb)))
        err = (canvas - target).abs().sum(dim=1, keepdim=True)
        block_err = F.adaptive_avg_pool2d(err, (m, m)).reshape(bsz, nb).cpu().numpy()
        counts = np.stack([allocate(n_level, block_err[b], slots, self.settings.adaptive) for b in range(bsz)])
        counts_t = torch.from_numpy(counts).to(target.device)
        params = self.seed_strokes(target, canvas, m, counts_t, slots, gen)
        valid = (torch.arange(slots, device=target.device)[None, None] < counts_t[..., None]).float()
        # paint the largest-error picks last, so they land on top
        params = params.flip(2)
        valid = valid.flip(2)
        variant = torch.randint(0, VARIANTS, valid.shape, generator=gen, device=target.device)
        return LevelTensors(m, params, valid, variant)

    # -- optimization --------------------------------------------------------------------------
    def _loss(self, canvas, target, m: int | None, step: int, extra=None) -> torch.Tensor:
        s = self.settings
        loss = (canvas - target).abs().mean(dim=(1, 2, 3))
        if extra is not None:
            loss = loss + extra(canvas)
        if s.sinkhorn_weight > 0 and m is not None:
            loss = loss + s.sinkhorn_weight * image_sinkhorn(
                canvas, target, size=s.sinkhorn_size, blur=s.sinkhorn_blur, blocks=m, channel=step % 3
            )
        return loss

    def _optimize(
        self,
        levels: list[LevelTensors],
        train: list[int],
        base: torch.Tensor,
        loss_fn: Callable[[torch.Tensor, int], torch.Tensor],
        iterations: int,
        lr: float,
        dims: list[int] | None = None,
        height: int | None = None,
        width: int | None = None,
    ) -> float:
        """Adam on the levels listed in `train` (others fixed), canvas = levels over `base`.

        `base` (B,3,H,W) is the canvas under the first level; `dims` limits which parameters move.
        Returns the last loss (sum over the batch).
        """
        if iterations <= 0 or not train:
            return float("nan")
        height = height or base.shape[2]
        width = width or base.shape[3]
        stype = self.settings.stroke_type
        scales = {i: self._scale(levels[i].grid) for i in train}
        bounds = {i: self._bounds(levels[i].grid) for i in train}
        raws = {}
        for i in train:
            raws[i] = (levels[i].params.detach() / scales[i]).clone().requires_grad_(True)
        opt = torch.optim.Adam(list(raws.values()), lr=lr)
        mask = None
        if dims is not None:
            mask = torch.zeros(self.spec.dim, device=self.device)
            mask[dims] = 1.0
        # levels below the first trained one are fixed: composite them once
        first = min(train)
        with torch.no_grad():
            for lv in levels[:first]:
                base = apply_layers(base, render_level(stype, lv.params, lv.variant, lv.valid, lv.grid, self.margin, height, width, self.atlas))
        last = None
        for step in range(iterations):
            canvas = base
            for i in range(first, len(levels)):
                lv = levels[i]
                params = raws[i] * scales[i] if i in raws else lv.params
                canvas = apply_layers(canvas, render_level(stype, params, lv.variant, lv.valid, lv.grid, self.margin, height, width, self.atlas))
            loss = loss_fn(canvas, step).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if mask is not None:
                for r in raws.values():
                    r.grad.mul_(mask)
            opt.step()
            with torch.no_grad():
                for i, r in raws.items():
                    lo, hi = bounds[i]
                    p = torch.maximum(torch.minimum(r * scales[i], hi[None, :, None]), lo[None, :, None])
                    r.copy_(p / scales[i])
            last = loss.detach()  # no host sync inside the loop
        with torch.no_grad():
            for i, r in raws.items():
                p = r.detach() * scales[i]
                if self.spec.angle is not None:
                    a = p[..., self.spec.angle]
                    p[..., self.spec.angle] = torch.remainder(a + math.pi, 2 * math.pi) - math.pi
                levels[i].params = p
        return float(last) if last is not None else float("nan")

    def paint_tensors(
        self,
        targets: torch.Tensor,
        iterations: int | None = None,
        gen: torch.Generator | None = None,
        extra_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        """Paint targets (B,3,H,W) from scratch. Returns (levels, background, stats).

        `extra_loss` (canvas → (B,)) is added to every step's loss (e.g. a pull toward an anchor)."""
        s = self.settings
        t0 = time.perf_counter()
        gen = gen or torch.Generator(device=self.device).manual_seed(s.seed)
        iters = s.iterations if iterations is None else iterations
        bsz, _, height, width = targets.shape
        bg = self._background(targets)
        canvas = bg.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)
        levels: list[LevelTensors] = []
        loss = float("nan")
        for m, n_level in level_plan(s):
            lv = self._init_level(targets, canvas, m, n_level, gen)
            levels.append(lv)
            idx = len(levels) - 1
            base = bg.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)
            loss = self._optimize(levels, [idx], base, lambda c, k, m=m: self._loss(c, targets, m, k, extra_loss), iters, s.lr)
            with torch.no_grad():
                canvas = apply_layers(canvas, render_level(s.stroke_type, lv.params, lv.variant, lv.valid, m, self.margin, height, width, self.atlas))
        if s.refine_iterations > 0:
            base = bg.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)
            loss = self._optimize(
                levels, list(range(len(levels))), base, lambda c, k: self._loss(c, targets, None, k, extra_loss), s.refine_iterations, s.lr * 0.5
            )
        stats = {"loss": loss / bsz, "iterations": float(iters * len(levels) + s.refine_iterations), "seconds": time.perf_counter() - t0}
        return levels, bg, stats

    def paint(self, frames: Sequence[np.ndarray]) -> tuple[list[StrokeSet], dict]:
        """Paint uint8 RGB frames (same size) from scratch → stroke sets."""
        h, w = frames[0].shape[:2]
        oh, ow = fit_size(h, w, self.settings.canvas)
        targets = to_tensor(frames, oh, ow, self.device)
        levels, bg, stats = self.paint_tensors(targets)
        return self.wrap(levels, bg, h, w), stats

    def wrap(self, levels, bg, height, width) -> list[StrokeSet]:
        tpl = [
            StrokeSet(self.settings.stroke_type, height, width, bg[b].detach().cpu().numpy().astype(np.float32), self.margin, [])
            for b in range(bg.shape[0])
        ]
        return from_tensors(levels, tpl)

    # -- style stage ---------------------------------------------------------------------------
    def style_tensors(
        self,
        levels: list[LevelTensors],
        background: torch.Tensor,
        targets: torch.Tensor,
        objective: Callable[[torch.Tensor], torch.Tensor],
        iterations: int | None = None,
        shapes: bool | None = None,
    ) -> dict:
        """Optimize stroke colours (and shapes if `shapes`) of all levels against `objective`
        (e.g. a `StyleObjective` whose content is `targets`), rendering at the targets' size."""
        s = self.settings
        t0 = time.perf_counter()
        iters = s.style_iterations if iterations is None else iterations
        shapes = s.style_shapes if shapes is None else shapes
        spec = self.spec
        dims = None if shapes else sorted(set(spec.color0) | set(spec.color1) | {spec.alpha})
        bsz, _, height, width = targets.shape
        base = background.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)
        loss = self._optimize(levels, list(range(len(levels))), base, lambda c, k: objective(c), iters, s.style_lr, dims=dims)
        return {"style_loss": loss / bsz, "style_iterations": float(iters), "style_seconds": time.perf_counter() - t0}

    # -- video: warm start along the flow ------------------------------------------------------
    def repaint_tensors(
        self,
        targets: torch.Tensor,
        levels: list[LevelTensors],
        background: torch.Tensor,
        flows: torch.Tensor,
        masks: torch.Tensor | None,
        iterations: int | None = None,
        extra_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
        gen: torch.Generator | None = None,
        l1_weight: float = 1.0,
    ):
        """Warm-started frame: move the previous strokes along the flow, reseed the lost ones,
        re-optimize every level jointly for a few steps. flows (B,2,h,w) backward flow in px of
        the frame (h, w); masks (B,1,h,w) 1 = trusted. Returns (levels, stats)."""
        s = self.settings
        t0 = time.perf_counter()
        gen = gen or torch.Generator(device=self.device).manual_seed(s.seed + 1)
        bsz, _, height, width = targets.shape
        moved, reseed = move_strokes(self.spec, levels, flows, masks, self.margin, s.reseed_trust)
        for lv, r in zip(moved, reseed):
            lo, hi = self._bounds(lv.grid)
            lv.params = torch.maximum(torch.minimum(lv.params, hi[None, :, None]), lo[None, :, None])
        n_reseed = int(sum(float(r.sum()) for r in reseed))
        if n_reseed:
            kept = [LevelTensors(lv.grid, lv.params, lv.valid * (1 - r.float()), lv.variant) for lv, r in zip(moved, reseed)]
            with torch.no_grad():
                canvas = render_levels(s.stroke_type, kept, background, height, width, self.margin, self.atlas)
            weight = None
            if masks is not None:  # new strokes go where the flow could not explain the frame
                weight = 0.2 + F.interpolate(1.0 - masks.float(), size=(height, width), mode="area")
            for lv, r in zip(moved, reseed):
                counts = r.sum(dim=-1).long()
                if int(counts.max()) == 0:
                    continue
                seeds = self.seed_strokes(targets, canvas, lv.grid, counts, int(counts.max()), gen, weight, lv.valid.sum(dim=-1))
                rank = (torch.cumsum(r.long(), dim=-1) - 1).clamp(min=0)
                picked = torch.gather(seeds, 2, rank[..., None].expand(-1, -1, -1, seeds.shape[-1]))
                lv.params = torch.where(r[..., None], picked, lv.params)
        iters = s.later_iterations if iterations is None else iterations
        temporal = None
        if s.temporal_weight > 0:
            # Ruder et al.: stay close to the previous painting warped along the flow, where trusted
            with torch.no_grad():
                prev = render_levels(s.stroke_type, levels, background, height, width, self.margin, self.atlas)
                warped, valid = warp_images(prev, flows)
                trust = valid if masks is None else valid * F.interpolate(masks.float(), size=(height, width), mode="area")
            temporal = (warped, trust)

        def loss_fn(canvas, step):
            loss = l1_weight * (canvas - targets).abs().mean(dim=(1, 2, 3))
            if extra_loss is not None:
                loss = loss + extra_loss(canvas)
            if temporal is not None:
                loss = loss + s.temporal_weight * (temporal[1] * (canvas - temporal[0]) ** 2).mean(dim=(1, 2, 3))
            return loss

        base = background.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)
        loss = self._optimize(moved, list(range(len(moved))), base, loss_fn, iters, s.lr * s.later_lr_scale)
        stats = {"loss": loss / bsz, "iterations": float(iters), "reseeded": float(n_reseed), "seconds": time.perf_counter() - t0}
        return moved, stats


def warp_images(images: torch.Tensor, flows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """images (B,C,H,W) of frame t−1 seen in frame t: images(x + b(x)), with the backward flow
    (B,2,h,w) in pixels of (h, w) resized to (H, W). Also returns (B,1,H,W) 1 where x + b(x)
    stays inside the frame."""
    bsz, _, height, width = images.shape
    _, _, h, w = flows.shape
    if (h, w) != (height, width):
        flows = F.interpolate(flows, size=(height, width), mode="area") * torch.tensor(
            [width / w, height / h], device=flows.device, dtype=flows.dtype
        ).view(1, 2, 1, 1)
    ys = torch.arange(height, device=images.device, dtype=images.dtype) + 0.5
    xs = torch.arange(width, device=images.device, dtype=images.dtype) + 0.5
    sx = xs.view(1, 1, width) + flows[:, 0]
    sy = ys.view(1, height, 1) + flows[:, 1]
    grid = torch.stack((sx / width * 2 - 1, sy / height * 2 - 1), dim=-1)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = ((sx >= 0) & (sx <= width) & (sy >= 0) & (sy <= height)).to(images.dtype)[:, None]
    return warped, inside


def _sample_flow(flow: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear flow (B,2,h,w) at pixel positions px, py (B, N) → (bx, by) each (B, N)."""
    _, _, h, w = flow.shape
    gx = (px / w) * 2 - 1
    gy = (py / h) * 2 - 1
    grid = torch.stack((gx, gy), dim=-1)[:, None]
    out = F.grid_sample(flow, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0]
    return out[:, 0], out[:, 1]


def forward_positions(flow: torch.Tensor, px: torch.Tensor, py: torch.Tensor, steps: int = 8):
    """Where points of frame t−1 are in frame t, from the *backward* flow b of frame t.

    b maps q in frame t to q + b(q) in frame t−1, so the new position q of a point p solves
    q + b(q) = p: fixed-point iteration q ← p − b(q), started from p − b(p) (converges where
    |∇b| < 1, i.e. anywhere the motion is not folding).
    """
    bx, by = _sample_flow(flow, px, py)
    qx, qy = px - bx, py - by
    for _ in range(steps):
        bx, by = _sample_flow(flow, qx, qy)
        qx, qy = px - bx, py - by
    return qx, qy


def trust_map(masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """The flow-trust mask averaged over a neighbourhood: thin untrusted lines (motion
    boundaries) do not condemn a stroke, occluded/disoccluded areas do."""
    return _blur(masks, sigma)


def move_strokes(
    spec,
    levels: Sequence[LevelTensors],
    flows: torch.Tensor,
    masks: torch.Tensor | None,
    margin: float,
    trust: float = 0.5,
    flow_smoothing: float = 0.15,
):
    """Move strokes along the flow (positions, and for oil/rect angles and sizes from the local
    Jacobian of the motion). Returns (moved levels, reseed masks (B, m*m, K) bool): strokes whose
    centre lands outside the frame, in an untrusted region (the mask averaged over ≈1 % of the
    long side is below `trust`), or outside its block's clip box are to be reseeded.
    The flow is smoothed with σ = `flow_smoothing` × the level's block size first."""
    bsz, _, h, w = flows.shape
    if masks is not None:
        masks = trust_map(masks.float(), 0.01 * max(h, w))
    long_side = float(max(h, w))
    moved, reseed = [], []
    for lv in levels:
        p = lv.params.clone()
        shape = p.shape[:-1]
        flat = p.reshape(bsz, -1, spec.dim)
        # a stroke follows the motion of the area it covers, not of the one pixel at its centre:
        # the flow is smoothed at the scale of the level's blocks before it is sampled
        sigma = flow_smoothing * long_side / lv.grid
        flow = _blur(flows, sigma) if sigma > 0.5 else flows
        centre = []
        for ix, iy in spec.points:
            qx, qy = forward_positions(flow, flat[..., ix] * w, flat[..., iy] * h)
            if spec.angle is not None:
                # Jacobian of the backward map G(q) = q + b(q) by central differences; J_F = J_G^{-1}
                d = (0.25 * flat[..., 2] * 0.5 * long_side).clamp(1.0, max(1.0, 2 * sigma))
                bxp, byp = _sample_flow(flow, qx + d, qy)
                bxm, bym = _sample_flow(flow, qx - d, qy)
                bxu, byu = _sample_flow(flow, qx, qy + d)
                bxd, byd = _sample_flow(flow, qx, qy - d)
                j11 = 1 + (bxp - bxm) / (2 * d)
                j21 = (byp - bym) / (2 * d)
                j12 = (bxu - bxd) / (2 * d)
                j22 = 1 + (byu - byd) / (2 * d)
                det = j11 * j22 - j12 * j21
                det = torch.where(det.abs() < 1e-3, torch.full_like(det, 1e-3), det)
                f11, f12, f21, f22 = j22 / det, -j12 / det, -j21 / det, j11 / det
                th = flat[..., spec.angle]
                cx_, sy_ = torch.cos(th), torch.sin(th)
                dx, dy = f11 * cx_ + f12 * sy_, f21 * cx_ + f22 * sy_
                nx, ny = -f11 * sy_ + f12 * cx_, -f21 * sy_ + f22 * cx_
                flat[..., spec.angle] = torch.atan2(dy, dx)
                flat[..., 2] = flat[..., 2] * torch.sqrt(dx * dx + dy * dy).clamp(0.7, 1.4)
                flat[..., 3] = flat[..., 3] * torch.sqrt(nx * nx + ny * ny).clamp(0.7, 1.4)
            flat[..., ix] = qx / w
            flat[..., iy] = qy / h
            centre.append((qx, qy))
        if spec.name == "bezier":  # the curve's midpoint
            cx = 0.25 * centre[0][0] + 0.5 * centre[1][0] + 0.25 * centre[2][0]
            cy = 0.25 * centre[0][1] + 0.5 * centre[1][1] + 0.25 * centre[2][1]
        else:
            cx, cy = centre[0]
        tol_x, tol_y = CENTRE_MARGIN * w / lv.grid, CENTRE_MARGIN * h / lv.grid  # bounds allow that much
        out = (cx < -tol_x) | (cx > w + tol_x) | (cy < -tol_y) | (cy > h + tol_y)
        if masks is not None:
            mx = F.grid_sample(masks, torch.stack((cx / w * 2 - 1, cy / h * 2 - 1), -1)[:, None], mode="bilinear", padding_mode="border", align_corners=False)[:, 0, 0]
            out = out | (mx < trust)
        m = lv.grid
        mu = margin if m > 1 else 0.0
        rows = torch.arange(m, device=p.device).repeat_interleave(m).float().view(1, m * m, 1).expand(shape).reshape(bsz, -1)
        cols = torch.arange(m, device=p.device).repeat(m).float().view(1, m * m, 1).expand(shape).reshape(bsz, -1)
        bx, by = cx / w * m, cy / h * m  # in block units
        out = out | (bx < cols - mu) | (bx > cols + 1 + mu) | (by < rows - mu) | (by > rows + 1 + mu)
        out = out.reshape(shape) & (lv.valid > 0.5)
        moved.append(LevelTensors(lv.grid, flat.reshape(p.shape), lv.valid.clone(), lv.variant.clone()))
        reseed.append(out)
    return moved, reseed
