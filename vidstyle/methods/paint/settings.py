"""Typed settings of the stroke painter: every field is one CLI option / settings-file key (declared here, once)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import vidstyle.methods.shared_settings as shared
from vidstyle.config import Panel, check, check_loss_weights, setting
from vidstyle.methods.paint.layouts import STROKE_TYPES

MAX_STROKES = 20000


@dataclass(frozen=True)
class PaintSettings(shared.ColdFrameSettings):
    """Everything that changes a painted pixel; each field is one CLI option / settings-file key."""

    # what to paint with
    strokes: int = setting(500, "Stroke budget per frame, spread over the grid levels.", Panel.PAINTER)
    stroke_type: str = setting(
        "oil", "Brush: " + " | ".join(STROKE_TYPES) + ".", Panel.PAINTER, metavar="|".join(STROKE_TYPES)
    )
    size: int | None = shared.size_field(None)
    levels: int | None = setting(
        None, "Grid levels m (1×1 … m×m blocks); default: from the stroke budget.", Panel.PAINTER
    )
    level_exponent: float = setting(2.5, "Level l gets a share ∝ m_l^exponent of the budget.", Panel.PAINTER, cli=False)
    adaptive: float = setting(
        0.5, "0: strokes spread evenly over blocks; 1: by each block's error.", Panel.PAINTER, cli=False
    )
    slot_slack: float = setting(
        1.5, "Slots per block = ceil(slack · mean strokes per block).", Panel.PAINTER, cli=False
    )
    margin: float = setting(
        0.3, "How far beyond its block a stroke may paint (fraction of a block).", Panel.PAINTER, cli=False
    )
    background: str | tuple[float, float, float] = setting(
        "mean", "Canvas colour under the strokes: mean | white | black | R,G,B in [0, 1].", Panel.PAINTER, cli=False
    )
    # optimization of the painting (first frame of a chain)
    iterations: int = shared.iterations_field(60)
    refine_iterations: int = setting(
        30, "Adam steps on all levels jointly after the last level.", Panel.PAINTER, cli=False
    )
    lr: float = setting(
        0.02, "Adam step (block units for positions/sizes, [0, 1] for colours).", Panel.PAINTER, cli=False
    )
    canvas: int = setting(
        256,
        "Long side of the canvas the strokes are fitted on, px (output renders at any size).",
        Panel.PAINTER,
        metavar="PX",
    )
    sinkhorn_weight: float = setting(
        0.1, "Weight of the Sinkhorn (optimal transport) term next to L1.", Panel.PAINTER, cli=False
    )
    sinkhorn_size: int = setting(24, "Long side of the per-block Sinkhorn grids.", Panel.PAINTER, cli=False)
    sinkhorn_blur: float = setting(0.05, "Sinkhorn blur, in units of a block's long side.", Panel.PAINTER, cli=False)
    # style stage (only when style images are given)
    style_weight: float = setting(0.1, "Weight of the style loss.", Panel.WEIGHTS, flag="--style-loss-weight")
    content_weight: float = setting(1.0, "Weight of the content loss.", Panel.WEIGHTS)
    laplacian_weight: float = setting(0.0, "Laplacian (edge structure) loss, Li et al.; 0 = off.", Panel.WEIGHTS)
    style_iterations: int = setting(100, "Adam steps of the style stage (with --style).", Panel.PAINTER)
    style_lr: float = setting(0.01, "Adam step of the style stage.", Panel.PAINTER, cli=False)
    style_shapes: bool = setting(
        False, "Let the style stage move and resize strokes, not only recolour them.", Panel.PAINTER
    )
    style_size: int = setting(
        256, "Long side of the canvas the style stage renders and VGG sees, px.", Panel.PAINTER, cli=False
    )
    style_layers: tuple[str, ...] = shared.style_layers_field()
    weights: str = shared.weights_field()
    memory_per_worker: str = shared.memory_per_worker_field()
    # video
    later_iterations: int = shared.later_iterations_field(25)
    later_lr_scale: float = setting(
        0.5, "Learning rate of warm-started frames relative to lr.", Panel.PAINTER, cli=False
    )
    temporal_weight: float = shared.temporal_weight_field(30.0)
    reseed_trust: float = setting(
        0.15, "Reseed strokes where the smoothed flow trust is below this.", Panel.PAINTER, cli=False
    )
    seed: int = shared.seed_field()

    def validate(self) -> PaintSettings:
        integer = isinstance(self.strokes, int) and not isinstance(self.strokes, bool)
        check(integer, f"--strokes must be an integer, got {self.strokes!r}")
        check(0 < self.strokes <= MAX_STROKES, f"--strokes must be in 1..{MAX_STROKES}, got {self.strokes}")
        known = ", ".join(STROKE_TYPES)
        check(self.stroke_type in STROKE_TYPES, f"unknown --stroke-type '{self.stroke_type}': use one of {known}")
        check(self.size is None or self.size >= 16, f"--size must be at least 16 px, got {self.size}")
        levels_ok = self.levels is None or 1 <= int(self.levels) <= 32
        check(levels_ok, f"paint levels must be between 1 and 32, got {self.levels}")
        check(0.0 <= self.margin < 0.5, f"paint margin must be in [0, 0.5), got {self.margin}")
        for name in ("iterations", "refine_iterations", "style_iterations", "later_iterations"):
            check(getattr(self, name) >= 0, f"--{name.replace('_', '-')} must be ≥ 0, got {getattr(self, name)}")
        check(self.canvas >= 16 and self.style_size >= 16, "paint canvas and style size must be at least 16 px")
        check(self.lr > 0 and self.style_lr > 0 and self.later_lr_scale > 0, "paint learning rates must be positive")
        check_loss_weights(
            self, "sinkhorn_weight", "style_weight", "content_weight", "laplacian_weight", "temporal_weight"
        )
        check(0.0 <= self.reseed_trust <= 1.0, f"paint reseed trust must be in [0, 1], got {self.reseed_trust}")
        check(0.0 <= self.adaptive <= 1.0, f"paint adaptive must be in [0, 1], got {self.adaptive}")
        check(self.slot_slack >= 1.0, f"paint slot slack must be ≥ 1, got {self.slot_slack}")
        if isinstance(self.background, str):
            named = self.background in ("mean", "white", "black")
            check(named, f"paint background must be mean, white, black or an RGB triple, got '{self.background}'")
        else:
            check(len(tuple(self.background)) == 3, "paint background must be an RGB triple in [0, 1]")
        shared.check_layers(self.style_layers, "--style-layers")
        shared.check_weights(self.weights)
        shared.check_memory_per_worker(self.memory_per_worker)
        return self

    # --- MethodSettings ------------------------------------------------------------------------------
    def needs_palette(self) -> bool:
        return False

    def vgg_weights(self, styled: bool) -> str | None:
        return self.weights if styled else None

    @property
    def grid_levels(self) -> int:
        return int(self.levels) if self.levels is not None else auto_levels(self.strokes)


PRESETS: dict[str, dict[str, object]] = {
    "fast": dict(strokes=300, iterations=40, refine_iterations=15, later_iterations=15, style_iterations=60),
    "balanced": dict(),
    "quality": dict(
        strokes=1500,
        iterations=100,
        refine_iterations=50,
        later_iterations=40,
        canvas=384,
        style_iterations=150,
        style_size=384,
    ),
}


def auto_levels(strokes: int) -> int:
    """m for a budget: about 12–20 strokes per finest block (500 → 5, 2000 → 9)."""
    return int(min(12, max(1, round(math.sqrt(strokes / 20.0)))))


def level_plan(settings: PaintSettings) -> list[tuple[int, int]]:
    """[(m, strokes of that level)] summing exactly to settings.strokes; levels with 0 are dropped."""
    m_max = settings.grid_levels
    weights = [m**settings.level_exponent for m in range(1, m_max + 1)]
    total = sum(weights)
    raw = [settings.strokes * w / total for w in weights]
    counts = [int(math.floor(r)) for r in raw]
    rest = settings.strokes - sum(counts)
    for i in sorted(range(m_max), key=lambda i: (raw[i] - counts[i], i), reverse=True)[:rest]:
        counts[i] += 1
    return [(m, n) for m, n in zip(range(1, m_max + 1), counts) if n > 0]
