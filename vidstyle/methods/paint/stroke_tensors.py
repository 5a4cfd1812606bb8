"""Stroke sets as batched tensors: what the optimizer works on, and rendering of whole sets.

A `StrokeSet` (numpy, picklable) is one frame; `LevelTensors` hold one level of the progressive
grid for a batch of frames of identical structure, so every level is one dense tensor and the
frames of a batch are optimized together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from vidstyle.methods.paint.brushes import texture_atlas
from vidstyle.methods.paint.memory import render_max_elements
from vidstyle.methods.paint.renderer import apply_layers, level_layers
from vidstyle.methods.paint.strokes import StrokeLevel, StrokeSet
from vidstyle.tensors import to_uint8


@dataclass
class LevelTensors:
    grid: int
    params: torch.Tensor  # (B, m*m, K, D)
    valid: torch.Tensor  # (B, m*m, K) float {0, 1}
    variant: torch.Tensor  # (B, m*m, K) long


def stack_levels(sets: Sequence[StrokeSet], device: str | torch.device = "cpu") -> list[LevelTensors]:
    """Stack stroke sets of identical structure into per-level batch tensors."""
    first = sets[0]
    out = []
    for li, level in enumerate(first.levels):
        lv = [s.levels[li] for s in sets]
        if any(x.grid != level.grid or x.params.shape != level.params.shape for x in lv):
            raise ValueError("stroke sets of different structure cannot be batched")
        out.append(
            LevelTensors(
                level.grid,
                torch.from_numpy(np.stack([x.params for x in lv])).float().to(device),
                torch.from_numpy(np.stack([x.valid for x in lv])).float().to(device),
                torch.from_numpy(np.stack([x.variant for x in lv]).astype(np.int64)).to(device),
            )
        )
    return out


def unstack_levels(levels: Sequence[LevelTensors], templates: Sequence[StrokeSet]) -> list[StrokeSet]:
    """One StrokeSet per frame of the batch, with the templates' type, size, background and margin."""
    sets = []
    for b, tpl in enumerate(templates):
        frame_levels = [
            StrokeLevel(
                lv.grid,
                lv.params[b].detach().cpu().numpy().astype(np.float32),
                lv.valid[b].detach().cpu().numpy() > 0.5,
                lv.variant[b].detach().cpu().numpy().astype(np.int16),
            )
            for lv in levels
        ]
        background = np.asarray(tpl.background, np.float32).copy()
        sets.append(StrokeSet(tpl.stroke_type, tpl.height, tpl.width, background, tpl.margin, frame_levels))
    return sets


def slots(levels: Sequence[LevelTensors]) -> list[tuple[int, int]]:
    """[(m, stroke slots per block)] of each level: what memory estimates need."""
    return [(lv.grid, int(lv.params.shape[2])) for lv in levels]


def render_levels(
    stroke_type: str,
    levels: Sequence[LevelTensors],
    background: torch.Tensor,
    height: int,
    width: int,
    margin: float,
    atlas: torch.Tensor,
    max_elements: int | None = None,
) -> torch.Tensor:
    """Composite every level over the background (B, 3): (B, 3, H, W).

    `max_elements` (no gradients only): footprint elements per pass (see `memory.render_max_elements`)."""
    bsz = background.shape[0]
    canvas = background.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)
    inplace = not torch.is_grad_enabled()
    if inplace:
        canvas = canvas.contiguous()
    for lv in levels:
        layers = level_layers(
            stroke_type, lv.params, lv.variant, lv.valid, lv.grid, margin, height, width, atlas, max_elements
        )
        if not inplace:
            canvas = apply_layers(canvas, layers)
            continue
        for color, logt in layers:  # the same sums as apply_layers, without full-frame temporaries
            canvas.mul_(logt.exp_()).add_(color)
    return canvas


def render_sets(
    sets: Sequence[StrokeSet],
    height: int | None = None,
    width: int | None = None,
    device: str | torch.device = "cpu",
    memory_per_worker: str | int | None = None,
) -> list[np.ndarray]:
    """Render stroke sets (same structure) at any size → RGB uint8 arrays. Default: the painted size.

    Rendering passes are sized to `memory_per_worker` (bytes, a size such as '2GiB', or None / 'auto')."""
    first = sets[0]
    height = height or first.height
    width = width or first.width
    device = torch.device(device)
    atlas = texture_atlas(first.stroke_type, device)
    background = torch.from_numpy(np.stack([s.background for s in sets])).float().to(device)
    levels = stack_levels(sets, device)
    chunk = render_max_elements(slots(levels), len(sets), height, width, first.margin, device, memory_per_worker)
    with torch.no_grad():
        canvas = render_levels(first.stroke_type, levels, background, height, width, first.margin, atlas, chunk)
    return [to_uint8(c) for c in canvas]
