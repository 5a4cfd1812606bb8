"""Typed settings of the stroke painter, validated on construction (ConfigError, one clear line)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidstyle.errors import ConfigError
from vidstyle.methods.paint.brushes import STROKE_TYPES

MAX_STROKES = 20000
DEFAULT_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


@dataclass
class PaintSettings:
    # what to paint with
    strokes: int = 500  # total stroke budget per frame, spread over the levels
    stroke_type: str = "oil"  # "oil" | "rect" | "bezier"
    levels: int | None = None  # m: grids 1×1 … m×m; None picks m from the budget (auto_levels)
    level_exponent: float = 2.5  # level l gets a share ∝ m_l^exponent of the budget (2 = SNP's K per block)
    adaptive: float = 0.5  # 0: strokes spread evenly over blocks; 1: ∝ the block's error at init
    slot_slack: float = 1.5  # slots per block = ceil(slack · mean strokes per block)
    margin: float = 0.3  # a stroke may paint up to this fraction of a block beyond its block
    background: str | tuple[float, float, float] = "mean"  # "mean" | "white" | "black" | RGB
    # optimization of the painting (first frame of a chain)
    iterations: int = 60  # Adam steps per level
    refine_iterations: int = 30  # Adam steps on all levels jointly at the end (≈ +0.8 dB)
    lr: float = 0.02  # in block units for positions/sizes, radians/3 for angles, [0,1] for colours
    canvas: int = 256  # long side of the optimization canvas (px); output renders at any size
    sinkhorn_weight: float = 0.1  # β_ot in L = L1 + β_ot·Sinkhorn (seed 002)
    sinkhorn_size: int = 24  # long side of the per-block Sinkhorn grids
    sinkhorn_blur: float = 0.05  # √ε in units of the block's long side
    # style stage (only when style images are given)
    style_weight: float = 0.1  # on the Gram loss, each layer normalised by its target (see StyleObjective)
    content_weight: float = 1.0  # L1 to the frame
    laplacian_weight: float = 0.0  # MSE of pooled Laplacians (seed 002 / Li et al.)
    style_iterations: int = 100
    style_lr: float = 0.01
    style_shapes: bool = False  # also let the style stage move/resize strokes (colours always)
    style_size: int = 256  # long side of the canvas the style stage renders and VGG sees
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    # video
    later_iterations: int = 25  # Adam steps for a warm-started frame (all levels jointly)
    later_lr_scale: float = 0.5  # learning rate of warm-started frames = lr × this (less jitter)
    temporal_weight: float = 30.0  # Ruder temporal term: MSE to the warped previous painting (trusted px)
    reseed_trust: float = 0.15  # reseed strokes where the (smoothed) flow-trust mask is below this
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.strokes, bool) or not isinstance(self.strokes, int):
            raise ConfigError(f"paint strokes must be an integer, got {self.strokes!r}")
        if self.strokes <= 0:
            raise ConfigError(f"paint strokes must be positive, got {self.strokes}")
        if self.strokes > MAX_STROKES:
            raise ConfigError(f"paint strokes must be at most {MAX_STROKES}, got {self.strokes}")
        if self.stroke_type not in STROKE_TYPES:
            raise ConfigError(f"unknown stroke type '{self.stroke_type}': use one of {', '.join(STROKE_TYPES)}")
        if self.levels is not None and not (1 <= int(self.levels) <= 32):
            raise ConfigError(f"paint levels must be between 1 and 32, got {self.levels}")
        if not 0.0 <= self.margin < 0.5:
            raise ConfigError(f"paint margin must be in [0, 0.5), got {self.margin}")
        for name in ("iterations", "refine_iterations", "style_iterations", "later_iterations"):
            if getattr(self, name) < 0:
                raise ConfigError(f"paint {name.replace('_', ' ')} must be ≥ 0, got {getattr(self, name)}")
        if self.canvas < 16 or self.style_size < 16:
            raise ConfigError("paint canvas and style size must be at least 16 px")
        if self.lr <= 0 or self.style_lr <= 0 or self.later_lr_scale <= 0:
            raise ConfigError("paint learning rates must be positive")
        for name in ("sinkhorn_weight", "style_weight", "content_weight", "laplacian_weight", "temporal_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"paint {name.replace('_', ' ')} must be ≥ 0, got {getattr(self, name)}")
        if not 0.0 <= self.reseed_trust <= 1.0:
            raise ConfigError(f"paint reseed trust must be in [0, 1], got {self.reseed_trust}")
        if not 0.0 <= self.adaptive <= 1.0:
            raise ConfigError(f"paint adaptive must be in [0, 1], got {self.adaptive}")
        if self.slot_slack < 1.0:
            raise ConfigError(f"paint slot slack must be ≥ 1, got {self.slot_slack}")
        if isinstance(self.background, str):
            if self.background not in ("mean", "white", "black"):
                raise ConfigError(f"paint background must be mean, white, black or an RGB triple, got '{self.background}'")
        elif len(tuple(self.background)) != 3:
            raise ConfigError("paint background must be an RGB triple in [0, 1]")
        self.style_layers = tuple(self.style_layers)

    @property
    def grid_levels(self) -> int:
        return int(self.levels) if self.levels is not None else auto_levels(self.strokes)


def auto_levels(strokes: int) -> int:
    """m for a budget: about 12–20 strokes per finest block (500 → 5, 2000 → 9)."""
    return int(min(12, max(1, round(math.sqrt(strokes / 20.0)))))


def level_plan(settings: PaintSettings) -> list[tuple[int, int]]:
    """[(m, strokes of that level)] summing exactly to settings.strokes; levels with 0 are dropped."""
    m_max = settings.grid_levels
    weights = [m ** settings.level_exponent for m in range(1, m_max + 1)]
    total = sum(weights)
    raw = [settings.strokes * w / total for w in weights]
    counts = [int(math.floor(r)) for r in raw]
    rest = settings.strokes - sum(counts)
    for i in sorted(range(m_max), key=lambda i: (raw[i] - counts[i], i), reverse=True)[:rest]:
        counts[i] += 1
    return [(m, n) for m, n in zip(range(1, m_max + 1), counts) if n > 0]
