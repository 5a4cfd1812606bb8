"""Seamless tiling of levels that do not fit the memory budget: the tile plan, the whole-image style
gradient through tiles, tiled vs untiled results, and the budget's bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gatys_fixtures import smooth_image, stripes
from test_cli_errors import assert_error, image, work  # noqa: F401  (the CLI fixture)

from vidstyle.device import parse_memory
from vidstyle.errors import ConfigError, ResourceError
from vidstyle.features.vgg import random_extractor
from vidstyle.losses import region_style_loss, style_loss
from vidstyle.methods.gatys.loop import GatysEngine
from vidstyle.methods.gatys.objective import GatysObjective
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.methods.gatys.tiling import (
    ALIGN,
    BYTES_PER_PIXEL,
    FULL_BYTES_PER_PIXEL,
    MODEL_BYTES,
    TILE_MARGIN,
    StyledRegion,
    TiledObjective,
    TileGrid,
    WholeImageGrams,
    crop,
    grid_offset,
    plan_tiles,
    tiles_at,
)
from vidstyle.tensors import to_tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LAYERS = ("conv1_1", "conv2_1", "conv3_1")


def coverage(width: int, height: int, grid: TileGrid, step: int) -> np.ndarray:
    counts = np.zeros((height, width), int)
    for tile in tiles_at(width, height, grid, step):
        x0, y0, x1, y1 = tile.core
        counts[y0:y1, x0:x1] += 1
        cx0, cy0, cx1, cy1 = tile.crop
        assert (cx0, cy0) == (max(0, x0 - grid.margin), max(0, y0 - grid.margin))
        assert (cx1, cy1) == (min(width, x1 + grid.margin), min(height, y1 + grid.margin))
        assert x0 % ALIGN == 0 and y0 % ALIGN == 0 and cx0 % ALIGN == 0 and cy0 % ALIGN == 0
    return counts


def test_tile_cores_partition_the_image_and_move_every_step():
    grid = TileGrid(96, 64, margin=32)
    borders = []
    for step in range(4):
        assert (coverage(300, 200, grid, step) == 1).all()
        borders.append({tile.core[0] for tile in tiles_at(300, 200, grid, step)} - {0})
    assert len({frozenset(b) for b in borders}) == 4  # no border stays in place
    # the R2 sequence by hand: frac(1 · 0.75488) · 96 = 72.5 → 64 (multiples of 16); frac(2 · 0.75488) = 0.50976 → 48
    assert grid_offset(0, 96, 0) == 0 and grid_offset(1, 96, 0) == 64 and grid_offset(2, 96, 0) == 48
    assert grid_offset(1, 64, 1) == 32  # frac(0.56984) · 64 = 36.5 → 32


def test_plan_tiles_fits_whole_or_gives_tiles_within_the_budget():
    assert plan_tiles(320, 256, 1, 2**40, "RAM") is None
    budget = 2 * 2**30
    grid = plan_tiles(3840, 2160, 1, budget, "RAM")
    assert grid is not None and grid.tile_width % ALIGN == 0 and grid.tile_height % ALIGN == 0
    crop_pixels = min(3840, grid.tile_width + 2 * TILE_MARGIN) * min(2160, grid.tile_height + 2 * TILE_MARGIN)
    used = BYTES_PER_PIXEL * crop_pixels + FULL_BYTES_PER_PIXEL * 3840 * 2160 + MODEL_BYTES
    assert used <= budget
    with pytest.raises(ResourceError, match="--memory-per-worker"):
        plan_tiles(3840, 2160, 1, 512 * 2**20, "--memory-per-worker")


def test_parse_memory_sizes_and_refusals():
    assert parse_memory("8GiB") == 8 * 2**30 and parse_memory("512M") == 512 * 2**20
    assert parse_memory("1.5GB") == 1_500_000_000 and parse_memory("auto") is None
    for bad in ("8XB", "-1G", "0", "lots"):
        with pytest.raises(ConfigError, match="--memory-per-worker"):
            parse_memory(bad)


def _settings(**overrides) -> GatysSettings:
    base = dict(
        weights="random", content_layers=("conv2_1",), style_layers=LAYERS, size=320, precision="fp32",
        early_stop=0.0, tv_weight=0.0, style_weight=1e3, optimizer="adam", learning_rate=0.02,
    )  # fmt: skip
    base.update(overrides)
    return GatysSettings(**base).validate()


@pytest.fixture(scope="module")
def extractor():
    return random_extractor((*LAYERS, "conv2_1"), seed=0)


@pytest.mark.parametrize("masked", [False, True])
def test_tiled_gradient_is_the_whole_image_gradient(extractor, masked):
    """With a margin past the layers' reach, the assembled gradient is the untiled one (both style forms)."""
    s = _settings()
    x = to_tensor([smooth_image(96, 128, seed=2)], "cpu")
    content = to_tensor([smooth_image(96, 128, seed=3)], "cpu")
    engine = GatysEngine(s, [stripes(32, 32)], (), "cpu", extractor, use_disk_cache=False)
    grams = engine.grams(128)
    mask = torch.zeros(1, 1, 96, 128)
    mask[..., :, 40:] = 1.0
    regions = [StyledRegion(grams, mask), StyledRegion(grams, 1 - mask)] if masked else [StyledRegion(grams)]
    whole = x.clone().requires_grad_(True)
    feats = extractor(whole)
    if masked:
        expected_style = region_style_loss(feats, [(g, m) for g, m in ((grams, mask), (grams, 1 - mask))])
    else:
        expected_style = style_loss(feats, grams)
    untiled = GatysObjective(s, extractor, grams, content)
    loss = s.style_weight * expected_style + untiled(whole)[1]["content"]
    (expected,) = torch.autograd.grad(loss.sum(), whole)

    style = WholeImageGrams(regions, s.layer_weights(), 1, 128, 96)

    def objective_for(box, term):
        return GatysObjective(s, extractor, grams, crop(content, box), style=term)

    tiled = TiledObjective(objective_for, extractor, style, s.style_weight, TileGrid(48, 32, margin=32))
    total, parts, grad = tiled.loss_and_grad(x.clone().requires_grad_(True), step=1)
    assert float(parts["style"]) == pytest.approx(float(s.style_weight * expected_style.detach()), rel=1e-4)
    cosine = float((grad * expected).sum() / (grad.norm() * expected.norm()))
    assert cosine > 0.999 and float(grad.norm() / expected.norm()) == pytest.approx(1.0, abs=0.01)


