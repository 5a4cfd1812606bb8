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
    # False: the content term is left out (and the pass stops at the deepest style layer), e.g. a detail level
    content: bool = True


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


# advected later frames start with DETAIL_ITERATIONS on the fine style layers alone (`detail_style_layers`, content
# off, the temporal term kept): moving the previous output onto this frame softens its finest strokes, and one
# step on conv1_1/conv2_1 restores them for ~0.4 of a full iteration's cost. Without it The Scream's style
# distance stayed 1.15x classic whatever the share (18 full iterations: 1.14x); with it, 0.93-1.04x.
DETAIL_ITERATIONS = 1
# ...then at least this share of --later-iterations at full size with the warm style layers. Measured on
# bikes.mp4 104..114 at 640 px and bigbuckbunny.mp4 30..40 at 1280 px with Starry Night and The Scream: content
# similarity follows the full-size iterations at 1280 px, and 57 % keeps it within 0.03 of classic in all four
# (50 %: 1280 px The Scream 0.034 short; docs/BENCHMARKS.md).
ADVECTED_SHARE = 0.57
# ...and go on, up to all of them, while the loss still falls by more than this per iteration (relative, over
# STOP_WINDOW iterations). At iteration 14 a frame still far from its answer falls by 2-3e-2 per iteration, a
# settled one by 3-7e-3 (1280 px, bigbuckbunny.mp4): a frame after a cold anchor or a cut gets more.
ADVECTED_TOLERANCE = 1e-2
STOP_WINDOW = 4


def later_plan(
    width: int,
    height: int,
    iterations: int,
    schedule: str,
    style_layers: tuple[str, ...] | None = None,
    detail_layers: tuple[str, ...] | None = None,
) -> list[Level]:
    """Levels of a warm-started (later) frame: `classic` runs `iterations` at full size; `advected` starts from
    a closer point (the stylizer's `_warm_start`), restores the fine strokes that moving it softened with
    DETAIL_ITERATIONS on `detail_layers` alone (none when None), then runs ADVECTED_SHARE of `iterations` and
    stops as soon as the frame has converged (ADVECTED_TOLERANCE), so a frame that still has far to go (after a
    cold anchor, a cut) gets up to all of them. All at full size: a coarse level does not pay on a warm frame,
    whose start is already right at coarse scales; where the flow is trusted its change must not apply anyway
    (it would unsteady the frame), and the untrusted parts start from this frame's own input (measured: a
    quarter-size level before 12 full-size iterations gave the same style and 0.010 lower content similarity
    than 14 full-size ones). `style_layers` (`warm_style_layers`) are the ones the full level matches."""
    if schedule == "classic":
        return [Level(width, height, iterations)]
    least = max(1, round(iterations * ADVECTED_SHARE))
    if detail_layers is None or iterations <= DETAIL_ITERATIONS:
        return [Level(width, height, iterations, least, ADVECTED_TOLERANCE, style_layers)]
    most = iterations - DETAIL_ITERATIONS  # never more iterations in all than classic's
    detail = Level(width, height, DETAIL_ITERATIONS, style_layers=detail_layers, content=False)
    return [detail, Level(width, height, most, min(least, most), ADVECTED_TOLERANCE, style_layers)]


def detail_style_layers(style_layers: tuple[str, ...]) -> tuple[str, ...] | None:
    """The style layers of an advected frame's detail level: those before the second pooling (conv1_x, conv2_x;
    one feature per pixel or per 2x2), or None when none of them are matched or nothing deeper is (then the
    detail level would be the full one)."""
    from vidstyle.features.vgg import layer_stride

    fine = tuple(name for name in style_layers if layer_stride(name) <= 2)
    return fine if fine and len(fine) < len(style_layers) else None


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
