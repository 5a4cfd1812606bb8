"""Spatial control (seed 004) in the losses and the Gatys method: guided Grams, per-layer masks, kept regions.

Tiny images and a narrow random VGG: these check the maths against hand-computed values and the
method's behaviour (a kept region stays the input, a styled region changes), not the look.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gatys_fixtures import LAYERS, settings, smooth_image, stripes

from vidstyle.features.vgg import random_extractor
from vidstyle.losses import gram_matrix, guided_gram, mask_at, region_style_loss, style_loss
from vidstyle.methods.base import FrameContext, Regions, composite_kept
from vidstyle.methods.gatys.loop import GatysEngine
from vidstyle.methods.gatys.stylizer import GatysStylizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_guided_gram_of_a_mask_of_ones_is_the_plain_gram():
    features = torch.randn(2, 5, 7, 9)
    ones = torch.ones(2, 1, 7, 9)
    assert torch.allclose(guided_gram(features, ones), gram_matrix(features), atol=1e-6)


def test_guided_gram_by_hand():
    """Two pixels weighted 1 and 0.5: Σ m f fᵀ / (C Σ m)."""
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C=2, pixels (1,3) and (2,4)
    mask = torch.tensor([1.0, 0.5]).view(1, 1, 1, 2)
    f1, f2 = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 4.0])
    expected = (torch.outer(f1, f1) + 0.5 * torch.outer(f2, f2)) / (2 * 1.5)
    assert torch.allclose(guided_gram(features, mask)[0], expected)


def test_a_regions_gram_ignores_features_outside_it():
    features = torch.randn(1, 4, 6, 6)
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., :, :3] = 1
    changed = features.clone()
    changed[..., :, 3:] = torch.randn(1, 4, 6, 3) * 10
    assert torch.allclose(guided_gram(features, mask), guided_gram(changed, mask), atol=1e-6)
    assert torch.allclose(guided_gram(features, mask), gram_matrix(features[..., :, :3]), atol=1e-6)


def test_masks_follow_vgg_pooling_for_odd_sizes():
    """65×33 → 32×16 → 16×8: each cell is the mean of the 2×2 block VGG pools (odd last row/column dropped)."""
    mask = torch.rand(1, 1, 33, 65)
    half = mask_at(mask, 16, 32)
    assert half.shape[-2:] == (16, 32)
    assert torch.allclose(half[0, 0, 3, 5], mask[0, 0, 6:8, 10:12].mean())
    quarter = mask_at(mask, 8, 16)
    assert torch.allclose(quarter[0, 0, 1, 2], mask[0, 0, 4:8, 8:12].mean())
    extractor = random_extractor(("conv1_1", "conv2_1", "conv3_1"), seed=0)
    feats = extractor(torch.rand(1, 3, 33, 65))
    for layer, f in feats.items():
        assert mask_at(mask, *f.shape[-2:]).shape[-2:] == f.shape[-2:], layer


def test_region_style_loss_with_one_full_region_is_the_style_loss():
    feats = {"a": torch.randn(2, 3, 8, 8), "b": torch.randn(2, 5, 4, 4)}
    targets = {"a": torch.randn(3, 3), "b": torch.randn(5, 5)}
    plain = style_loss(feats, targets, {"a": 1.0, "b": 0.5})
    guided = region_style_loss(feats, [(targets, torch.ones(2, 1, 8, 8))], {"a": 1.0, "b": 0.5})
    assert torch.allclose(plain, guided, atol=1e-5)


def test_an_empty_region_adds_nothing():
    feats = {"a": torch.randn(1, 3, 8, 8)}
    targets = {"a": torch.randn(3, 3)}
    half = torch.zeros(1, 1, 8, 8)
    half[..., :4] = 1
    alone = region_style_loss(feats, [(targets, half)])
    with_empty = region_style_loss(feats, [(targets, half), ({"a": torch.randn(3, 3)}, torch.zeros(1, 1, 8, 8))])
    assert torch.allclose(alone, with_empty)


def test_composite_kept_blends_by_the_mask():
    image = np.zeros((2, 2, 3), np.uint8)
    frame = np.full((2, 2, 3), 200, np.uint8)
    kept = np.array([[1.0, 0.0], [0.5, 0.25]], np.float32)
    out = composite_kept(image, frame, kept)
    assert out[0, 0, 0] == 200 and out[0, 1, 0] == 0 and out[1, 0, 0] == 100 and out[1, 1, 0] == 50
    assert composite_kept(image, frame, None) is image


def half_mask(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    mask[:, : w // 2] = 1.0
    return mask


def region_stylizer(styles, regions: Regions, **overrides) -> GatysStylizer:
    extractor = random_extractor(LAYERS, seed=0)
    engine = GatysEngine(
        settings(**{"iterations": 15, **overrides}), styles, (), "cpu", extractor, use_disk_cache=False, regions=regions
    )
    return GatysStylizer(engine)


def test_a_kept_region_stays_the_content_while_the_other_changes():
    frame = smooth_image(24, 32, seed=3)
    mask = half_mask(24, 32)
    stylizer = region_stylizer([], Regions(keep_inside=True, outside=[stripes(32, 32)], outside_weights=[1.0]))
    result = stylizer.stylize(FrameContext(0, frame, region=mask), None)
    diff = np.abs(result.image.astype(int) - frame.astype(int))
    assert diff[:, :16].max() <= 1  # kept: the input itself
    assert diff[:, 16:].mean() > 5  # styled: moved away from the content
    raw = np.rint(result.state.previous * 255).astype(int)
    assert np.abs(raw[:, :12] - frame[:, :12].astype(int)).mean() < 0.5 * diff[:, 20:].mean()  # held while optimizing
    assert "keep" in result.stats


def test_each_region_moves_toward_its_own_style():
    """Stripes inside, a smooth field outside: each region's guided Gram ends nearer its own style than the other."""
    frame = smooth_image(24, 32, seed=6)
    mask = half_mask(24, 32)
    inside_style, outside_style = stripes(32, 32), smooth_image(32, 32, seed=9)
    regions = Regions(outside=[outside_style], outside_weights=[1.0])
    stylizer = region_stylizer([inside_style], regions, content_weight=0.0, tv_weight=0.0, iterations=40)
    result = stylizer.stylize(FrameContext(0, frame, region=mask), None)
    engine = stylizer.engine
    own = {"inside": engine.grams(32, "inside"), "outside": engine.grams(32, "outside")}
    x = torch.from_numpy(result.image).permute(2, 0, 1)[None].float() / 255
    feats = engine.features(x)
    m = torch.from_numpy(mask)[None, None]
    for name, region_mask, other in (("inside", m, "outside"), ("outside", 1 - m, "inside")):
        loss_own = region_style_loss(feats, [(own[name], region_mask)])
        loss_other = region_style_loss(feats, [(own[other], region_mask)])
        assert float(loss_own) < float(loss_other), name


