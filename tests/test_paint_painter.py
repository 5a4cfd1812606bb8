"""Painter, video warm start, exports, settings and the FrameStylizer wrapper (tiny sizes)."""

from __future__ import annotations

import pickle
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from vidstyle.errors import ConfigError, InputError
from vidstyle.events import IterationProgress
from vidstyle.methods.base import FrameContext, FrameStylizer
from vidstyle.methods.paint.export import load_strokes_json, painting_process, save_strokes_json, strokes_from_state
from vidstyle.methods.paint.layouts import spec_for
from vidstyle.methods.paint.motion import forward_positions, move_strokes
from vidstyle.methods.paint.painting import Painter
from vidstyle.methods.paint.settings import PaintSettings, level_plan
from vidstyle.methods.paint.stroke_tensors import render_sets, stack_levels
from vidstyle.methods.paint.stylizer import PaintStylizer
from vidstyle.methods.paint.svg import strokes_to_svg

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def _synthetic(h=48, w=64, shift=(0, 0)) -> np.ndarray:
    """Sky, ground, a red disc and a dark bar; `shift` moves the disc and bar by (dx, dy) px."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = (120, 170, 230)
    img[h // 2:] = (90, 140, 60)
    ys, xs = np.mgrid[0:h, 0:w]
    dx, dy = shift
    disc = (xs - 20 - dx) ** 2 + (ys - 18 - dy) ** 2 < 9**2
    img[disc] = (220, 40, 30)
    bar = (abs(xs - 44 - dx) < 4) & (abs(ys - 30 - dy) < 12)
    img[bar] = (30, 30, 40)
    return img


def _fast(**kw) -> PaintSettings:
    base = dict(strokes=40, levels=3, iterations=25, canvas=64, sinkhorn_size=12, later_iterations=6)
    base.update(kw)
    return PaintSettings(**base)


@pytest.fixture(scope="module")
def painted():
    target = _synthetic()
    sets, stats = Painter(_fast()).paint([target])
    return target, sets[0], stats


def test_painting_raises_psnr_over_blank_canvas(painted):
    target, strokes, stats = painted
    assert strokes.n_strokes == 40
    out = render_sets([strokes])[0]
    blank = np.broadcast_to((strokes.background * 255).round().astype(np.uint8), target.shape)
    assert out.shape == target.shape
    assert _psnr(out, target) > _psnr(blank, target) + 6.0
    assert stats["seconds"] > 0


@pytest.mark.parametrize("kind", ["rect", "bezier"])
def test_other_stroke_types_paint(kind):
    target = _synthetic(32, 40)
    sets, _ = Painter(_fast(stroke_type=kind, strokes=20, levels=2, iterations=15, canvas=40)).paint([target])
    out = render_sets(sets)[0]
    blank = np.broadcast_to((sets[0].background * 255).round().astype(np.uint8), target.shape)
    assert _psnr(out, target) > _psnr(blank, target) + 3.0


def test_painted_stats_count_every_optimizer_step(painted):
    _, _, stats = painted
    settings = _fast()
    levels = len(level_plan(settings))
    assert stats["levels"] == levels and stats["level_iterations"] == settings.iterations
    assert stats["iterations"] == levels * settings.iterations + settings.refine_iterations


def test_level_plan_spends_the_budget_exactly():
    for n in (1, 7, 55, 500, 2000):
        plan = level_plan(PaintSettings(strokes=n))
        assert sum(k for _, k in plan) == n
        assert [m for m, _ in plan] == sorted(m for m, _ in plan)


def test_forward_positions_invert_backward_flow():
    # content moves by d = (+3.5, −2): frame_t(x) = frame_{t−1}(x − d), so b(x) = −d everywhere
    flow = torch.zeros(1, 2, 40, 50)
    flow[:, 0], flow[:, 1] = -3.5, 2.0
    px, py = torch.tensor([[10.0, 25.0]]), torch.tensor([[20.0, 5.0]])
    qx, qy = forward_positions(flow, px, py)
    assert torch.allclose(qx, px + 3.5, atol=1e-4) and torch.allclose(qy, py - 2.0, atol=1e-4)


def test_moved_strokes_follow_a_constant_shift(painted):
    _, strokes, _ = painted
    h, w = strokes.height, strokes.width
    levels = stack_levels([strokes])
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0], flow[:, 1] = -2.0, -1.0  # content moves right 2 px, down 1 px
    moved, reseed = move_strokes(spec_for("oil"), levels, flow, None, strokes.margin)
    for before, after, r in zip(levels, moved, reseed):
        keep = before.valid > 0.5
        dx = (after.params[..., 0] - before.params[..., 0])[keep] * w
        dy = (after.params[..., 1] - before.params[..., 1])[keep] * h
        assert torch.allclose(dx, torch.full_like(dx, 2.0), atol=1e-3)
        assert torch.allclose(dy, torch.full_like(dy, 1.0), atol=1e-3)
        assert torch.allclose(after.params[..., 4], before.params[..., 4], atol=1e-4)  # no rotation
        # strokes leaving their frame/block are marked for reseeding, only valid ones
        assert not bool((r & ~keep).any())


def test_untrusted_regions_and_leaving_the_frame_reseed(painted):
    _, strokes, _ = painted
    h, w = strokes.height, strokes.width
    levels = stack_levels([strokes])
    flow = torch.zeros(1, 2, h, w)
    mask = torch.ones(1, 1, h, w)
    mask[..., :, : w // 2] = 0.0  # left half untrusted
    _, reseed = move_strokes(spec_for("oil"), levels, flow, mask, strokes.margin)
    for lv, r in zip(levels, reseed):
        left = (lv.params[..., 0] < 0.45) & (lv.valid > 0.5)
        right = (lv.params[..., 0] > 0.55) & (lv.valid > 0.5)
        assert bool(r[left].all()) and not bool(r[right].any())
    flow[:, 0] = -1000.0  # everything moves 1000 px right: out of the frame
    _, reseed = move_strokes(spec_for("oil"), levels, flow, None, strokes.margin)
    assert all(bool((r == (lv.valid > 0.5)).all()) for lv, r in zip(levels, reseed))


def test_stylizer_warm_start_tracks_motion():
    settings = _fast()
    stylizer = PaintStylizer(settings)
    assert isinstance(stylizer, FrameStylizer)
    f0 = _synthetic()
    r0 = stylizer.stylize(FrameContext(0, f0), None)
    assert r0.image.shape == f0.shape and r0.image.dtype == np.uint8
    pickle.loads(pickle.dumps(r0.state))
    f1 = _synthetic(shift=(3, 0))
    flow = np.zeros(f0.shape[:2] + (2,), np.float32)
    flow[..., 0] = -3.0
    r1 = stylizer.stylize(FrameContext(1, f1, flow=flow, mask=np.ones(f0.shape[:2], np.float32)), r0.state)
    assert r1.stats["warm"] == 1.0 and r1.stats["iterations"] == settings.later_iterations
    assert _psnr(r1.image, f1) > _psnr(r0.image, f1)  # followed the motion
    s0, s1 = strokes_from_state(r0.state), strokes_from_state(r1.state)
    assert s1.n_strokes == s0.n_strokes
    # a shot cut (no flow) starts fresh
    r2 = stylizer.stylize(FrameContext(2, f1), r1.state)
    assert r2.stats["warm"] == 0.0
    # a batch of independent frames
    both = stylizer.stylize_batch([(FrameContext(0, f, iterations=5), None) for f in (f0, f1)])
    assert len(both) == 2 and both[1].image.shape == f1.shape


def test_json_round_trip(painted, tmp_path):
    _, strokes, _ = painted
    path = tmp_path / "strokes.json"
    save_strokes_json(path, [strokes, strokes])
    frames = load_strokes_json(path)
    assert len(frames) == 2
    back = frames[0]
    assert back.n_strokes == strokes.n_strokes and (back.height, back.width) == (strokes.height, strokes.width)
    a, b = strokes.ordered(), back.ordered()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert np.array_equal(render_sets([strokes])[0], render_sets([back])[0])
    with pytest.raises(InputError):
        load_strokes_json(tmp_path / "missing.json")


@pytest.mark.parametrize("kind", ["oil", "rect", "bezier"])
def test_svg_parses_with_one_element_per_stroke(kind, painted):
    from test_paint_renderer import _random_set

    strokes = painted[1] if kind == "oil" else _random_set(kind, 48, 64)
    root = ET.fromstring(strokes_to_svg(strokes))
    svg = "{http://www.w3.org/2000/svg}"
    elements = [e for e in root.iter() if e.get("class") == "stroke"]
    assert len(elements) == strokes.n_strokes
    assert root.get("width") == str(strokes.width)
    textures = [e for e in root.iter(svg + "image") if e.get("class") != "stroke"]
    assert 1 <= len(textures) <= 4  # the brush textures, embedded once
    ramps = len(root.findall(f".//{svg}linearGradient"))
    bitmaps = sum(e.tag == svg + "image" for e in elements)  # Bézier strokes bent too tightly for pieces
    if kind == "rect":
        assert ramps == 0 and bitmaps == 0
    else:
        assert ramps + bitmaps == strokes.n_strokes


def _matrix(text: str) -> np.ndarray:
    a, b, c, d, e, f = (float(v) for v in text[len("matrix("):-1].split(","))
    return np.array([[a, c, e], [b, d, f]])


def test_svg_places_texel_centres_where_the_renderer_samples_them():
    """Texel i of the tile is sampled at u = 2i/(W−1) − 1 (v likewise): the texture image's first
    and last texel centres must land on the stroke's corners (u, v) = (∓1, ∓1)."""
    from vidstyle.methods.paint.brushes import TEXTURE_HEIGHT, TEXTURE_WIDTH
    from vidstyle.methods.paint.layouts import OIL
    from vidstyle.methods.paint.strokes import StrokeLevel, StrokeSet

    p = np.zeros(OIL.dim, np.float32)
    ix, iy = OIL.centre
    p[ix], p[iy], p[OIL.length], p[OIL.thickness], p[OIL.angle], p[OIL.alpha] = 0.4, 0.55, 0.5, 0.2, 0.7, 1.0
    level = StrokeLevel(1, p[None, None], np.ones((1, 1), bool), np.zeros((1, 1), np.int16))
    strokes = StrokeSet("oil", 60, 80, np.ones(3, np.float32), 0.0, [level])
    root = ET.fromstring(strokes_to_svg(strokes))
    use = next(root.iter("{http://www.w3.org/2000/svg}use"))
    m = _matrix(use.get("transform"))
    first = m @ [0.5, 0.5, 1.0]
    last = m @ [TEXTURE_WIDTH - 0.5, TEXTURE_HEIGHT - 0.5, 1.0]
    centre = np.array([0.4 * 80, 0.55 * 60])
    along, across = np.array([np.cos(0.7), np.sin(0.7)]), np.array([-np.sin(0.7), np.cos(0.7)])
    hw, hh = 0.5 * 0.5 * 80, 0.2 * 0.5 * 80
    np.testing.assert_allclose(first, centre - hw * along - hh * across, atol=0.02)
    np.testing.assert_allclose(last, centre + hw * along + hh * across, atol=0.02)


