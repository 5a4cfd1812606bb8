"""What an optimization will run at: coarse-to-fine levels and the smallest usable size (memory: tiling.py).

Pure arithmetic on sizes (always (width, height)), checked before any pixel is optimized so that a
size that cannot work fails with the limit in the message instead of an error deep in a VGG pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vidstyle.errors import ConfigError

if TYPE_CHECKING:
    from vidstyle.methods.gatys.settings import GatysSettings

MIN_SCALE_SIDE = 64  # coarse levels and style targets are never smaller than this on the short side


@dataclass(frozen=True)
class Level:
    """One resolution of a coarse-to-fine optimization and its share of the iterations."""

    width: int
    height: int
    iterations: int
    # a level that stops on its own convergence: from iteration `stop_after` on, an image whose loss fell by
    # less than `tolerance` (relative, per iteration, over the last STOP_WINDOW iterations) is done. None:
    # the settings' --early-stop rule.
    stop_after: int | None = None
    tolerance: float = 0.0
    # the style layers this level matches, the VGG pass stopping at the deepest layer it needs; None: all of them
    style_layers: tuple[str, ...] | None = None


def scale_plan(width: int, height: int, scales: int, factor: float, iterations: int) -> list[Level]:
    """Coarse-to-fine levels: most iterations at the lowest resolution (2:1 per level).

    Levels keep the output's aspect ratio, are never smaller than MIN_SCALE_SIDE on the short side
    nor larger than the output, and their iteration counts sum exactly to `iterations`.
    """
    sizes: list[tuple[int, int]] = []
    floor = min(1.0, MIN_SCALE_SIDE / min(height, width))
    for level in range(scales - 1):
        f = max(factor ** (scales - 1 - level), floor)
        size = (round(width * f), round(height * f))
        if size != (width, height) and (not sizes or size != sizes[-1]):
            sizes.append(size)
    sizes.append((width, height))
    sizes = sizes[-max(1, min(len(sizes), iterations)) :]  # at least one iteration per level
    shares = [2.0 ** (len(sizes) - 1 - i) for i in range(len(sizes))]
    counts = [max(1, round(iterations * share / sum(shares))) for share in shares]
    counts[-1] = iterations - sum(counts[:-1])
    while counts[-1] < 1:  # rounding gave the coarse levels too much: take it back from them
        biggest = max(range(len(counts) - 1), key=lambda i: counts[i])
        counts[biggest] -= 1
        counts[-1] += 1
    return [Level(w, h, n) for (w, h), n in zip(sizes, counts)]


# advected later frames run at least this share of --later-iterations (all at full size). Measured at 640 px on
# bikes.mp4 104..114 (a car drives off a cyclist): 14 of 30 iterations from the advected start gave E_warp 0.88x,
# style distance 0.85x and content similarity -0.012 against classic's 30 (docs/BENCHMARKS.md). From the plain
# warped start, 15 gave content -0.063.
ADVECTED_SHARE = 0.45
# ...and go on, up to all of them, while the loss still falls by more than this per iteration (relative, over
# STOP_WINDOW iterations). At iteration 14 a frame still far from its answer falls by 2-3e-2 per iteration, a
# settled one by 3-7e-3 (1280 px, bigbuckbunny.mp4). Over 10 later frames: 640 px 15.3 iterations, content
# similarity -0.006 against classic (fixed 14: -0.012); 1280 px 16.2, -0.032 (fixed 14: -0.049), the first
# frame after the anchor running 28 (docs/BENCHMARKS.md).
ADVECTED_TOLERANCE = 1e-2
STOP_WINDOW = 4


def later_plan(
    width: int, height: int, iterations: int, schedule: str, style_layers: tuple[str, ...] | None = None
) -> list[Level]:
    """Levels of a warm-started (later) frame: `classic` runs `iterations` at full size; `advected` starts from
    a closer point (the stylizer's `_warm_start`), runs ADVECTED_SHARE of them and then stops as soon as the
    frame has converged (ADVECTED_TOLERANCE), so a frame that still has far to go (after a cold anchor, a cut)
    gets up to all of them. One level each: a coarse level does not pay on a warm frame, whose start is
    already right at coarse scales; where the flow is trusted its change must not apply anyway (it would
    unsteady the frame), and the untrusted parts start from this frame's own input (measured: a quarter-size
    level before 12 full-size iterations gave the same style and 0.010 lower content similarity than 14
    full-size ones). `style_layers` (`warm_style_layers`) are the ones an advected frame matches."""
    if schedule == "classic":
        return [Level(width, height, iterations)]
    least = max(1, round(iterations * ADVECTED_SHARE))
    return [Level(width, height, iterations, least, ADVECTED_TOLERANCE, style_layers)]


def warm_style_layers(style_layers: tuple[str, ...], content_layers: tuple[str, ...]) -> tuple[str, ...] | None:
    """The style layers an advected frame matches: none deeper than its deepest content layer (None: all of them).

    A deeper style layer (conv5_1 by default, one feature per 16x16 pixels) describes the painting at a
    scale where the start, the previous output moved along the flow, is already right, and the flow-trusted
    temporal term holds it there; matching it again costs the pass through conv4_3..conv5_1 on every
    iteration (9-12 % of it). Measured over 10 later frames at 640 and 1280 px with two styles: E_warp, the
    independent judge's style distance (conv1_1..conv5_1) and content similarity unchanged (docs/BENCHMARKS.md).
    """
    from vidstyle.features.vgg import depth_of, layer_depth

    if not content_layers:
        return None
    reach = depth_of(content_layers)
    kept = tuple(name for name in style_layers if layer_depth(name) <= reach)
    return kept if kept and len(kept) < len(style_layers) else None


def minimum_side(settings: GatysSettings) -> int:
    """Smallest short side the VGG layers (and the Laplacian term) can work on."""
    from vidstyle.features.vgg import layer_stride

    side = max(layer_stride(name) for name in settings.content_layers + settings.style_layers)
    if settings.laplacian_weight > 0:
        side = max(side, 3 * settings.laplacian_pool)
    return side


def check_size(width: int, height: int, settings: GatysSettings) -> None:
    smallest = minimum_side(settings)
    if min(width, height) < smallest:
        raise ConfigError(
            f"{width}x{height} is too small for these VGG layers: the short side must be at least {smallest} px; "
            "raise --size"
        )
