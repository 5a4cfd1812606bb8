"""The painter within --memory-per-worker: renders split into passes give the same pixels, and what
cannot fit is refused with one line that names the flag."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_paint_renderer import _random_set

from vidstyle.errors import ResourceError
from vidstyle.methods.paint import memory
from vidstyle.methods.paint.brushes import texture_atlas
from vidstyle.methods.paint.painting import Painter
from vidstyle.methods.paint.renderer import _passes
from vidstyle.methods.paint.settings import PaintSettings
from vidstyle.methods.paint.stroke_tensors import render_levels, render_sets, slots, stack_levels


@pytest.mark.parametrize("kind", ["oil", "bezier"])
def test_render_in_passes_equals_one_pass(kind):
    """Blocks at a time: the same canvas bit for bit; rows of one block at a time: within float
    rounding (the compositing matmul is another kernel for a narrower pass)."""
    strokes = _random_set(kind, 40, 56)
    levels = stack_levels([strokes])
    bg = torch.from_numpy(strokes.background)[None]
    atlas = texture_atlas(kind)
    with torch.no_grad():
        whole = render_levels(kind, levels, bg, 40, 56, strokes.margin, atlas)
        for max_elements in (2000, 300):  # whole blocks
            parts = render_levels(kind, levels, bg, 40, 56, strokes.margin, atlas, max_elements)
            assert torch.equal(parts, whole), max_elements
        for max_elements in (60, 1):  # rows
            parts = render_levels(kind, levels, bg, 40, 56, strokes.margin, atlas, max_elements)
            assert (parts - whole).abs().max() < 1e-6, max_elements


def test_passes_cover_every_patch_row_once():
    for max_elements in (None, 10**9, 5 * 3 * 20 * 2, 3 * 20 * 4, 1):
        covered = np.zeros((5, 7), int)  # blocks × patch rows
        for b0, n, r0, rows in _passes(5, 3, 7, 20, 1, max_elements):
            covered[b0 : b0 + n, r0 : r0 + rows] += 1
            assert max_elements is None or n * rows * 3 * 20 <= max(max_elements, 3 * 20)
        assert (covered == 1).all()


def test_render_sets_within_a_small_budget_matches_the_default():
    strokes = _random_set("rect", 48, 64, seed=4)
    small = render_sets([strokes], 96, 128, memory_per_worker=memory.in_use(torch.device("cpu")) + 2**20)
    plain = render_sets([strokes], 96, 128)
    assert np.abs(small[0].astype(int) - plain[0]).max() <= 1 and (small[0] != plain[0]).mean() < 1e-3


def test_render_that_cannot_fit_names_the_flag():
    strokes = _random_set("oil", 40, 40, seed=5)
    with pytest.raises(ResourceError, match="--memory-per-worker") as info:
        render_sets([strokes], 400, 400, memory_per_worker="1MiB")
    assert "\n" not in str(info.value) and "400x400" in str(info.value)


def test_fit_that_cannot_fit_is_refused_before_it_starts():
    settings = PaintSettings(strokes=40, canvas=64, iterations=1, refine_iterations=0, memory_per_worker="1MiB")
    painter = Painter(settings.validate())
    targets = torch.rand(1, 3, 36, 64)
    with pytest.raises(ResourceError, match=r"stroke fit on a 64x36 canvas.*--memory-per-worker"):
        painter.paint_tensors(targets)


def test_fit_estimate_grows_with_canvas_and_strokes():
    settings = PaintSettings(strokes=200, canvas=64, iterations=1, refine_iterations=1).validate()
    levels, bg, _ = Painter(settings).paint_tensors(torch.rand(1, 3, 36, 64))
    plan = slots(levels)
    small = memory.fit_bytes(plan, 1, 36, 64, settings.margin)
    assert memory.fit_bytes(plan, 1, 72, 128, settings.margin) > small
    assert memory.fit_bytes(plan, 2, 36, 64, settings.margin) > small
    assert memory.fit_bytes(plan, 1, 36, 64, settings.margin, network=True) > small
    assert bg.shape == (1, 3)


@pytest.mark.parametrize("kind", ["oil", "bezier"])
def test_painting_process_in_passes_gives_the_same_frames(kind):
    """Fewer strokes per pass, then bands of rows: every frame of the animation within float rounding."""
    from vidstyle.methods.paint.export import painting_process

    strokes = _random_set(kind, 40, 56, seed=6)
    whole = list(painting_process(strokes, strokes_per_frame=9))
    for max_elements in (40 * 56 * 3, 56 * 7, 1):  # 3 strokes a pass; 7 rows; one row
        parts = list(painting_process(strokes, strokes_per_frame=9, max_elements=max_elements))
        assert len(parts) == len(whole)
        assert max(np.abs(a.astype(int) - b).max() for a, b in zip(parts, whole)) <= 1, max_elements


def test_process_elements_fit_the_budget_or_refuse():
    cpu = torch.device("cpu")
    held = memory.in_use(cpu)
    fixed = memory.RENDER_PIXEL_BYTES * 1080 * 1920
    elements = memory.process_elements(1080, 1920, cpu, held + fixed + 2**24)
    assert 1920 <= elements <= 2**24 // memory.FOOTPRINT_BYTES
    with pytest.raises(ResourceError, match="--memory-per-worker"):
        memory.process_elements(1080, 1920, cpu, "1MiB")