def test_painting_process_frames(painted):
    _, strokes, _ = painted
    frames = list(painting_process(strokes, strokes_per_frame=7))
    n = strokes.n_strokes
    assert len(frames) == 1 + -(-n // 7)
    assert all(f.shape == (strokes.height, strokes.width, 3) and f.dtype == np.uint8 for f in frames)
    final = render_sets([strokes])[0]
    assert np.abs(frames[-1].astype(int) - final.astype(int)).max() <= 2
    assert np.abs(frames[0].astype(int) - final.astype(int)).mean() > 5


def test_style_stage_lowers_style_loss_with_random_vgg():
    from vidstyle.features.vgg import random_extractor

    layers = ("conv1_1", "conv2_1")
    settings = _fast(
        strokes=12, levels=2, iterations=8, style_iterations=15, style_layers=layers, style_size=48, style_lr=0.05
    )
    ext = random_extractor(layers, seed=0)
    style = np.zeros((40, 40, 3), np.uint8)
    style[::4] = (250, 220, 0)  # yellow stripes on black
    target = _synthetic()
    plain = PaintStylizer(_fast(strokes=12, levels=2, iterations=8)).stylize(FrameContext(0, target), None)
    styled = PaintStylizer(settings, [style], extractor=ext).stylize(FrameContext(0, target), None)
    assert "style_loss" in styled.stats
    objective = PaintStylizer(settings, [style], extractor=ext).objective

    def style_only(img):
        with torch.no_grad():
            return float(objective.style_loss(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255))

    assert style_only(styled.image) < style_only(plain.image)
    assert styled.stats["iterations"] == plain.stats["iterations"] + settings.style_iterations


def test_bad_settings_raise_config_error():
    bad = (
        dict(strokes=0), dict(strokes=-3), dict(strokes=20001), dict(stroke_type="pencil"), dict(margin=0.6),
        dict(levels=0), dict(style_layers=("conv9_9",)), dict(background="grey"),
    )
    for kw in bad:
        settings = PaintSettings(**kw)  # frozen settings are checked by validate(), not on construction
        with pytest.raises(ConfigError):
            settings.validate()
    with pytest.raises(ConfigError):
        PaintStylizer(_fast(), [np.zeros((8, 8, 3), np.uint8)], style_weights=[1.0, 2.0], extractor=torch.nn.Identity())


def test_pull_draws_the_painting_toward_an_anchor():
    from vidstyle.methods.base import Pull

    target = _synthetic()
    anchor = np.zeros_like(target)
    anchor[...] = (250, 250, 20)  # a yellow anchor image, fully trusted
    settings = _fast(strokes=20, levels=2, iterations=15)
    free = PaintStylizer(settings).stylize(FrameContext(0, target), None)
    pulled = PaintStylizer(settings).stylize(FrameContext(0, target, pull=Pull(anchor, weight=2.0)), None)
    assert _psnr(pulled.image, anchor) > _psnr(free.image, anchor) + 1.0


def test_batch_mixes_fresh_and_warm_frames():
    stylizer = PaintStylizer(_fast(strokes=20, levels=2, iterations=10, later_iterations=3))
    f0, f1 = _synthetic(), _synthetic(shift=(2, 1))
    r0 = stylizer.stylize(FrameContext(0, f0), None)
    flow = np.zeros(f0.shape[:2] + (2,), np.float32)
    flow[..., 0], flow[..., 1] = -2.0, -1.0
    out = stylizer.stylize_batch([(FrameContext(1, f1, flow=flow), r0.state), (FrameContext(0, f1), None)])
    assert out[0].stats["warm"] == 1.0 and out[1].stats["warm"] == 0.0
    # a state painted for another stroke type or aspect ratio is not reused
    other = PaintStylizer(_fast(strokes=20, levels=2, iterations=5, stroke_type="rect"))
    assert other.stylize(FrameContext(1, f1, flow=flow), r0.state).stats["warm"] == 0.0


def test_styled_video_warm_start_keeps_the_style_objective():
    from vidstyle.features.vgg import random_extractor

    layers = ("conv1_1", "conv2_1")
    settings = _fast(
        strokes=12, levels=2, iterations=6, style_iterations=5, style_layers=layers, style_size=48, later_iterations=3
    )
    style = np.zeros((32, 32, 3), np.uint8)
    style[::4] = (250, 220, 0)
    stylizer = PaintStylizer(settings, [style, style[::-1]], [2.0, 1.0], random_extractor(layers))
    f0, f1 = _synthetic(), _synthetic(shift=(1, 0))
    r0 = stylizer.stylize(FrameContext(0, f0), None)
    flow = np.zeros(f0.shape[:2] + (2,), np.float32)
    flow[..., 0] = -1.0
    r1 = stylizer.stylize(FrameContext(1, f1, flow=flow, mask=np.ones(f0.shape[:2], np.float32)), r0.state)
    assert r1.stats["warm"] == 1.0 and r1.image.shape == f1.shape
    assert np.isfinite(r1.stats["loss"])


def test_progress_events_name_every_stage():
    events = []
    settings = _fast(strokes=20, levels=2, iterations=12, refine_iterations=4, later_iterations=3)
    stylizer = PaintStylizer(settings, on_event=events.append)
    f0 = _synthetic()
    r0 = stylizer.stylize(FrameContext(0, f0), None)
    assert all(isinstance(e, IterationProgress) for e in events)
    stages = ["paint level 1/2", "paint level 2/2", "paint refine"]
    assert list(dict.fromkeys(e.stage for e in events)) == stages
    last = {e.stage: e for e in events}
    assert [last[name].iteration for name in stages] == [12, 12, 4]  # every stage reports its last step
    assert all(e.levels == 3 and e.iterations == e.iteration for e in last.values())
    assert [last[name].level for name in stages] == [0, 1, 2]
    assert len(events) == 2 + 2 + 1  # every PROGRESS_EVERY (10) steps and the last one
    events.clear()
    flow = np.zeros(f0.shape[:2] + (2,), np.float32)
    stylizer.stylize(FrameContext(1, f0, flow=flow), r0.state)
    assert [(e.stage, e.iteration, e.level, e.levels) for e in events] == [("paint repaint", 3, 0, 1)]
    assert np.isfinite(events[0].loss) and events[0].seconds > 0


def test_registry_builds_and_describes_the_painter(monkeypatch):
    from vidstyle.methods.registry import MethodSpec

    spec = MethodSpec("paint", _fast(strokes=10, levels=2, iterations=3))
    stylizer = spec.build("cpu")
    assert isinstance(stylizer, FrameStylizer) and isinstance(stylizer, PaintStylizer)
    info = stylizer.describe()
    assert (info.method, info.device, info.precision, info.weights) == ("paint", "cpu", "fp32", None)
    monkeypatch.setenv("VIDSTYLE_ALLOW_RANDOM_WEIGHTS", "1")
    style = np.zeros((24, 24, 3), np.uint8)
    settings = _fast(strokes=10, levels=2, iterations=3, style_layers=("conv1_1",), style_size=24, weights="random")
    styled = MethodSpec("paint", settings, styles=[style], style_weights=[1.0]).build("cpu")
    assert styled.describe().weights["source"] == "random"
    with pytest.raises(ConfigError):
        MethodSpec("paint", _fast(strokes=0)).build("cpu")


def test_exports_are_written_with_the_umask(painted, tmp_path):
    import os

    from vidstyle.methods.paint.svg import save_svg

    _, strokes, _ = painted
    before = os.umask(0o022)
    try:
        save_strokes_json(tmp_path / "strokes.json", [strokes])
        save_svg(tmp_path / "painting.svg", strokes)
    finally:
        os.umask(before)
    for name in ("strokes.json", "painting.svg"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["painting.svg", "strokes.json"]  # no temporary left
    ET.parse(tmp_path / "painting.svg")
