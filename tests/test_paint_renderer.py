"""Stroke renderer, compositing, Sinkhorn: geometry from moments, gradients, equivalences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidstyle.methods.paint.brushes import VARIANTS, texture_atlas, texture_bank
from vidstyle.methods.paint.layouts import OIL, spec_for
from vidstyle.methods.paint.renderer import MAX_ALPHA, footprint, render_list, stroke_colors
from vidstyle.methods.paint.sinkhorn import image_sinkhorn
from vidstyle.methods.paint.stroke_tensors import render_levels, render_sets, stack_levels
from vidstyle.methods.paint.strokes import StrokeLevel, StrokeSet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


H, W = 64, 80


def _stroke(kind: str, x: float, y: float, length: float, thick: float, angle: float, color=(0.0, 0.0, 0.0)):
    """One stroke of `kind` centred at (x, y) (normalized), length/thickness in long-side units."""
    spec = spec_for(kind)
    p = [0.0] * spec.dim
    if spec.radii is not None:  # a straight Bézier
        dx = math.cos(angle) * length / 2 * max(H, W) / W
        dy = math.sin(angle) * length / 2 * max(H, W) / H
        for (ix, iy), (px, py) in zip(spec.points, ((x - dx, y - dy), (x, y), (x + dx, y + dy))):
            p[ix], p[iy] = px, py
        p[spec.radii] = [thick / 2, thick / 2]
    else:
        ix, iy = spec.centre
        p[ix], p[iy], p[spec.length], p[spec.thickness], p[spec.angle] = x, y, length, thick, angle
    p[spec.color0] = list(color)
    p[spec.color1] = list(color)
    p[spec.alpha] = 1.0
    return p


def _alpha_map(kind: str, params) -> np.ndarray:
    p = torch.tensor(params, dtype=torch.float32).view(1, 1, -1)
    canvas = render_list(kind, p, H, W, background=torch.ones(1, 3))
    return (1.0 - canvas[0, 0]).numpy()


def _moments(a: np.ndarray):
    ys, xs = np.mgrid[0:a.shape[0], 0:a.shape[1]] + 0.5
    m = a.sum()
    cx, cy = (a * xs).sum() / m, (a * ys).sum() / m
    cxx = (a * (xs - cx) ** 2).sum() / m
    cyy = (a * (ys - cy) ** 2).sum() / m
    cxy = (a * (xs - cx) * (ys - cy)).sum() / m
    ev, evec = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
    major = evec[:, 1]
    return cx, cy, math.atan2(major[1], major[0]), math.sqrt(ev[1]), math.sqrt(ev[0])


def _angle_diff(a: float, b: float) -> float:
    d = (a - b) % math.pi
    return min(d, math.pi - d)


@pytest.mark.parametrize("kind", ["oil", "rect", "bezier"])
def test_single_stroke_renders_where_its_parameters_say(kind):
    x, y, length, thick, angle = 0.45, 0.55, 0.5, 0.12, 0.6
    a = _alpha_map(kind, _stroke(kind, x, y, length, thick, angle))
    assert a.max() > 0.9 and a.min() >= 0.0
    cx, cy, theta, sd_major, sd_minor = _moments(a)
    assert abs(cx - x * W) < 1.5 and abs(cy - y * H) < 1.5
    assert _angle_diff(theta, angle) < 0.08
    # a uniform bar of length L has std L/√12 along it; soft ends and caps shrink/grow that a little
    long_px = length * max(H, W)
    assert 0.7 < sd_major / (long_px / math.sqrt(12)) < 1.2
    assert sd_minor < 0.5 * sd_major
    # nothing far from the stroke
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    far = np.hypot(xs - x * W, ys - y * H) > 0.75 * long_px
    assert a[far].max() < 1e-6


def test_colour_gradient_runs_from_head_to_tail():
    p = _stroke("oil", 0.5, 0.5, 0.7, 0.2, 0.0)
    p[OIL.color0] = [1.0, 0.0, 0.0]  # head red
    p[OIL.color1] = [0.0, 0.0, 1.0]  # tail blue
    img = render_list("oil", torch.tensor(p).view(1, 1, -1), H, W, background=torch.ones(1, 3))[0]
    row = img[:, H // 2]
    left, right = int(W * 0.5 - 0.25 * W), int(W * 0.5 + 0.25 * W)
    assert row[0, left] > row[2, left] + 0.3
    assert row[2, right] > row[0, right] + 0.3


def test_angle_rotates_the_footprint():
    a0 = _alpha_map("oil", _stroke("oil", 0.5, 0.5, 0.5, 0.1, 0.0))
    a1 = _alpha_map("oil", _stroke("oil", 0.5, 0.5, 0.5, 0.1, math.pi / 2))
    assert _moments(a0)[3] > 2 * _moments(a0)[4]
    assert _angle_diff(_moments(a1)[2], math.pi / 2) < 0.05


def test_sinkhorn_gives_position_gradient_without_overlap():
    target = torch.ones(1, 3, H, W)
    target[..., 20:40, 56:72] = 0.0  # dark patch on the right
    p = torch.tensor(_stroke("rect", 0.2, 0.47, 0.15, 0.15, 0.0), requires_grad=True)
    canvas = render_list("rect", p.view(1, 1, -1), H, W, background=torch.ones(1, 3))
    assert ((1 - canvas[0, 0]) * (1 - target[0, 0])).sum() == 0  # no overlap
    ot = image_sinkhorn(canvas, target, size=24).sum()
    (g_ot,) = torch.autograd.grad(ot, p)
    assert g_ot[0] < 0  # moving right (toward the patch) lowers the transport cost
    assert g_ot[0].abs() > 1e-4


def _reference_loop(kind, params, variant):
    """Each stroke over the canvas, one at a time: canvas ← α·c + (1 − α)·canvas."""
    spec = spec_for(kind)
    atlas = texture_atlas(kind)
    canvas = torch.ones(1, 3, H, W)
    ys = torch.arange(H, dtype=torch.float32) + 0.5
    xs = torch.arange(W, dtype=torch.float32) + 0.5
    for i in range(params.shape[1]):
        p = params[:, i:i + 1]
        alpha, t = footprint(spec, p, variant[:, i:i + 1], xs.view(1, 1, W), ys.view(1, H, 1), H, W, atlas)
        a = alpha[:, 0] * MAX_ALPHA
        c0, c1 = stroke_colors(spec, p)
        color = c0[:, 0, :, None, None]
        if c1 is not None:
            color = color + t[:, 0, None] * (c1 - c0)[:, 0, :, None, None]
        canvas = a[:, None] * color + (1 - a[:, None]) * canvas
    return canvas


def _random_params(kind, n, gen):
    spec = spec_for(kind)
    p = torch.rand(1, n, spec.dim, generator=gen)
    if kind == "bezier":
        p[..., spec.radii] = 0.02 + 0.06 * p[..., spec.radii]
    else:
        p[..., spec.length] = 0.1 + 0.4 * p[..., spec.length]
        p[..., spec.thickness] = 0.05 + 0.2 * p[..., spec.thickness]
        p[..., spec.angle] = (p[..., spec.angle] - 0.5) * 6
    p[..., spec.alpha] = 0.4 + 0.6 * p[..., spec.alpha]
    return p


@pytest.mark.parametrize("kind", ["oil", "rect", "bezier"])
def test_parallel_compositing_equals_sequential_loop(kind):
    gen = torch.Generator().manual_seed(3)
    params = _random_params(kind, 12, gen)
    variant = torch.randint(0, VARIANTS, (1, 12), generator=gen)
    parallel = render_list(kind, params, H, W, background=torch.ones(1, 3), variant=variant, chunk=12)
    sequential = _reference_loop(kind, params, variant)
    assert torch.allclose(parallel, sequential, atol=2e-5)


def _random_set(kind: str, height: int, width: int, grids=(1, 2, 3), slots=3, seed=0, margin=0.3) -> StrokeSet:
    """A structured stroke set with strokes spread over each block (some slots invalid)."""
    rng = np.random.RandomState(seed)
    spec = spec_for(kind)
    levels = []
    for m in grids:
        p = rng.rand(m * m, slots, spec.dim).astype(np.float32)
        r, c = np.divmod(np.arange(m * m), m)
        for ix, iy in spec.points:
            p[..., ix] = (c[:, None] + rng.rand(m * m, slots)) / m
            p[..., iy] = (r[:, None] + rng.rand(m * m, slots)) / m
        if kind == "bezier":
            p[..., spec.radii] = (0.05 + 0.1 * p[..., spec.radii]) / m
        else:
            p[..., spec.length] = (0.3 + 0.8 * p[..., spec.length]) / m
            p[..., spec.thickness] = (0.1 + 0.3 * p[..., spec.thickness]) / m
            p[..., spec.angle] = (p[..., spec.angle] - 0.5) * 6
        p[..., spec.alpha] = 0.5 + 0.5 * p[..., spec.alpha]
        valid = rng.rand(m * m, slots) > 0.2
        variant = rng.randint(0, VARIANTS, (m * m, slots)).astype(np.int16)
        levels.append(StrokeLevel(m, p, valid, variant))
    return StrokeSet(kind, height, width, np.array([0.9, 0.85, 0.7], np.float32), margin, levels)


@pytest.mark.parametrize("kind", ["oil", "bezier"])
def test_block_renderer_equals_plain_list_in_paint_order(kind):
    """Patches, parity groups and clip boxes reproduce the plain ordered-list composite."""
    strokes = _random_set(kind, 48, 72)
    atlas = texture_atlas(kind)
    bg = torch.from_numpy(strokes.background)[None]
    blocks = render_levels(kind, stack_levels([strokes]), bg, 48, 72, strokes.margin, atlas)
    o = strokes.ordered()
    plain = render_list(
        kind,
        torch.from_numpy(o["params"])[None],
        48,
        72,
        background=bg,
        clip=torch.from_numpy(o["clip"])[None],
        variant=torch.from_numpy(o["variant"])[None],
    )
    assert torch.allclose(blocks, plain, atol=1e-4)


def test_render_at_twice_the_size_has_the_same_structure():
    strokes = _random_set("oil", 48, 64, grids=(1, 2, 4), slots=4, seed=1)
    small = render_sets([strokes], 48, 64)[0].astype(np.float32) / 255
    big = render_sets([strokes], 96, 128)[0].astype(np.float32) / 255
    down = F.avg_pool2d(torch.from_numpy(big).permute(2, 0, 1)[None], 2)[0].permute(1, 2, 0).numpy()
    assert np.abs(down - small).mean() < 0.02
    assert np.corrcoef(down.ravel(), small.ravel())[0, 1] > 0.97


def test_batch_renders_like_single_frames():
    a, b = _random_set("rect", 40, 40, seed=2), _random_set("rect", 40, 40, seed=3)
    both = render_sets([a, b])
    assert np.array_equal(both[0], render_sets([a])[0])
    assert np.array_equal(both[1], render_sets([b])[0])


def test_textures_are_deterministic_variants_with_soft_edges():
    for kind in ("oil", "rect", "bezier"):
        bank = texture_bank(kind)
        assert bank.shape[0] == VARIANTS >= 3
        assert np.array_equal(bank, texture_bank.__wrapped__(kind))
        assert all(np.abs(bank[0] - bank[k]).mean() > 1e-3 for k in range(1, VARIANTS))
        assert bank.min() >= 0 and bank.max() <= 1
        mid = bank[0][bank.shape[1] // 2]
        assert 0 < np.mean((mid > 0.05) & (mid < 0.95)) < 0.6 or kind == "bezier"


def test_sinkhorn_is_zero_on_itself_and_grows_with_shift():
    img = torch.ones(1, 3, 48, 48)
    img[..., 10:22, 12:24] = 0.1
    img[..., 30:40, 30:36, ] = 0.5
    values = [float(image_sinkhorn(img, torch.roll(img, s, dims=-1), size=24)) for s in (0, 2, 4, 8, 16)]
    assert abs(values[0]) < 1e-7
    assert all(b > a for a, b in zip(values, values[1:]))
    per_block = image_sinkhorn(img, torch.roll(img, 4, dims=-1), size=12, blocks=2)
    assert per_block.shape == (1,) and float(per_block) > 0
