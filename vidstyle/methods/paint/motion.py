"""Video: strokes of frame t−1 moved along the optical flow into frame t.

The engine gives the *backward* flow b of frame t (frame_t(x) ≈ frame_{t−1}(x + b(x))), so a
stroke at p in t−1 goes to the q with q + b(q) = p, found by fixed-point iteration q ← p − b(q)
(`forward_positions`); angles and sizes follow the local Jacobian of that map, and the flow is
first smoothed at the scale of the level's blocks so a large stroke follows the motion of the area
it covers, not of the pixel under its centre. Strokes whose centre lands where the flow is
untrusted (the mask averaged over ≈1 % of the frame, below `reseed_trust`), outside the frame or
outside their block's clip box are reseeded at the largest error of their block, favouring
untrusted regions (`reseed`). The previous painting warped along the flow (`warped_previous`) is
the target of Ruder et al.'s temporal term.

Positions here are continuous pixel coordinates of the renderer (pixel i covers [i, i+1)); image
warps use `vidstyle.flow.warp_torch`, the project's one warp (pixel centres at integers).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from vidstyle.flow import out_of_frame_torch, warp_torch
from vidstyle.methods.paint.bounds import CENTRE_MARGIN
from vidstyle.methods.paint.layouts import StrokeSpec
from vidstyle.methods.paint.renderer import level_margin
from vidstyle.methods.paint.seeding import gaussian_blur, seed_strokes
from vidstyle.methods.paint.stroke_tensors import LevelTensors, render_levels

TRUST_RADIUS = 0.01  # the flow-trust mask is averaged over this fraction of the long side
FLOW_SMOOTHING = 0.15  # flow blur σ, in blocks of the stroke's level
FIXED_POINT_STEPS = 8
UNTRUSTED_BOOST = 0.2  # reseeding error weight: 1.2 where the flow failed, 0.2 where it held


def sample_flow(flow: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear flow (B,2,h,w) at continuous pixel positions px, py (B, N) → (bx, by) each (B, N)."""
    _, _, h, w = flow.shape
    grid = torch.stack(((px / w) * 2 - 1, (py / h) * 2 - 1), dim=-1)[:, None]
    out = F.grid_sample(flow, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0]
    return out[:, 0], out[:, 1]


def forward_positions(flow: torch.Tensor, px: torch.Tensor, py: torch.Tensor, steps: int = FIXED_POINT_STEPS):
    """Where points of frame t−1 are in frame t, from the *backward* flow b of frame t.

    b maps q in frame t to q + b(q) in frame t−1, so the new position q of a point p solves
    q + b(q) = p: fixed-point iteration q ← p − b(q), started from p − b(p) (converges where
    |∇b| < 1, i.e. anywhere the motion is not folding).
    """
    bx, by = sample_flow(flow, px, py)
    qx, qy = px - bx, py - by
    for _ in range(steps):
        bx, by = sample_flow(flow, qx, qy)
        qx, qy = px - bx, py - by
    return qx, qy