def test_the_temporal_term_does_not_act_in_a_kept_region():
    frame = smooth_image(24, 32, seed=4)
    mask = half_mask(24, 32)
    regions = Regions(keep_inside=True, outside=[stripes(32, 32)], outside_weights=[1.0])
    stylizer = region_stylizer([], regions, temporal_weight=1e4)
    first = stylizer.stylize(FrameContext(0, frame, region=mask), None)
    moved = frame.copy()
    moved[:, :16] = 255 - moved[:, :16]  # the kept region's input changes: it must follow the input, not the past
    flow = np.zeros((24, 32, 2), np.float32)
    ctx = FrameContext(1, moved, flow=flow, mask=np.ones((24, 32), np.float32), region=mask)
    second = stylizer.stylize(ctx, first.state)
    assert np.abs(second.image[:, :16].astype(int) - moved[:, :16].astype(int)).max() <= 1
    raw = np.rint(second.state.previous * 255).astype(int)
    assert np.abs(raw[:, :10] - moved[:, :10].astype(int)).mean() < 20


def test_spatial_control_needs_each_frames_mask():
    stylizer = region_stylizer([stripes(32, 32)], Regions(outside=[], outside_weights=[]))
    with pytest.raises(ValueError, match="region mask"):
        stylizer.stylize(FrameContext(0, smooth_image(24, 32, seed=1)), None)


