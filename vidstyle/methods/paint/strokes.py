"""The stroke list: plain numpy, picklable, resolution independent.

A `StrokeSet` is one painted frame: the strokes of every level of the progressive grid, stored
densely per level as (blocks, slots, params) with a `valid` mask (blocks may hold fewer strokes
than the level's slot count). Positions are normalized (see `brushes`), so the same set renders
at any size with the frame's aspect ratio; `height`/`width` record the frame it was painted for.

The canonical paint order (`ordered`) is level → parity group → block → slot; it equals the
compositing order of the renderer, and JSON, SVG and the process animation all follow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vidstyle.methods.paint.layouts import spec_for
from vidstyle.methods.paint.renderer import GROUPS, level_margin


@dataclass
class StrokeLevel:
    grid: int  # m: the level is an m×m grid of blocks
    params: np.ndarray  # (m*m, K, D) float32, normalized coordinates
    valid: np.ndarray  # (m*m, K) bool
    variant: np.ndarray  # (m*m, K) int16 texture variant

    @property
    def slots(self) -> int:
        return int(self.params.shape[1])

    def copy(self) -> StrokeLevel:
        return StrokeLevel(self.grid, self.params.copy(), self.valid.copy(), self.variant.copy())


@dataclass
class StrokeSet:
    stroke_type: str
    height: int
    width: int
    background: np.ndarray  # (3,) float32 RGB in [0, 1]
    margin: float  # clip boxes: blocks grown by this fraction of a block on every side
    levels: list[StrokeLevel] = field(default_factory=list)

    @property
    def n_strokes(self) -> int:
        return int(sum(level.valid.sum() for level in self.levels))

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def copy(self) -> StrokeSet:
        levels = [lv.copy() for lv in self.levels]
        return StrokeSet(self.stroke_type, self.height, self.width, self.background.copy(), self.margin, levels)

    def block_order(self, grid: int) -> list[int]:
        """Blocks of an m×m level in paint order (parity groups, then row-major)."""
        if grid == 1:
            return [0]
        return [r * grid + c for gr, gc in GROUPS for r in range(gr, grid, 2) for c in range(gc, grid, 2)]

    def clip_box(self, grid: int, block: int) -> tuple[float, float, float, float]:
        mu = level_margin(grid, self.margin)
        r, c = divmod(block, grid)
        return ((c - mu) / grid, (r - mu) / grid, (c + 1 + mu) / grid, (r + 1 + mu) / grid)

    def ordered(self) -> dict[str, np.ndarray]:
        """All valid strokes in paint order: params (N,D), clip (N,4), variant, level, block, slot (N,)."""
        spec = spec_for(self.stroke_type)
        rows: dict[str, list] = {k: [] for k in ("params", "clip", "variant", "level", "block", "slot")}
        for li, level in enumerate(self.levels):
            for b in self.block_order(level.grid):
                box = self.clip_box(level.grid, b)
                for k in np.flatnonzero(level.valid[b]):
                    rows["params"].append(level.params[b, k])
                    rows["clip"].append(box)
                    rows["variant"].append(int(level.variant[b, k]))
                    rows["level"].append(li)
                    rows["block"].append(b)
                    rows["slot"].append(int(k))
        n = len(rows["params"])
        return {
            "params": np.asarray(rows["params"], np.float32).reshape(n, spec.dim),
            "clip": np.asarray(rows["clip"], np.float32).reshape(n, 4),
            "variant": np.asarray(rows["variant"], np.int64),
            "level": np.asarray(rows["level"], np.int64),
            "block": np.asarray(rows["block"], np.int64),
            "slot": np.asarray(rows["slot"], np.int64),
        }

    # picklable plain-dict form (FrameResult.state) -----------------------------------------
    def to_state(self) -> dict:
        return {
            "stroke_type": self.stroke_type,
            "height": int(self.height),
            "width": int(self.width),
            "background": np.asarray(self.background, np.float32),
            "margin": float(self.margin),
            "levels": [
                {"grid": lv.grid, "params": lv.params, "valid": lv.valid, "variant": lv.variant} for lv in self.levels
            ],
        }

    @classmethod
    def from_state(cls, state: dict) -> StrokeSet:
        return cls(
            stroke_type=state["stroke_type"],
            height=int(state["height"]),
            width=int(state["width"]),
            background=np.asarray(state["background"], np.float32),
            margin=float(state["margin"]),
            levels=[
                StrokeLevel(
                    int(lv["grid"]),
                    np.asarray(lv["params"], np.float32),
                    np.asarray(lv["valid"], bool),
                    np.asarray(lv["variant"], np.int16),
                )
                for lv in state["levels"]
            ],
        )
