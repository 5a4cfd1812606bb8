"""What an optimization will run at: coarse-to-fine levels, the smallest usable size, the memory it needs.

Pure arithmetic on sizes (always (width, height)), checked before any pixel is optimized so that a
size that cannot work fails with the limit in the message instead of an error deep in a VGG pass.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vidstyle.errors import ConfigError, ResourceError

if TYPE_CHECKING:
    import torch

    from vidstyle.methods.gatys.settings import GatysSettings

BYTES_PER_PIXEL_ESTIMATE = 3600  # activations kept for backward through VGG up to conv5_1, fp32, batch 1
MIN_SCALE_SIDE = 64  # coarse levels and style targets are never smaller than this on the short side
MEMORY_HEADROOM = 0.9  # share of the free memory a batch may plan to use


@dataclass(frozen=True)
class Level:
    """One resolution of a coarse-to-fine optimization and its share of the iterations."""

    width: int
    height: int
    iterations: int


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


LATER_FULL_SHARE = 0.25  # multiscale later frames: this share of the iterations at full size, the rest at half


def later_plan(width: int, height: int, iterations: int, schedule: str, factor: float = 0.5) -> list[Level]:
    """Levels of a warm-started (later) frame: `classic` runs every iteration at full size; `multiscale` runs
    most of them at `factor` × the size (a quarter of the cost each at 0.5) and the last share at full size.

    The warm start is already close at coarse scales; what is left there is cheap to fix at low resolution,
    and the full-size iterations refine the detail. The same Level notion as `scale_plan` for cold frames.
    """
    floor = min(1.0, MIN_SCALE_SIDE / min(height, width))
    f = max(factor, floor)
    small = (round(width * f), round(height * f))
    if schedule == "classic" or iterations < 2 or small == (width, height):
        return [Level(width, height, iterations)]
    full = max(1, round(iterations * LATER_FULL_SHARE))
    return [Level(*small, iterations - full), Level(width, height, full)]


def minimum_side(settings: GatysSettings) -> int:
    """Smallest short side the VGG layers (and the Laplacian term) can work on."""
    from vidstyle.features.vgg import POOL_AFTER, layer_depth
    from vidstyle.features.weights import CONV_LAYERS

    deepest = max(layer_depth(name) for name in settings.content_layers + settings.style_layers)
    pools = sum(1 for name in CONV_LAYERS[: deepest - 1] if name in POOL_AFTER)
    side = 2**pools
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


def memory_needed(width: int, height: int, batch: int) -> int:
    """Bytes an optimization of `batch` images of width x height keeps alive (estimate)."""
    return BYTES_PER_PIXEL_ESTIMATE * width * height * batch


def available_memory(device: torch.device) -> tuple[int, str] | None:
    """(bytes free, what they are) on `device`, or None when the system does not say."""
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free), "free GPU memory"
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available RAM"
    except (ValueError, OSError):
        return None


def check_memory(width: int, height: int, batch: int, device: torch.device) -> None:
    """Refuse sizes that cannot fit, with the limit in the message, instead of an OOM mid-job."""
    available = available_memory(device)
    if available is not None:
        check_fits(width, height, batch, *available)


def check_fits(width: int, height: int, batch: int, available: int, where: str) -> None:
    need = memory_needed(width, height, batch)
    if need > MEMORY_HEADROOM * available:
        side = int(math.sqrt(MEMORY_HEADROOM * available / (BYTES_PER_PIXEL_ESTIMATE * batch)))
        raise ResourceError(
            f"{width}x{height} (batch {batch}) needs about {need / 2**30:.1f} GiB but only "
            f"{available / 2**30:.1f} GiB of {where} is there: the limit is about {side}x{side} px; lower --size"
        )
