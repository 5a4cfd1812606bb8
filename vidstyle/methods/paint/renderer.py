"""Analytic, differentiable stroke renderer in plain PyTorch.

A stroke's footprint is its type's brush texture (see `brushes`) looked up with `grid_sample` at
the pixel's stroke-local coordinates (an affine map for oil/rect, distance-to-curve coordinates for
Bézier strokes), times the stroke's alpha, times its clip box. Colour is interpolated between the
two end colours along the stroke; everything is premultiplied.

Compositing is "each stroke over the canvas", in order, but computed for all strokes of a block
at once with cumulative transmittance:

    canvas = Σ_i α_i c_i Π_{j>i}(1−α_j) + background · Π_j (1−α_j)

(reverse cumsum of log(1−α) over the stroke axis). No Python loop over strokes.

Blocks and layers. Strokes are organised in levels of an m×m grid of blocks (the progressive grid
of seed 002). Each stroke is confined to its block's *clip box*, the block grown by `margin` of a
block on every side, so it only has to be evaluated on a patch around its block: the cost of a
level is O(K · (1+2·margin)² · H · W) whatever m is. Patches of neighbouring blocks overlap, so
the blocks of a level are split into four parity groups ((row%2, col%2)); within a group the clip
boxes are disjoint (margin < 0.5), so the group's patches can simply be added into one full-canvas
layer (premultiplied colour, log transmittance). A level is four layers, composited in the fixed
order (0,0), (0,1), (1,0), (1,1); the canonical paint order of strokes is level → group → block →
slot, and every exporter follows it.

Strokes are stored in normalized coordinates (see `brushes`), so `level_layers` renders the same
strokes at any canvas size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F

from vidstyle.methods.paint.brushes import TEXTURE_HEIGHT, TEXTURE_WIDTH, texture_atlas
from vidstyle.methods.paint.layouts import StrokeSpec, spec_for

MAX_ALPHA = 0.999  # keeps log(1 − α) finite; visually opaque
BEZIER_SEGMENTS = 8
GROUPS = ((0, 0), (0, 1), (1, 0), (1, 1))


# ---------------------------------------------------------------------------------------------
# footprints


OUTSIDE = 1.0e5  # pixel coordinate given to pixels outside a clip box: every footprint is 0 there


def _atlas_grid(u: torch.Tensor, v: torch.Tensor, variant: torch.Tensor, variants: int) -> torch.Tensor:
    """grid_sample coordinates of (u, v) ∈ [−1, 1]² inside tile `variant` of the atlas."""
    u = u.clamp(-1.0, 1.0)
    v = v.clamp(-1.0, 1.0)
    width = variants * TEXTURE_WIDTH
    tx = variant * TEXTURE_WIDTH + (u + 1.0) * (0.5 * (TEXTURE_WIDTH - 1))  # texel-centre units
    ty = (v + 1.0) * (0.5 * (TEXTURE_HEIGHT - 1))
    return torch.stack(((2.0 * tx + 1.0) / width - 1.0, (2.0 * ty + 1.0) / TEXTURE_HEIGHT - 1.0), dim=-1)


def _sample(atlas: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    shape = grid.shape[:-1]
    flat = grid.reshape(1, -1, shape[-1], 2)
    out = F.grid_sample(atlas.to(grid.dtype), flat, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(shape)


def _affine_footprint(spec, params, variant, X, Y, height, width, atlas):
    """Oil/rect footprint with the affine map folded into per-stroke coefficients.

    The atlas coordinate gx = a·X + b·Y + c is linear in the pixel position, so the only
    full-size operations are two adds, one clamp (u must stay inside the stroke's tile; v needs
    no clamp since tiles sit side by side and rows beyond ±1 fall in the zero padding), the
    texture lookup and the alpha product. That matters: the renderer is memory-bound.
    """
    long_side = float(max(height, width))
    variants = atlas.shape[-1] // TEXTURE_WIDTH
    aw = float(variants * TEXTURE_WIDTH)
    ix, iy = spec.centre
    cx = params[..., ix] * width
    cy = params[..., iy] * height
    hw = (params[..., spec.length] * (0.5 * long_side)).clamp(min=0.35)
    hh = (params[..., spec.thickness] * (0.5 * long_side)).clamp(min=0.35)
    th = params[..., spec.angle]
    cos, sin = torch.cos(th), torch.sin(th)
    kx = (TEXTURE_WIDTH - 1) / aw  # gx = kx·u + ox
    ox = (2.0 * variant.to(params.dtype) * TEXTURE_WIDTH + TEXTURE_WIDTH) / aw - 1.0
    ky = (TEXTURE_HEIGHT - 1) / TEXTURE_HEIGHT  # gy = ky·v
    au, bu = kx * cos / hw, kx * sin / hw
    av, bv = -ky * sin / hh, ky * cos / hh
    cu = ox - au * cx - bu * cy
    cv = -av * cx - bv * cy

    def e(t):
        return t[..., None, None]

    gx = (e(au) * X) + (e(bu) * Y + e(cu))
    gy = (e(av) * X) + (e(bv) * Y + e(cv))
    gx = torch.clamp(gx, e(ox - kx), e(ox + kx))  # u stays inside the stroke's tile
    grid = torch.stack((gx, gy), dim=-1)
    alpha = _sample(atlas, grid) * e(params[..., spec.alpha].clamp(0.0, 1.0))
    t = None
    if spec.two_colours:
        t = torch.addcmul(e(-(ox - kx) / (2 * kx)), gx, e(torch.full_like(ox, 1.0 / (2 * kx))))
    return alpha, t


def _bezier_uv(spec: StrokeSpec, params: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, height: int, width: int):
    """Stroke coordinates of a quadratic Bézier band: u from the nearest curve point's parameter,
    v = signed distance / local radius. The curve is a polyline of BEZIER_SEGMENTS segments."""
    long_side = float(max(height, width))
    p = [(params[..., ix, None, None] * width, params[..., iy, None, None] * height) for ix, iy in spec.points]
    radii = (params[..., spec.radii, None, None] * long_side).clamp(min=0.35)
    r0, r1 = radii[..., 0, :, :], radii[..., 1, :, :]
    best_d2 = best_t = best_side = None
    n = BEZIER_SEGMENTS
    pts = []
    for s in range(n + 1):
        t = s / n
        a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t * t
        pts.append((a * p[0][0] + b * p[1][0] + c * p[2][0], a * p[0][1] + b * p[1][1] + c * p[2][1]))
    for s in range(n):
        (ax, ay), (bx, by) = pts[s], pts[s + 1]
        dx, dy = bx - ax, by - ay
        qx, qy = X - ax, Y - ay
        den = dx * dx + dy * dy + 1e-6
        tau = ((qx * dx + qy * dy) / den).clamp(0.0, 1.0)
        ex, ey = qx - tau * dx, qy - tau * dy
        d2 = ex * ex + ey * ey
        side = dx * qy - dy * qx
        t = (s + tau) / n
        if best_d2 is None:
            best_d2, best_t, best_side = d2, t, side
        else:
            closer = d2 < best_d2
            best_d2 = torch.where(closer, d2, best_d2)
            best_t = torch.where(closer, t, best_t)
            best_side = torch.where(closer, side, best_side)
    dist = torch.sqrt(best_d2 + 1e-8)
    radius = r0 + (r1 - r0) * best_t
    v = torch.where(best_side >= 0, dist, -dist) / radius
    u = 2.0 * best_t - 1.0
    return u, v


def footprint(
    spec: StrokeSpec,
    params: torch.Tensor,
    variant: torch.Tensor,
    X: torch.Tensor,
    Y: torch.Tensor,
    height: int,
    width: int,
    atlas: torch.Tensor,
):
    """Alpha and colour-mix position of strokes at pixel centres.

    `params` (..., D) normalized; `variant` (...) texture tile index; `X`, `Y` pixel-centre
    coordinates in pixels of a `height`×`width` canvas, broadcastable to (..., h, w).
    Returns (alpha, t), both (..., h, w); t ∈ [0, 1] runs from the first to the second colour.
    """
    if spec.name != "bezier":
        return _affine_footprint(spec, params, variant, X, Y, height, width, atlas)
    u, v = _bezier_uv(spec, params, X, Y, height, width)
    variants = atlas.shape[-1] // TEXTURE_WIDTH
    shape = torch.broadcast_shapes(u.shape, v.shape)
    u, v = u.expand(shape), v.expand(shape)
    grid = _atlas_grid(u, v, variant[..., None, None].to(u.dtype), variants)
    alpha = _sample(atlas, grid) * params[..., spec.alpha, None, None].clamp(0.0, 1.0)
    t = ((u.clamp(-1.0, 1.0) + 1.0) * 0.5) if spec.two_colours else None
    return alpha, t


def composite(alpha: torch.Tensor, t: torch.Tensor | None, color0: torch.Tensor, color1: torch.Tensor | None):
    """Composite K strokes in order along dim −3 of `alpha` (…, K, h, w).

    color0/color1 are (…, K, 3). Returns premultiplied colour (…, 3, h, w) and the log of the
    total transmittance (…, 1, h, w): canvas = colour + exp(logT) · background.
    """
    a = alpha * MAX_ALPHA  # footprints are ≤ 1: keeps log(1 − α) finite
    log_t = torch.log1p(-a)
    csum = torch.cumsum(log_t, dim=-3)  # Σ_{j≤i}
    total = csum[..., -1:, :, :]  # log Π_j (1−α_j)
    weight = a * torch.exp(total - csum)  # α_i Π_{j>i}(1−α_j)
    shape = weight.shape
    flat = weight.reshape(*shape[:-2], shape[-2] * shape[-1])  # (…, K, hw)
    color = torch.matmul(color0.transpose(-1, -2), flat)  # (…, 3, hw)
    if t is not None and color1 is not None:
        wt = (weight * t).reshape(flat.shape)
        delta = (color1 - color0).transpose(-1, -2).reshape(-1, 3, shape[-3])
        color = torch.baddbmm(color.reshape(-1, 3, flat.shape[-1]), delta, wt.reshape(-1, shape[-3], flat.shape[-1]))
    return color.reshape(*shape[:-3], 3, shape[-2], shape[-1]), total


def stroke_colors(spec: StrokeSpec, params: torch.Tensor):
    c0 = params[..., spec.color0].clamp(0.0, 1.0)
    if not spec.two_colours:
        return c0, None
    return c0, params[..., spec.color1].clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# level geometry


@dataclass(frozen=True)
class LevelGeometry:
    """Integer patch placement of an m×m grid on a height×width canvas.

    Block (r, c) owns the clip box rows [(r−μ)/m, (r+1+μ)/m)·H, cols likewise (μ = margin, 0 for
    m = 1); its patch is a fixed-size window of a padded canvas that covers that box.
    """

    m: int
    margin: float
    height: int
    width: int
    pad_y: int
    pad_x: int
    ph: int
    pw: int
    oy: tuple[int, ...]  # patch origin rows in the padded canvas, per block row
    ox: tuple[int, ...]

    @property
    def padded(self) -> tuple[int, int]:
        return self.height + 2 * self.pad_y + 4, self.width + 2 * self.pad_x + 4


def level_margin(m: int, margin: float) -> float:
    return 0.0 if m == 1 else margin


@lru_cache(maxsize=256)
def level_geometry(m: int, margin: float, height: int, width: int) -> LevelGeometry:
    mu = level_margin(m, margin)
    if not 0.0 <= mu < 0.5:
        raise ValueError("margin must be in [0, 0.5)")
    bh, bw = height / m, width / m
    pad_y, pad_x = math.ceil(mu * bh) + 1, math.ceil(mu * bw) + 1
    ph = math.ceil((1 + 2 * mu) * bh) + 2
    pw = math.ceil((1 + 2 * mu) * bw) + 2
    oy = tuple(math.floor((r - mu) * bh) + pad_y for r in range(m))
    ox = tuple(math.floor((c - mu) * bw) + pad_x for c in range(m))
    return LevelGeometry(m, mu, height, width, pad_y, pad_x, ph, pw, oy, ox)


def _patch_coords(geom: LevelGeometry, device, dtype):
    """Pixel-centre coordinates (canvas pixels) of every block's patch and the clip mask."""
    m = geom.m
    iy = torch.tensor(geom.oy, device=device)[:, None] - geom.pad_y + torch.arange(geom.ph, device=device)[None]
    ix = torch.tensor(geom.ox, device=device)[:, None] - geom.pad_x + torch.arange(geom.pw, device=device)[None]
    ys = iy.to(dtype) + 0.5  # (m, ph)
    xs = ix.to(dtype) + 0.5  # (m, pw)
    mu = geom.margin
    r = torch.arange(m, device=device, dtype=dtype)
    y0, y1 = (r - mu) / m * geom.height, (r + 1 + mu) / m * geom.height
    x0, x1 = (r - mu) / m * geom.width, (r + 1 + mu) / m * geom.width
    in_y = ((ys >= y0[:, None]) & (ys < y1[:, None]) & (iy >= 0) & (iy < geom.height)).to(dtype)
    in_x = ((xs >= x0[:, None]) & (xs < x1[:, None]) & (ix >= 0) & (ix < geom.width)).to(dtype)
    # per block n = r*m + c
    # the clip box is baked into the coordinates: outside it, pixels sit far away, footprints are 0
    ys = torch.where(in_y > 0, ys, torch.full_like(ys, OUTSIDE))
    xs = torch.where(in_x > 0, xs, torch.full_like(xs, OUTSIDE))
    Y = ys[:, None, :, None].expand(m, m, geom.ph, 1).reshape(m * m, geom.ph, 1)
    X = xs[None, :, None, :].expand(m, m, 1, geom.pw).reshape(m * m, 1, geom.pw)
    return X, Y