def _border_ratio(image: np.ndarray, grid: TileGrid, steps: int) -> float:
    """Gradient energy across the last steps' tile borders over the energy everywhere else."""
    img = image.astype(np.float32) / 255.0
    dx = ((img[:, 1:] - img[:, :-1]) ** 2).sum(-1)
    height, width = img.shape[:2]
    on_border = np.zeros_like(dx, bool)
    for step in range(max(0, steps - 3), steps):
        for tile in tiles_at(width, height, grid, step):
            if tile.core[0] > 0:
                on_border[:, tile.core[0] - 1] = True
    return float(dx[on_border].mean() / dx[~on_border].mean())


def test_a_frame_over_budget_is_tiled_and_matches_the_untiled_result(extractor):
    content = smooth_image(256, 320, seed=4)
    style = stripes(64, 64)
    results = {}
    for memory in ("auto", "450MiB"):  # 450 MiB: the estimate of 320×256 whole is ~560 MB, tiles of 96 px fit
        engine = GatysEngine(_settings(memory_per_worker=memory), [style], (), "cpu", extractor, use_disk_cache=False)
        batch = to_tensor([content], "cpu")
        out = engine.optimize(batch, batch.clone(), 20)
        results[memory] = out
    assert results["auto"].stats[0]["tiled_levels"] == 0 and results["450MiB"].stats[0]["tiled_levels"] == 1
    engine = GatysEngine(_settings(), [style], (), "cpu", extractor, use_disk_cache=False)
    judge = GatysObjective(engine.settings, extractor, engine.grams(320), to_tensor([content], "cpu"))
    with torch.no_grad():
        untiled, tiled = (judge(results[k].images)[1]["style"].item() for k in ("auto", "450MiB"))
    assert tiled == pytest.approx(untiled, rel=0.05)
    grid = plan_tiles(320, 256, 1, parse_memory("450MiB"), "x")
    image_tiled = (results["450MiB"].images[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert _border_ratio(image_tiled, grid, 20) <= 1.2


def test_a_budget_that_cannot_hold_one_tile_is_one_line(work):  # noqa: F811
    result = image("--memory-per-worker", "1MiB", "--weights", "random", "--size", "32", "--device", "cpu")
    assert_error(result, ResourceError.exit_code, "--memory-per-worker", "1.0 MiB")


def test_an_unparsable_budget_is_one_line(work):  # noqa: F811
    result = image("--memory-per-worker", "eight gigs")
    assert_error(result, ConfigError.exit_code, "--memory-per-worker", "eight gigs")


@pytest.mark.parametrize("memory", ["auto", "450MiB"])
def test_a_level_matching_some_style_layers_is_an_engine_with_only_those(extractor, memory):
    """`Level.style_layers` (an advected later frame's): the same result, whole or tiled, as settings that list only
    those style layers."""
    from vidstyle.methods.gatys.schedule import Level

    content = to_tensor([smooth_image(256, 320, seed=4)], "cpu")
    style = stripes(64, 64)
    shallow = ("conv1_1", "conv2_1")
    outputs = []
    for style_layers, level in ((LAYERS, Level(320, 256, 3, style_layers=shallow)), (shallow, Level(320, 256, 3))):
        settings = _settings(memory_per_worker=memory, style_layers=style_layers)
        engine = GatysEngine(settings, [style], (), "cpu", extractor, use_disk_cache=False)
        outputs.append(engine.optimize(content, content.clone(), 3, levels=[level]))
    assert outputs[0].stats[0]["tiled_levels"] == outputs[1].stats[0]["tiled_levels"] == (memory != "auto")
    assert torch.allclose(outputs[0].images, outputs[1].images, atol=1e-6)
    assert outputs[0].stats[0]["style"] == pytest.approx(outputs[1].stats[0]["style"], rel=1e-5)


FRESH_PAGES_PROBE = """
import resource, sys, torch
from vidstyle.device import reuse_freed_memory
took = reuse_freed_memory() if sys.argv[1] == "reuse" else True
faults = []
for _ in range(20):  # a 64 MiB tensor made and freed again, as each iteration does with its activations
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(2**24)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(took, sum(faults[10:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_worker_takes_large_tensors_from_freed_memory_not_fresh_pages():
    """glibc maps a 64 MiB tensor afresh each time (16k pages the kernel zeroes); after reuse_freed_memory, as a
    worker sets it, the heap settles within a few allocations and then serves them from freed memory: over the
    last 10 of 20, no new page at all (measured: the first 7-9 still fault, the last 20 of 30 never)."""
    root = Path(__file__).resolve().parents[1]

    def page_faults(variant: str) -> tuple[str, int]:
        environment = {**os.environ, "PYTHONPATH": str(root)}
        command = [sys.executable, "-c", FRESH_PAGES_PROBE, variant]
        run = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True, env=environment)
        took, faults = run.stdout.split()
        return took, int(faults)

    took, faults = page_faults("reuse")
    if took != "True":
        pytest.skip("not glibc")
    assert faults < 1_000
    assert page_faults("fresh")[1] > 100_000
