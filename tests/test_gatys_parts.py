"""Pieces of the Gatys method against hand-computed values: batched L-BFGS, levels, objective, style targets."""

from __future__ import annotations

import pytest
import torch
from gatys_fixtures import LAYERS, settings, smooth_image

from vidstyle.features.vgg import random_extractor
from vidstyle.methods import style_targets
from vidstyle.methods.gatys.lbfgs import BatchedLBFGS
from vidstyle.methods.gatys.objective import PIXEL_RANGE, GatysObjective, TemporalTerm
from vidstyle.methods.gatys.schedule import Level, minimum_side, scale_plan
from vidstyle.methods.gatys.settings import LAPLACIAN_SCALE, PRESETS, TEXTURE, TV_SCALE, GatysSettings
from vidstyle.methods.style_targets import blended_grams, style_grams

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


# ----------------------------------------------------------------------------- schedule


def sizes(plan: list[Level]) -> list[tuple[int, int]]:
    return [(level.width, level.height) for level in plan]


def test_scale_plan_coarse_to_fine():
    plan = scale_plan(384, 512, 3, 0.5, 70)
    assert sizes(plan) == [(96, 128), (192, 256), (384, 512)]
    counts = [level.iterations for level in plan]
    assert counts == [40, 20, 10]  # 4:2:1, most at the lowest resolution
    assert sum(counts) == 70


def test_scale_plan_single_level_and_small_images():
    assert scale_plan(128, 96, 1, 0.5, 17) == [Level(128, 96, 17)]
    # every level would be clamped to the minimum side: one level, all iterations
    assert scale_plan(64, 64, 3, 0.5, 12) == [Level(64, 64, 12)]


@pytest.mark.parametrize("levels", [2, 3, 4])
def test_scale_plan_realistic_budgets_sum_to_total(levels):
    for iterations in (30, 100, 299, 300, 600):
        plan = scale_plan(1280, 720, levels, 0.5, iterations)
        assert sum(level.iterations for level in plan) == iterations
        assert sizes(plan)[-1] == (1280, 720)
        counts = [level.iterations for level in plan]
        assert counts[0] == max(counts)


@pytest.mark.parametrize("levels,iterations", [(3, 3), (4, 5), (4, 6), (4, 7)])
def test_scale_plan_small_budgets_sum_to_total(levels, iterations):
    plan = scale_plan(512, 512, levels, 0.5, iterations)
    assert len(plan) == levels
    assert sum(level.iterations for level in plan) == iterations


@pytest.mark.parametrize("width,height", [(64, 48), (200, 112)])
def test_scale_plan_levels_never_exceed_output_and_keep_aspect(width, height):
    for level in scale_plan(width, height, 2, 0.5, 20):
        assert level.width <= width and level.height <= height
        assert abs(level.height / level.width - height / width) <= 1.0 / min(level.width, level.height)


def test_minimum_side_follows_the_deepest_layer_and_the_laplacian():
    assert minimum_side(settings(style_layers=("conv1_1",), content_layers=("conv1_2",))) == 1
    assert minimum_side(settings()) == 2  # conv2_1: one pool before it
    assert minimum_side(settings(style_layers=("conv5_1",))) == 16
    assert minimum_side(settings(laplacian_weight=1.0, laplacian_pool=4)) == 12  # 3x3 kernel on a 4x pooled image


# ----------------------------------------------------------------------------- objective


ZERO_GRAMS = {"conv1_1": torch.zeros(3, 3)}


