"""How a stroke is bound to its grid block, and the scale Adam sees its parameters in.

Strokes render in *global* normalized coordinates but each belongs to a block of an m×m level:
its centre (or Bézier control points) stays inside the block grown by `CENTRE_MARGIN` blocks, its
sizes scale with the block, and the renderer clips it to the block grown by the painting's margin.
Adam runs on block-scaled values (positions and sizes divided by the block size), so one learning
rate suits every level; after every step the parameters are projected back into their bounds.
"""

from __future__ import annotations

import torch

from vidstyle.methods.paint.layouts import StrokeSpec

CENTRE_MARGIN = 0.15  # stroke centres may leave their block by this fraction of a block
ANGLE_SCALE = 3.0  # Adam's unit step on the angle is ANGLE_SCALE radians × lr
ALPHA_MIN = 0.3
# sizes per block, in long-side units × m: (lowest, highest)
LENGTH_RANGE = (0.04, 1.0)
THICKNESS_RANGE = (0.02, 0.6)
RADIUS_RANGE = (0.012, 0.3)
UNBOUNDED = 1e6


def step_scale(spec: StrokeSpec, m: int, device: str | torch.device) -> torch.Tensor:
    """(D,) factor from Adam's variables to parameters on a level of m×m blocks."""
    scale = torch.ones(spec.dim, device=device)
    for ix, iy in spec.points:
        scale[ix] = scale[iy] = 1.0 / m
    for i in spec.lengths:
        scale[i] = 1.0 / m
    if spec.angle is not None:
        scale[spec.angle] = ANGLE_SCALE
    return scale


def block_bounds(spec: StrokeSpec, m: int, device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-block lower and upper bounds (m*m, D) of a level's parameters."""
    lo = torch.zeros(m * m, spec.dim, device=device)
    hi = torch.ones(m * m, spec.dim, device=device)
    rows, cols = torch.meshgrid(torch.arange(m, device=device), torch.arange(m, device=device), indexing="ij")
    rows, cols = rows.flatten().float(), cols.flatten().float()
    cm = CENTRE_MARGIN if m > 1 else 0.0
    for ix, iy in spec.points:
        lo[:, ix], hi[:, ix] = (cols - cm) / m, (cols + 1 + cm) / m
        lo[:, iy], hi[:, iy] = (rows - cm) / m, (rows + 1 + cm) / m
    if spec.radii is not None:
        lo[:, spec.radii], hi[:, spec.radii] = RADIUS_RANGE[0] / m, RADIUS_RANGE[1] / m
    if spec.length is not None:
        lo[:, spec.length], hi[:, spec.length] = LENGTH_RANGE[0] / m, LENGTH_RANGE[1] / m
    if spec.thickness is not None:
        lo[:, spec.thickness], hi[:, spec.thickness] = THICKNESS_RANGE[0] / m, THICKNESS_RANGE[1] / m
    if spec.angle is not None:
        lo[:, spec.angle], hi[:, spec.angle] = -UNBOUNDED, UNBOUNDED
    lo[:, spec.alpha] = ALPHA_MIN
    return lo, hi


def project(params: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Clamp (B, m*m, K, D) parameters into their blocks' bounds."""
    lo, hi = bounds
    return torch.maximum(torch.minimum(params, hi[None, :, None]), lo[None, :, None])