# ----------------------------------------------------------------------------- the painter


def paint_settings(**overrides):
    from vidstyle.methods.paint.settings import PaintSettings

    base = dict(
        strokes=12,
        levels=2,
        iterations=8,
        canvas=48,
        sinkhorn_size=12,
        later_iterations=4,
        style_iterations=10,
        style_layers=("conv1_1", "conv2_1"),
        style_size=48,
        style_lr=0.05,
        weights="random",
    )
    base.update(overrides)
    return PaintSettings(**base).validate()


def test_the_painter_keeps_a_region_and_styles_the_other():
    from vidstyle.methods.paint.stylizer import PaintStylizer

    frame = smooth_image(36, 48, seed=2)
    mask = half_mask(36, 48)
    extractor = random_extractor(("conv1_1", "conv2_1"), seed=0)
    regions = Regions(keep_inside=True, outside=[stripes(32, 32)], outside_weights=[1.0])
    stylizer = PaintStylizer(paint_settings(), [], extractor=extractor, regions=regions)
    first = stylizer.stylize(FrameContext(0, frame, region=mask), None)
    diff = np.abs(first.image.astype(int) - frame.astype(int))
    assert diff[:, :24].max() <= 1 and diff[:, 24:].mean() > 3
    assert "style_loss" in first.stats
    flow = np.zeros((36, 48, 2), np.float32)
    ctx = FrameContext(1, frame, flow=flow, mask=np.ones((36, 48), np.float32), region=mask)
    second = stylizer.stylize(ctx, first.state)
    assert np.abs(second.image[:, :24].astype(int) - frame[:, :24].astype(int)).max() <= 1


def test_the_painters_style_objective_follows_regions():
    from vidstyle.methods.paint.style import StyleObjective

    extractor = random_extractor(("conv1_1",), seed=0)
    grams = {"conv1_1": torch.rand(8, 8)}
    objective = StyleObjective(extractor, grams, 1.0, 0.0, 0.0, outside={"conv1_1": torch.rand(8, 8)})
    canvas = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="region mask"):
        objective.set_content(canvas)
    ones = torch.ones(1, 1, 16, 16)
    full_inside = objective.set_content(canvas, ones).style_loss(canvas)
    plain = StyleObjective(extractor, grams, 1.0, 0.0, 0.0).set_content(canvas).style_loss(canvas)
    assert torch.allclose(full_inside, plain, rtol=1e-5)


def test_a_kept_subject_that_moves_leaves_no_ghost_behind():
    """Where the kept subject was in frame t−1 and background is in frame t, the frame starts from the
    content and is not held to the past: the subject's old pixels must not linger there."""
    background = np.full((24, 32, 3), 40, np.uint8)
    first, second = background.copy(), background.copy()
    first[6:18, 4:12] = 230  # a bright subject, kept...
    second[6:18, 18:26] = 230  # ...that walks to the right over a static background
    masks = []
    for frame in (first, second):
        mask = np.zeros((24, 32), np.float32)
        mask[frame[..., 0] > 128] = 1.0
        masks.append(mask)
    regions = Regions(keep_inside=True, outside=[stripes(32, 32)], outside_weights=[1.0])
    stylizer = region_stylizer([], regions, temporal_weight=1e4, iterations=10, later_iterations=10)
    one = stylizer.stylize(FrameContext(0, first, region=masks[0]), None)
    flow = np.zeros((24, 32, 2), np.float32)  # the background does not move
    ctx = FrameContext(1, second, flow=flow, mask=np.ones((24, 32), np.float32), region=masks[1])
    two = stylizer.stylize(ctx, one.state)
    old_place = two.image[6:18, 4:12].astype(float)
    assert np.abs(old_place - 230).mean() > 2 * np.abs(old_place - 40).mean()