def identity_features(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Features = the image itself, so every term can be worked out on paper."""
    return {"conv1_1": images}


def step_image() -> torch.Tensor:
    """(1,3,4,4): columns 0, 0, 1, 1 in every channel."""
    x = torch.zeros(1, 3, 4, 4)
    x[..., 2:] = 1.0
    return x


def test_objective_parts_hand_computed():
    s = settings(
        style_layers=("conv1_1",), content_layers=("conv1_1",), content_weight=2.0, style_weight=3.0,
        tv_weight=0.5, laplacian_weight=0.25, laplacian_pool=1,
    )
    x = torch.cat([step_image(), torch.zeros(1, 3, 4, 4)])  # image 1: a zero image, every term 0
    temporal = TemporalTerm(torch.zeros(2, 3, 4, 4), torch.ones(2, 1, 4, 4), torch.tensor([7.0, 7.0]))
    objective = GatysObjective(s, identity_features, ZERO_GRAMS, torch.zeros(2, 3, 4, 4), [temporal])
    total, parts = objective(x)
    # style: every Gram entry is 8 ones / (C·H·W = 48) = 1/6; MSE to the zero target 1/36
    # content: MSE of x to 0 = 1/2; TV: one step of 1 among 3 horizontal pairs per row = 1/3
    # Laplacian (pool 1, 2x2 valid): −1 and +1 at the edge, MSE 1; temporal: Σ x² / (3·4·4) = 24/48
    expected = {
        "style": 3.0 / 36,
        "content": 2.0 * 0.5,
        "tv": 0.5 * TV_SCALE * PIXEL_RANGE / 3,
        "laplacian": 0.25 * LAPLACIAN_SCALE * PIXEL_RANGE**2,
        "temporal": 7.0 * PIXEL_RANGE**2 * 0.5,
    }
    assert set(parts) == set(expected)
    for name, value in expected.items():
        assert parts[name].shape == (2,)
        assert parts[name][0].item() == pytest.approx(value, rel=1e-5), name
        assert parts[name][1].item() == 0.0, name
    assert total[0].item() == pytest.approx(sum(expected.values()), rel=1e-5)
    assert total[1].item() == 0.0


def test_objective_leaves_out_terms_with_zero_weight():
    s = settings(style_layers=("conv1_1",), content_layers=("conv1_1",), content_weight=0.0, tv_weight=0.0)
    objective = GatysObjective(s, identity_features, ZERO_GRAMS, torch.zeros(1, 3, 4, 4))
    _, parts = objective(step_image())
    assert set(parts) == {"style"}


def test_objective_resizes_temporal_terms_to_its_level():
    s = settings(style_layers=("conv1_1",), content_layers=("conv1_1",))
    term = TemporalTerm(torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8), torch.tensor([1.0]))
    objective = GatysObjective(s, identity_features, ZERO_GRAMS, torch.zeros(1, 3, 4, 4), [term])
    assert objective.temporal[0].target.shape[-2:] == (4, 4) and objective.temporal[0].mask.shape[-2:] == (4, 4)


def test_defaults_and_presets_keep_their_effective_pixel_weights():
    """The rescale of TV and Laplacian weights keeps the look of the defaults and the ink preset."""
    defaults = GatysSettings()
    assert defaults.tv_weight * TV_SCALE == 10.0 and defaults.laplacian_weight == 0.0
    assert PRESETS["ink"]["tv_weight"] * TV_SCALE == 20.0
    assert PRESETS["ink"]["laplacian_weight"] * LAPLACIAN_SCALE == 1e3
    assert TEXTURE["tv_weight"] * TV_SCALE == 5.0


# ----------------------------------------------------------------------------- style targets


def test_blended_grams_are_the_weighted_mean_of_the_styles_grams():
    style, other = smooth_image(32, 32, seed=8), smooth_image(32, 32, seed=9)
    ex = random_extractor(LAYERS, seed=0)
    one = style_grams(ex, style, 32, LAYERS, use_disk=False)
    two = style_grams(ex, other, 32, LAYERS, use_disk=False)
    blend = blended_grams(ex, [style, other], [1.0, 3.0], 32, LAYERS, use_disk=False)
    for layer in LAYERS:
        assert torch.allclose(blend[layer], 0.25 * one[layer] + 0.75 * two[layer])


def test_style_targets_disk_cache_is_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSTYLE_CACHE", str(tmp_path))
    monkeypatch.setattr(style_targets, "_MEMORY", {})
    ex = random_extractor(LAYERS, seed=0)
    image = smooth_image(20, 28, seed=11)
    computed = style_grams(ex, image, 24, LAYERS)
    (cached,) = (tmp_path / "targets").iterdir()  # one file, no temporary left behind
    assert cached.suffix == ".pt"
    torch.save({k: 2 * v for k, v in computed.items()}, cached)  # mark the file: a read must return it
    monkeypatch.setattr(style_targets, "_MEMORY", {})
    again = style_grams(ex, image, 24, LAYERS)
    for layer in LAYERS:
        assert torch.allclose(again[layer], 2 * computed[layer])


def test_style_targets_unwritable_cache_is_only_a_miss(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("VIDSTYLE_CACHE", str(blocker))
    monkeypatch.setattr(style_targets, "_MEMORY", {})
    grams = style_grams(random_extractor(LAYERS, seed=0), smooth_image(20, 28, seed=12), 24, LAYERS)
    assert set(grams) == set(LAYERS)


def test_later_plan_classic_and_advected():
    from vidstyle.methods.gatys.schedule import ADVECTED_TOLERANCE, Level, later_plan

    assert later_plan(640, 272, 30, "classic") == [Level(640, 272, 30)]
    tolerance = ADVECTED_TOLERANCE  # at least 57% of the iterations, up to all of them while not converged
    assert later_plan(640, 272, 30, "advected") == [Level(640, 272, 30, 17, tolerance)]  # 0.57 × 30 = 17.1
    assert later_plan(640, 272, 100, "advected") == [Level(640, 272, 100, 57, tolerance)]
    assert later_plan(640, 272, 1, "advected") == [Level(640, 272, 1, 1, tolerance)]  # never none
    warm, fine = ("conv1_1", "conv2_1", "conv3_1", "conv4_1"), ("conv1_1", "conv2_1")
    detail = Level(640, 272, 1, style_layers=fine, content=False)  # one step on the fine layers, content off
    assert later_plan(640, 272, 30, "advected", warm, fine) == [detail, Level(640, 272, 29, 17, tolerance, warm)]
    assert later_plan(640, 272, 2, "advected", warm, fine) == [detail, Level(640, 272, 1, 1, tolerance, warm)]
    assert later_plan(640, 272, 1, "advected", warm, fine) == [Level(640, 272, 1, 1, tolerance, warm)]  # no room
    assert later_plan(640, 272, 30, "classic", warm, fine) == [Level(640, 272, 30)]  # classic: every layer, no detail


def test_detail_style_layers_are_those_before_the_second_pooling():
    from vidstyle.methods.gatys.schedule import detail_style_layers

    default = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    assert detail_style_layers(default) == ("conv1_1", "conv2_1")
    assert detail_style_layers(("conv1_2", "conv2_2", "conv3_1")) == ("conv1_2", "conv2_2")
    assert detail_style_layers(("conv1_1", "conv2_1")) is None  # nothing deeper: the detail level would be the full one
    assert detail_style_layers(("conv3_1", "conv4_1")) is None  # no fine layer matched


def test_warm_style_layers_stop_at_the_deepest_content_layer():
    from vidstyle.methods.gatys.schedule import warm_style_layers

    default = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    assert warm_style_layers(default, ("conv4_2",)) == ("conv1_1", "conv2_1", "conv3_1", "conv4_1")
    assert warm_style_layers(default, ("conv3_1", "conv4_2")) == ("conv1_1", "conv2_1", "conv3_1", "conv4_1")
    assert warm_style_layers(default, ("conv2_2",)) == ("conv1_1", "conv2_1")
    assert warm_style_layers(default, ("conv5_1",)) is None  # nothing deeper: all of them
    assert warm_style_layers(default, ()) is None  # no content term: nothing holds the frame's structure
    assert warm_style_layers(("conv5_1",), ("conv4_2",)) is None  # never none left


def test_extractor_pass_stops_at_the_deepest_layer_asked_for(monkeypatch):
    import torch.nn.functional as F

    extractor = random_extractor(("conv1_1", "conv2_1", "conv3_1"), seed=0)
    x = torch.rand(1, 3, 24, 24)
    full = extractor(x)
    convs = []
    original = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: convs.append(1) or original(*a, **k))
    part = extractor(x, ("conv1_1", "conv2_1"))
    assert set(part) == {"conv1_1", "conv2_1"} and len(convs) == 3  # conv1_1, conv1_2, conv2_1: not conv2_2..3_1
    assert all(torch.equal(part[k], full[k]) for k in part)


def test_extractor_pools_before_the_relu_of_a_layer_it_does_not_return(monkeypatch):
    """max(ReLU(a), ReLU(b)) = ReLU(max(a, b)): conv1_2's ReLU runs on the pooled map, with the values and
    gradients of ReLU-then-pool, in float32 and in bf16 channels_last (the CPU pass)."""
    import torch.nn.functional as F

    extractor = random_extractor(("conv1_1", "conv2_1"), seed=0)

    def reference(x):
        h = extractor.normalize(x)
        out = {}
        for name, w, b in zip(extractor.names, extractor.weights, extractor.biases):
            h = F.relu(F.conv2d(h, w.to(h.dtype), b.to(h.dtype), padding=1))
            out[name] = h
            if name == "conv1_2":
                h = F.max_pool2d(h, 2)
        return out

    torch.manual_seed(0)
    image = torch.rand(2, 3, 18, 22)
    full_size = []
    relu = F.relu
    monkeypatch.setattr(F, "relu", lambda h, **k: full_size.append(h.shape[-2:] == (18, 22)) or relu(h, **k))
    extractor(image)
    assert full_size == [True, False, False]  # conv1_1 at full size; conv1_2 pooled first; conv2_1
    monkeypatch.undo()
    for dtype, layout in ((torch.float32, torch.contiguous_format), (torch.bfloat16, torch.channels_last)):
        x = image.clone().requires_grad_(True)
        y = image.clone().requires_grad_(True)
        got = extractor(x.to(dtype).contiguous(memory_format=layout))
        want = reference(y.to(dtype).contiguous(memory_format=layout))
        assert set(got) == {"conv1_1", "conv2_1"}
        weights = {k: torch.randn_like(v) for k, v in got.items()}
        sum((got[k] * weights[k]).float().sum() for k in got).backward()
        sum((want[k] * weights[k]).float().sum() for k in got).backward()
        assert all(torch.equal(got[k], want[k]) for k in got)
        assert torch.equal(x.grad, y.grad)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="oneDNN fuses the ReLU on CPUs only")
def test_bf16_cpu_pass_fuses_each_relu_into_its_convolution(monkeypatch):
    """Under bf16 autocast on a CPU, ReLU(conv) is one oneDNN call (`vgg._FusedConvReLU`): the same activations
    and input gradient, bit for bit, as conv2d then ReLU; a float32 pass keeps them apart."""
    from vidstyle.features import vgg

    extractor = random_extractor(("conv1_1", "conv2_1", "conv3_1"), seed=0).to(memory_format=torch.channels_last)
    torch.manual_seed(0)
    image = torch.rand(2, 3, 20, 24).contiguous(memory_format=torch.channels_last)

    def run(dtype):
        x = image.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = extractor(x)
        seeds = {name: torch.Generator().manual_seed(i) for i, name in enumerate(sorted(out))}
        loss = sum((v.float() * torch.randn(v.shape, generator=seeds[k])).sum() for k, v in out.items())
        (grad,) = torch.autograd.grad(loss, x)
        return out, grad

    fused_calls = []
    apply = vgg._FusedConvReLU.apply
    monkeypatch.setattr(vgg._FusedConvReLU, "apply", lambda *a: fused_calls.append(1) or apply(*a))
    fused, fused_grad = run(torch.bfloat16)
    assert len(fused_calls) == 3  # conv1_1, conv2_1, conv3_1; conv1_2 and conv2_2 pool before their ReLU
    run(torch.float32)
    assert len(fused_calls) == 3  # float32: none
    monkeypatch.setattr(vgg, "_fused_dtype", lambda x: None)
    apart, apart_grad = run(torch.bfloat16)
    assert all(torch.equal(fused[k], apart[k]) for k in apart) and torch.equal(fused_grad, apart_grad)


def test_max_pool_backward_by_unpooling_equals_max_pools_own():
    """`vgg.max_pool` hands the gradient back with max_unpool2d: bit for bit max pooling's own backward, odd
    sizes (the last row/column dropped) and channels_last bf16 included."""
    from vidstyle.features.vgg import max_pool

    torch.manual_seed(0)
    for shape, dtype, layout in (
        ((2, 4, 9, 11), torch.float32, torch.contiguous_format),
        ((1, 8, 14, 10), torch.bfloat16, torch.channels_last),
    ):
        x = torch.randn(shape).to(dtype).contiguous(memory_format=layout)
        weights = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2).to(dtype)
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ours, theirs = max_pool(a), torch.nn.functional.max_pool2d(b, 2)
        (grad_a,) = torch.autograd.grad((ours * weights).sum(), a)
        (grad_b,) = torch.autograd.grad((theirs * weights).sum(), b)
        assert torch.equal(ours, theirs) and torch.equal(grad_a, grad_b)
        assert grad_a.is_contiguous(memory_format=layout)


def test_caffe_input_is_the_flipped_image_scaled_and_shifted():
    """RGB in [0, 1] -> BGR 0-255 minus the mean: the flip that replaced indexing gives the same values."""
    from vidstyle.features.weights import CAFFE_CONVENTION

    extractor = random_extractor(("conv1_1",), seed=0)
    extractor_caffe = type(extractor)(
        [(w, b) for w, b in zip(extractor.weights, extractor.biases)], CAFFE_CONVENTION, ("conv1_1",)
    )
    image = torch.rand(2, 3, 5, 6)
    scale = torch.tensor(CAFFE_CONVENTION.scale).view(1, 3, 1, 1)
    shift = torch.tensor(CAFFE_CONVENTION.shift).view(1, 3, 1, 1)
    expected = image[:, [2, 1, 0]] * scale - shift
    assert torch.equal(extractor_caffe.normalize(image), expected)
    assert torch.equal(extractor.normalize(image), image * extractor.in_scale - extractor.in_shift)
