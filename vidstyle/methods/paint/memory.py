"""What the painter's memory scales with, and how it keeps within --memory-per-worker.

Strokes are fitted on a small canvas (`canvas`, 256 px by default; the style stage at `style_size`),
so the optimization does not grow with the frame. What grows with the frame is the final render
at the output size: every stroke slot of a block is evaluated on the block's patch, so a pass
holds frames × slots × patch pixels *footprint elements* (texture coordinates, alpha, colour mix,
compositing weights: FOOTPRINT_BYTES each) next to a few full-frame tensors (the canvas and one
layer being built: RENDER_PIXEL_BYTES per pixel). The coarsest level is one block covering the
whole frame, so rendering it in one pass costs slots × H × W elements; `render_max_elements`
sizes the passes to the budget (blocks, then rows of one block, at a time: the same pixels).

The fit differentiates every level of the painting at once (refine, repaint and style stages), so
its graph holds all footprint elements at the optimization canvas size; `check_fit` refuses a
canvas whose graph cannot fit instead of running out of memory mid-job.

Budgets come from `vidstyle.device.memory_budget`; what the process already holds (resident memory
on the CPU, allocated memory on CUDA) is counted against it, so the peak stays within the budget.
"""

from __future__ import annotations

from typing import Sequence

import torch

from vidstyle.device import format_bytes, memory_budget, parse_memory
from vidstyle.errors import ResourceError
from vidstyle.methods.paint.renderer import level_geometry

# measured with scripts/bench_paint_hd.py and peak RSS (CPU, fp32, oil strokes), rounded up
FOOTPRINT_BYTES = 64  # per footprint element of a no-gradient rendering pass (45-65 measured)
RENDER_PIXEL_BYTES = 80  # per output pixel and frame: canvas, the layer being built, the uint8 result (72 measured)
PASS_ELEMENTS = 1_000_000  # the largest pass even when memory allows more: larger passes are slower on a CPU
FIT_FOOTPRINT_BYTES = 64  # per footprint element of an optimizer step over all levels (52-69 measured)
FIT_FIXED_BYTES = 128 * 2**20  # the rest of a step: Sinkhorn grids, losses, Adam's moments, targets
VGG_PIXEL_BYTES = 3600  # activations a VGG pass keeps for backward, per pixel (as the Gatys method's estimate)


def in_use(device: torch.device) -> int:
    """Bytes this process holds now: allocated CUDA memory, or resident memory on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        import os

        with open("/proc/self/statm", encoding="utf-8") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def budget(memory_per_worker: str | int | None, device: torch.device) -> tuple[int, str]:
    """(bytes, where they come from) for a --memory-per-worker value: a size, bytes, or auto/None."""
    requested = memory_per_worker if isinstance(memory_per_worker, int) or memory_per_worker is None else None
    if isinstance(memory_per_worker, str):
        requested = parse_memory(memory_per_worker)
    return memory_budget(requested, device)


def _refuse(what: str, need: int, held: int, limit: int, where: str, lower: str) -> ResourceError:
    source = "--memory-per-worker" if where == "--memory-per-worker" else f"--memory-per-worker auto ({where})"
    return ResourceError(
        f"{what} needs about {format_bytes(need + held)} ({format_bytes(held)} already in use) but {source} "
        f"allows {format_bytes(limit)}: raise --memory-per-worker or {lower}"
    )


def render_max_elements(
    levels: Sequence[tuple[int, int]],
    batch: int,
    height: int,
    width: int,
    margin: float,
    device: torch.device,
    memory_per_worker: str | int | None = None,
) -> int:
    """Footprint elements per rendering pass for levels [(m, slots)] at height×width within the budget.

    Raises ResourceError when even the smallest pass (one row of one block) cannot fit."""
    limit, where = budget(memory_per_worker, device)
    held = in_use(device)
    fixed = RENDER_PIXEL_BYTES * batch * height * width
    smallest = max(
        (batch * slots * level_geometry(m, float(margin), height, width).pw for m, slots in levels), default=0
    )
    need = fixed + FOOTPRINT_BYTES * smallest
    room = limit - held - fixed
    if room < FOOTPRINT_BYTES * smallest:
        raise _refuse(f"rendering {width}x{height}", need, held, limit, where, "lower --size")
    return int(min(PASS_ELEMENTS, room // FOOTPRINT_BYTES))


def process_elements(height: int, width: int, device: torch.device, memory_per_worker: str | int | None = None) -> int:
    """Footprint elements per pass of the painting-process animation (`export.painting_process`), which
    evaluates each stroke over the whole frame: the budget's passes, the smallest being one stroke on one row."""
    return render_max_elements([(1, 1)], 1, height, width, 0.0, device, memory_per_worker)


def fit_elements(levels: Sequence[tuple[int, int]], batch: int, height: int, width: int, margin: float) -> int:
    """Footprint elements of one differentiated render of levels [(m, slots)] on a height×width canvas."""
    total = 0
    for m, slots in levels:
        geom = level_geometry(m, float(margin), height, width)
        total += batch * m * m * slots * geom.ph * geom.pw
    return total


def fit_bytes(
    levels: Sequence[tuple[int, int]], batch: int, height: int, width: int, margin: float, network: bool = False
) -> int:
    """Estimated peak bytes of an optimizer step that differentiates all `levels` (refine, repaint and
    style stages: the largest steps), with a VGG pass over the canvas when `network`."""
    need = FIT_FOOTPRINT_BYTES * fit_elements(levels, batch, height, width, margin) + FIT_FIXED_BYTES
    return need + (VGG_PIXEL_BYTES * batch * height * width if network else 0)


def check_fit(
    levels: Sequence[tuple[int, int]],
    batch: int,
    height: int,
    width: int,
    margin: float,
    device: torch.device,
    memory_per_worker: str | int | None = None,
    what: str = "the stroke fit",
    network: bool = False,
) -> None:
    """Refuse an optimization whose graph cannot fit the budget (one clear line, before it starts)."""
    limit, where = budget(memory_per_worker, device)
    held = in_use(device)
    need = fit_bytes(levels, batch, height, width, margin, network)
    if held + need > limit:
        lower = "lower --canvas or --strokes" if not network else "lower --canvas or --strokes (style_size for styles)"
        raise _refuse(f"{what} on a {width}x{height} canvas", need, held, limit, where, lower)