def _group_blocks(m: int) -> list[list[int]]:
    """Block indices (r*m + c) of each non-empty parity group, in paint order."""
    groups = GROUPS if m > 1 else ((0, 0),)
    out = [[r * m + c for r in range(gr, m, 2) for c in range(gc, m, 2)] for gr, gc in groups]
    return [blocks for blocks in out if blocks]


def _pass_index(geom: LevelGeometry, blocks: list[int], r0: int, rows: int, device) -> torch.Tensor:
    """Flat indices in the padded canvas of rows r0 … r0+rows of the patches of `blocks` (block, row, col)."""
    _, wp = geom.padded
    top = torch.tensor([geom.oy[n // geom.m] + r0 for n in blocks], device=device)
    left = torch.tensor([geom.ox[n % geom.m] for n in blocks], device=device)
    ys = top[:, None] + torch.arange(rows, device=device)  # (n, rows)
    xs = left[:, None] + torch.arange(geom.pw, device=device)  # (n, pw)
    return (ys[:, :, None] * wp + xs[:, None, :]).flatten()


_GEOM_CACHE: dict = {}


def _cached_level_tensors(geom: LevelGeometry, device, dtype, whole: bool):
    """Patch coordinates and, per parity group, its blocks and (`whole`) the flat pixel index of all
    its patches. Only the optimizer's canvas sizes need the whole index (bounded renders index one
    pass at a time, and an index of every patch pixel of a 4K frame would cost ~20 bytes a pixel)."""
    key = (geom, str(device), dtype, whole)
    hit = _GEOM_CACHE.get(key)
    if hit is None:
        if len(_GEOM_CACHE) > 64:
            _GEOM_CACHE.clear()
        groups = []
        for blocks in _group_blocks(geom.m):
            index = _pass_index(geom, blocks, 0, geom.ph, device) if whole else None
            groups.append((blocks, torch.tensor(blocks, device=device), index))
        hit = (_patch_coords(geom, device, dtype), groups)
        _GEOM_CACHE[key] = hit
    return hit


def _passes(nb: int, slots: int, ph: int, pw: int, bsz: int, max_elements: int | None):
    """How one parity group of `nb` blocks is split into rendering passes: [(first block, blocks,
    first row, rows)]. A pass holds bsz × blocks × slots × rows × pw footprint elements, at most
    `max_elements` (None: the whole group at once); whole blocks first, then rows of one block."""
    per_row = bsz * slots * pw
    if max_elements is None or nb * ph * per_row <= max_elements:
        return [(0, nb, 0, ph)]
    blocks = max_elements // (ph * per_row)
    if blocks >= 1:
        return [(b, min(blocks, nb - b), 0, ph) for b in range(0, nb, blocks)]
    rows = max(1, max_elements // per_row)
    return [(b, 1, r, min(rows, ph - r)) for b in range(nb) for r in range(0, ph, rows)]


def level_layers(
    stroke_type: str,
    params: torch.Tensor,
    variant: torch.Tensor,
    valid: torch.Tensor,
    m: int,
    margin: float,
    height: int,
    width: int,
    atlas: torch.Tensor,
    max_elements: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Render one level of the grid into its parity-group layers, yielded one at a time in paint order.

    params (B, m*m, K, D), variant (B, m*m, K) int, valid (B, m*m, K) {0,1}.
    Yields (premultiplied colour (B,3,H,W), log transmittance (B,1,H,W)) for `apply_layers`.
    `max_elements` bounds memory when rendering without gradients: footprint elements (frames ×
    stroke slots × patch pixels) per pass; a group is then rendered a few blocks, or a few rows of
    one block, at a time (the same pixels either way: every pixel is composited over all its strokes
    in one pass).
    """
    spec = spec_for(stroke_type)
    geom = level_geometry(m, float(margin), int(height), int(width))
    dtype = params.dtype
    (X, Y), groups = _cached_level_tensors(geom, params.device, dtype, whole=max_elements is None)
    bsz, slots = params.shape[0], params.shape[2]
    hp, wp = geom.padded
    inplace = not torch.is_grad_enabled()
    for block_list, blocks, index in groups:
        color_layer = torch.zeros(bsz, 3, hp * wp, device=params.device, dtype=dtype)
        logt_layer = torch.zeros(bsz, 1, hp * wp, device=params.device, dtype=dtype)
        for b0, nsel, r0, rows in _passes(len(blocks), slots, geom.ph, geom.pw, bsz, max_elements):
            sel = blocks[b0 : b0 + nsel]
            p = params[:, sel]
            # invalid slots: alpha 0 (folded into the alpha parameter, a small tensor)
            masked = (p[..., spec.alpha] * valid[:, sel]).unsqueeze(-1)
            p = torch.cat((p[..., : spec.alpha], masked, p[..., spec.alpha + 1 :]), dim=-1)
            xs, ys = X[sel][None, :, None], Y[sel][:, r0 : r0 + rows][None, :, None]
            alpha, t = footprint(spec, p, variant[:, sel], xs, ys, height, width, atlas)
            del xs, ys
            c0, c1 = stroke_colors(spec, p)
            color, logt = composite(alpha, t, c0, c1)  # (B, nsel, 3, rows, pw), (B, nsel, 1, rows, pw)
            del alpha, t
            if index is not None:
                sub = index
            else:
                sub = _pass_index(geom, block_list[b0 : b0 + nsel], r0, rows, params.device)
            color = color.permute(0, 2, 1, 3, 4).reshape(bsz, 3, -1)
            logt = logt.permute(0, 2, 1, 3, 4).reshape(bsz, 1, -1)
            if inplace:
                color_layer.index_add_(2, sub, color)
                logt_layer.index_add_(2, sub, logt)
            else:
                color_layer = color_layer.index_add(2, sub, color)
                logt_layer = logt_layer.index_add(2, sub, logt)
            del color, logt
        sl = (slice(None), slice(None), slice(geom.pad_y, geom.pad_y + height), slice(geom.pad_x, geom.pad_x + width))
        yield color_layer.view(bsz, 3, hp, wp)[sl], logt_layer.view(bsz, 1, hp, wp)[sl]
        del color_layer, logt_layer


def apply_layers(canvas: torch.Tensor, layers: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Composite layers (in order) over `canvas` (B,3,H,W)."""
    for color, logt in layers:
        canvas = color + torch.exp(logt) * canvas
    return canvas


def render_list(
    stroke_type: str,
    params: torch.Tensor,
    height: int,
    width: int,
    background: torch.Tensor | None = None,
    clip: torch.Tensor | None = None,
    variant: torch.Tensor | None = None,
    chunk: int = 32,
    atlas: torch.Tensor | None = None,
    rows: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Render an arbitrary ordered stroke list (B, N, D) on full canvases (B,3,H,W), or on the band of
    canvas rows [r0, r1) when `rows` is given (B,3,r1-r0,W: a pass's memory is chunk × band pixels).

    No block structure: every stroke is evaluated on the whole canvas, `chunk` strokes composited
    in parallel per pass. `background` is (B,3) colours or a (B,3,H,W) canvas to paint over
    (default white). `clip` (B, N, 4) normalized boxes x0, y0, x1, y1 (None: no clipping).
    This is the general path (process animation, single strokes, tests); painting uses
    `level_layers`, which is O(K·H·W) per level instead of O(N·H·W).
    """
    spec = spec_for(stroke_type)
    bsz, n, _ = params.shape
    device, dtype = params.device, params.dtype
    if atlas is None:
        atlas = texture_atlas(stroke_type, device)
    if background is None:
        background = torch.ones(bsz, 3, device=device, dtype=dtype)
    r0, r1 = rows if rows is not None else (0, height)
    if background.dim() == 2:
        canvas = background.to(dtype).reshape(bsz, 3, 1, 1).expand(bsz, 3, r1 - r0, width)
    else:
        canvas = background.to(dtype)
    if variant is None:
        variant = torch.zeros(bsz, n, dtype=torch.long, device=device)
    ys = torch.arange(r0, r1, device=device, dtype=dtype) + 0.5
    xs = torch.arange(width, device=device, dtype=dtype) + 0.5
    X, Y = xs.view(1, 1, width), ys.view(1, r1 - r0, 1)
    for s in range(0, n, chunk):
        p = params[:, s : s + chunk]
        alpha, t = footprint(spec, p, variant[:, s : s + chunk], X, Y, height, width, atlas)
        if clip is not None:
            box = clip[:, s : s + chunk]
            col, row = xs.view(1, 1, 1, width), ys.view(1, 1, r1 - r0, 1)
            inside_x = (col >= box[..., 0, None, None] * width) & (col < box[..., 2, None, None] * width)
            inside_y = (row >= box[..., 1, None, None] * height) & (row < box[..., 3, None, None] * height)
            alpha = alpha * (inside_x & inside_y).to(dtype)
        c0, c1 = stroke_colors(spec, p)
        color, logt = composite(alpha, t, c0, c1)
        canvas = color + torch.exp(logt) * canvas
    return canvas