def trust_map(masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """The flow-trust mask averaged over a neighbourhood: thin untrusted lines (motion
    boundaries) do not condemn a stroke, occluded/disoccluded areas do."""
    return gaussian_blur(masks, sigma)


def _follow_jacobian(spec: StrokeSpec, flat: torch.Tensor, flow: torch.Tensor, qx, qy, sigma: float, long_side: float):
    """Rotate and stretch oil/rect strokes (B, N, D) in place by the local Jacobian of the motion.

    The backward map G(q) = q + b(q) is differentiated by central differences at the stroke's new
    centre (step ≈ a quarter of its half-length); the motion's Jacobian is J_G⁻¹."""
    d = (0.25 * flat[..., spec.length] * 0.5 * long_side).clamp(1.0, max(1.0, 2 * sigma))
    bxp, byp = sample_flow(flow, qx + d, qy)
    bxm, bym = sample_flow(flow, qx - d, qy)
    bxu, byu = sample_flow(flow, qx, qy + d)
    bxd, byd = sample_flow(flow, qx, qy - d)
    j11 = 1 + (bxp - bxm) / (2 * d)
    j21 = (byp - bym) / (2 * d)
    j12 = (bxu - bxd) / (2 * d)
    j22 = 1 + (byu - byd) / (2 * d)
    det = j11 * j22 - j12 * j21
    det = torch.where(det.abs() < 1e-3, torch.full_like(det, 1e-3), det)
    f11, f12, f21, f22 = j22 / det, -j12 / det, -j21 / det, j11 / det
    th = flat[..., spec.angle]
    cos, sin = torch.cos(th), torch.sin(th)
    dx, dy = f11 * cos + f12 * sin, f21 * cos + f22 * sin
    nx, ny = -f11 * sin + f12 * cos, -f21 * sin + f22 * cos
    flat[..., spec.angle] = torch.atan2(dy, dx)
    flat[..., spec.length] = flat[..., spec.length] * torch.sqrt(dx * dx + dy * dy).clamp(0.7, 1.4)
    flat[..., spec.thickness] = flat[..., spec.thickness] * torch.sqrt(nx * nx + ny * ny).clamp(0.7, 1.4)


def _outside_block(cx: torch.Tensor, cy: torch.Tensor, m: int, margin: float, shape, width: int, height: int):
    """(B, N) True where a centre left its block's clip box."""
    bsz = cx.shape[0]
    mu = level_margin(m, margin)
    rows = torch.arange(m, device=cx.device).repeat_interleave(m).float().view(1, m * m, 1).expand(shape)
    cols = torch.arange(m, device=cx.device).repeat(m).float().view(1, m * m, 1).expand(shape)
    rows, cols = rows.reshape(bsz, -1), cols.reshape(bsz, -1)
    bx, by = cx / width * m, cy / height * m  # in block units
    return (bx < cols - mu) | (bx > cols + 1 + mu) | (by < rows - mu) | (by > rows + 1 + mu)


def move_strokes(
    spec: StrokeSpec,
    levels: Sequence[LevelTensors],
    flows: torch.Tensor,
    masks: torch.Tensor | None,
    margin: float,
    trust: float = 0.5,
    flow_smoothing: float = FLOW_SMOOTHING,
) -> tuple[list[LevelTensors], list[torch.Tensor]]:
    """Move strokes along the flow (positions, and for oil/rect angles and sizes from the local
    Jacobian of the motion). Returns (moved levels, reseed masks (B, m*m, K) bool): strokes whose
    centre lands outside the frame, in an untrusted region (the mask averaged over ≈1 % of the
    long side is below `trust`), or outside its block's clip box are to be reseeded.
    The flow is smoothed with σ = `flow_smoothing` × the level's block size first."""
    bsz, _, h, w = flows.shape
    if masks is not None:
        masks = trust_map(masks.float(), TRUST_RADIUS * max(h, w))
    long_side = float(max(h, w))
    moved, reseed = [], []
    for lv in levels:
        p = lv.params.clone()
        shape = p.shape[:-1]
        flat = p.reshape(bsz, -1, spec.dim)
        sigma = flow_smoothing * long_side / lv.grid
        flow = gaussian_blur(flows, sigma) if sigma > 0.5 else flows
        centre = []
        for ix, iy in spec.points:
            qx, qy = forward_positions(flow, flat[..., ix] * w, flat[..., iy] * h)
            if spec.angle is not None:
                _follow_jacobian(spec, flat, flow, qx, qy, sigma, long_side)
            flat[..., ix] = qx / w
            flat[..., iy] = qy / h
            centre.append((qx, qy))
        if len(centre) == 3:  # a quadratic Bézier: its midpoint
            cx = 0.25 * centre[0][0] + 0.5 * centre[1][0] + 0.25 * centre[2][0]
            cy = 0.25 * centre[0][1] + 0.5 * centre[1][1] + 0.25 * centre[2][1]
        else:
            cx, cy = centre[0]
        tol_x, tol_y = CENTRE_MARGIN * w / lv.grid, CENTRE_MARGIN * h / lv.grid  # bounds allow that much
        out = (cx < -tol_x) | (cx > w + tol_x) | (cy < -tol_y) | (cy > h + tol_y)
        if masks is not None:
            at = torch.stack((cx / w * 2 - 1, cy / h * 2 - 1), -1)[:, None]
            trusted = F.grid_sample(masks, at, mode="bilinear", padding_mode="border", align_corners=False)[:, 0, 0]
            out = out | (trusted < trust)
        out = out | _outside_block(cx, cy, lv.grid, margin, shape, w, h)
        out = out.reshape(shape) & (lv.valid > 0.5)
        moved.append(LevelTensors(lv.grid, flat.reshape(p.shape), lv.valid.clone(), lv.variant.clone()))
        reseed.append(out)
    return moved, reseed


def reseed(
    spec: StrokeSpec,
    targets: torch.Tensor,
    levels: list[LevelTensors],
    lost: list[torch.Tensor],
    background: torch.Tensor,
    masks: torch.Tensor | None,
    margin: float,
    atlas: torch.Tensor,
    gen: torch.Generator,
) -> None:
    """Replace the `lost` strokes (B, m*m, K) of each level, in place, by new ones at their block's
    largest errors of the painting without them (favouring where the flow was not trusted)."""
    _, _, height, width = targets.shape
    kept = [LevelTensors(lv.grid, lv.params, lv.valid * (1 - r.float()), lv.variant) for lv, r in zip(levels, lost)]
    with torch.no_grad():
        canvas = render_levels(spec.name, kept, background, height, width, margin, atlas)
    weight = None
    if masks is not None:  # new strokes go where the flow could not explain the frame
        weight = UNTRUSTED_BOOST + F.interpolate(1.0 - masks.float(), size=(height, width), mode="area")
    for lv, r in zip(levels, lost):
        counts = r.sum(dim=-1).long()
        slots = int(counts.max())
        if slots == 0:
            continue
        seeds = seed_strokes(spec, targets, canvas, lv.grid, counts, slots, gen, weight, lv.valid.sum(dim=-1))
        rank = (torch.cumsum(r.long(), dim=-1) - 1).clamp(min=0)
        picked = torch.gather(seeds, 2, rank[..., None].expand(-1, -1, -1, seeds.shape[-1]))
        lv.params = torch.where(r[..., None], picked, lv.params)


def flows_at(flows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Backward flows (B,2,h,w) in px of (h, w) → (B,2,height,width) in px of the new size (area mean)."""
    _, _, h, w = flows.shape
    if (h, w) == (height, width):
        return flows
    scale = torch.tensor([width / w, height / h], device=flows.device, dtype=flows.dtype).view(1, 2, 1, 1)
    return F.interpolate(flows, size=(height, width), mode="area") * scale


def warped_previous(
    previous: torch.Tensor, flows: torch.Tensor, masks: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The previous painting (B,3,H,W) seen in frame t, and where to trust it (B,1,H,W): inside
    the frame (`flow.out_of_frame_mask`'s convention) and, given masks (B,1,h,w), where they trust the flow."""
    _, _, height, width = previous.shape
    flows = flows_at(flows, height, width).permute(0, 2, 3, 1)
    warped = warp_torch(previous, flows, border="replicate")
    trust = (~out_of_frame_torch(flows))[:, None].to(previous.dtype)
    if masks is not None:
        trust = trust * F.interpolate(masks.float(), size=(height, width), mode="area")
    return warped, trust
